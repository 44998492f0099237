package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// Batch operations.
const (
	OpPatch     = "patch"
	OpUninstall = "uninstall"
	// OpScan verifies the hosts (VerifyPatch) and changes nothing: the
	// rollout's preflight.
	OpScan = "scan"
)

// HostBatchInput is one batch of hosts a child workflow works through: one
// activity per host (PatchHost, UninstallPatch, or VerifyPatch for the
// preflight), at most Parallel at a time and SiteParallel per site, asking
// the reboot policy before each host is patched or rolled back. A child per batch, not per host, keeps a 100,000-host
// rollout's history within Temporal's limits.
type HostBatchInput struct {
	RolloutID string        `json:"rollout_id"`
	Step      string        `json:"step"`
	Batch     int           `json:"batch"`
	Op        string        `json:"op"`
	Patch     rollout.Patch `json:"patch"`
	Hosts     []BatchHost   `json:"hosts"`
	Parallel  int           `json:"parallel"`
	SiteLimit int           `json:"site_limit"`
	// MaxFailures stops starting hosts once more than this many failed
	// in the batch (the wave policy's failure budget); negative means no
	// limit. FailureStates are the states the policy counts as failures.
	MaxFailures   int                 `json:"max_failures"`
	FailureStates []rollout.HostState `json:"failure_states,omitempty"`
	// StartBy: no host starts after it (its maintenance window closes);
	// zero means no window.
	StartBy time.Time `json:"start_by,omitzero"`
	// Window, Sites (time zones), Deadline and Accelerations are what the
	// reboot policy weighs.
	Window         *rollout.Window `json:"window,omitempty"`
	Sites          []rollout.Site  `json:"sites,omitempty"`
	Deadline       time.Time       `json:"deadline,omitzero"`
	Accelerations  []string        `json:"accelerations,omitempty"`
	BootTimeout    time.Duration   `json:"boot_timeout"`
	MaxHostsPerRun int             `json:"max_hosts_per_run"`
	// Done carries the outcomes of earlier runs across continue-as-new.
	Done []HostOutcome `json:"done,omitempty"`
	// Shadow is the rollout's shadow policy (nil: none), asked about
	// each host's compliance; Shadowed carries its answers across
	// continue-as-new.
	Shadow   *contract.ShadowPolicy  `json:"shadow,omitempty"`
	Shadowed *contract.ShadowSummary `json:"shadowed,omitempty"`
}

// BatchHost is one host of a batch, with its index in the rollout.
type BatchHost struct {
	Index             int          `json:"index"`
	Host              rollout.Host `json:"host"`
	DistributionPoint string       `json:"distribution_point,omitempty"`
	// RebootPending: an earlier attempt left the host pending_reboot.
	RebootPending bool `json:"reboot_pending,omitempty"`
}

// HostOutcome is what happened to one host of a batch. Started false
// means the batch did not start it (window closing, failure budget spent,
// held by the reboot policy); its Reasons say why.
type HostOutcome struct {
	Index       int               `json:"index"`
	Host        string            `json:"host"`
	Started     bool              `json:"started"`
	State       rollout.HostState `json:"state"`
	Reasons     []string          `json:"reasons,omitempty"`
	InstalledAt time.Time         `json:"installed_at,omitzero"`
	// Proof is the evidence behind State (contract.HostVerdict.Proof).
	Proof []string `json:"proof,omitempty"`
	// Installed: this rollout ran the installer on the host (its
	// sequence has an install step), so a rollback has something to undo.
	Installed bool `json:"installed,omitempty"`
	// Held: the reboot policy refused to start the host while nothing else
	// ran; the rollout retries it later.
	Held bool `json:"held,omitempty"`
	// Baseline is a preflight scan's category for the host (the
	// compliance policy's; for a host that could not be verified, the
	// state its error maps to).
	Baseline string `json:"baseline,omitempty"`
	// Settles: the preflight settled the host (the compliance policy's
	// preflight_settles).
	Settles bool `json:"settles,omitempty"`
}

