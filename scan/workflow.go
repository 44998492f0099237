package scan

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// Register registers the scan's workflows with a worker (or a replayer),
// under the names clients and schedules start them by.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(ScanWorkflow, workflow.RegisterOptions{Name: WorkflowName})
	r.RegisterWorkflowWithOptions(ScanBatchWorkflow, workflow.RegisterOptions{Name: BatchWorkflowName})
	r.RegisterWorkflowWithOptions(AuthorizeWorkflow, workflow.RegisterOptions{Name: AuthorizeWorkflowName})
	r.RegisterWorkflowWithOptions(SpendTokenWorkflow, workflow.RegisterOptions{Name: SpendTokenWorkflowName})
}

// ScanWorkflow re-verifies every host of an inventory against patches,
// independently of any rollout, and reports drift since the previous scan
// of the same scan id, so that the patch level is checked regularly:
//
//  0. who requested it is proven by the gates policy (proveRequester);
//     a refusal fails the scan before any host;
//  1. the previous scan's result is the baseline: a Temporal Schedule
//     hands it over (GetLastCompletionResult); a one-off scan has none;
//  2. every host x patch is judged by VerifyPatch (scan, then the
//     compliance policy), in batch children run in a sliding window;
//     unreachable hosts are reported unreachable, never compliant;
//  3. drift against the baseline: a host compliant before and not now is
//     a regression;
//  4. regressions are notified on the scan's channels, if any.
//
// It continues as new when its history grows, carrying its state.
func ScanWorkflow(ctx workflow.Context, in Input) (Result, error) {
	in, carry, err := unpackScan(in)
	if err != nil {
		return Result{}, temporal.NewNonRetryableApplicationError("unpack scan input", contract.InvalidInput, err)
	}
	if err := in.Validate(); err != nil {
		return Result{}, temporal.NewNonRetryableApplicationError(err.Error(), contract.InvalidInput, nil)
	}
	if carry == nil {
		if in, err = proveRequester(ctx, in); err != nil {
			return Result{}, err
		}
	}
	s := newScan(ctx, in, carry)
	if err := workflow.SetQueryHandler(ctx, workflows.QueryProgress, func() (Progress, error) { return s.progress(), nil }); err != nil {
		return Result{}, fmt.Errorf("register progress query: %w", err)
	}

	// 1. The baseline: the last completed scan of this scan id.
	if carry == nil {
		s.c.Previous = previousScan(ctx, in.ScanID)
		s.upsert(ctx, s.startAttributes()...)
	}
	s.refresh(ctx, nil)

	// 2. Every host x patch, batch by batch.
	done, err := s.verifyAll(ctx)
	if err != nil {
		return Result{}, err
	}
	if !done {
		next, err := packScan(in, s.c)
		if err != nil {
			return Result{}, err
		}
		return Result{}, workflow.NewContinueAsNewError(ctx, WorkflowName, next)
	}

	// 3. Drift against the baseline.
	res := s.result(ctx)

	// 4. Regressions reach the scan's channels.
	if res.Regressions > 0 && len(in.Channels) > 0 {
		s.notifyRegressions(ctx, &res)
	}
	s.upsert(ctx, workflows.AttrHostsDone.ValueSet(int64(len(in.Hosts))), workflows.AttrScanRegressed.ValueSet(res.Regressions > 0))
	s.refresh(ctx, &res)
	return res.Compact()
}

// scan is the running state of one ScanWorkflow run.
type scan struct {
	in    Input
	tune  Tuning
	c     *scanCarry
	sites map[string]rollout.Site
	// batchesThisRun counts children started by this run.
	batchesThisRun int
	finished       bool
}

func newScan(ctx workflow.Context, in Input, c *scanCarry) *scan {
	if c == nil {
		c = &scanCarry{StartedAt: workflow.Now(ctx).UTC(), Checks: make([]HostCheck, len(in.Hosts)*len(in.Patches))}
	}
	s := &scan{in: in, tune: in.Tuning.withDefaults(len(in.Patches)), c: c, sites: map[string]rollout.Site{}}
	for _, site := range in.Sites {
		s.sites[site.Name] = site
	}
	return s
}

