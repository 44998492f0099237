package workflows

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// RolloutWorkflow walks one patch rollout along the staged path of the
// written patch policy, and returns the compliance report:
//
//  1. the security team's risk evaluation sets the deadline and the SLA
//     clock starts; a preflight scan of every planned host takes the
//     baseline (compliant, vulnerable, pending a reboot, unreachable);
//  2. the internal advisory goes to every IT manager;
//  3. the test lab, then 4. the production-like platform: patch, soak,
//     wait at the gate for a person the gates policy allows;
//  5. the geographic waves in `after` order, within their windows and
//     limits, halting for a person when failures cross the threshold;
//     unreachable hosts and laptops are retried until the deadline;
//  6. the compliance report.
//
// People steer it with updates (approve, reject, pause, resume, abort,
// except, skip_host) and read it with the progress and host queries. It
// continues as new when its history grows, carrying its state.
func RolloutWorkflow(ctx workflow.Context, in RolloutInput) (contract.Report, error) {
	in, err := unpack(in)
	if err != nil {
		return contract.Report{}, temporal.NewNonRetryableApplicationError("unpack carried state", contract.InvalidInput, err)
	}
	r := newRun(in)
	if err := r.registerHandlers(ctx); err != nil {
		return contract.Report{}, err
	}

	// Who filed the rollout is proven before anything else happens; an
	// emergency break-glass waits for its approval before any plan.
	if err := r.verifyFiler(ctx); err != nil {
		return contract.Report{}, err
	}
	if err := r.awaitEmergency(ctx); err != nil {
		return r.stop(ctx, err)
	}

	// 1. Risk evaluation: deadline, required stages and escalation ladder,
	// recorded with the policy revision. The SLA clock starts now and runs
	// beside everything that follows, gates and halts included.
	if err := r.evaluateRisk(ctx); err != nil {
		return contract.Report{}, err
	}
	workflow.Go(ctx, r.slaClock)

	// The preflight: every planned host is verified at bounded
	// parallelism before any is touched, the baseline the advisory and
	// the report show. Hosts it proves compliant are not patched again.
	if err := r.preflight(ctx); err != nil {
		return r.stop(ctx, err)
	}

	// 2. The internal advisory to all IT managers.
	r.sendAdvisory(ctx, advisoryInitial)

	// 3. The test lab, 4. the production-like platform. The advisory is
	// updated with what the lab found.
	for _, stage := range r.pending(KindStage) {
		if err := r.runStage(ctx, stage); err != nil {
			return r.stop(ctx, err)
		}
		r.sendAdvisory(ctx, advisoryAfterLab)
	}

	// 5. The geographic waves, in `after` order.
	for _, wave := range r.pending(KindWave) {
		if err := r.runWave(ctx, wave); err != nil {
			return r.stop(ctx, err)
		}
	}
	// Laptops and unreachable hosts come back later: retry them until the
	// deadline.
	if err := r.retryUntilDeadline(ctx); err != nil {
		return r.stop(ctx, err)
	}

	// 6. The compliance report is the workflow's result.
	return r.finish(ctx)
}

// Reasons the main path stops early.
var (
	errContinueAsNew = errors.New("continue as new")
	errAborted       = errors.New("rollout aborted")
	errRejected      = errors.New("gate rejected")
)

// runStage patches a pre-production stage, soaks it, and waits at its
// gate.
func (r *run) runStage(ctx workflow.Context, s *stepState) error {
	r.enter(ctx, s)
	if err := r.patchHosts(ctx, s); err != nil {
		return err
	}
	if err := r.soak(ctx, s); err != nil {
		return err
	}
	if err := r.waitAtGate(ctx, s); err != nil {
		return err
	}
	r.leave(ctx, s)
	return nil
}

// runWave waits at the wave's gate if it has an approval group, then
// patches its hosts within the wave policy's windows and limits.
func (r *run) runWave(ctx workflow.Context, s *stepState) error {
	r.enter(ctx, s)
	if s.Group != "" {
		if err := r.waitAtGate(ctx, s); err != nil {
			return err
		}
		s.Status = StepRunning
	}
	if err := r.patchHosts(ctx, s); err != nil {
		return err
	}
	r.leave(ctx, s)
	return nil
}

