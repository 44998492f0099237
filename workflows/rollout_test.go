package workflows

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// testStart is a Monday morning; every test runs in simulated time from it.
var testStart = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// harness runs RolloutWorkflow in the SDK's test environment (time
// skipping) with the real workflow code, the policy local activities and
// the scripted test fleet.
type harness struct {
	t      *testing.T
	env    *testsuite.TestWorkflowEnvironment
	fleet  *testFleet
	ticks  []func(Progress)
	engine *policies.Engine
	in     RolloutInput

	mu      sync.Mutex
	results map[string]error
}

func newHarness(t *testing.T, in RolloutInput) *harness {
	t.Helper()
	e, err := testEngine()
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	return newHarnessWithEngine(t, in, e)
}

// newHarnessWithEngine is newHarness with the policies of engine.
func newHarnessWithEngine(t *testing.T, in RolloutInput, engine *policies.Engine) *harness {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.SetTestTimeout(time.Minute)
	Register(env)
	registerEngine(env, engine)
	return &harness{t: t, env: env, engine: engine, fleet: newTestFleet(env, env.Now), in: in, results: map[string]error{}}
}

func standardInput(perRegion int) RolloutInput {
	hosts, sites := fixture.Inventory(perRegion)
	return RolloutInput{Rollout: fixture.Rollout(testStart), Hosts: hosts, Sites: sites}
}

// at runs fn at a simulated offset from the start.
func (h *harness) at(d time.Duration, fn func()) { h.env.RegisterDelayedCallback(fn, d) }

// update sends an update; its outcome (rejection by the validator or the
// handler's error) is kept under id.
func (h *harness) update(id, name string, arg any) {
	record := func(err error) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.results[id] = err
	}
	h.env.UpdateWorkflow(name, id, &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   record,
		OnComplete: func(_ any, err error) { record(err) },
	}, arg)
}

// result returns an update's outcome and whether it finished.
func (h *harness) result(id string) (error, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	err, ok := h.results[id]
	return err, ok
}

func (h *harness) progress() Progress {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryProgress)
	if err != nil {
		h.t.Fatalf("query progress: %v", err)
	}
	var p Progress
	if err := v.Get(&p); err != nil {
		h.t.Fatalf("decode progress: %v", err)
	}
	return p
}

// progressAtEnd queries the completed workflow.
func (h *harness) progressAtEnd() Progress {
	h.t.Helper()
	return h.progress()
}

func (h *harness) host(name string) HostStatus {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryHost, name)
	if err != nil {
		h.t.Fatalf("query host %s: %v", name, err)
	}
	var hs HostStatus
	if err := v.Get(&hs); err != nil {
		h.t.Fatalf("decode host status: %v", err)
	}
	return hs
}

// when runs action once, at the first half-hourly check where cond holds
// on the rollout's progress.
func (h *harness) when(cond func(Progress) bool, action func(Progress)) {
	done := false
	h.ticks = append(h.ticks, func(p Progress) {
		if !done && cond(p) {
			done = true
			action(p)
		}
	})
}

// approveGates has user approve every gate the rollout waits at.
func (h *harness) approveGates(user string) {
	h.ticks = append(h.ticks, func(p Progress) {
		if p.WaitingGate != "" {
			h.update(fmt.Sprintf("approve-%s-%s", p.WaitingGate, h.env.Now().Sub(testStart)), UpdateApprove,
				GateRequest{Gate: p.WaitingGate, User: user, Reason: "stage clean"})
		}
	})
}

// tick runs the registered checks every half hour of simulated time (up
// to 60 days) until the workflow completes; one pending callback at a
// time keeps the test environment's callback queue short.
func (h *harness) tick(at time.Duration) {
	if len(h.ticks) == 0 || at > 60*24*time.Hour {
		return
	}
	h.at(30*time.Minute, func() {
		if h.env.IsWorkflowCompleted() {
			return
		}
		p := h.progress()
		for _, f := range h.ticks {
			f(p)
		}
		h.tick(at + 30*time.Minute)
	})
}

