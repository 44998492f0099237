package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/contract/gzjson"
	"github.com/patchway/patchway/rollout"
)

// ScanWorkflowID is the workflow id of a one-off scan and the id of a
// scan's schedule (whose runs get a timestamp appended by the server), so
// `patchway scan --id X` always finds its own scans.
func ScanWorkflowID(scanID string) string { return "scan/" + scanID }

// ScanInput starts a compliance scan: the hosts (and sites) of an
// inventory and the patches to check on each of them, with their evidence.
// Channels are the channels (by name and type, never an address or key)
// that hear about regressions; none means no notification. Nothing here is
// secret.
type ScanInput struct {
	ScanID   string            `json:"scan_id"`
	Hosts    []rollout.Host    `json:"hosts,omitempty"`
	Sites    []rollout.Site    `json:"sites,omitempty"`
	Patches  []rollout.Patch   `json:"patches,omitempty"`
	Channels []rollout.Channel `json:"channels,omitempty"`
	// RequestedBy is who created the scan or its schedule, as recorded.
	RequestedBy string `json:"requested_by,omitempty"`

	// Tuning overrides the scale knobs; zero fields take the defaults.
	Tuning ScanTuning `json:"tuning,omitzero"`

	// Packed is Hosts, Sites and Patches gzipped (then those are nil), and
	// on continue-as-new the scan's own state too. A schedule stores its
	// action's input and hands it to every run, so clients pack (Pack):
	// a host list compresses about tenfold.
	Packed []byte `json:"packed,omitempty"`
}

// ScanTuning holds the scale knobs of a scan. The defaults keep the
// Temporal work per host small (DESIGN.md §3): one VerifyPatch activity per
// host and patch, run by batch children, never a child per host.
type ScanTuning struct {
	// BatchSize is the number of hosts per ScanBatchWorkflow child (100),
	// fewer when there are many patches, so that one child runs at most
	// maxChecksPerBatch verifications and its history stays small.
	BatchSize int `json:"batch_size,omitempty"`
	// MaxPendingBatches bounds the sliding window of running children (4).
	MaxPendingBatches int `json:"max_pending_batches,omitempty"`
	// Parallel bounds the VerifyPatch activities in flight per child (16).
	Parallel int `json:"parallel,omitempty"`
	// MaxBatchesPerRun makes the scan continue as new after this many
	// children even if the server has not suggested it (300).
	MaxBatchesPerRun int `json:"max_batches_per_run,omitempty"`
}

// maxChecksPerBatch bounds the verifications of one batch child: about six
// history events each at worst (activity scheduled, started, completed and
// a workflow task), so a child stays near 3,000 events.
const maxChecksPerBatch = 500

func (t ScanTuning) withDefaults(patches int) ScanTuning {
	t.BatchSize = max(1, min(orDefaultInt(t.BatchSize, 100), maxChecksPerBatch/max(1, patches)))
	t.MaxPendingBatches = orDefaultInt(t.MaxPendingBatches, 4)
	t.Parallel = orDefaultInt(t.Parallel, 16)
	t.MaxBatchesPerRun = orDefaultInt(t.MaxBatchesPerRun, 300)
	return t
}