// changeVerifiedFiler versions proving the filer with the gates policy
// (action submit) before the risk evaluation.
const changeVerifiedFiler = "verified-filer"

// verifyFiler asks the gates policy to prove who filed the rollout, from
// the filer's token (or, on a dev server with an insecure identity, the
// typed name). Once proven, the rollout names the verified subject as its
// filer (four-eyes compares it) and drops the token; a refusal fails the
// rollout before any host is touched. A carried run has done it already.
func (r *run) verifyFiler(ctx workflow.Context) error {
	if r.st.Risk != nil || r.st.Filer != nil || workflow.GetVersion(ctx, changeVerifiedFiler, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	if err := validateWho(r.in.Rollout.FiledBy, r.in.FilerToken); err != nil {
		r.in.FilerToken = ""
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("submit %s refused: %v", r.in.Rollout.ID, err), contract.Refused, nil)
	}
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionSubmit, Gate: r.in.Rollout.ID,
		User: r.in.Rollout.FiledBy, Token: r.in.FilerToken, Reason: "filed " + r.in.Rollout.Patch.KB})
	r.in.FilerToken = ""
	if err != nil {
		return err
	}
	if rec.Person != nil {
		r.in.Rollout.FiledBy = rec.Person.Subject
		r.st.Filer = rec.Person
	}
	return nil
}

// EmergencyGate is the gate a rollout with an emergency break-glass waits
// at before anything is planned: `patchway approve ROLLOUT emergency`.
const EmergencyGate = "emergency"

// changeEmergencyGate versions the emergency gate (before it, the plan
// policy read a name typed into the rollout file).
const changeEmergencyGate = "emergency-gate"

// awaitEmergency holds a rollout that asks for an emergency break-glass
// at its emergency gate until a person the gates policy allows
// (approve_emergency: the emergency group, never the filer) approves it,
// someone rejects it, or the rollout is aborted. Nothing is planned and
// no stage is skipped before. A carried run is past it.
func (r *run) awaitEmergency(ctx workflow.Context) error {
	if r.st.Risk != nil || r.in.Rollout.Emergency == nil ||
		workflow.GetVersion(ctx, changeEmergencyGate, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return nil
	}
	e := r.in.Rollout.Emergency
	r.st.EmergencyWaiting = true
	r.record(Record{At: workflow.Now(ctx), Kind: "gate", Subject: EmergencyGate, Allow: false,
		Reason: fmt.Sprintf("emergency break-glass %q (skip %s) waits for approval by the emergency group", e.Reason, strings.Join(e.SkipStages, ", "))})
	r.notify(ctx, contract.EventGateWaiting, fmt.Sprintf("Emergency break-glass of %s waits for approval", r.in.Rollout.ID),
		fmt.Sprintf("%s asks to skip %s: %s. Approve with `patchway approve %s %s`.", r.in.Rollout.FiledBy, strings.Join(e.SkipStages, ", "), e.Reason, r.in.Rollout.ID, EmergencyGate),
		nil, nil, contract.Field{Name: "gate", Value: EmergencyGate})
	r.refresh(ctx)
	if err := workflow.Await(ctx, func() bool {
		return r.st.EmergencyApproval != nil || r.st.Rejected || r.st.Abort != nil
	}); err != nil {
		return fmt.Errorf("wait at the emergency gate: %w", err)
	}
	r.st.EmergencyWaiting = false
	switch {
	case r.st.Abort != nil:
		return errAborted
	case r.st.Rejected:
		return errRejected
	}
	return nil
}