// HostBatchResult lists every host of the batch with its outcome.
type HostBatchResult struct {
	Outcomes []HostOutcome `json:"outcomes"`
	// Summary counts the outcomes per state and the failures by the wave
	// policy's states, for a person reading the child in the Web UI
	// (which shows a batch with failed hosts as Completed).
	Summary string `json:"summary,omitempty"`
	// Shadow is where the shadow policy judged a host otherwise.
	Shadow *contract.ShadowSummary `json:"shadow,omitempty"`
}

// HostBatchWorkflow works one batch of hosts through PatchHost (or
// UninstallPatch for a rollback). It continues as new past
// MaxHostsPerRun hosts or when the server suggests it, after its running
// activities finish.
func HostBatchWorkflow(ctx workflow.Context, in HostBatchInput) (HostBatchResult, error) {
	b := newBatch(in)
	for {
		if err := b.startWhatMayStart(ctx); err != nil {
			return HostBatchResult{}, err
		}
		if b.inFlight == 0 {
			break
		}
		b.sel.Select(ctx)
	}
	b.flushShadow(ctx)
	if len(b.queue) > 0 && b.mustContinueAsNew(ctx) {
		next := in
		next.Hosts = b.queue
		next.Done = b.done
		next.Shadowed = b.shadowed
		return HostBatchResult{}, workflow.NewContinueAsNewError(ctx, HostBatchWorkflowName, next)
	}
	for _, h := range b.queue {
		b.done = append(b.done, HostOutcome{Index: h.Index, Host: h.Host.Name, State: rollout.StatePending,
			Reasons: b.held[h.Host.Name], Held: b.policyHeld[h.Host.Name]})
	}
	summary := b.summary()
	workflow.SetCurrentDetails(ctx, summary)
	return HostBatchResult{Outcomes: b.done, Summary: summary, Shadow: b.shadowed}, nil
}

