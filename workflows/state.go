package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// maxRecords bounds the decisions kept in state (and in the progress
// query); every decision is in history regardless.
const maxRecords = 50

// RolloutCarry is the rollout workflow's state, carried across
// continue-as-new. Clients never set it.
type RolloutCarry struct {
	Risk     *contract.RiskDecision `json:"risk,omitempty"`
	Steps    []*stepState           `json:"steps"`
	Current  int                    `json:"current"`
	Hosts    []hostRecord           `json:"hosts"`
	Records  []Record               `json:"records,omitempty"`
	Excepted []Exception            `json:"excepted,omitempty"`
	Paused   bool                   `json:"paused,omitempty"`
	Abort    *AbortRequest          `json:"abort,omitempty"`
	Rejected bool                   `json:"rejected,omitempty"`
	Breached bool                   `json:"breached,omitempty"`
	Fired    int                    `json:"fired"`
	// RiskRevisions counts the risk decisions taken again on new facts
	// (threat updates); the SLA clock re-reads its milestones on a change.
	RiskRevisions int            `json:"risk_revisions,omitempty"`
	Accel         []string       `json:"accel,omitempty"`
	Sent          map[string]int `json:"sent,omitempty"`
	Advisory      int            `json:"advisory"`
	Completed     bool           `json:"completed,omitempty"`
	// Runs counts continue-as-new generations, for batch ids.
	Runs int `json:"runs"`
	// Baseline is the preflight scan's progress; nil for a rollout
	// started before there was one.
	Baseline *baselineState `json:"baseline,omitempty"`
	// UsedTokens are the SHA-256 (hex) of every identity token the
	// rollout was shown: the gates policy refuses one a second time.
	UsedTokens []string `json:"used_tokens,omitempty"`
	// Filer is who filed the rollout, as the gates policy proved it (nil
	// for a rollout started before filers were proven).
	Filer *contract.Person `json:"filer,omitempty"`
	// Unverified lists the actions allowed on a typed, unverified
	// identity, for the report ("approve lab by bob, unverified").
	Unverified []string `json:"unverified,omitempty"`
	// EmergencyWaiting: the rollout waits at its emergency gate;
	// EmergencyApproval is who approved the break-glass there.
	EmergencyWaiting  bool             `json:"emergency_waiting,omitempty"`
	EmergencyApproval *contract.Person `json:"emergency_approval,omitempty"`
	// Forecast is the forecast policy's latest answer; FirstBreachForecast
	// the first that found the rollout late (and escalated).
	Forecast            *contract.Forecast `json:"forecast,omitempty"`
	FirstForecast       *contract.Forecast `json:"first_forecast,omitempty"`
	FirstBreachForecast *contract.Forecast `json:"first_breach_forecast,omitempty"`
	// Shadow is where the shadow policy disagreed (nil without one).
	Shadow *contract.ShadowSummary `json:"shadow,omitempty"`
}

// baselineState is the preflight scan as it stands: the hosts still to
// scan, and the hosts counted so far per baseline category.
type baselineState struct {
	Queue   []int          `json:"queue"`
	Hosts   int            `json:"hosts"`
	Scanned int            `json:"scanned"`
	Settled int            `json:"settled"`
	Counts  map[string]int `json:"counts,omitempty"`
	Batches int            `json:"batches"`
	Done    bool           `json:"done,omitempty"`
	// Stopped says why the scan ended before every host was scanned.
	Stopped string `json:"stopped,omitempty"`
}

// summary is the baseline as clients see it; nil without a preflight.
func (b *baselineState) summary() *contract.Baseline {
	if b == nil {
		return nil
	}
	out := &contract.Baseline{Hosts: b.Hosts, Scanned: b.Scanned, Settled: b.Settled, Done: b.Done, Stopped: b.Stopped}
	for _, c := range sortedKeys(b.Counts) {
		out.Counts = append(out.Counts, contract.BaselineCount{Category: c, Hosts: b.Counts[c]})
	}
	return out
}