// evaluateRisk asks the sla and plan policies for the deadline, the
// required stages and the SLA milestones, records the decision and lays
// out the steps. A carried run has done it already.
func (r *run) evaluateRisk(ctx workflow.Context) error {
	if r.st.Risk != nil {
		return nil
	}
	ro := r.in.Rollout
	var risk contract.RiskDecision
	in := contract.EvaluateRiskInput{Rollout: ro, HostCount: len(r.in.Hosts), Now: workflow.Now(ctx), EmergencyApproval: r.st.EmergencyApproval}
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.EvaluateRiskName, in).Get(ctx, &risk); err != nil {
		return fmt.Errorf("evaluate risk of rollout %s: %w", ro.ID, err)
	}
	// The decision records stay in the marker; the state, its queries and
	// continue-as-new carry the decision alone.
	r.shadow(ctx, risk.Records)
	risk.Records = nil
	r.st.Risk = &risk
	r.record(Record{
		At: workflow.Now(ctx), Kind: "risk", Subject: ro.Patch.KB, Allow: risk.Allow,
		Reason:     fmt.Sprintf("deadline %s (%s): %s", risk.Deadline.UTC().Format(time.RFC3339), risk.SLA, strings.Join(risk.Reasons, "; ")),
		Violations: risk.Violations, Revision: risk.Revision,
	})
	if !risk.Allow {
		return temporal.NewNonRetryableApplicationError(RefusalMessage("rollout", ro.ID, risk.Decision), contract.Refused, nil, risk.Violations)
	}
	steps, unplanned, err := planSteps(ro, r.in.Hosts)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("plan rollout %s: %v", ro.ID, err), contract.InvalidRollout, err)
	}
	r.st.Steps = steps
	for t, s := range steps {
		for _, i := range s.Members {
			r.st.Hosts[i].Step = t
		}
		// A stage an approved emergency skips (the plan policy's
		// decision) is never run; its hosts stay pending.
		if s.Kind == KindStage && slices.Contains(risk.SkippedSteps, s.Name) {
			s.Status, s.Done = StepSkipped, true
			r.record(Record{At: workflow.Now(ctx), Kind: "plan", Subject: s.Name, Allow: true,
				Reason: fmt.Sprintf("stage %s skipped by the approved emergency break-glass; its %d host(s) stay pending", s.Name, len(s.Members))})
		}
	}
	if unplanned > 0 {
		r.record(Record{At: workflow.Now(ctx), Kind: "plan", Subject: ro.ID, Allow: true,
			Reason: fmt.Sprintf("%d inventory hosts match no stage or wave; they stay pending", unplanned)})
	}
	if workflow.GetVersion(ctx, changePreflightCredentials, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		if err := r.preflightCredentials(ctx); err != nil {
			return err
		}
	}
	if workflow.GetVersion(ctx, changeBaselinePreflight, workflow.DefaultVersion, 1) != workflow.DefaultVersion {
		r.st.Baseline = r.newBaseline()
	}
	r.upsert(ctx, AttrSLADeadline.ValueSet(risk.Deadline), AttrSLABreached.ValueSet(false),
		AttrHostsTotal.ValueSet(int64(r.hostsTotal())))
	r.refresh(ctx)
	return nil
}

// changePreflightCredentials versions the credential preflight: a
// rollout whose hosts name a credential set the worker cannot resolve is
// refused before any host is touched, instead of failing mid-rollout.
const changePreflightCredentials = "preflight-credentials"