// summary is the batch's outcome so far, e.g. "8 of 10 hosts done:
// compliant 5, not_effective 2, failed 1; 3 failures by the wave policy's
// states (failed, not_effective, ...)". The policy decides which states
// are failures (FailureStates); this only counts them.
func (b *batch) summary() string {
	counts := map[rollout.HostState]int{}
	finished := 0
	for _, o := range b.done {
		counts[o.State]++
		if o.State != rollout.StatePending {
			finished++
		}
	}
	var parts []string
	for _, st := range countOrder {
		if n := counts[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	s := fmt.Sprintf("%d of %d hosts done", finished, len(b.in.Hosts)+len(b.in.Done))
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if len(b.in.FailureStates) > 0 {
		s += fmt.Sprintf("; %d failed by the wave policy's count", b.failures)
	}
	return s
}

// batch is the running state of one HostBatchWorkflow run.
type batch struct {
	in       HostBatchInput
	queue    []BatchHost
	done     []HostOutcome
	sel      workflow.Selector
	inFlight int
	running  map[string]BatchHost
	perSite  map[string]int
	failures int
	started  int
	// held says why the hosts left in the queue did not start;
	// policyHeld marks those the reboot policy held.
	held       map[string][]string
	policyHeld map[string]bool
	// verdicts wait for the shadow policy (flushShadow); shadowed is its
	// answers so far.
	verdicts []contract.ShadowVerdict
	shadowed *contract.ShadowSummary
}

// target is the host target of a batch host.
func (b *batch) target(h BatchHost) contract.HostTarget {
	return contract.HostTarget{RolloutID: b.in.RolloutID, Host: h.Host, DistributionPoint: h.DistributionPoint, Patch: b.in.Patch}
}

// judged keeps a verdict for the shadow policy, if the rollout has one
// and the verdict carries its compliance decision.
func (b *batch) judged(h BatchHost, v contract.HostVerdict) {
	if b.in.Shadow != nil && v.Judged != nil {
		b.verdicts = append(b.verdicts, contract.ShadowVerdict{Target: b.target(h), Verdict: v})
	}
}

// shadowChunk bounds the verdicts of one ShadowDecide call.
const shadowChunk = 100

// flushShadow asks the shadow policy about the verdicts kept so far.
func (b *batch) flushShadow(ctx workflow.Context) {
	if b.in.Shadow == nil {
		return
	}
	if b.shadowed == nil {
		b.shadowed = &contract.ShadowSummary{Dir: b.in.Shadow.Dir, Revision: b.in.Shadow.Revision}
	}
	for len(b.verdicts) > 0 {
		n := min(shadowChunk, len(b.verdicts))
		b.shadowed.AddResult(shadowDecide(ctx, b.in.Shadow, nil, b.verdicts[:n]))
		b.verdicts = b.verdicts[n:]
	}
}

func newBatch(in HostBatchInput) *batch {
	b := &batch{
		in: in, queue: slices.Clone(in.Hosts), done: slices.Clone(in.Done),
		running: map[string]BatchHost{}, perSite: map[string]int{}, held: map[string][]string{},
		policyHeld: map[string]bool{}, shadowed: in.Shadowed,
	}
	for _, o := range in.Done {
		if slices.Contains(b.in.FailureStates, o.State) {
			b.failures++
		}
	}
	if b.in.Parallel <= 0 {
		b.in.Parallel = 1
	}
	if b.in.MaxHostsPerRun <= 0 {
		b.in.MaxHostsPerRun = 500
	}
	return b
}

// changeRollbackOnProof versions rollbacks that reboot where the reboot
// policy requires it and end rolled_back only on the rollback policy's
// proof, on the hosts this rollout installed; before, the uninstall's
// answer alone marked every started host rolled_back.
const changeRollbackOnProof = "rollback-on-proof"

// mustContinueAsNew: this run started as many hosts as it may, or the
// server suggests a new run.
func (b *batch) mustContinueAsNew(ctx workflow.Context) bool {
	return b.started >= b.in.MaxHostsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// startWhatMayStart starts hosts while there are free slots and the
// batch may go on: the failure budget is not spent, the window is open,
// the reboot policy admits them.
func (b *batch) startWhatMayStart(ctx workflow.Context) error {
	if b.sel == nil {
		b.sel = workflow.NewSelector(ctx)
	}
	slots := b.in.Parallel - b.inFlight
	if slots <= 0 || len(b.queue) == 0 {
		return nil
	}
	if stop := b.stopReason(ctx); stop != "" {
		for _, h := range b.queue {
			b.held[h.Host.Name] = []string{stop}
			delete(b.policyHeld, h.Host.Name)
		}
		return nil
	}
	candidates := b.candidates(slots)
	if len(candidates) == 0 {
		return nil
	}
	plans := make([]contract.RebootPlan, 0, len(candidates))
	switch {
	case b.in.Op == OpScan:
		// A scan changes nothing on the host: no reboot to plan.
		for _, h := range candidates[:min(slots, len(candidates))] {
			plans = append(plans, contract.RebootPlan{Host: h.Host.Name})
		}
	case b.in.Op == OpUninstall && workflow.GetVersion(ctx, changeRollbackOnProof, workflow.DefaultVersion, 1) == workflow.DefaultVersion:
		for _, h := range candidates[:min(slots, len(candidates))] {
			plans = append(plans, contract.RebootPlan{Host: h.Host.Name})
		}
	default:
		dec, err := b.decideReboot(ctx, candidates, slots)
		if err != nil {
			return err
		}
		plans = dec.Start
		for _, h := range dec.Held {
			var reasons []string
			for _, v := range h.Violations {
				reasons = append(reasons, fmt.Sprintf("held by reboot policy: %s (%s)", v.Msg, v.Code))
			}
			b.held[h.Host] = reasons
			b.policyHeld[h.Host] = true
		}
	}
	for _, p := range plans[:min(slots, len(plans))] {
		i := slices.IndexFunc(b.queue, func(h BatchHost) bool { return h.Host.Name == p.Host })
		if i < 0 {
			continue
		}
		h := b.queue[i]
		b.queue = slices.Delete(b.queue, i, i+1)
		b.start(ctx, h, p.Reboot)
	}
	return nil
}

func (b *batch) stopReason(ctx workflow.Context) string {
	switch {
	case b.in.MaxFailures >= 0 && b.failures > b.in.MaxFailures:
		return "not started: the failure threshold was reached"
	case !b.in.StartBy.IsZero() && !workflow.Now(ctx).Before(b.in.StartBy):
		return "not started: install and reboot no longer fit in the maintenance window"
	case b.mustContinueAsNew(ctx):
		return "continuing as new"
	}
	return ""
}

// candidates are queued hosts whose site has download capacity left, in
// queue order; a few more than the free slots, so the reboot policy can
// admit hosts behind held ones.
func (b *batch) candidates(slots int) []BatchHost {
	perSite := copyCounts(b.perSite)
	var out []BatchHost
	for _, h := range b.queue {
		if len(out) >= 4*slots+8 {
			break
		}
		if b.in.SiteLimit > 0 && perSite[h.Host.Site] >= b.in.SiteLimit {
			continue
		}
		perSite[h.Host.Site]++
		out = append(out, h)
	}
	return out
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	//workflowcheck:ignore: a copy: the order of the range makes no difference
	for k, v := range m {
		out[k] = v
	}
	return out
}

// decideReboot asks the reboot policy which candidates may start now,
// given the hosts in flight. A policy that fails to evaluate holds every
// candidate (fail closed); the hosts are reported not started.
func (b *batch) decideReboot(ctx workflow.Context, candidates []BatchHost, slots int) (contract.RebootDecision, error) {
	in := contract.DecideRebootInput{Patch: b.in.Patch, Slots: slots, Window: b.in.Window, Sites: b.in.Sites,
		Deadline: b.in.Deadline, Accelerations: b.in.Accelerations, Now: workflow.Now(ctx)}
	for _, h := range candidates {
		in.Candidates = append(in.Candidates, h.Host)
		if h.RebootPending {
			in.RebootPending = append(in.RebootPending, h.Host.Name)
		}
	}
	for _, name := range sortedKeys(b.running) {
		in.InFlight = append(in.InFlight, b.running[name].Host)
	}
	var dec contract.RebootDecision
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.DecideRebootName, in).Get(ctx, &dec); err != nil {
		held := make([]contract.HeldHost, 0, len(candidates))
		for _, h := range candidates {
			held = append(held, contract.HeldHost{Host: h.Host.Name, Violations: []rollout.Violation{{Code: "policy_error", Msg: err.Error()}}})
		}
		return contract.RebootDecision{Held: held}, nil
	}
	return dec, nil
}

// start runs one host's activity and arranges for its outcome.
func (b *batch) start(ctx workflow.Context, h BatchHost, reboot bool) {
	b.inFlight++
	b.started++
	b.running[h.Host.Name] = h
	b.perSite[h.Host.Site]++
	target := b.target(h)
	var f workflow.Future
	switch b.in.Op {
	case OpScan:
		f = workflow.ExecuteActivity(withPreflightOptions(ctx, "preflight scan "+h.Host.Name),
			contract.VerifyPatchName, contract.VerifyPatchInput{Target: target})
	case OpUninstall:
		f = workflow.ExecuteActivity(withHostOptions(ctx, "uninstall "+h.Host.Name, b.in.BootTimeout),
			contract.UninstallPatchName, contract.UninstallPatchInput{Target: target, Reboot: reboot, BootTimeout: b.in.BootTimeout})
	default:
		f = workflow.ExecuteActivity(withHostOptions(ctx, "patch "+h.Host.Name, b.in.BootTimeout),
			contract.PatchHostName, contract.PatchHostInput{Target: target, Reboot: reboot, RebootPending: h.RebootPending,
				BootTimeout: b.in.BootTimeout})
	}
	b.sel.AddFuture(f, func(f workflow.Future) {
		o := b.outcome(ctx, f, h)
		if slices.Contains(b.in.FailureStates, o.State) {
			b.failures++
		}
		b.done = append(b.done, o)
		b.inFlight--
		b.perSite[h.Host.Site]--
		delete(b.running, h.Host.Name)
		workflow.SetCurrentDetails(ctx, b.summary())
	})
}

// outcome turns an activity's result or error into the host's state.
func (b *batch) outcome(ctx workflow.Context, f workflow.Future, h BatchHost) HostOutcome {
	o := HostOutcome{Index: h.Index, Host: h.Host.Name, Started: true}
	if b.in.Op == OpScan {
		var v contract.HostVerdict
		if err := f.Get(ctx, &v); err != nil {
			o.State, o.Reasons = VerifyFailure(err)
			o.Baseline = string(o.State)
			return o
		}
		b.judged(h, v)
		o.State, o.Reasons, o.Proof, o.Baseline, o.Settles = v.State, v.Reasons, v.Proof, v.Baseline, v.PreflightSettles
		if o.State == "" {
			o.State = rollout.StateUnknown
		}
		return o
	}
	if b.in.Op == OpUninstall {
		var res contract.UninstallPatchResult
		if err := f.Get(ctx, &res); err != nil {
			o.State, o.Reasons = stateForError(err), []string{"rollback: " + errorReason(err)}
			return o
		}
		b.judged(h, res.Verdict)
		o.State, o.Reasons, o.Proof = res.Verdict.State, res.Verdict.Reasons, res.Verdict.Proof
		if o.State == "" {
			// Recorded before rollbacks were verified: the uninstall
			// answered, nothing proved it.
			o.State, o.Reasons = rollout.StateUnknown, []string{"rollback: uninstall answered " + res.Uninstall.Outcome + ", not verified"}
		}
		return o
	}
	var res contract.PatchHostResult
	if err := f.Get(ctx, &res); err != nil {
		o.State, o.Reasons = stateForError(err), []string{errorReason(err)}
		return o
	}
	b.judged(h, res.Verdict)
	o.State, o.Reasons, o.InstalledAt, o.Proof = res.Verdict.State, res.Verdict.Reasons, res.InstalledAt, res.Verdict.Proof
	o.Installed = slices.Contains(res.Steps, "install")
	if o.State == "" {
		o.State = rollout.StateUnknown
	}
	return o
}

// stateForError maps a host activity's final error to a host state:
// unreachable hosts are retried later, not-applicable ones are settled,
// everything else failed.
func stateForError(err error) rollout.HostState {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return contract.StateForErrorType(app.Type())
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		return rollout.StateUnreachable
	}
	return rollout.StateFailed
}

// errorReason is what a host's report says of its activity's final error:
// the activity's own message, without the SDK's wrapper (event ids, worker
// identity), which says nothing to the host's owner.
func errorReason(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Message() != "" {
		return app.Message()
	}
	var timeout *temporal.TimeoutError
	if errors.As(err, &timeout) {
		kind := "activity"
		switch timeout.TimeoutType() {
		case enumspb.TIMEOUT_TYPE_HEARTBEAT:
			kind = "heartbeat"
		case enumspb.TIMEOUT_TYPE_START_TO_CLOSE:
			kind = "start-to-close"
		case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE:
			kind = "schedule-to-close"
		case enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START:
			kind = "schedule-to-start"
		}
		return "no answer in time (" + kind + " timeout): the host, or the worker working on it, stopped responding"
	}
	return err.Error()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	//workflowcheck:ignore: sorted below
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// VerifyFailure classifies a failed verification (a preflight's, a
// scan's): a host that did not answer is unreachable, a patch for another
// OS not_applicable, a listener with another certificate than the pinned
// one identity_mismatch, anything else (refused credentials, a script or
// policy failure) unknown: never compliant without proof.
func VerifyFailure(err error) (rollout.HostState, []string) {
	var app *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &app):
		switch st := contract.StateForErrorType(app.Type()); st {
		case rollout.StateNotApplicable, rollout.StateUnreachable, rollout.StateIdentityMismatch:
			return st, []string{app.Message()}
		}
		return rollout.StateUnknown, []string{fmt.Sprintf("not verified (%s): %s", app.Type(), app.Message())}
	case errors.As(err, &timeout):
		return rollout.StateUnreachable, []string{"no answer in time: " + timeout.Error()}
	}
	return rollout.StateUnknown, []string{"not verified: " + err.Error()}
}