func orDefaultInt(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// HostCheck is one host's compliance with one patch, as the compliance
// policy judged it at this scan.
type HostCheck struct {
	Host    string            `json:"host"`
	KB      string            `json:"kb"`
	State   rollout.HostState `json:"state"`
	Reasons []string          `json:"reasons,omitempty"`
	// BootTime is the host's LastBootUpTime at the scan (zero when it did
	// not answer): unchanged between two scans, a pending reboot never
	// happened.
	BootTime time.Time `json:"boot_time,omitzero"`
	// Since is when consecutive scans of this scan id first saw the host
	// in State.
	Since time.Time `json:"since,omitzero"`
}

// DriftKind says how a host's state moved between two scans.
type DriftKind string

// Drift kinds.
const (
	// DriftRegression: compliant at the previous scan, anything else now
	// (a later update overwrote a patched file, the host went away...).
	DriftRegression DriftKind = "regression"
	// DriftImproved: not compliant before, compliant now.
	DriftImproved DriftKind = "improved"
	// DriftChanged: another change between non-compliant states.
	DriftChanged DriftKind = "changed"
	// DriftRebootOverdue: pending_reboot at both scans with the same boot
	// time: the reboot the patch needs never happened.
	DriftRebootOverdue DriftKind = "reboot_overdue"
)

// Drift is one host and patch whose state moved (or whose pending reboot
// stayed pending) since the previous scan of the same scan id.
type Drift struct {
	Host     string            `json:"host"`
	KB       string            `json:"kb"`
	Kind     DriftKind         `json:"kind"`
	Previous rollout.HostState `json:"previous"`
	Current  rollout.HostState `json:"current"`
	// Regression is true for a host that was compliant and no longer is.
	Regression bool   `json:"regression"`
	Reason     string `json:"reason"`
}

// PatchTotals is compliance with one patch over the scanned hosts.
type PatchTotals struct {
	KB     string                    `json:"kb"`
	Hosts  int                       `json:"hosts"`
	Totals map[rollout.HostState]int `json:"totals"`
	// CompliancePercent is compliant over hosts less not_applicable ones,
	// times 100; 0 when no host is applicable.
	CompliancePercent float64 `json:"compliance_percent"`
}

// ScanResult is a scan's outcome, stored as the workflow result; a
// schedule hands it to its next run as the baseline for drift. The
// summary is plain JSON, readable in the Web UI; the per-host checks and
// the drift are plain when small and gzipped when their JSON is over
// contract.InlineLimit, so the result stays far below the payload limit.
// Read them with Expanded.
type ScanResult struct {
	ScanID     string    `json:"scan_id"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	KBs        []string  `json:"kbs"`
	Hosts      int       `json:"hosts"`
	// Totals counts host x patch checks per state, every state of
	// rollout.HostStates present.
	Totals map[rollout.HostState]int `json:"totals"`
	ByKB   []PatchTotals             `json:"by_kb"`
	// HostsCompliant counts hosts compliant with every patch that applies
	// to them (at least one).
	HostsCompliant int `json:"hosts_compliant"`
	// HostsUnreachable counts hosts that did not answer.
	HostsUnreachable int `json:"hosts_unreachable"`

	// PreviousAt is when the scan compared against started; zero for the
	// first scan of a scan id (and every one-off scan): no drift then.
	PreviousAt  time.Time `json:"previous_at,omitzero"`
	Regressions int       `json:"regressions"`
	DriftCount  int       `json:"drift_count"`
	// Drift lists regressions first, then the other drift, each in
	// inventory order.
	Drift     []Drift     `json:"drift,omitempty"`
	Checks    []HostCheck `json:"checks,omitempty"`
	DriftGzip []byte      `json:"drift_gzip,omitempty"`
	// ChecksGzip holds Checks gzipped when their JSON is over the limit.
	ChecksGzip []byte `json:"checks_gzip,omitempty"`

	// Notified lists the channels the regressions reached; NotifyErrors
	// says why a channel did not (never fatal to the scan).
	Notified     []string `json:"notified,omitempty"`
	NotifyErrors []string `json:"notify_errors,omitempty"`
}

// Compact gzips the checks and the drift that are over
// contract.InlineLimit. It is deterministic (gzjson), so workflow code
// calls it.
func (r ScanResult) Compact() (ScanResult, error) {
	var err error
	if r.Checks, r.ChecksGzip, err = compactList(r.Checks, r.ChecksGzip); err != nil {
		return r, fmt.Errorf("compact checks of scan %s: %w", r.ScanID, err)
	}
	if r.Drift, r.DriftGzip, err = compactList(r.Drift, r.DriftGzip); err != nil {
		return r, fmt.Errorf("compact drift of scan %s: %w", r.ScanID, err)
	}
	return r, nil
}

func compactList[T any](plain []T, blob []byte) ([]T, []byte, error) {
	if len(plain) == 0 || len(blob) > 0 {
		return plain, blob, nil
	}
	raw, err := json.Marshal(plain)
	if err != nil {
		return plain, nil, err
	}
	if len(raw) <= contract.InlineLimit {
		return plain, nil, nil
	}
	blob, err = gzjson.Marshal(plain)
	if err != nil {
		return plain, nil, err
	}
	return nil, blob, nil
}

// Expanded is the result with its checks and drift plain, never gzipped:
// what people, scripts and the next scan read.
func (r ScanResult) Expanded() (ScanResult, error) {
	if len(r.ChecksGzip) > 0 {
		if err := gzjson.Unmarshal(r.ChecksGzip, &r.Checks); err != nil {
			return r, fmt.Errorf("read checks of scan %s: %w", r.ScanID, err)
		}
		r.ChecksGzip = nil
	}
	if len(r.DriftGzip) > 0 {
		if err := gzjson.Unmarshal(r.DriftGzip, &r.Drift); err != nil {
			return r, fmt.Errorf("read drift of scan %s: %w", r.ScanID, err)
		}
		r.DriftGzip = nil
	}
	return r, nil
}

// ScanProgress answers the progress query of a running scan.
type ScanProgress struct {
	ScanID     string                    `json:"scan_id"`
	Done       bool                      `json:"done"`
	HostsTotal int                       `json:"hosts_total"`
	HostsDone  int                       `json:"hosts_done"`
	Batches    int                       `json:"batches"`
	Totals     map[rollout.HostState]int `json:"totals"`
}

// scanCarry is the scan's state across continue-as-new, inside Packed.
type scanCarry struct {
	StartedAt time.Time `json:"started_at"`
	// Checks holds every host x patch check, in host-major order; the
	// first Next hosts' are filled.
	Checks  []HostCheck `json:"checks"`
	Next    int         `json:"next"`
	Batches int         `json:"batches"`
	// Previous is the last completed scan of this scan id (nil: none).
	Previous *ScanResult `json:"previous,omitempty"`
}

// scanPacked is what ScanInput.Packed holds.
type scanPacked struct {
	Hosts   []rollout.Host  `json:"hosts"`
	Sites   []rollout.Site  `json:"sites,omitempty"`
	Patches []rollout.Patch `json:"patches"`
	Carry   *scanCarry      `json:"carry,omitempty"`
}

// Pack gzips the hosts, sites and patches into Packed, as a schedule's
// stored input should be; it is idempotent.
func (in ScanInput) Pack() (ScanInput, error) { return packScan(in, nil) }

func packScan(in ScanInput, c *scanCarry) (ScanInput, error) {
	if len(in.Packed) > 0 && c == nil {
		return in, nil
	}
	blob, err := gzjson.Marshal(scanPacked{Hosts: in.Hosts, Sites: in.Sites, Patches: in.Patches, Carry: c})
	if err != nil {
		return in, fmt.Errorf("pack scan %s: %w", in.ScanID, err)
	}
	in.Hosts, in.Sites, in.Patches, in.Packed = nil, nil, nil, blob
	return in, nil
}

// Unpack restores a packed input (an input without Packed is returned as
// is); clients use it to read a schedule's stored input.
func (in ScanInput) Unpack() (ScanInput, error) {
	in, _, err := unpackScan(in)
	return in, err
}

func unpackScan(in ScanInput) (ScanInput, *scanCarry, error) {
	if len(in.Packed) == 0 {
		return in, nil, nil
	}
	var p scanPacked
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return in, nil, fmt.Errorf("unpack scan %s: %w", in.ScanID, err)
	}
	in.Hosts, in.Sites, in.Patches, in.Packed = p.Hosts, p.Sites, p.Patches, nil
	return in, p.Carry, nil
}

// Validate says what is missing from a scan input before it is started.
func (in ScanInput) Validate() error {
	var problems []string
	if in.ScanID == "" {
		problems = append(problems, "no scan id")
	}
	if len(in.Hosts) == 0 {
		problems = append(problems, "no hosts")
	}
	if len(in.Patches) == 0 {
		problems = append(problems, "no patches")
	}
	seen := map[string]bool{}
	for _, p := range in.Patches {
		kb := strings.ToUpper(p.KB)
		if seen[kb] {
			problems = append(problems, "patch "+kb+" twice")
		}
		seen[kb] = true
	}
	if len(problems) > 0 {
		return fmt.Errorf("scan %q: %s", in.ScanID, strings.Join(problems, ", "))
	}
	return nil
}

// ScanSummary is the one-line static summary of a scan for the Web UI.
func ScanSummary(in ScanInput) string {
	s := fmt.Sprintf("compliance scan %s: %s on %d hosts", in.ScanID, strings.Join(kbsOf(in.Patches), ", "), len(in.Hosts))
	if in.RequestedBy != "" {
		s += ", by " + in.RequestedBy
	}
	return s
}

// ScanStartOptions are the options a client starts a one-off scan with:
// its id, the task queue and the static summary (in is the unpacked
// input).
func ScanStartOptions(in ScanInput) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       ScanWorkflowID(in.ScanID),
		TaskQueue:                                TaskQueue,
		StaticSummary:                            ScanSummary(in),
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

func kbsOf(patches []rollout.Patch) []string {
	kbs := make([]string, len(patches))
	for i, p := range patches {
		kbs[i] = strings.ToUpper(p.KB)
	}
	return kbs
}

// ScanWorkflow re-verifies every host of an inventory against patches,
// independently of any rollout, and reports drift since the previous scan
// of the same scan id ("check patch level regularly", DESIGN.md §2):
//
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
func ScanWorkflow(ctx workflow.Context, in ScanInput) (ScanResult, error) {
	in, carry, err := unpackScan(in)
	if err != nil {
		return ScanResult{}, temporal.NewNonRetryableApplicationError("unpack scan input", "InvalidInput", err)
	}
	if err := in.Validate(); err != nil {
		return ScanResult{}, temporal.NewNonRetryableApplicationError(err.Error(), "InvalidInput", nil)
	}
	s := newScan(ctx, in, carry)
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (ScanProgress, error) { return s.progress(), nil }); err != nil {
		return ScanResult{}, fmt.Errorf("register progress query: %w", err)
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
		return ScanResult{}, err
	}
	if !done {
		next, err := packScan(in, s.c)
		if err != nil {
			return ScanResult{}, err
		}
		return ScanResult{}, workflow.NewContinueAsNewError(ctx, ScanWorkflowName, next)
	}

	// 3. Drift against the baseline.
	res := s.result(ctx)

	// 4. Regressions reach the scan's channels.
	if res.Regressions > 0 && len(in.Channels) > 0 {
		s.notifyRegressions(ctx, &res)
	}
	s.upsert(ctx, AttrHostsDone.ValueSet(int64(len(in.Hosts))), AttrScanRegressed.ValueSet(res.Regressions > 0))
	s.refresh(ctx, &res)
	return res.Compact()
}

// scan is the running state of one ScanWorkflow run.
type scan struct {
	in    ScanInput
	tune  ScanTuning
	c     *scanCarry
	sites map[string]rollout.Site
	// batchesThisRun counts children started by this run.
	batchesThisRun int
	finished       bool
}

func newScan(ctx workflow.Context, in ScanInput, c *scanCarry) *scan {
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
func previousScan(ctx workflow.Context, scanID string) *ScanResult {
	if !workflow.HasLastCompletionResult(ctx) {
		return nil
	}
	var prev ScanResult
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
		s.upsert(ctx, AttrHostsDone.ValueSet(int64(s.hostsDone())))
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

	hosts := make([]BatchHost, 0, last-first)
	names := make([]string, 0, last-first)
	for i := first; i < last; i++ {
		h := s.in.Hosts[i]
		hosts = append(hosts, BatchHost{Index: i, Host: h, DistributionPoint: s.sites[h.Site].DistributionPoint})
		names = append(names, h.Name)
	}
	in := ScanBatchInput{ScanID: s.in.ScanID, Batch: batch, Parallel: s.tune.Parallel}
	blob, err := gzjson.Marshal(scanBatchPacked{Hosts: hosts, Patches: s.in.Patches})
	if err != nil {
		s.failBatch(first, last, batch, err)
		return
	}
	in.Packed = blob
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: fmt.Sprintf("%s/batch-%d", workflow.GetInfo(ctx).WorkflowExecution.ID, batch),
		StaticSummary: fmt.Sprintf("scan %s batch %d: %s on %d hosts from %s",
			s.in.ScanID, batch, strings.Join(kbsOf(s.in.Patches), ", "), len(names), names[0]),
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrHosts.ValueSet(HostsAttr(names))),
	})
	sel.AddFuture(workflow.ExecuteChildWorkflow(cctx, ScanBatchWorkflowName, in), func(f workflow.Future) {
		var res ScanBatchResult
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

func (s *scan) progress() ScanProgress {
	return ScanProgress{ScanID: s.in.ScanID, Done: s.finished, HostsTotal: len(s.in.Hosts), HostsDone: s.hostsDone(),
		Batches: s.c.Batches, Totals: s.totals()}
}

// result builds the scan's result: Since carried from the baseline, drift
// against it, totals overall and per patch.
func (s *scan) result(ctx workflow.Context) ScanResult {
	s.finished = true
	np := len(s.in.Patches)
	res := ScanResult{
		ScanID: s.in.ScanID, StartedAt: s.c.StartedAt, FinishedAt: workflow.Now(ctx).UTC(),
		KBs: kbsOf(s.in.Patches), Hosts: len(s.in.Hosts), Totals: s.totals(),
	}
	prev := map[string]HostCheck{}
	if p := s.c.Previous; p != nil {
		res.PreviousAt = p.StartedAt
		for _, c := range p.Checks {
			prev[c.Host+"\x00"+c.KB] = c
		}
	}
	var regressions, other []Drift
	res.Checks = slices.Clone(s.c.Checks)
	for i := range res.Checks {
		c := &res.Checks[i]
		c.Since = res.StartedAt
		p, ok := prev[c.Host+"\x00"+c.KB]
		if !ok {
			continue // first scan, or a host or patch new since
		}
		if p.State == c.State && !p.Since.IsZero() {
			c.Since = p.Since
		}
		if d, ok := drift(p, *c); ok {
			if d.Regression {
				regressions = append(regressions, d)
			} else {
				other = append(other, d)
			}
		}
	}
	res.Drift = append(regressions, other...)
	res.Regressions, res.DriftCount = len(regressions), len(res.Drift)

	for j, kb := range res.KBs {
		pt := PatchTotals{KB: kb, Hosts: len(s.in.Hosts), Totals: map[rollout.HostState]int{}}
		for i := range s.in.Hosts {
			pt.Totals[res.Checks[i*np+j].State]++
		}
		if applicable := pt.Hosts - pt.Totals[rollout.StateNotApplicable]; applicable > 0 {
			pt.CompliancePercent = float64(pt.Totals[rollout.StateCompliant]) * 100 / float64(applicable)
		}
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

// drift compares one host and patch across two scans.
func drift(prev, cur HostCheck) (Drift, bool) {
	d := Drift{Host: cur.Host, KB: cur.KB, Previous: prev.State, Current: cur.State, Reason: reasonOf(cur)}
	switch {
	case prev.State == rollout.StateCompliant && cur.State != rollout.StateCompliant:
		d.Kind, d.Regression = DriftRegression, true
	case prev.State != rollout.StateCompliant && cur.State == rollout.StateCompliant:
		d.Kind = DriftImproved
	case prev.State != cur.State:
		d.Kind = DriftChanged
	case cur.State == rollout.StatePendingReboot && !cur.BootTime.IsZero() && cur.BootTime.Equal(prev.BootTime):
		d.Kind = DriftRebootOverdue
		d.Reason = fmt.Sprintf("reboot pending since %s; the host has not rebooted since (last boot %s)",
			cur.Since.UTC().Format(time.RFC3339), cur.BootTime.UTC().Format(time.RFC3339))
	default:
		return Drift{}, false
	}
	return d, true
}

func reasonOf(c HostCheck) string {
	if len(c.Reasons) == 0 {
		return string(c.State)
	}
	return strings.Join(c.Reasons, "; ")
}

// notifyRegressions tells the scan's channels which hosts regressed. The
// idempotency key is the scan's workflow id, its first run id and a
// sequence, so retries and replays never notify twice; a notification
// that cannot be delivered is recorded in the result, never fatal.
func (s *scan) notifyRegressions(ctx workflow.Context, res *ScanResult) {
	info := workflow.GetInfo(ctx)
	kind := contract.EventScanDrift
	title := fmt.Sprintf("Scan %s: %d host(s) no longer compliant (%s)", s.in.ScanID, res.Regressions, strings.Join(res.KBs, ", "))
	ev := contract.Event{
		Key:       fmt.Sprintf("%s/%s/%s/1", info.WorkflowExecution.ID, info.FirstRunID, kind),
		Kind:      kind,
		RolloutID: ScanWorkflowID(s.in.ScanID),
		At:        res.FinishedAt,
		Title:     title,
		Markdown:  regressionMarkdown(*res),
		Text:      regressionText(*res),
		Fields: []contract.Field{
			{Name: "scan_id", Value: s.in.ScanID},
			{Name: "kbs", Value: strings.Join(res.KBs, ",")},
			{Name: "regressions", Value: fmt.Sprint(res.Regressions)},
			{Name: "drift", Value: fmt.Sprint(res.DriftCount)},
			{Name: "previous_scan_at", Value: res.PreviousAt.UTC().Format(time.RFC3339)},
		},
	}
	for _, c := range s.in.Channels {
		ev.Channels = append(ev.Channels, c.Name)
	}
	var out contract.NotifyResult
	err := workflow.ExecuteActivity(WithNotifyOptions(ctx, string(kind)+": "+title), contract.NotifyName,
		contract.NotifyInput{Event: ev, Channels: s.in.Channels}).Get(ctx, &out)
	res.Notified = out.Delivered
	res.NotifyErrors = out.Errors
	if err != nil {
		res.NotifyErrors = append(res.NotifyErrors, "undelivered: "+err.Error())
	}
}

// regressionRows bounds the hosts listed in a message or in the Web UI;
// the result has them all.
const regressionRows = 50

func regressionMarkdown(res ScanResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan **%s** found %d host(s) compliant at the previous scan (%s) and no longer compliant:\n\n",
		res.ScanID, res.Regressions, res.PreviousAt.UTC().Format(time.RFC3339))
	b.WriteString(driftTable(res.Drift[:min(res.Regressions, regressionRows)]))
	if res.Regressions > regressionRows {
		fmt.Fprintf(&b, "\n... and %d more: `patchway scan --id %s --last`\n", res.Regressions-regressionRows, res.ScanID)
	}
	return b.String()
}

func regressionText(res ScanResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan %s found %d host(s) compliant at the previous scan (%s) and no longer compliant:\n",
		res.ScanID, res.Regressions, res.PreviousAt.UTC().Format(time.RFC3339))
	for _, d := range res.Drift[:min(res.Regressions, regressionRows)] {
		fmt.Fprintf(&b, "- %s %s: %s -> %s: %s\n", d.Host, d.KB, d.Previous, d.Current, d.Reason)
	}
	if res.Regressions > regressionRows {
		fmt.Fprintf(&b, "... and %d more\n", res.Regressions-regressionRows)
	}
	return b.String()
}

func driftTable(ds []Drift) string {
	var b strings.Builder
	b.WriteString("| host | KB | drift | was | now | why |\n|---|---|---|---|---|---|\n")
	for _, d := range ds {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", d.Host, d.KB, d.Kind, d.Previous, d.Current,
			strings.ReplaceAll(d.Reason, "|", "\\|"))
	}
	return b.String()
}

// refresh publishes the markdown table of totals (and, at the end, drift)
// the Web UI shows.
func (s *scan) refresh(ctx workflow.Context, res *ScanResult) {
	var b strings.Builder
	status := "running"
	if res != nil {
		status = "done"
	}
	fmt.Fprintf(&b, "**Scan %s** %s: %s, %d/%d hosts checked\n\n| state | checks |\n|---|---|\n",
		s.in.ScanID, strings.Join(kbsOf(s.in.Patches), ", "), status, s.hostsDone(), len(s.in.Hosts))
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
	u := []temporal.SearchAttributeUpdate{AttrHostsTotal.ValueSet(int64(len(s.in.Hosts))), AttrHostsDone.ValueSet(0)}
	if len(s.in.Patches) == 1 {
		u = append(u, AttrPatchKB.ValueSet(strings.ToUpper(s.in.Patches[0].KB)))
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

// ScanBatchInput is one batch of hosts a ScanBatchWorkflow verifies against
// every patch: one VerifyPatch activity per host and patch, at most
// Parallel at a time. Hosts (BatchHost) and patches travel gzipped in
// Packed.
type ScanBatchInput struct {
	ScanID   string `json:"scan_id"`
	Batch    int    `json:"batch"`
	Parallel int    `json:"parallel"`
	Packed   []byte `json:"packed"`
}

type scanBatchPacked struct {
	Hosts   []BatchHost     `json:"hosts"`
	Patches []rollout.Patch `json:"patches"`
}

// ScanBatchResult holds the batch's checks, host-major, gzipped.
type ScanBatchResult struct {
	Packed []byte `json:"packed"`
}

func (r ScanBatchResult) checks() ([]HostCheck, error) {
	var checks []HostCheck
	if err := gzjson.Unmarshal(r.Packed, &checks); err != nil {
		return nil, fmt.Errorf("read batch checks: %w", err)
	}
	return checks, nil
}

// ScanBatchWorkflow verifies one batch of hosts against the scan's patches
// through VerifyPatch (scan, then the compliance policy). A host that does
// not answer is unreachable; one whose verification fails otherwise is
// unknown: never compliant without proof.
func ScanBatchWorkflow(ctx workflow.Context, in ScanBatchInput) (ScanBatchResult, error) {
	var p scanBatchPacked
	if err := gzjson.Unmarshal(in.Packed, &p); err != nil {
		return ScanBatchResult{}, temporal.NewNonRetryableApplicationError("unpack scan batch", "InvalidInput", err)
	}
	np := len(p.Patches)
	checks := make([]HostCheck, len(p.Hosts)*np)
	sel := workflow.NewSelector(ctx)
	next, pending := 0, 0
	for next < len(checks) || pending > 0 {
		for pending < max(1, in.Parallel) && next < len(checks) {
			i := next
			h, patch := p.Hosts[i/np], p.Patches[i%np]
			target := contract.HostTarget{RolloutID: ScanWorkflowID(in.ScanID), Host: h.Host, DistributionPoint: h.DistributionPoint, Patch: patch}
			actx := withScanOptions(ctx, fmt.Sprintf("verify %s on %s", strings.ToUpper(patch.KB), h.Host.Name))
			sel.AddFuture(workflow.ExecuteActivity(actx, contract.VerifyPatchName, contract.VerifyPatchInput{Target: target}), func(f workflow.Future) {
				var v contract.HostVerdict
				checks[i] = checkOf(h.Host, patch, v, f.Get(ctx, &v))
			})
			next++
			pending++
		}
		sel.Select(ctx)
		pending--
	}
	blob, err := gzjson.Marshal(checks)
	if err != nil {
		return ScanBatchResult{}, fmt.Errorf("pack batch %d checks: %w", in.Batch, err)
	}
	return ScanBatchResult{Packed: blob}, nil
}

// checkOf turns a verdict, or the error that stood in its way, into a
// check.
func checkOf(h rollout.Host, p rollout.Patch, v contract.HostVerdict, err error) HostCheck {
	c := HostCheck{Host: h.Name, KB: strings.ToUpper(p.KB)}
	if err != nil {
		c.State, c.Reasons = failureState(err)
		return c
	}
	c.State, c.Reasons, c.BootTime = v.State, v.Reasons, v.Evidence.LastBootUpTime
	if c.State == "" {
		c.State, c.Reasons = rollout.StateUnknown, append(c.Reasons, "the compliance policy gave no state")
	}
	return c
}

// failureState classifies a failed verification: a host that did not
// answer is unreachable, a patch for another OS not_applicable, anything
// else (refused credentials, a script or policy failure) unknown.
func failureState(err error) (rollout.HostState, []string) {
	var app *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	switch {
	case errors.As(err, &app):
		switch st := contract.StateForErrorType(app.Type()); st {
		case rollout.StateNotApplicable, rollout.StateUnreachable:
			return st, []string{app.Message()}
		}
		return rollout.StateUnknown, []string{fmt.Sprintf("not verified (%s): %s", app.Type(), app.Message())}
	case errors.As(err, &timeout):
		return rollout.StateUnreachable, []string{"no answer in time: " + timeout.Error()}
	}
	return rollout.StateUnknown, []string{"not verified: " + err.Error()}
}

// withScanOptions runs one verification: a scan and a policy evaluation,
// seconds on a healthy host. A host that does not answer is retried twice,
// then reported unreachable; refused credentials, a forbidden transport or
// a patch for another OS are not retried.
func withScanOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    3,
			NonRetryableErrorTypes: []string{
				contract.ErrAuthFailed, contract.ErrNotApplicable, contract.ErrUnsupportedOS,
				contract.ErrTransportRefused, contract.ErrHostConfigInvalid,
			},
		},
	})
}