// preflightCredentials has a host worker resolve every credential set the
// planned hosts name (no host is reached) and refuses the rollout, naming
// the sets and some of their hosts, if any is unknown.
func (r *run) preflightCredentials(ctx workflow.Context) error {
	counts := map[string]int{}
	examples := map[string][]string{}
	var sets []string
	for _, s := range r.st.Steps {
		for _, i := range s.Members {
			h := r.in.Hosts[i]
			if counts[h.Credential] == 0 {
				sets = append(sets, h.Credential)
			}
			counts[h.Credential]++
			if len(examples[h.Credential]) < 3 {
				examples[h.Credential] = append(examples[h.Credential], h.Name)
			}
		}
	}
	in := contract.PreflightCredentialsInput{RolloutID: r.in.Rollout.ID}
	slices.Sort(sets)
	for _, set := range sets {
		in.Uses = append(in.Uses, contract.CredentialUse{Set: set, Hosts: counts[set], Examples: examples[set]})
	}
	var res contract.PreflightCredentialsResult
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "preflight: credential sets",
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(actx, contract.PreflightCredentialsName, in).Get(ctx, &res); err != nil {
		return fmt.Errorf("preflight of rollout %s: %w", r.in.Rollout.ID, err)
	}
	if len(res.Unknown) == 0 {
		r.record(Record{At: workflow.Now(ctx), Kind: "preflight", Subject: r.in.Rollout.ID, Allow: true,
			Reason: fmt.Sprintf("the worker resolves all %d credential set(s) the planned hosts name", len(in.Uses))})
		return nil
	}
	var msgs []string
	var violations []rollout.Violation
	for _, u := range res.Unknown {
		msg := fmt.Sprintf("credential set %q, named by %d host(s) (%s), cannot be resolved by the worker: %s",
			u.Set, u.Hosts, strings.Join(u.Examples, ", "), u.Reason)
		msgs = append(msgs, msg)
		violations = append(violations, rollout.Violation{Code: "credential_unknown", Msg: msg})
	}
	r.record(Record{At: workflow.Now(ctx), Kind: "preflight", Subject: r.in.Rollout.ID, Allow: false,
		Reason: strings.Join(msgs, "; "), Violations: violations})
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("rollout %s refused before any host was touched: %s; define the set on the worker (PATCHWAY_CRED_<SET>_USER and _PASSWORD, or the credentials file) and file the rollout again",
			r.in.Rollout.ID, strings.Join(msgs, "; ")),
		contract.Refused, nil, violations)
}

// changeBaselinePreflight versions the preflight scan before the first
// stage. A rollout that evaluated its risk before it keeps going without
// one, across continue-as-new too: the scan is decided where the steps
// are planned, once.
const changeBaselinePreflight = "baseline-preflight"

// preflightStep names the preflight in progress and in its batch ids.
const preflightStep = "preflight"

// newBaseline queues every planned host for the preflight scan, in path
// order.
func (r *run) newBaseline() *baselineState {
	b := &baselineState{Counts: map[string]int{}}
	for _, s := range r.st.Steps {
		b.Queue = append(b.Queue, s.Members...)
	}
	b.Hosts = len(b.Queue)
	return b
}

// preflight verifies the baseline's queue through VerifyPatch batch
// children, at most Tuning.PreflightParallel hosts at a time, and records
// the counts. A pause holds it; an abort or a continue-as-new stops it
// after the children in flight, and a carried run takes up the queue.
func (r *run) preflight(ctx workflow.Context) error {
	b := r.st.Baseline
	if b == nil || b.Done {
		return nil
	}
	s := &stepState{Name: preflightStep, Kind: KindPreflight, Queue: b.Queue, Batches: b.Batches}
	plan := newBatchPlan(OpScan, r.tune.PreflightParallel, 0, r.tune.MaxPendingBatches, time.Time{})
	r.refresh(ctx)
	defer func() {
		if r.st.Abort != nil && !b.Done {
			b.Stopped = "the rollout was aborted"
		}
	}()
	for len(s.Queue) > 0 {
		if err := r.check(ctx); err != nil {
			return err
		}
		if r.st.Paused {
			if err := r.awaitUnpaused(ctx); err != nil {
				return err
			}
			continue
		}
		err := r.runBatches(ctx, s, plan)
		b.Queue, b.Batches = s.Queue, s.Batches
		if err != nil {
			return err
		}
	}
	b.Done = true
	r.record(Record{At: workflow.Now(ctx), Kind: "preflight", Subject: r.in.Rollout.Patch.KB, Allow: true,
		Reason: "baseline before any host was touched: " + b.summary().Summary()})
	r.refresh(ctx)
	return nil
}

// pending returns the steps of a kind not yet done, in path order.
func (r *run) pending(kind StepKind) []*stepState {
	var out []*stepState
	for _, s := range r.st.Steps {
		if s.Kind == kind && !s.Done {
			out = append(out, s)
		}
	}
	return out
}