func (h *harness) run() (contract.Report, error) {
	h.tick(0)
	h.env.ExecuteWorkflow(RolloutWorkflowName, h.in)
	if !h.env.IsWorkflowCompleted() {
		h.t.Fatal("workflow did not complete")
	}
	var rep contract.Report
	if err := h.env.GetWorkflowError(); err != nil {
		return rep, err
	}
	if err := h.env.GetWorkflowResult(&rep); err != nil {
		h.t.Fatalf("decode report: %v", err)
	}
	return rep, nil
}

func TestRolloutWalksTheStagedPath(t *testing.T) {
	h := newHarness(t, standardInput(30))
	h.approveGates("bob")
	var midway Progress
	h.at(time.Hour, func() { midway = h.progress() })

	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if got, want := rep.Totals[rollout.StateCompliant], len(h.in.Hosts); got != want {
		t.Errorf("compliant hosts = %d, want %d (totals %v)", got, want, rep.Totals)
	}
	for _, host := range h.in.Hosts {
		if n := h.fleet.patchCount(host.Name); n != 1 {
			t.Errorf("%s patched %d times, want once", host.Name, n)
		}
	}
	if midway.Stage != "lab" || midway.Status != StatusSoaking {
		t.Errorf("an hour in, progress = %s %s, want lab soaking", midway.Stage, midway.Status)
	}
	if midway.PolicyRevision == "" || len(midway.Decisions) < 2 || midway.Decisions[0].Kind != contract.ActionSubmit || midway.Decisions[1].Kind != "risk" {
		t.Errorf("the filer's proof, then the risk decision, not recorded with its revision: %+v", midway.Decisions)
	}
	if f := midway.Decisions[0]; f.User != "alice" || f.Person == nil || f.Person.Verified {
		t.Errorf("the filer of a test rollout is alice, an unverified (typed) identity: %+v", f)
	}
	for kind, want := range map[contract.EventKind]int{
		contract.EventAdvisory: 2, contract.EventGateWaiting: 2, contract.EventGateDecided: 2, contract.EventRolloutCompleted: 1,
	} {
		evs, _ := h.fleet.eventsOf(kind)
		if len(evs) != want {
			t.Errorf("%d %s events, want %d", len(evs), kind, want)
		}
		// rollout id / first run id / kind / count: a rollout filed again
		// under the same id gets new keys, a continued run the same ones.
		for i, e := range evs {
			parts := strings.Split(e.Key, "/")
			if len(parts) != 4 || parts[0] != "ms08-067" || parts[1] == "" || parts[2] != string(kind) || parts[3] != fmt.Sprint(i+1) {
				t.Errorf("event key %q, want ms08-067/<first run id>/%s/%d", e.Key, kind, i+1)
			}
		}
	}
	adv, _ := h.fleet.eventsOf(contract.EventAdvisory)
	if len(adv) == 2 && !strings.Contains(adv[1].Markdown, "What the lab stage found") || !strings.Contains(adv[1].Text, "What the lab stage found: 2 hosts: 2 compliant") {
		t.Errorf("second advisory lacks the lab findings:\n%s", adv[1].Markdown)
	}
	// EMEA goes before AMER (after = ["emea"]), whatever the filed order.
	order := h.fleet.patchOrder()
	lastEMEA, firstAMER := -1, len(order)
	for i, name := range order {
		if strings.HasPrefix(name, "WS-EMEA") {
			lastEMEA = i
		}
		if strings.HasPrefix(name, "WS-AMER") && i < firstAMER {
			firstAMER = i
		}
	}
	if lastEMEA > firstAMER {
		t.Errorf("an AMER workstation was patched (#%d) before the last EMEA one (#%d)", firstAMER, lastEMEA)
	}
}