// stepState is one stage, wave or retry round of the staged path.
type stepState struct {
	Name  string   `json:"name"`
	Kind  StepKind `json:"kind"`
	Group string   `json:"group,omitempty"`
	// Index into Rollout.Stages or Rollout.Waves.
	Index  int        `json:"index"`
	Status StepStatus `json:"status"`
	// Members are the host indexes the step owns; Queue those not yet run.
	Members []int `json:"members"`
	Queue   []int `json:"queue"`
	// Started lists hosts handed to a batch (the rollback set).
	Started []int `json:"started,omitempty"`
	Skipped []int `json:"skipped,omitempty"`
	Batches int   `json:"batches"`
	// Acked are the host states a person acknowledged (a resume after a
	// halt, a skipped host), taken out of what the wave policy counts.
	Acked map[rollout.HostState]int `json:"acked,omitempty"`
	// Totals counts the step's hosts per state, kept by setHost.
	Totals map[rollout.HostState]int `json:"totals,omitempty"`
	// Halt is the wave policy's last word on the step's failures: halt
	// for a person. Halted is true while the step waits for one; Acks
	// counts the controls that changed what the policy counts since.
	Halt      bool      `json:"halt,omitempty"`
	Halted    bool      `json:"halted,omitempty"`
	Acks      int       `json:"acks,omitempty"`
	HaltCount int       `json:"halt_count,omitempty"`
	SoakUntil time.Time `json:"soak_until,omitzero"`
	// Soak is the soak the plan policy set when a threat update shrank
	// it before the stage began soaking; nil is the stage's own.
	Soak     *time.Duration `json:"soak,omitempty"`
	Approved bool           `json:"approved,omitempty"`
	Rejected bool           `json:"rejected,omitempty"`
	// Decided is the gate decision the rollout has yet to announce.
	Decided *gateDecision `json:"decided,omitempty"`
	Done    bool          `json:"done,omitempty"`
	// Wave limits from the wave policy.
	Limits *contract.WaveDecision `json:"limits,omitempty"`
	// FirstBatchAt and LastBatchAt are when the step's first batch
	// started and its last one ended: the time its hosts took, for the
	// forecast's observed rate.
	FirstBatchAt time.Time `json:"first_batch_at,omitzero"`
	LastBatchAt  time.Time `json:"last_batch_at,omitzero"`
}

// hostRecord is what the rollout knows about one host.
type hostRecord struct {
	State   rollout.HostState `json:"s"`
	Reasons []string          `json:"r,omitempty"`
	// Proof is the evidence of the host's last verdict (file versions
	// found, hotfix, reboot signals, boot against install time).
	Proof    []string `json:"p,omitempty"`
	Step     int      `json:"t"`
	Attempts int      `json:"a,omitempty"`
	// Installed: this rollout ran the installer on the host.
	Installed bool `json:"i,omitempty"`
}

// run is one execution of the rollout workflow: the input, the state, and
// lookups rebuilt from them.
type run struct {
	in     RolloutInput
	st     *RolloutCarry
	byName map[string]int
	sites  map[string]rollout.Site
	tune   Tuning
	// batchesThisRun counts children started by this run (continue-as-new).
	batchesThisRun int
	// shownDone and shownStage are the search attribute values last
	// upserted: each upsert is a history event, so only changes are sent.
	shownDone  int
	shownStage string
	// slaBusy is true while the SLA clock is between a timer and its
	// notification; continue-as-new waits for it.
	slaBusy bool
}

func newRun(in RolloutInput) *run {
	r := &run{in: in, byName: make(map[string]int, len(in.Hosts)), sites: map[string]rollout.Site{}, tune: withDefaults(in.Tuning)}
	for i, h := range in.Hosts {
		r.byName[h.Name] = i
	}
	for _, s := range in.Sites {
		r.sites[s.Name] = s
	}
	if in.Carry != nil {
		r.st = in.Carry
		r.st.Runs++
	} else {
		r.st = &RolloutCarry{Hosts: make([]hostRecord, len(in.Hosts)), Sent: map[string]int{}}
		for i := range r.st.Hosts {
			r.st.Hosts[i] = hostRecord{State: rollout.StatePending, Step: -1}
		}
	}
	if r.st.Sent == nil {
		r.st.Sent = map[string]int{}
	}
	return r
}

func withDefaults(t Tuning) Tuning {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.BatchSize, 100)
	def(&t.MaxPendingBatches, 4)
	def(&t.MaxBatchesPerRun, 300)
	def(&t.MaxHostsPerRun, 500)
	def(&t.PreflightParallel, 64)
	if t.RetryInterval <= 0 {
		t.RetryInterval = 4 * time.Hour
	}
	if t.BootTimeout <= 0 {
		t.BootTimeout = 30 * time.Minute
	}
	return t
}

// record keeps a decision in state (and so in the progress query); the
// activity or update that produced it is already in history.
func (r *run) record(rec Record) Record {
	r.st.Records = append(r.st.Records, rec)
	if n := len(r.st.Records); n > maxRecords {
		r.st.Records = slices.Clone(r.st.Records[n-maxRecords:])
	}
	return rec
}

// current returns the step the rollout is at, or nil before the first.
func (r *run) current() *stepState {
	if r.st.Current < 0 || r.st.Current >= len(r.st.Steps) {
		return nil
	}
	return r.st.Steps[r.st.Current]
}

// setHost changes a host's state and keeps its step's totals.
func (r *run) setHost(i int, state rollout.HostState, reasons []string) {
	h := &r.st.Hosts[i]
	if step := r.stepOf(i); step != nil {
		if step.Totals == nil {
			step.Totals = map[rollout.HostState]int{}
		}
		step.Totals[h.State]--
		step.Totals[state]++
	}
	h.State, h.Reasons = state, reasons
}

func (r *run) stepOf(host int) *stepState {
	t := r.st.Hosts[host].Step
	if t < 0 || t >= len(r.st.Steps) {
		return nil
	}
	return r.st.Steps[t]
}