func (r *run) enter(ctx workflow.Context, s *stepState) {
	r.st.Current = slices.Index(r.st.Steps, s)
	if s.Status == StepPending {
		s.Status = StepRunning
	}
	r.refresh(ctx)
}

func (r *run) leave(ctx workflow.Context, s *stepState) {
	s.Done = true
	s.Status = StepDone
	r.refresh(ctx)
}

// patchHosts runs the step's queue through batch children until every
// host has had its turn, halting for a person when failures cross the
// threshold and, for waves, waiting for the maintenance window.
func (r *run) patchHosts(ctx workflow.Context, s *stepState) error {
	for len(s.Queue) > 0 || s.overThreshold() {
		if err := r.check(ctx); err != nil {
			return err
		}
		if s.overThreshold() {
			if err := r.halt(ctx, s); err != nil {
				return err
			}
			continue
		}
		if r.st.Paused {
			if err := r.awaitUnpaused(ctx); err != nil {
				return err
			}
			continue
		}
		plan, err := r.planBatches(ctx, s)
		if err != nil {
			return err
		}
		s.Status = StepRunning
		r.refresh(ctx)
		if err := r.runBatches(ctx, s, plan); err != nil {
			return err
		}
	}
	return nil
}

// soak waits out the stage's soak time, cut short when the escalation
// policy allows skipping soaks, and waits again for the new end when a
// threat update shrinks it (threatUpdate moves SoakUntil earlier).
func (r *run) soak(ctx workflow.Context, s *stepState) error {
	if s.SoakUntil.IsZero() {
		s.SoakUntil = workflow.Now(ctx).Add(r.stageSoak(s))
	}
	woken := func() bool {
		return r.st.Abort != nil || r.accelerated("skip_soak") || r.shouldContinueAsNew(ctx)
	}
	for {
		wait := s.SoakUntil.Sub(workflow.Now(ctx))
		if wait <= 0 {
			break
		}
		s.Status = StepSoaking
		r.refresh(ctx)
		until := s.SoakUntil
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: wait, TimerOptions: workflow.TimerOptions{Summary: "soak " + s.Name},
		}, func() bool { return woken() || !s.SoakUntil.Equal(until) }); err != nil {
			return fmt.Errorf("soak %s: %w", s.Name, err)
		}
		if woken() || s.SoakUntil.Equal(until) {
			break
		}
	}
	return r.check(ctx)
}

// stageSoak is the soak a stage runs: the plan policy's, once a threat
// update shrank it, else the rollout's.
func (r *run) stageSoak(s *stepState) time.Duration {
	if s.Soak != nil {
		return *s.Soak
	}
	return r.in.Rollout.Stages[s.Index].Soak
}

// soakLeft lists the stages still to soak, with what each has left, for
// the plan policy to decide again.
func (r *run) soakLeft(now time.Time) []contract.StageSoak {
	var left []contract.StageSoak
	for _, s := range r.st.Steps {
		if s.Kind != KindStage || s.Done || s.Status == StepSkipped {
			continue
		}
		d := r.stageSoak(s)
		if !s.SoakUntil.IsZero() {
			d = max(s.SoakUntil.Sub(now), 0)
		}
		left = append(left, contract.StageSoak{Stage: s.Name, Left: d})
	}
	return left
}

// shrinkSoaks applies the plan policy's soaks to the stages still to
// soak: a soak under way ends earlier, a later one is shorter. A soak
// never grows here; it names the stages it shortened.
func (r *run) shrinkSoaks(now time.Time, soaks map[string]time.Duration) []string {
	var shrunk []string
	for _, s := range r.st.Steps {
		d, ok := soaks[s.Name]
		if s.Kind != KindStage || s.Done || s.Status == StepSkipped || !ok {
			continue
		}
		switch {
		case !s.SoakUntil.IsZero():
			if end := now.Add(d); end.Before(s.SoakUntil) {
				s.SoakUntil = end
				shrunk = append(shrunk, s.Name)
			}
		case d < r.stageSoak(s):
			s.Soak = &d
			shrunk = append(shrunk, s.Name)
		}
	}
	return shrunk
}