// An emergency that skips a stage the rollout files: the rollout waits
// at its emergency gate, where the filer and a person outside the
// emergency group are refused and dave (security-leads) approves; then
// the stage never runs (its hosts stay pending), the other stage and the
// waves do.
func TestEmergencySkipsAFiledStageOnceApprovedAtItsGate(t *testing.T) {
	in := standardInput(10)
	in.Rollout.Emergency = &rollout.EmergencyRequest{Reason: "worm in the wild", SkipStages: []string{"prodlike"}}
	h := newHarness(t, in)
	var waiting Progress
	h.when(func(p Progress) bool { return p.WaitingGate == EmergencyGate }, func(p Progress) {
		waiting = p
		for _, who := range []string{"alice", "carol"} {
			h.update("emergency-"+who, UpdateApprove, GateRequest{User: who, Reason: "me"})
		}
		h.update("emergency-dave", UpdateApprove, GateRequest{Gate: EmergencyGate, User: "dave", Reason: "worm: skip prodlike"})
	})
	h.approveGates("bob")
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if waiting.Status != StatusWaiting || len(waiting.Steps) != 0 {
		t.Errorf("at the emergency gate: status %s with %d steps planned, want waiting with none", waiting.Status, len(waiting.Steps))
	}
	for who, code := range map[string]string{"alice": "four_eyes", "carol": "not_in_group"} {
		if err, _ := h.result("emergency-" + who); err == nil || !strings.Contains(err.Error(), code) {
			t.Errorf("%s approving the emergency: %v, want refused with %s", who, err, code)
		}
	}
	if err, done := h.result("emergency-dave"); !done || err != nil {
		t.Fatalf("dave's approval: done %v, %v", done, err)
	}
	p := h.progressAtEnd()
	for _, s := range p.Steps {
		if s.Name == "prodlike" && s.Status != StepSkipped {
			t.Errorf("prodlike is %s, want skipped", s.Status)
		}
	}
	for _, host := range in.Hosts {
		want := 1
		if host.Tier == rollout.TierProdlike {
			want = 0
		}
		if n := h.fleet.patchCount(host.Name); n != want {
			t.Errorf("%s (%s) patched %d times, want %d", host.Name, host.Tier, n, want)
		}
	}
	if rep.Totals[rollout.StatePending] == 0 {
		t.Errorf("no host left pending: %v", rep.Totals)
	}
	found := false
	for _, d := range p.Decisions {
		found = found || strings.Contains(d.Reason, "stage prodlike skipped by the approved emergency break-glass")
	}
	if !found {
		t.Errorf("no decision records the skip: %+v", p.Decisions)
	}
	if !slices.ContainsFunc(rep.Unverified, func(s string) bool { return strings.Contains(s, "approve emergency by dave, unverified") }) {
		t.Errorf("the report does not show dave's typed approval unverified: %v", rep.Unverified)
	}
}