// previousScan reads the result a schedule handed over; a result that
// cannot be read is no baseline (logged), never a failed scan.
func previousScan(ctx workflow.Context, scanID string) *Result {
	if !workflow.HasLastCompletionResult(ctx) {
		return nil
	}
	var prev Result
	err := workflow.GetLastCompletionResult(ctx, &prev)
	if err == nil {
		prev, err = prev.Expanded()
	}
	if err != nil {
		workflow.GetLogger(ctx).Warn("previous scan result unreadable: no drift this time", "scan", scanID, "error", err)
		return nil
	}
	if prev.ScanID != scanID {
		workflow.GetLogger(ctx).Warn("previous result is of another scan: no drift this time", "scan", scanID, "previous", prev.ScanID)
		return nil
	}
	return &prev
}

// verifyAll starts a batch child per BatchSize hosts, at most
// MaxPendingBatches at a time, and merges their checks. It returns false
// when the run must continue as new first (children in flight finish
// before).
func (s *scan) verifyAll(ctx workflow.Context) (bool, error) {
	sel := workflow.NewSelector(ctx)
	pending := 0
	for {
		for pending < s.tune.MaxPendingBatches && s.c.Next < len(s.in.Hosts) && !s.mustContinueAsNew(ctx) {
			s.startBatch(ctx, sel)
			pending++
		}
		if pending == 0 {
			return s.c.Next >= len(s.in.Hosts), nil
		}
		sel.Select(ctx)
		pending--
		s.refresh(ctx, nil)
		s.upsert(ctx, workflows.AttrHostsDone.ValueSet(int64(s.hostsDone())))
	}
}

func (s *scan) mustContinueAsNew(ctx workflow.Context) bool {
	return s.batchesThisRun >= s.tune.MaxBatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
}

// startBatch starts the child for the next hosts. Hosts and checks travel
// gzipped: the parent's history holds every child's input and result.
func (s *scan) startBatch(ctx workflow.Context, sel workflow.Selector) {
	first := s.c.Next
	last := min(first+s.tune.BatchSize, len(s.in.Hosts))
	s.c.Next = last
	batch := s.c.Batches
	s.c.Batches++
	s.batchesThisRun++

	hosts := make([]workflows.BatchHost, 0, last-first)
	names := make([]string, 0, last-first)
	for i := first; i < last; i++ {
		h := s.in.Hosts[i]
		hosts = append(hosts, workflows.BatchHost{Index: i, Host: h, DistributionPoint: s.sites[h.Site].DistributionPoint})
		names = append(names, h.Name)
	}
	in := BatchInput{ScanID: s.in.ScanID, Batch: batch, Parallel: s.tune.Parallel}
	blob, err := gzjson.Marshal(scanBatchPacked{Hosts: hosts, Patches: s.in.Patches})
	if err != nil {
		s.failBatch(first, last, batch, err)
		return
	}
	in.Packed = blob
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: fmt.Sprintf("%s/batch-%d", workflow.GetInfo(ctx).WorkflowExecution.ID, batch),
		StaticSummary: fmt.Sprintf("scan %s batch %d: %s on %d hosts from %s",
			s.in.ScanID, batch, strings.Join(s.in.KBs(), ", "), len(names), names[0]),
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrHosts.ValueSet(workflows.HostsAttr(names))),
	})
	sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, BatchWorkflowName, in), func(f workflow.Future) {
		var res BatchResult
		err := f.Get(ctx, &res)
		var checks []HostCheck
		if err == nil {
			checks, err = res.checks()
		}
		if err == nil && len(checks) != (last-first)*len(s.in.Patches) {
			err = fmt.Errorf("%d checks for %d hosts x %d patches", len(checks), last-first, len(s.in.Patches))
		}
		if err != nil {
			s.failBatch(first, last, batch, err)
			return
		}
		copy(s.c.Checks[first*len(s.in.Patches):], checks)
	})
}

// failBatch marks every check of a batch that did not report unknown:
// nothing verified them, so they are never counted compliant.
func (s *scan) failBatch(first, last, batch int, err error) {
	for i := first; i < last; i++ {
		for j, p := range s.in.Patches {
			s.c.Checks[i*len(s.in.Patches)+j] = HostCheck{Host: s.in.Hosts[i].Name, KB: strings.ToUpper(p.KB), State: rollout.StateUnknown,
				Reasons: []string{fmt.Sprintf("scan batch %d failed: %v", batch, err)}}
		}
	}
}

// hostsDone counts the hosts whose checks are all in.
func (s *scan) hostsDone() int {
	n := 0
	for i := range s.in.Hosts {
		if s.c.Checks[i*len(s.in.Patches)].State != "" {
			n++
		}
	}
	return n
}