// waitAtGate notifies the approvers and waits until the gate is approved
// or rejected through the approve and reject updates.
func (r *run) waitAtGate(ctx workflow.Context, s *stepState) error {
	if s.Approved {
		r.announceGate(ctx, s)
		return nil
	}
	if s.Status != StepWaiting {
		s.Status = StepWaiting
		r.record(Record{At: workflow.Now(ctx), Kind: "gate", Subject: s.Name, Allow: false,
			Reason: "waiting for approval by " + cmp.Or(s.Group, "the gates policy's approvers")})
		r.notify(ctx, contract.EventGateWaiting, fmt.Sprintf("Gate %s waits for approval", s.Name),
			fmt.Sprintf("%s of %s is done; approval group: %s.", s.Name, r.in.Rollout.Patch.KB, cmp.Or(s.Group, "default")),
			nil, nil, contract.Field{Name: "gate", Value: s.Name})
	}
	r.refresh(ctx)
	if err := workflow.Await(ctx, func() bool {
		return s.Approved || s.Rejected || r.st.Abort != nil || r.shouldContinueAsNew(ctx)
	}); err != nil {
		return fmt.Errorf("wait at gate %s: %w", s.Name, err)
	}
	r.announceGate(ctx, s)
	switch {
	case s.Rejected:
		s.Status = StepRejected
		r.st.Rejected = true
		return errRejected
	case s.Approved:
		s.Status = StepApproved
		return nil
	}
	return r.check(ctx)
}

// announceGate sends the gate decision the approve or reject update
// recorded, once.
func (r *run) announceGate(ctx workflow.Context, s *stepState) {
	if d := s.Decided; d != nil {
		s.Decided = nil
		r.notifyGateDecided(ctx, s, d)
	}
}

// halt stops a step the wave policy halted on its failures, tells the
// people who can decide, and waits for one of them: resume, skip_host,
// except or abort. A skip or an exception changes what the policy
// counts, so it judges the step again.
func (r *run) halt(ctx workflow.Context, s *stepState) error {
	if !s.Halted {
		s.Halted = true
		s.HaltCount++
		reason := fmt.Sprintf("%d failed hosts exceed the threshold of %d", s.Limits.Failures, s.Limits.MaxFailures)
		r.record(Record{At: workflow.Now(ctx), Kind: "halt", Subject: s.Name, Reason: reason,
			Violations: s.Limits.Violations, Revision: s.Limits.Revision})
		r.notify(ctx, contract.EventWaveHalted, fmt.Sprintf("%s halted: %s", s.Name, reason),
			"The rollout waits for a person: resume, skip a host, or abort (with rollback).", nil, nil,
			contract.Field{Name: "step", Value: s.Name},
			contract.Field{Name: "failures", Value: fmt.Sprint(s.Limits.Failures)},
			contract.Field{Name: "threshold", Value: fmt.Sprint(s.Limits.MaxFailures)})
	}
	s.Status = StepHalted
	r.refresh(ctx)
	for s.Halt {
		acks := s.Acks
		if err := workflow.Await(ctx, func() bool {
			return !s.Halt || s.Acks != acks || r.st.Abort != nil || r.shouldContinueAsNew(ctx)
		}); err != nil {
			return fmt.Errorf("halted %s: %w", s.Name, err)
		}
		if err := r.check(ctx); err != nil {
			return err
		}
		if s.Halt {
			r.judge(ctx, s)
			r.refresh(ctx)
		}
	}
	s.Halted = false
	s.Status = StepRunning
	return nil
}

func (r *run) awaitUnpaused(ctx workflow.Context) error {
	r.refresh(ctx)
	if err := workflow.Await(ctx, func() bool {
		return !r.st.Paused || r.st.Abort != nil || r.shouldContinueAsNew(ctx)
	}); err != nil {
		return fmt.Errorf("paused: %w", err)
	}
	return r.check(ctx)
}

