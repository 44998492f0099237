package scan

import (
	"context"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/workflows"
)

// AuthorizeWorkflowName proves who creates a scan's schedule.
const AuthorizeWorkflowName = "ScanAuthorizeWorkflow"

// SpendTokenWorkflowName marks an identity token used, across the
// namespace: its workflow id is "token/" and the token's SHA-256, and a
// second start of that id is refused by the server while the namespace
// retains the first (days; an action token lives minutes).
const SpendTokenWorkflowName = "SpendTokenWorkflow"

// SpendTokenWorkflow does nothing: that it ran is the record.
func SpendTokenWorkflow(workflow.Context) error { return nil }

// spend marks token used, or refuses it when it already was: a scan's
// token, unlike a rollout's, is not tied to one long-lived workflow that
// could remember it, so the server's workflow id uniqueness does. The
// reuse policy is the workflow's own choice, never a client's.
func spend(ctx workflow.Context, scanID, token string) error {
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            "token/" + workflows.TokenHash(token),
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		StaticSummary:         "an identity token, spent by scan " + scanID,
	})
	f := workflow.ExecuteChildWorkflow(cctx, SpendTokenWorkflowName)
	if err := f.GetChildWorkflowExecution().Get(ctx, nil); err != nil {
		if temporal.IsWorkflowExecutionAlreadyStartedError(err) {
			return temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("scan %s refused: this identity token was already used (token_replayed); sign in and ask again", scanID), contract.Refused, nil)
		}
		return fmt.Errorf("spend the identity token: %w", err)
	}
	return f.Get(ctx, nil)
}

// versionRequester is the workflow version from which a scan proves who
// requested it before it touches a host.
const versionRequester = "scan-requester"

// AuthorizeInput asks the gates policy whether the person behind Token
// (or, on a dev server started with --insecure-dev-identity, the typed
// User) may scan ScanID. The token's audience must be
// contract.ActionAudience(WorkflowID(ScanID), contract.ActionScan, "").
type AuthorizeInput struct {
	ScanID string `json:"scan_id"`
	User   string `json:"user,omitempty"`
	Token  string `json:"token,omitempty"`
}

// Grant is a person's proven permission to scan ScanID, kept by the
// schedule that runs it: a scheduled run carries no person's token (it
// would have expired), so it names the run of AuthorizeWorkflow that
// proved the person when the schedule was created or updated.
type Grant struct {
	ScanID   string           `json:"scan_id"`
	Person   *contract.Person `json:"person"`
	At       time.Time        `json:"at"`
	Revision string           `json:"revision,omitempty"`
	// Workflow and Run identify the AuthorizeWorkflow run whose history
	// holds the decision.
	Workflow string `json:"workflow"`
	Run      string `json:"run"`
}

// String is how a scan's result and summary name the grant.
func (g Grant) String() string {
	return fmt.Sprintf("%s, proven %s (workflow %s run %s)", g.Person.Describe(), g.At.UTC().Format(time.RFC3339), g.Workflow, g.Run)
}

// AuthorizeWorkflow asks the gates policy (action scan) about in and
// returns the grant, or fails with the policy's reasons (Refused). Its
// history is the record of the decision; the token it was shown is
// spent with it.
func AuthorizeWorkflow(ctx workflow.Context, in AuthorizeInput) (Grant, error) {
	if err := ValidateID(in.ScanID); err != nil {
		return Grant{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.InvalidInput, nil)
	}
	p, rev, err := authorize(ctx, in)
	if err != nil {
		return Grant{}, err
	}
	info := workflow.GetInfo(ctx)
	return Grant{ScanID: in.ScanID, Person: p, At: workflow.Now(ctx).UTC(), Revision: rev,
		Workflow: info.WorkflowExecution.ID, Run: info.WorkflowExecution.RunID}, nil
}

// authorize runs the gates policy's scan rule (a local activity: the
// token stays out of history but for its hash in the decision record).
// A policy that fails to evaluate refuses.
func authorize(ctx workflow.Context, in AuthorizeInput) (*contract.Person, string, error) {
	req := contract.AuthorizeGateInput{RolloutID: WorkflowID(in.ScanID), Gate: in.ScanID, Action: contract.ActionScan,
		User: in.User, Token: in.Token, Now: workflow.Now(ctx)}
	if req.Token != "" {
		req.User = ""
		if err := spend(ctx, in.ScanID, req.Token); err != nil {
			return nil, "", err
		}
	}
	var dec contract.GateDecision
	if err := workflow.ExecuteLocalActivity(workflows.WithPolicyOptions(ctx), contract.AuthorizeGateName, req).Get(ctx, &dec); err != nil {
		dec.Allow, dec.Error = false, err.Error()
	}
	if !dec.Allow || dec.Person == nil {
		return nil, dec.Revision, temporal.NewNonRetryableApplicationError(workflows.RefusalMessage(contract.ActionScan, in.ScanID, dec.Decision), contract.Refused, nil, dec.Violations)
	}
	return dec.Person, dec.Revision, nil
}

// proveRequester proves who requested this scan run, from version
// versionRequester on: the token of a one-off scan, or the grant of a
// schedule's run. It returns the input with the token dropped and the
// person recorded; a refusal fails the scan before any host.
func proveRequester(ctx workflow.Context, in Input) (Input, error) {
	if workflow.GetVersion(ctx, versionRequester, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return in, nil
	}
	if in.Grant != nil && in.Token == "" {
		if in.Grant.ScanID != in.ScanID || in.Grant.Person == nil {
			return in, temporal.NewNonRetryableApplicationError(fmt.Sprintf("scan %s: its schedule's grant is for scan %q", in.ScanID, in.Grant.ScanID), contract.Refused, nil)
		}
		in.RequestedBy = in.Grant.Person.Name
		return in, nil
	}
	p, rev, err := authorize(ctx, AuthorizeInput{ScanID: in.ScanID, User: in.RequestedBy, Token: in.Token})
	if err != nil {
		return in, err
	}
	info := workflow.GetInfo(ctx)
	in.Token, in.RequestedBy = "", p.Name
	in.Grant = &Grant{ScanID: in.ScanID, Person: p, At: workflow.Now(ctx).UTC(), Revision: rev,
		Workflow: info.WorkflowExecution.ID, Run: info.WorkflowExecution.RunID}
	return in, nil
}

// Authorize proves the person of in for a schedule of in.ScanID: it runs
// AuthorizeWorkflow and returns its grant, or the policy's refusal.
func Authorize(ctx context.Context, c client.Client, in AuthorizeInput) (Grant, error) {
	sctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	run, err := c.ExecuteWorkflow(sctx, client.StartWorkflowOptions{
		ID: WorkflowID(in.ScanID) + "/authorize", TaskQueue: workflows.TaskQueue,
		StaticSummary:            "who may schedule scan " + in.ScanID,
		WorkflowExecutionTimeout: time.Minute,
	}, AuthorizeWorkflowName, in)
	if err != nil {
		return Grant{}, fmt.Errorf("prove who schedules scan %s: %w", in.ScanID, err)
	}
	var g Grant
	if err := run.Get(sctx, &g); err != nil {
		return Grant{}, fmt.Errorf("prove who schedules scan %s: %w", in.ScanID, refusedOr(err))
	}
	return g, nil
}