func (s *scan) totals() map[rollout.HostState]int {
	t := map[rollout.HostState]int{}
	for _, st := range rollout.HostStates {
		t[st] = 0
	}
	for _, c := range s.c.Checks {
		if c.State != "" {
			t[c.State]++
		}
	}
	return t
}

func (s *scan) progress() Progress {
	return Progress{ScanID: s.in.ScanID, Done: s.finished, HostsTotal: len(s.in.Hosts), HostsDone: s.hostsDone(),
		Batches: s.c.Batches, Totals: s.totals()}
}

// result builds the scan's result: Since carried from the baseline and
// drift against it (compare), totals overall and per patch.
func (s *scan) result(ctx workflow.Context) Result {
	s.finished = true
	np := len(s.in.Patches)
	res := Result{
		ScanID: s.in.ScanID, StartedAt: s.c.StartedAt, FinishedAt: workflow.Now(ctx).UTC(),
		KBs: s.in.KBs(), Hosts: len(s.in.Hosts), Totals: s.totals(), Requester: s.in.Grant,
	}
	if p := s.c.Previous; p != nil {
		res.PreviousAt = p.StartedAt
	}
	res.Checks, res.Drift, res.Regressions = compare(s.c.Previous, s.c.Checks, res.StartedAt)
	res.DriftCount = len(res.Drift)

	for j, kb := range res.KBs {
		pt := PatchTotals{KB: kb, Hosts: len(s.in.Hosts), Totals: map[rollout.HostState]int{}}
		for i := range s.in.Hosts {
			pt.Totals[res.Checks[i*np+j].State]++
		}
		pt.CompliancePercent = contract.Percent(pt.Totals[rollout.StateCompliant], pt.Hosts-pt.Totals[rollout.StateNotApplicable])
		res.ByKB = append(res.ByKB, pt)
	}
	for i := range s.in.Hosts {
		compliant, applies, unreachable := true, false, false
		for _, c := range res.Checks[i*np : (i+1)*np] {
			switch c.State {
			case rollout.StateNotApplicable:
				continue
			case rollout.StateUnreachable:
				unreachable = true
			}
			applies = true
			compliant = compliant && c.State == rollout.StateCompliant
		}
		if compliant && applies {
			res.HostsCompliant++
		}
		if unreachable {
			res.HostsUnreachable++
		}
	}
	return res
}

// refresh publishes the markdown table of totals (and, at the end, drift)
// the Web UI shows.
func (s *scan) refresh(ctx workflow.Context, res *Result) {
	var b strings.Builder
	status := "running"
	if res != nil {
		status = "done"
	}
	fmt.Fprintf(&b, "**Scan %s** %s: %s, %d/%d hosts checked\n\n| state | checks |\n|---|---|\n",
		s.in.ScanID, strings.Join(s.in.KBs(), ", "), status, s.hostsDone(), len(s.in.Hosts))
	totals := s.totals()
	for _, st := range rollout.HostStates {
		if totals[st] > 0 {
			fmt.Fprintf(&b, "| %s | %d |\n", st, totals[st])
		}
	}
	switch {
	case res == nil:
	case res.PreviousAt.IsZero():
		b.WriteString("\nFirst scan of this id: no drift.\n")
	default:
		fmt.Fprintf(&b, "\n**Drift** since %s: %d, of which **%d regression(s)**\n\n",
			res.PreviousAt.UTC().Format(time.RFC3339), res.DriftCount, res.Regressions)
		if res.DriftCount > 0 {
			b.WriteString(driftTable(res.Drift[:min(len(res.Drift), 20)]))
		}
	}
	workflow.SetCurrentDetails(ctx, b.String())
}

// startAttributes are the search attributes a scan sets when it starts:
// hosts total and done (registered Int keys), and the KB when there is one
// (PatchKB is a single Keyword, not a list).
func (s *scan) startAttributes() []temporal.SearchAttributeUpdate {
	u := []temporal.SearchAttributeUpdate{workflows.AttrHostsTotal.ValueSet(int64(len(s.in.Hosts))), workflows.AttrHostsDone.ValueSet(0)}
	if len(s.in.Patches) == 1 {
		u = append(u, workflows.AttrPatchKB.ValueSet(strings.ToUpper(s.in.Patches[0].KB)))
	}
	return u
}

// upsert sets search attributes, all listed in SearchAttributes (an
// unregistered one would fail the workflow task forever); an error is
// logged, never fatal to the scan.
func (s *scan) upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
}