// check turns an abort or a continue-as-new suggestion into the error that
// stops the main path.
func (r *run) check(ctx workflow.Context) error {
	switch {
	case r.st.Abort != nil:
		return errAborted
	case r.shouldContinueAsNew(ctx):
		return errContinueAsNew
	}
	return nil
}

// shouldContinueAsNew is true when the server suggests it or this run
// started as many batches as Tuning allows.
func (r *run) shouldContinueAsNew(ctx workflow.Context) bool {
	return workflow.GetInfo(ctx).GetContinueAsNewSuggested() || r.batchesThisRun >= r.tune.MaxBatchesPerRun
}

// overThreshold: the wave policy's last judgement halted the step.
func (s *stepState) overThreshold() bool {
	return s.Halt
}

// retryUntilDeadline retries unreachable hosts (laptops, hosts that did
// not come back) and hosts the reboot policy held, in rounds a durable
// timer apart, until none is left or the next round would pass the
// deadline.
func (r *run) retryUntilDeadline(ctx workflow.Context) error {
	s := r.retryStep()
	r.enter(ctx, s)
	for round := 0; round < 10000; round++ {
		due := r.stragglers()
		deadline := r.st.Risk.Deadline
		if len(due) == 0 || !workflow.Now(ctx).Add(r.tune.RetryInterval).Before(deadline) {
			r.leave(ctx, s)
			return nil
		}
		s.Status = StepRetrying
		s.Members = due
		r.refresh(ctx)
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: r.tune.RetryInterval, TimerOptions: workflow.TimerOptions{Summary: fmt.Sprintf("retry %d unreachable hosts", len(due))},
		}, func() bool { return r.st.Abort != nil || r.shouldContinueAsNew(ctx) }); err != nil {
			return fmt.Errorf("wait to retry: %w", err)
		}
		if err := r.check(ctx); err != nil {
			return err
		}
		s.Queue = r.stragglers()
		s.Status = StepRunning
		if err := r.patchHosts(ctx, s); err != nil {
			return err
		}
	}
	return errors.New("retry rounds exceeded their bound")
}

func (r *run) retryStep() *stepState {
	if n := len(r.st.Steps); n > 0 && r.st.Steps[n-1].Kind == KindRetry {
		return r.st.Steps[n-1]
	}
	s := &stepState{Name: "retry", Kind: KindRetry, Status: StepPending}
	r.st.Steps = append(r.st.Steps, s)
	return s
}

// stragglers are planned hosts still to patch after their turn:
// unreachable, waiting for the reboot that makes the patch take effect, or
// pending because a policy held them.
func (r *run) stragglers() []int {
	var out []int
	for i, h := range r.st.Hosts {
		due := h.State == rollout.StateUnreachable || h.State == rollout.StatePendingReboot ||
			(h.State == rollout.StatePending && h.Attempts > 0)
		if h.Step >= 0 && due {
			out = append(out, i)
		}
	}
	return out
}

// stop ends the main path early: continue as new, or report after an
// abort (rolling back the current wave if asked) or a rejected gate.
func (r *run) stop(ctx workflow.Context, err error) (contract.Report, error) {
	switch {
	case errors.Is(err, errContinueAsNew):
		return contract.Report{}, r.continueAsNew(ctx)
	case errors.Is(err, errAborted):
		if s := r.current(); s != nil {
			s.Status = StepAborted
			if r.st.Abort.Rollback {
				if err := r.rollback(ctx, s); err != nil {
					return contract.Report{}, err
				}
			}
		}
		return r.finish(ctx)
	case errors.Is(err, errRejected):
		return r.finish(ctx)
	}
	return contract.Report{}, err
}