// A host naming a credential set the worker cannot resolve refuses the
// rollout at preflight, before any host is touched, naming the set and
// hosts that use it.
func TestUnknownCredentialSetIsRefusedBeforeAnyHost(t *testing.T) {
	in := standardInput(5)
	in.Hosts[7].Credential = "emea-admins"
	h := newHarness(t, in)
	h.fleet.unknownSets["emea-admins"] = true
	_, err := h.run()
	if err == nil {
		t.Fatal("the rollout ran with a credential set the worker cannot resolve")
	}
	for _, want := range []string{"refused before any host was touched", `credential set "emea-admins", named by 1 host(s) (` + in.Hosts[7].Name + `)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	for _, host := range in.Hosts {
		if n := h.fleet.patchCount(host.Name); n != 0 {
			t.Errorf("%s patched %d times before the refusal", host.Name, n)
		}
		if n := h.fleet.verified[host.Name]; n != 0 {
			t.Errorf("%s scanned %d times before the refusal", host.Name, n)
		}
	}
}

// An abort during the preflight does not wait for the scans in flight:
// the rollout ends at once, nothing is patched, and the baseline says the
// scan stopped.
func TestAbortDuringThePreflightEndsItAtOnce(t *testing.T) {
	in := standardInput(10)
	in.Tuning.PreflightParallel = 2
	h := newHarness(t, in)
	h.fleet.found = func(host rollout.Host) (contract.HostVerdict, error) {
		time.Sleep(100 * time.Millisecond)
		return contract.HostVerdict{Host: host.Name, State: rollout.StatePending, Baseline: "vulnerable"}, nil
	}
	h.at(time.Millisecond, func() {
		h.update("abort", UpdateAbort, AbortRequest{User: "carol", Reason: "wrong KB"})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, _ := h.result("abort"); err != nil {
		t.Fatalf("abort refused: %v", err)
	}
	b := rep.Baseline
	if b == nil || b.Done || b.Stopped != "the rollout was aborted" || b.Scanned >= len(in.Hosts) {
		t.Errorf("baseline after an abort during the preflight = %+v, want stopped early", b)
	}
	if !strings.Contains(b.Summary(), "(scan stopped: the rollout was aborted)") {
		t.Errorf("summary %q does not say the scan stopped", b.Summary())
	}
	for _, host := range in.Hosts {
		if n := h.fleet.patchCount(host.Name); n != 0 {
			t.Errorf("%s patched %d times after an abort in the preflight", host.Name, n)
		}
	}
}

// The preflight scans every planned host before the lab: the compliance
// policy's category counts each, a host proved compliant is settled and
// never patched, the others are patched in their step, and the counts
// reach progress, the first advisory and the report.
func TestPreflightTakesTheBaselineAndSkipsCompliantHosts(t *testing.T) {
	in := standardInput(10)
	h := newHarness(t, in)
	compliant, rebootDue, down := in.Hosts[3].Name, in.Hosts[4].Name, in.Hosts[5].Name
	h.fleet.found = func(host rollout.Host) (contract.HostVerdict, error) {
		v := contract.HostVerdict{Host: host.Name, State: rollout.StatePending, Baseline: "vulnerable", Reasons: []string{"KB958644 is not installed"}}
		switch host.Name {
		case compliant:
			v.State, v.Baseline, v.PreflightSettles = rollout.StateCompliant, "compliant", true
			v.Reasons, v.Proof = []string{"netapi32.dll is at 5.1.2600.3462"}, []string{"file netapi32.dll 5.1.2600.3462"}
		case rebootDue:
			v.Baseline, v.Reasons = "pending_reboot", []string{"an earlier update waits for a reboot (CBS RebootPending)"}
		case down:
			return contract.HostVerdict{}, unreachable(host)
		}
		return v, nil
	}
	h.approveGates("bob")
	var early Progress
	h.at(time.Second, func() { early = h.progress() })
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if early.Baseline == nil || early.Baseline.Hosts != len(in.Hosts) {
		t.Errorf("progress during the rollout shows no baseline of %d hosts: %+v", len(in.Hosts), early.Baseline)
	}
	b := rep.Baseline
	if b == nil || !b.Done {
		t.Fatalf("report has no finished baseline: %+v", b)
	}
	want := map[string]int{"compliant": 1, "pending_reboot": 1, "unreachable": 1, "vulnerable": len(in.Hosts) - 3}
	for c, n := range want {
		if b.Count(c) != n {
			t.Errorf("baseline %s = %d, want %d (%s)", c, b.Count(c), n, b.Summary())
		}
	}
	if b.Scanned != len(in.Hosts) || b.Settled != 1 {
		t.Errorf("baseline scanned %d, settled %d; want %d and 1", b.Scanned, b.Settled, len(in.Hosts))
	}
	for _, host := range in.Hosts {
		// A host that does not answer is retried (WithScanOptions).
		if n := h.fleet.verified[host.Name]; n != 1 && host.Name != down || n < 1 {
			t.Errorf("%s scanned %d times by the preflight, want once", host.Name, n)
		}
		want := 1
		if host.Name == compliant {
			want = 0
		}
		if n := h.fleet.patchCount(host.Name); n != want {
			t.Errorf("%s patched %d times, want %d", host.Name, n, want)
		}
	}
	if st := h.host(compliant); st.State != rollout.StateCompliant || !strings.Contains(strings.Join(st.Reasons, "; "), "preflight scan: netapi32.dll is at 5.1.2600.3462") || len(st.Evidence) == 0 {
		t.Errorf("host settled by the preflight = %+v, want compliant with the scan's reason and proof", st)
	}
	adv, _ := h.fleet.eventsOf(contract.EventAdvisory)
	if len(adv) == 0 || !strings.Contains(adv[0].Text, "Preflight scan, before any host was touched: 28 of 28 hosts scanned: 1 compliant, 1 pending_reboot, 1 unreachable, 25 vulnerable; 1 settled, not patched again") {
		t.Errorf("first advisory lacks the baseline:\n%s", adv[0].Text)
	}
}

func TestApprovalIsRefusedByTheGatesPolicy(t *testing.T) {
	tests := []struct {
		name, user, wantCode string
	}{
		{"the filer cannot approve their own rollout", "alice", "four_eyes"},
		{"a user outside the approval group cannot approve", "mallory", "not_in_group"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, standardInput(2))
			var after Progress
			h.at(25*time.Hour, func() { h.update("refused", UpdateApprove, GateRequest{Gate: "lab", User: tc.user}) })
			h.at(25*time.Hour+time.Minute, func() {
				after = h.progress()
				h.update("abort", UpdateAbort, AbortRequest{User: "bob", Reason: "test over"})
			})
			if _, err := h.run(); err != nil {
				t.Fatalf("rollout failed: %v", err)
			}
			err, done := h.result("refused")
			if !done || err == nil {
				t.Fatalf("approval by %s was not refused (done %t)", tc.user, done)
			}
			if !strings.Contains(err.Error(), tc.wantCode) {
				t.Errorf("refusal %q does not carry the policy's code %s", err, tc.wantCode)
			}
			if after.WaitingGate != "lab" {
				t.Errorf("after the refusal the rollout waits at %q, want lab", after.WaitingGate)
			}
			last := after.Decisions[len(after.Decisions)-1]
			if last.Kind != "approve" || last.Allow || last.User != tc.user || last.Revision == "" {
				t.Errorf("refused approval not recorded as such: %+v", last)
			}
		})
	}
}

func TestSLAEscalatesWhileWaitingAtAGate(t *testing.T) {
	in := standardInput(2)
	in.Rollout.Patch.Severity = rollout.SeverityCritical
	in.Rollout.Stages[0].Soak, in.Rollout.Stages[1].Soak = time.Hour, 2*time.Hour
	h := newHarness(t, in)
	sla, err := h.engine.SLA(context.Background(), policies.SLAInput{Rollout: in.Rollout, Now: testStart})
	if err != nil || len(sla.Milestones) < 3 {
		t.Fatalf("sla policy: %v, %d milestones", err, len(sla.Milestones))
	}
	deadline := sla.Deadline.Sub(testStart)
	var before, after Progress
	h.at(deadline-time.Minute, func() { before = h.progress() })
	h.at(deadline+time.Minute, func() { after = h.progress() })
	last := sla.Milestones[len(sla.Milestones)-1].At.Sub(testStart)
	h.at(last+time.Hour, func() { h.update("abort", UpdateAbort, AbortRequest{User: "bob", Reason: "test over"}) })
	if _, err := h.run(); err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	var want, wantBreach []time.Duration
	for _, m := range sla.Milestones {
		if m.Breach {
			wantBreach = append(wantBreach, m.At.Sub(testStart))
		} else {
			want = append(want, m.At.Sub(testStart))
		}
	}
	_, milestones := h.fleet.eventsOf(contract.EventSLAMilestone)
	_, breaches := h.fleet.eventsOf(contract.EventSLABreached)
	if fmt.Sprint(milestones) != fmt.Sprint(want) {
		t.Errorf("milestone notifications at %v, want %v (SLA %s)", milestones, want, sla.SLA)
	}
	if fmt.Sprint(breaches) != fmt.Sprint(wantBreach) {
		t.Errorf("breach notifications at %v, want %v", breaches, wantBreach)
	}
	if before.Breached || before.WaitingGate != "lab" {
		t.Errorf("just before the deadline: breached %t, waiting at %q; want not breached, waiting at lab", before.Breached, before.WaitingGate)
	}
	if !after.Breached || after.WaitingGate != "lab" {
		t.Errorf("just after the deadline: breached %t, waiting at %q; want breached, still waiting at lab", after.Breached, after.WaitingGate)
	}
	evs, _ := h.fleet.eventsOf(contract.EventSLABreached)
	if len(evs) > 0 && !slices.Contains(evs[0].Contacts, "ciso") {
		t.Errorf("breach notified %v; the escalation policy names the ciso", evs[0].Contacts)
	}
}

// haltingFleet fails n EMEA workstations.
func haltingFleet(n int) func(rollout.Host, time.Time) (rollout.HostState, error) {
	return func(h rollout.Host, _ time.Time) (rollout.HostState, error) {
		var i int
		if _, err := fmt.Sscanf(h.Name, "WS-EMEA-%04d", &i); err == nil && i <= n {
			return rollout.StateFailed, nil
		}
		return rollout.StateCompliant, nil
	}
}

func TestWaveHaltsAtItsThresholdAndResumes(t *testing.T) {
	h := newHarness(t, standardInput(30))
	h.fleet.behave = haltingFleet(3)
	h.approveGates("bob")
	var halted Progress
	h.when(func(p Progress) bool { return p.Status == StatusHalted }, func(p Progress) {
		halted = p
		h.update("resume", UpdateResume, ControlRequest{User: "carol", Reason: "three bad disks, known"})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if halted.Status != StatusHalted || halted.Stage != "emea" {
		t.Fatalf("the rollout never halted at emea (last seen %s at %s)", halted.Status, halted.Stage)
	}
	if evs, _ := h.fleet.eventsOf(contract.EventWaveHalted); len(evs) != 1 {
		t.Errorf("%d wave_halted events, want 1", len(evs))
	}
	if err, _ := h.result("resume"); err != nil {
		t.Errorf("resume refused: %v", err)
	}
	if got := rep.Totals[rollout.StateFailed]; got != 3 {
		t.Errorf("failed hosts = %d, want 3", got)
	}
	if got, want := rep.Totals[rollout.StateCompliant], len(h.in.Hosts)-3; got != want {
		t.Errorf("compliant hosts = %d, want %d: the wave did not go on after resume", got, want)
	}
}

func TestAbortWithRollbackUninstallsTheCurrentWave(t *testing.T) {
	h := newHarness(t, standardInput(30))
	// The first compliant host of the wave the fleet answers had the fix
	// already: never installed by this rollout, it is not rolled back and
	// keeps its state. Chosen as it is reached, because which hosts run
	// before the halt depends on how the batches interleave.
	halting := haltingFleet(3)
	var already string
	h.fleet.behave = func(host rollout.Host, now time.Time) (rollout.HostState, error) {
		state, err := halting(host, now)
		if state == rollout.StateCompliant && strings.HasPrefix(host.Name, "WS-EMEA") {
			h.fleet.mu.Lock()
			if already == "" {
				already = host.Name
				h.fleet.present[host.Name] = true
			}
			h.fleet.mu.Unlock()
		}
		return state, err
	}
	h.approveGates("bob")
	h.when(func(p Progress) bool { return p.Status == StatusHalted }, func(Progress) {
		h.update("abort", UpdateAbort, AbortRequest{User: "carol", Reason: "patch breaks the CRM", Rollback: true})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, _ := h.result("abort"); err != nil {
		t.Fatalf("abort refused: %v", err)
	}
	h.fleet.mu.Lock()
	defer h.fleet.mu.Unlock()
	inWave := func(name string) bool {
		return strings.HasPrefix(name, "WS-EMEA") || strings.HasPrefix(name, "LT-EMEA")
	}
	for name := range h.fleet.patched {
		if h.fleet.present[name] {
			if h.fleet.uninstalled[name] != 0 {
				t.Errorf("%s never got the patch from this rollout but was uninstalled", name)
			}
			continue
		}
		if inWave(name) && h.fleet.uninstalled[name] != 1 {
			t.Errorf("%s patched in the aborted wave but uninstalled %d times", name, h.fleet.uninstalled[name])
		}
		if strings.HasPrefix(name, "WS-AMER") {
			t.Errorf("%s patched after the abort", name)
		}
	}
	for name := range h.fleet.uninstalled {
		if !inWave(name) {
			t.Errorf("%s rolled back but not in the current wave", name)
		}
	}
	if rep.Totals[rollout.StateRolledBack] == 0 {
		t.Errorf("report shows no rolled back hosts: %v", rep.Totals)
	}
	hosts, err := rep.HostList()
	if err != nil {
		t.Fatal(err)
	}
	if already == "" {
		t.Fatal("no compliant host of the wave ran before the halt: the test proves nothing of hosts that had the fix")
	}
	for _, hr := range hosts {
		if h.fleet.present[hr.Name] && h.fleet.patched[hr.Name] == 0 {
			t.Errorf("%s was never verified: the test proves nothing of it", hr.Name)
		}
		if h.fleet.present[hr.Name] && hr.State != rollout.StateCompliant {
			t.Errorf("%s is %s after the rollback, want it to keep compliant", hr.Name, hr.State)
		}
	}
}

func TestLaptopThatReturnsAfterTwoDaysIsPatchedBeforeTheDeadline(t *testing.T) {
	h := newHarness(t, standardInput(5))
	var first, back, patchedAt time.Time
	h.fleet.behave = func(host rollout.Host, now time.Time) (rollout.HostState, error) {
		if host.Role == "laptop" && first.IsZero() {
			first, back = now, now.Add(48*time.Hour) // away for two days from its first try
		}
		if host.Role == "laptop" && now.Before(back) {
			return "", unreachable(host)
		}
		if host.Name == "LT-EMEA-0001" {
			patchedAt = now
		}
		return rollout.StateCompliant, nil
	}
	h.approveGates("bob")
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if got, want := rep.Totals[rollout.StateCompliant], len(h.in.Hosts); got != want {
		t.Errorf("compliant = %d, want %d (%v)", got, want, rep.Totals)
	}
	deadline := h.progressAtEnd().Deadline
	if patchedAt.Before(back) || !patchedAt.Before(deadline) {
		t.Errorf("laptop patched at %s, want between its return %s and the deadline %s", patchedAt, back, deadline)
	}
	if n := h.fleet.patchCount("LT-EMEA-0001"); n < 2 {
		t.Errorf("laptop tried %d times, want retries", n)
	}
}

func TestContinueAsNewKeepsEveryHostAndPatchesItOnce(t *testing.T) {
	in := standardInput(1500) // 3,010 hosts
	in.Tuning = Tuning{BatchSize: 50, MaxBatchesPerRun: 12, MaxHostsPerRun: 20}
	in.Rollout.Waves[0].MaxParallel, in.Rollout.Waves[1].MaxParallel = 64, 64
	hosts := in.Hosts
	shared, verified := map[string]int{}, map[string]int{}
	runs := 0
	now := testStart
	var rep contract.Report
	for ; runs < 50; runs++ {
		h := newHarness(t, in)
		h.env.SetStartTime(now)
		h.fleet.patched = shared
		h.fleet.verified = verified
		h.approveGates("bob")
		h.tick(0)
		h.env.ExecuteWorkflow(RolloutWorkflowName, in)
		now = h.env.Now()
		err := h.env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			var next RolloutInput
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatalf("decode continue-as-new input: %v", err)
			}
			t.Logf("run %d continued as new with %d packed bytes", runs+1, len(next.Packed))
			in = next
			continue
		}
		if err != nil {
			t.Fatalf("run %d failed: %v", runs, err)
		}
		if err := h.env.GetWorkflowResult(&rep); err != nil {
			t.Fatal(err)
		}
		break
	}
	t.Logf("%d hosts in %d runs", len(hosts), runs+1)
	if runs < 2 {
		t.Errorf("rollout of %d hosts finished in %d runs; want continue-as-new", len(hosts), runs+1)
	}
	if len(in.Packed) == 0 || len(in.Hosts) != 0 {
		t.Errorf("continue-as-new input not packed: %d packed bytes, %d plain hosts", len(in.Packed), len(in.Hosts))
	}
	if got := rep.Totals[rollout.StateCompliant]; got != len(hosts) {
		t.Errorf("compliant = %d, want %d", got, len(hosts))
	}
	for _, host := range hosts {
		if shared[host.Name] != 1 {
			t.Fatalf("%s patched %d times across runs, want once", host.Name, shared[host.Name])
		}
		if verified[host.Name] != 1 {
			t.Fatalf("%s scanned %d times by the preflight across runs, want once", host.Name, verified[host.Name])
		}
	}
	if b := rep.Baseline; b == nil || !b.Done || b.Scanned != len(hosts) || b.Count("vulnerable") != len(hosts) {
		t.Errorf("baseline after continue-as-new = %+v, want all %d hosts scanned vulnerable", b, len(hosts))
	}
}

// testLogLevel keeps the SDK quiet: it logs every scripted activity
// failure at ERROR.
const testLogLevel = slog.LevelError + 4