// isSettled says a host needs no more work from this rollout.
func isSettled(s rollout.HostState) bool {
	switch s {
	case rollout.StateCompliant, rollout.StateNotApplicable, rollout.StateExcepted, rollout.StateRolledBack:
		return true
	}
	return false
}

func (r *run) excepted(i int) bool { return r.st.Hosts[i].State == rollout.StateExcepted }

// hostsDone counts planned hosts that had their turn (whatever the
// outcome); hostsTotal counts planned hosts.
func (r *run) hostsDone() int {
	n := 0
	for _, s := range r.st.Steps {
		if s.Kind != KindRetry {
			n += len(s.Members) - s.Totals[rollout.StatePending] - s.Totals[rollout.StateInProgress]
		}
	}
	return n
}

func (r *run) hostsTotal() int {
	n := 0
	for _, s := range r.st.Steps {
		if s.Kind != KindRetry {
			n += len(s.Members)
		}
	}
	return n
}

// status derives the rollout's status from its state.
func (r *run) status() Status {
	switch {
	case r.st.Completed && r.st.Abort != nil:
		return StatusAborted
	case r.st.Completed && r.st.Rejected:
		return StatusRejected
	case r.st.Completed:
		return StatusCompleted
	case r.st.Abort != nil:
		return StatusAborted
	case r.st.Paused:
		return StatusPaused
	case r.st.EmergencyWaiting:
		return StatusWaiting
	}
	if s := r.current(); s != nil {
		switch s.Status {
		case StepWaiting:
			return StatusWaiting
		case StepHalted:
			return StatusHalted
		case StepSoaking:
			return StatusSoaking
		case StepWindow:
			return StatusWindow
		}
	}
	return StatusRunning
}

// progress is the answer to the progress query.
func (r *run) progress() Progress {
	p := Progress{
		RolloutID:  r.in.Rollout.ID,
		KB:         r.in.Rollout.Patch.KB,
		Severity:   r.in.Rollout.Patch.Severity,
		Status:     r.status(),
		Breached:   r.st.Breached,
		Paused:     r.st.Paused,
		HostsDone:  r.hostsDone(),
		HostsTotal: r.hostsTotal(),
		Decisions:  slices.Clone(r.st.Records),
		Exceptions: slices.Clone(r.st.Excepted),
		Baseline:   r.st.Baseline.summary(),
		Forecast:   r.st.Forecast,
		Shadow:     r.st.Shadow,
	}
	if r.st.Risk != nil {
		p.Deadline = r.st.Risk.Deadline
		p.PolicyRevision = r.st.Risk.Revision
		p.KEV = slices.Clone(r.st.Risk.KEV)
	}
	p.CVEs = slices.Clone(r.in.Rollout.Patch.CVEs)
	if s := r.current(); s != nil {
		p.Stage = s.Name
		if s.Status == StepWaiting {
			p.WaitingGate = s.Name
		}
	}
	if b := r.st.Baseline; b != nil && !b.Done && b.Stopped == "" {
		p.Stage = preflightStep
	}
	if r.st.EmergencyWaiting {
		p.Stage, p.WaitingGate = EmergencyGate, EmergencyGate
	}
	for _, s := range r.st.Steps {
		totals := map[rollout.HostState]int{}
		//workflowcheck:ignore: builds a map: the order makes no difference
		for k, v := range s.Totals {
			if v != 0 {
				totals[k] = v
			}
		}
		if s.Kind == KindRetry {
			totals = map[rollout.HostState]int{rollout.StatePending: len(s.Members)}
		}
		sp := StepProgress{Name: s.Name, Kind: s.Kind, Status: s.Status, Hosts: len(s.Members), Totals: totals, Batches: s.Batches}
		if s.Limits != nil {
			sp.Failures, sp.Threshold = s.Limits.Failures, s.Limits.MaxFailures
		}
		p.Steps = append(p.Steps, sp)
	}
	return p
}

// hostStatus answers the host query.
func (r *run) hostStatus(name string) (HostStatus, error) {
	i, ok := r.byName[name]
	if !ok {
		return HostStatus{}, fmt.Errorf("host %q is not in rollout %s", name, r.in.Rollout.ID)
	}
	h := r.st.Hosts[i]
	hs := HostStatus{Name: name, State: h.State, Reasons: h.Reasons, Evidence: h.Proof, Attempts: h.Attempts}
	if s := r.stepOf(i); s != nil {
		hs.Stage = s.Name
	}
	return hs, nil
}

// refresh publishes progress: current details and the search attributes
// that move (stage, hosts done).
func (r *run) refresh(ctx workflow.Context) {
	workflow.SetCurrentDetails(ctx, r.currentDetails(workflow.Now(ctx)))
	var updates []temporal.SearchAttributeUpdate
	if done := r.hostsDone(); done != r.shownDone {
		r.shownDone = done
		updates = append(updates, AttrHostsDone.ValueSet(int64(done)))
	}
	if s := r.current(); s != nil && s.Name != r.shownStage {
		r.shownStage = s.Name
		updates = append(updates, AttrStage.ValueSet(s.Name))
	}
	if len(updates) > 0 {
		r.upsert(ctx, updates...)
	}
}
