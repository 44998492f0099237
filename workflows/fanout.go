package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// batchPlan is how a step's hosts fan out: the operation, the sliding
// window of batch children, the hosts in flight per child and per site.
type batchPlan struct {
	op        string
	window    int
	parallel  int
	siteLimit int
	// startBy: no batch or host starts after it (zero: no window).
	startBy time.Time
}

// planBatches decides how the step's next hosts run: it waits for the
// wave policy to let the step start (window, waves before it) and takes
// the hosts in flight, the per-site limit and the host budget from it.
func (r *run) planBatches(ctx workflow.Context, s *stepState) (batchPlan, error) {
	dec, err := r.waitForWindow(ctx, s)
	if err != nil {
		return batchPlan{}, err
	}
	var startBy time.Time
	if !dec.WindowEnd.IsZero() {
		startBy = dec.WindowEnd.Add(-dec.HostBudget)
	}
	return newBatchPlan(OpPatch, dec.MaxParallel, dec.DownloadConcurrency, r.tune.MaxPendingBatches, startBy), nil
}

// newBatchPlan spreads a step's parallelism over the children in flight
// so that the step as a whole stays within maxParallel hosts and (when
// the hosts of a site share batches, as planSteps arranges) within the
// per-site download limit.
func newBatchPlan(op string, maxParallel, siteLimit, maxWindow int, startBy time.Time) batchPlan {
	maxParallel = max(1, maxParallel)
	window := min(maxParallel, max(1, maxWindow))
	p := batchPlan{op: op, window: window, parallel: max(1, maxParallel/window), startBy: startBy}
	if siteLimit > 0 {
		p.siteLimit = max(1, siteLimit/window)
	}
	return p
}

// waitForWindow asks the wave policy whether the step may start now. If
// not, it waits for the next window with a durable timer; if the policy
// refuses outright, the step halts for a person (resume overrides). A
// decision to halt on failures returns at once: patchHosts halts.
func (r *run) waitForWindow(ctx workflow.Context, s *stepState) (contract.WaveDecision, error) {
	for attempt := 0; attempt < 1000; attempt++ {
		dec := r.decideWave(ctx, s)
		now := workflow.Now(ctx)
		var until time.Time
		switch {
		case dec.Halt:
			return dec, nil
		case dec.Allow && (dec.WindowEnd.IsZero() || now.Add(dec.HostBudget).Before(dec.WindowEnd)):
			return dec, nil
		case dec.Allow:
			until = dec.WindowEnd // the window closes before a host could finish
		case !dec.NextWindow.IsZero():
			until = dec.NextWindow
		default:
			if err := r.haltRefused(ctx, s, dec); err != nil {
				return dec, err
			}
			dec.Allow, dec.WindowEnd = true, time.Time{}
			return dec, nil
		}
		s.Status = StepWindow
		r.refresh(ctx)
		if _, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
			Timeout: max(until.Sub(now), time.Second), TimerOptions: workflow.TimerOptions{Summary: "window of " + s.Name},
		}, func() bool { return r.st.Abort != nil || r.shouldContinueAsNew(ctx) }); err != nil {
			return dec, fmt.Errorf("wait for the window of %s: %w", s.Name, err)
		}
		if err := r.check(ctx); err != nil {
			return dec, err
		}
	}
	return contract.WaveDecision{}, fmt.Errorf("wave %s: no window found after 1000 decisions", s.Name)
}

// decideWave runs the wave policy over the step (judge) and records its
// decision.
func (r *run) decideWave(ctx workflow.Context, s *stepState) contract.WaveDecision {
	dec := r.judge(ctx, s)
	reason := fmt.Sprintf("max parallel %d, download concurrency %d, failures %d of %d", dec.MaxParallel, dec.DownloadConcurrency,
		dec.Failures, dec.MaxFailures)
	switch {
	case !dec.Allow && !dec.NextWindow.IsZero():
		reason = "outside its window; next window " + dec.NextWindow.UTC().Format(time.RFC3339)
	case !dec.WindowEnd.IsZero():
		reason += ", window ends " + dec.WindowEnd.UTC().Format(time.RFC3339)
	}
	r.record(Record{At: workflow.Now(ctx), Kind: "wave", Subject: s.Name, Allow: dec.Allow, Reason: reason,
		Violations: dec.Violations, Revision: dec.Revision})
	return dec
}