// continueAsNew carries the state into a fresh run once every update
// handler has finished (updates are never lost; this workflow takes no
// signals).
func (r *run) continueAsNew(ctx workflow.Context) error {
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && !r.slaBusy }); err != nil {
		return fmt.Errorf("drain handlers before continue-as-new: %w", err)
	}
	next, err := pack(r.in, r.st)
	if err != nil {
		return fmt.Errorf("pack state for continue-as-new: %w", err)
	}
	return workflow.NewContinueAsNewError(ctx, RolloutWorkflowName, next)
}

// finish builds the compliance report, announces completion and returns
// the report as the workflow's result.
func (r *run) finish(ctx workflow.Context) (contract.Report, error) {
	in, err := r.reportInput(workflow.Now(ctx))
	if err != nil {
		return contract.Report{}, err
	}
	ended(in.Forecast, workflow.Now(ctx))
	var report contract.Report
	if err := workflow.ExecuteActivity(withReportOptions(ctx), contract.BuildReportName, in).Get(ctx, &report); err != nil {
		return report, fmt.Errorf("build compliance report: %w", err)
	}
	r.st.Completed = true
	status := r.status()
	r.record(Record{At: workflow.Now(ctx), Kind: "complete", Subject: r.in.Rollout.ID, Allow: true,
		Reason: fmt.Sprintf("%s: %s compliant", status, contract.PercentText(report.CompliancePercent))})
	r.notify(ctx, contract.EventRolloutCompleted,
		completionTitle(r.in.Rollout.Patch.KB, status, report),
		r.completionText(report), nil, nil,
		contract.Field{Name: "status", Value: string(status)},
		contract.Field{Name: "compliance_percent", Value: fmt.Sprintf("%.1f", contract.RoundPercent(report.CompliancePercent))})
	r.refresh(ctx)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return report, fmt.Errorf("drain handlers: %w", err)
	}
	return report, nil
}

// reportInput is what the compliance report is built from at now: each
// host with its state and reasons, and the exceptions granted, packed
// when large (a 10,000-host input is over the 2 MB payload limit). finish
// passes it to BuildReport; the report query returns it, so a client
// builds the same report, provisional, while the rollout runs.
//
// Once the steps are planned, only their hosts are reported; an inventory
// host no stage or wave selects is counted in OutsideSteps, never as
// pending (before the plan, every host is still pending).
func (r *run) reportInput(now time.Time) (contract.ReportInput, error) {
	in := contract.ReportInput{Rollout: r.in.Rollout, GeneratedAt: now, Baseline: r.st.Baseline.summary(), Unverified: slices.Clone(r.st.Unverified),
		Forecast: r.forecastSummary(), Shadow: r.st.Shadow}
	for i, h := range r.in.Hosts {
		rec := r.st.Hosts[i]
		if r.st.Steps != nil && rec.Step < 0 {
			in.OutsideSteps++
			continue
		}
		in.Hosts = append(in.Hosts, h)
		in.Verdicts = append(in.Verdicts, contract.HostVerdict{Host: h.Name, State: rec.State, Reasons: rec.Reasons, Proof: rec.Proof})
	}
	for _, e := range r.st.Excepted {
		in.Exceptions = append(in.Exceptions, contract.HostException{Host: e.Host, Reason: e.Reason, GrantedBy: e.GrantedBy, Expires: e.Expires})
	}
	packed, err := in.Pack()
	if err != nil {
		return in, fmt.Errorf("build compliance report input: %w", err)
	}
	return packed, nil
}

// completionTitle is the completion notice's title. Its percent is
// rounded by contract.PercentText, the rule the report shows, so the
// notice and the report never disagree (71.0 % both for 27 of 38 hosts).
func completionTitle(kb string, status Status, rep contract.Report) string {
	return fmt.Sprintf("%s %s: %s of hosts compliant", kb, status, contract.PercentText(rep.CompliancePercent))
}

func (r *run) completionText(rep contract.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Rollout %s (%s) ended %s.\n", r.in.Rollout.ID, r.in.Rollout.Patch.KB, r.status())
	for _, st := range rollout.HostStates {
		if n := rep.Totals[st]; n > 0 {
			fmt.Fprintf(&b, "- %s: %d\n", st, n)
		}
	}
	return b.String()
}
