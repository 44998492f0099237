package workflows

import (
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
)

// A rollout's shadow policy (RolloutInput.Shadow, submit --shadow-policy
// DIR) is asked about every decision the live policy takes: the
// rollout's own (risk, gates and controls, waves, escalation, forecast)
// right after each is taken, and each host's compliance by the batch
// child that judged it. Where the two disagree is counted in the
// rollout's state (contract.ShadowSummary) and shown by status, explain
// and the report. Nothing acts on the shadow's answers, and a shadow that
// fails is a difference of kind error, never a failed rollout.
//
// A rollout without a shadow policy never calls ShadowDecide, so
// histories recorded before shadows existed replay unchanged.

// shadowDecide asks the shadow policy about decisions the live policy
// took (records, verdicts) and returns its answer; a failed call is one
// difference of kind error.
func shadowDecide(ctx workflow.Context, sp *contract.ShadowPolicy, records []contract.DecisionRecord, verdicts []contract.ShadowVerdict) contract.ShadowResult {
	in := contract.ShadowInput{Policy: *sp, Records: records, Verdicts: verdicts}
	var res contract.ShadowResult
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.ShadowDecideName, in).Get(ctx, &res); err != nil {
		res = contract.ShadowResult{Revision: sp.Revision, Compared: len(records) + len(verdicts), Differences: []contract.PolicyDifference{{
			Kind: contract.DifferenceError, Subject: "shadow policy " + sp.Dir, Was: "decided", Would: "not asked", Why: err.Error()}}}
	}
	return res
}

// shadow asks the rollout's shadow policy, if it has one, about the
// records of a decision the live policy just took.
func (r *run) shadow(ctx workflow.Context, records []contract.DecisionRecord) {
	if r.in.Shadow == nil || len(records) == 0 {
		return
	}
	r.shadowSummary().AddResult(shadowDecide(ctx, r.in.Shadow, records, nil))
}

// shadowSummary is the rollout's shadow summary, started on first use.
func (r *run) shadowSummary() *contract.ShadowSummary {
	if r.st.Shadow == nil {
		r.st.Shadow = &contract.ShadowSummary{Dir: r.in.Shadow.Dir, Revision: r.in.Shadow.Revision}
	}
	return r.st.Shadow
}