// judge asks the wave policy about the step as it stands: its limits,
// which host states count as failures and how many more it may take, and
// whether it must halt. A policy that fails to evaluate refuses and halts
// (fail closed).
func (r *run) judge(ctx workflow.Context, s *stepState) contract.WaveDecision {
	in := contract.DecideWaveInput{
		RolloutID: r.in.Rollout.ID, Kind: string(s.Kind), Severity: string(r.in.Rollout.Patch.Severity),
		Wave: rollout.Wave{Name: s.Name}, Sites: r.in.Sites, Hosts: len(s.Members), Deadline: r.st.Risk.Deadline,
		Now: workflow.Now(ctx), Reboot: r.in.Rollout.Patch.Reboot, States: unacknowledged(s), Accelerations: r.st.Accel,
	}
	if s.Kind == KindWave {
		in.Wave = r.in.Rollout.Waves[s.Index]
	}
	if len(s.Members) > 0 {
		in.TimeZone = r.sites[r.in.Hosts[s.Members[0]].Site].TimeZone
	}
	for _, o := range r.st.Steps {
		if o.Kind == KindWave && o.Done {
			in.Done = append(in.Done, o.Name)
		}
	}
	var dec contract.WaveDecision
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.DecideWaveName, in).Get(ctx, &dec); err != nil {
		dec = contract.WaveDecision{Decision: rollout.Decision{Error: err.Error()}, Halt: true}
	}
	r.shadow(ctx, dec.Records)
	dec.Records = nil // in the marker only, as the risk decision's
	s.Limits = &dec
	s.Halt = dec.Halt
	return dec
}

// unacknowledged counts the step's hosts by state, less those a person
// acknowledged (resume after a halt, skip_host): the wave policy judges
// only failures nobody has looked at.
func unacknowledged(s *stepState) map[rollout.HostState]int {
	out := map[rollout.HostState]int{}
	//workflowcheck:ignore: builds a map: the order makes no difference
	for k, v := range s.Totals {
		if n := v - s.Acked[k]; n > 0 {
			out[k] = n
		}
	}
	return out
}

// haltRefused halts a wave the wave policy refused outright until a
// person resumes (overriding) or aborts.
func (r *run) haltRefused(ctx workflow.Context, s *stepState, dec contract.WaveDecision) error {
	if !s.Halted {
		s.Halted = true
		s.HaltCount++
		reason := RefusalMessage("start", s.Name, dec.Decision)
		r.notify(ctx, contract.EventWaveHalted, fmt.Sprintf("%s halted by the wave policy", s.Name), reason, nil, nil,
			contract.Field{Name: "step", Value: s.Name})
	}
	s.Status = StepHalted
	r.refresh(ctx)
	if err := workflow.Await(ctx, func() bool { return !s.Halted || r.st.Abort != nil || r.shouldContinueAsNew(ctx) }); err != nil {
		return fmt.Errorf("halted %s: %w", s.Name, err)
	}
	return r.check(ctx)
}

// runBatches starts batch children for the step's queue in a sliding
// window and merges their outcomes, until the queue is empty or the step
// must stop starting (pause, abort, threshold, window, continue-as-new);
// children in flight always finish first.
func (r *run) runBatches(ctx workflow.Context, s *stepState, plan batchPlan) error {
	sel := workflow.NewSelector(ctx)
	pending := 0
	for {
		for pending < plan.window && len(s.Queue) > 0 && r.mayStartBatch(ctx, s, plan) {
			if r.startBatch(ctx, sel, s, plan) {
				pending++
			}
		}
		if pending == 0 {
			return nil
		}
		if plan.op == OpScan {
			// A scan changes nothing: an abort need not wait for the
			// scans in flight, which end with the rollout.
			if err := workflow.Await(ctx, func() bool { return sel.HasPending() || r.st.Abort != nil }); err != nil {
				return fmt.Errorf("preflight: %w", err)
			}
			if !sel.HasPending() {
				return errAborted
			}
		}
		sel.Select(ctx)
		pending--
		if plan.op == OpPatch {
			s.LastBatchAt = workflow.Now(ctx)
			r.judge(ctx, s)
			r.forecastSLA(ctx)
		}
		r.refresh(ctx)
	}
}

func (r *run) mayStartBatch(ctx workflow.Context, s *stepState, plan batchPlan) bool {
	if plan.op == OpUninstall {
		return true
	}
	return !r.st.Paused && r.st.Abort == nil && !s.overThreshold() && !r.shouldContinueAsNew(ctx) &&
		(plan.startBy.IsZero() || workflow.Now(ctx).Before(plan.startBy))
}

// startBatch takes the next batch off the queue and starts its child. It
// returns false when every host of the batch was settled meanwhile (an
// exception, for example).
func (r *run) startBatch(ctx workflow.Context, sel workflow.Selector, s *stepState, plan batchPlan) bool {
	n := min(r.tune.BatchSize, len(s.Queue))
	take := slices.Clone(s.Queue[:n])
	s.Queue = slices.Clone(s.Queue[n:])
	in := HostBatchInput{
		RolloutID: r.in.Rollout.ID, Step: s.Name, Batch: s.Batches, Op: plan.op, Patch: r.in.Rollout.Patch,
		Parallel: plan.parallel, SiteLimit: plan.siteLimit, MaxFailures: -1, StartBy: plan.startBy,
		BootTimeout: r.tune.BootTimeout, MaxHostsPerRun: r.tune.MaxHostsPerRun,
		Deadline: r.st.Risk.Deadline, Accelerations: r.st.Accel, Shadow: r.in.Shadow,
	}
	if s.Kind == KindWave {
		in.Window = r.in.Rollout.Waves[s.Index].Window
	}
	if plan.op == OpPatch && s.Limits != nil {
		in.MaxFailures, in.FailureStates = s.Limits.FailureBudget, s.Limits.FailureStates
	}
	seen := map[string]bool{}
	var names []string
	for _, i := range take {
		if plan.op == OpPatch && isSettled(r.st.Hosts[i].State) || plan.op == OpScan && r.excepted(i) {
			continue
		}
		h := r.in.Hosts[i]
		in.Hosts = append(in.Hosts, BatchHost{Index: i, Host: h, DistributionPoint: r.sites[h.Site].DistributionPoint,
			RebootPending: r.st.Hosts[i].State == rollout.StatePendingReboot})
		if site, ok := r.sites[h.Site]; ok && !seen[h.Site] {
			seen[h.Site] = true
			in.Sites = append(in.Sites, site)
		}
		names = append(names, h.Name)
		if plan.op == OpPatch {
			r.setHost(i, rollout.StateInProgress, nil)
		}
	}
	if len(in.Hosts) == 0 {
		return false
	}
	s.Batches++
	r.batchesThisRun++
	if s.FirstBatchAt.IsZero() && plan.op == OpPatch {
		s.FirstBatchAt = workflow.Now(ctx)
	}
	id := fmt.Sprintf("%s/%s/%d", WorkflowID(r.in.Rollout.ID), strings.ReplaceAll(s.Name, " ", "-"), in.Batch)
	switch plan.op {
	case OpUninstall:
		id += "-rollback"
	case OpScan:
		id += "-scan"
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    id,
		StaticSummary: fmt.Sprintf("%s %s %s batch %d: %d hosts from %s", r.in.Rollout.Patch.KB, plan.op, s.Name, in.Batch, len(names), names[0]),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrRolloutID.ValueSet(r.in.Rollout.ID),
			AttrPatchKB.ValueSet(r.in.Rollout.Patch.KB),
			AttrStage.ValueSet(s.Name),
			AttrHosts.ValueSet(HostsAttr(names)),
		),
	})
	sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, HostBatchWorkflowName, in), func(f workflow.Future) {
		var res HostBatchResult
		if err := f.Get(ctx, &res); err != nil {
			res = failedBatch(in, err)
		}
		r.merge(s, plan.op, res)
	})
	return true
}

// failedBatch gives every host of a batch whose child failed the failed
// state, so the failure counts and a person decides.
func failedBatch(in HostBatchInput, err error) HostBatchResult {
	var res HostBatchResult
	for _, h := range in.Hosts {
		res.Outcomes = append(res.Outcomes, HostOutcome{Index: h.Index, Host: h.Host.Name, Started: true,
			State: rollout.StateFailed, Reasons: []string{fmt.Sprintf("batch %s/%d failed: %v", in.Step, in.Batch, err)}})
	}
	return res
}

// merge records a batch's outcomes. Hosts the batch did not start go back
// to the front of the queue, except those the reboot policy held, which
// wait for the retry rounds; exceptions granted meanwhile stand.
func (r *run) merge(s *stepState, op string, res HostBatchResult) {
	if res.Shadow != nil {
		r.shadowSummary().Merge(res.Shadow)
	}
	if op == OpScan {
		r.mergeBaseline(s, res)
		return
	}
	var requeue []int
	for _, o := range res.Outcomes {
		if o.Index < 0 || o.Index >= len(r.st.Hosts) || r.excepted(o.Index) {
			continue
		}
		h := &r.st.Hosts[o.Index]
		switch {
		case !o.Started && o.Held:
			h.Attempts++
			r.setHost(o.Index, rollout.StatePending, o.Reasons)
		case !o.Started:
			r.setHost(o.Index, rollout.StatePending, o.Reasons)
			requeue = append(requeue, o.Index)
		default:
			h.Attempts++
			if op == OpPatch && !slices.Contains(s.Started, o.Index) {
				s.Started = append(s.Started, o.Index)
			}
			r.setHost(o.Index, o.State, o.Reasons)
			h.Proof = o.Proof
			h.Installed = h.Installed || (op == OpPatch && o.Installed)
		}
	}
	if op == OpPatch {
		s.Queue = append(requeue, s.Queue...)
	}
}

// mergeBaseline counts a preflight batch's hosts by the compliance
// policy's baseline category. A host the policy says the scan settles
// (preflight_settles: compliant, not applicable) takes the scan's state
// and proof and is not patched again; the others stay pending with what
// the scan found as their reason. Hosts the
// batch did not start go back to the front of the queue.
func (r *run) mergeBaseline(s *stepState, res HostBatchResult) {
	b := r.st.Baseline
	if b.Counts == nil {
		b.Counts = map[string]int{}
	}
	var requeue []int
	for _, o := range res.Outcomes {
		if o.Index < 0 || o.Index >= len(r.st.Hosts) {
			continue
		}
		if !o.Started {
			requeue = append(requeue, o.Index)
			continue
		}
		b.Scanned++
		category := cmp.Or(o.Baseline, string(rollout.StateUnknown))
		if r.excepted(o.Index) {
			b.Counts[string(rollout.StateExcepted)]++
			continue
		}
		b.Counts[category]++
		reasons := make([]string, 0, len(o.Reasons))
		for _, why := range o.Reasons {
			reasons = append(reasons, "preflight scan: "+why)
		}
		h := &r.st.Hosts[o.Index]
		h.Proof = o.Proof
		if o.Settles {
			b.Settled++
			r.setHost(o.Index, o.State, reasons)
		} else {
			r.setHost(o.Index, h.State, append([]string{"preflight scan: " + category}, reasons...))
		}
	}
	s.Queue = append(requeue, s.Queue...)
}

// rollback uninstalls the patch from the hosts of the step that received
// it (abort with rollback), in batch children like the install.
func (r *run) rollback(ctx workflow.Context, s *stepState) error {
	var hosts []int
	onProof := workflow.GetVersion(ctx, changeRollbackOnProof, workflow.DefaultVersion, 1) != workflow.DefaultVersion
	for _, i := range s.Started {
		h := r.st.Hosts[i]
		if onProof {
			// Only what this rollout installed is undone: a host that
			// never got the patch (already compliant, superseded, not
			// applicable, failed before the installer ran) keeps its
			// state, and one already rolled back is not uninstalled again.
			if h.Installed && h.State != rollout.StateRolledBack && h.State != rollout.StateExcepted {
				hosts = append(hosts, i)
			}
			continue
		}
		switch h.State {
		case rollout.StateNotApplicable, rollout.StateExcepted, rollout.StateRolledBack, rollout.StatePending:
			continue
		}
		hosts = append(hosts, i)
	}
	r.record(Record{At: workflow.Now(ctx), Kind: "rollback", Subject: s.Name, User: r.st.Abort.User, Allow: true,
		Reason: fmt.Sprintf("uninstall from %d hosts: %s", len(hosts), r.st.Abort.Reason)})
	if len(hosts) == 0 {
		return nil
	}
	s.Status = StepRollingBk
	r.refresh(ctx)
	rb := &stepState{Name: s.Name, Kind: s.Kind, Queue: hosts, Batches: s.Batches}
	parallel := 1
	if s.Limits != nil {
		parallel = s.Limits.MaxParallel
	}
	if err := r.runBatches(ctx, rb, newBatchPlan(OpUninstall, parallel, 0, r.tune.MaxPendingBatches, time.Time{})); err != nil {
		return fmt.Errorf("roll back %s: %w", s.Name, err)
	}
	s.Batches = rb.Batches
	s.Status = StepAborted
	r.refresh(ctx)
	return nil
}
