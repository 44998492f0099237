package workflows

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/rollout"
)

// netapi is the file MS08-067 replaces on the test inventory's OS.
const netapi = `C:\Windows\System32\netapi32.dll`

// scanHost is what one scripted host shows a scan.
type scanHost struct {
	hotfixes []string
	files    map[string]string // path -> version in effect
	cbs      bool              // CBS RebootPending
	boot     time.Time
	down     bool
}

// scanFleet answers the scan script for scripted hosts, so that the real
// VerifyPatch activity and the real compliance policy judge them: the
// workflow and the policy are under test, Windows is not here. It also
// records notifications.
type scanFleet struct {
	mu       sync.Mutex
	hosts    map[string]*scanHost
	verifies int
	events   []contract.Event
}

// newScanFleet gives every host the patch in effect (compliant) and
// registers VerifyPatch (real, over this runner) and Notify.
func newScanFleet(t testing.TB, env *testsuite.TestWorkflowEnvironment, hosts []rollout.Host, now time.Time) *scanFleet {
	t.Helper()
	f := &scanFleet{hosts: map[string]*scanHost{}}
	for _, h := range hosts {
		f.hosts[h.Name] = &scanHost{hotfixes: []string{"KB958644"}, files: map[string]string{netapi: "6.1.7600.16385"}, boot: now.Add(-72 * time.Hour)}
	}
	engine := registerPolicies(t, env)
	acts := &activities.HostActivities{Runner: f, Policy: engine, Now: env.Now}
	env.RegisterActivityWithOptions(acts.VerifyPatch, activity.RegisterOptions{Name: contract.VerifyPatchName})
	env.RegisterActivityWithOptions(f.Notify, activity.RegisterOptions{Name: contract.NotifyName})
	return f
}

// set changes a host's state between scans.
func (f *scanFleet) set(name string, change func(*scanHost)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.hosts[name])
}

// Run prints what the scan script would print for the host.
func (f *scanFleet) Run(_ context.Context, host rollout.Host, script string) (activities.RunResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies++
	h := f.hosts[host.Name]
	if h == nil || h.down {
		return activities.RunResult{}, &contract.HostError{Type: contract.ErrUnreachable, Host: host.Name, Msg: "connection refused"}
	}
	if !strings.Contains(script, "scan") {
		return activities.RunResult{ExitCode: 1, Stderr: "only scans in a scan"}, nil
	}
	res := hostscript.ScanResult{Hostname: host.Name, LastBootUpTime: h.boot, Reboot: hostscript.Reboot{CBSRebootPending: h.cbs}}
	for _, kb := range h.hotfixes {
		res.Hotfixes = append(res.Hotfixes, hostscript.Hotfix{ID: kb, InstalledOn: h.boot.Add(-24 * time.Hour)})
	}
	for p, v := range h.files {
		res.Files = append(res.Files, hostscript.File{Path: p, Exists: true, Version: v})
	}
	out, err := json.Marshal(res)
	return activities.RunResult{Stdout: string(out)}, err
}

// Notify records the event.
func (f *scanFleet) Notify(_ context.Context, in contract.NotifyInput) (contract.NotifyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, in.Event)
	return contract.NotifyResult{Delivered: in.Event.Channels}, nil
}

func (f *scanFleet) sent() []contract.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]contract.Event(nil), f.events...)
}

// scanInput is a nightly scan of the standard test inventory for MS08-067.
func scanInput(perRegion int, channels ...rollout.Channel) ScanInput {
	hosts, sites := fixture.Inventory(perRegion)
	return ScanInput{ScanID: "nightly", Hosts: hosts, Sites: sites, Patches: []rollout.Patch{fixture.Rollout(testStart).Patch},
		Channels: channels, RequestedBy: "alice"}
}

func newScanEnv(t testing.TB) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.SetTestTimeout(2 * time.Minute)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: ScanWorkflowID("nightly"), TaskQueue: TaskQueue})
	Register(env)
	return env
}

// runScan runs one scan to its end and returns its result, expanded.
func runScan(t testing.TB, env *testsuite.TestWorkflowEnvironment, in ScanInput) ScanResult {
	t.Helper()
	packed, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	env.ExecuteWorkflow(ScanWorkflowName, packed)
	if !env.IsWorkflowCompleted() {
		t.Fatal("scan did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("scan failed: %v", err)
	}
	var res ScanResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decode scan result: %v", err)
	}
	full, err := res.Expanded()
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func checkOfHost(res ScanResult, host string) HostCheck {
	for _, c := range res.Checks {
		if c.Host == host {
			return c
		}
	}
	return HostCheck{}
}

func TestScanJudgesEveryHostOnItsEvidence(t *testing.T) {
	in := scanInput(3)
	tests := []struct {
		name   string
		host   string
		change func(*scanHost)
		want   rollout.HostState
		reason string
	}{
		{"patched file and hotfix with no reboot pending is compliant", "WS-EMEA-0001", nil, rollout.StateCompliant, "at or above expected versions"},
		{"hotfix without the new file is not_effective", "WS-EMEA-0002", func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" }, rollout.StateNotEffective, "below 6.1.7600.16385"},
		{"a pending reboot is pending_reboot", "WS-AMER-0001", func(h *scanHost) { h.cbs = true }, rollout.StatePendingReboot, "CBS RebootPending"},
		{"a host that refuses connections is unreachable, never compliant", "WS-AMER-0002", func(h *scanHost) { h.down = true }, rollout.StateUnreachable, "connection refused"},
		{"a host without the patch is pending", "LT-EMEA-0001", func(h *scanHost) { h.hotfixes = nil; h.files[netapi] = "6.1.7600.16000" }, rollout.StatePending, "not installed"},
	}
	env := newScanEnv(t)
	fleet := newScanFleet(t, env, in.Hosts, testStart)
	for _, tt := range tests {
		if tt.change != nil {
			fleet.set(tt.host, tt.change)
		}
	}
	res := runScan(t, env, in)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := checkOfHost(res, tt.host)
			if c.State != tt.want || !strings.Contains(strings.Join(c.Reasons, "; "), tt.reason) {
				t.Errorf("%s: %s %v, want %s with %q", tt.host, c.State, c.Reasons, tt.want, tt.reason)
			}
		})
	}
	if got, want := res.Totals[rollout.StateCompliant], len(in.Hosts)-4; got != want {
		t.Errorf("compliant checks = %d, want %d (totals %v)", got, want, res.Totals)
	}
	if res.HostsUnreachable != 1 || res.HostsCompliant != len(in.Hosts)-4 {
		t.Errorf("hosts compliant %d, unreachable %d; want %d and 1", res.HostsCompliant, res.HostsUnreachable, len(in.Hosts)-4)
	}
	if len(res.ByKB) != 1 || res.ByKB[0].KB != "KB958644" || res.ByKB[0].Hosts != len(in.Hosts) {
		t.Errorf("by KB = %+v", res.ByKB)
	}
}

func TestScanDriftAgainstThePreviousScan(t *testing.T) {
	security := rollout.Channel{Name: "security", Type: "webhook"}
	tests := []struct {
		name string
		// before scripts the fleet for a previous scan; nil runs none
		// (a one-off scan). between changes it before this scan.
		before   func(*scanFleet)
		between  func(*scanFleet)
		channels []rollout.Channel
		want     []Drift
		notified bool
	}{
		{name: "a first scan has no drift and notifies nobody", channels: []rollout.Channel{security}},
		{
			name:     "a later update that overwrote the patched file is a compliant to not_effective regression, notified",
			before:   func(*scanFleet) {},
			between:  func(f *scanFleet) { f.set("WS-EMEA-0002", func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" }) },
			channels: []rollout.Channel{security},
			want: []Drift{{Host: "WS-EMEA-0002", KB: "KB958644", Kind: DriftRegression, Previous: rollout.StateCompliant,
				Current: rollout.StateNotEffective, Regression: true}},
			notified: true,
		},
		{
			name:    "a compliant host that stops answering is a regression to unreachable",
			before:  func(*scanFleet) {},
			between: func(f *scanFleet) { f.set("PL-AMER-DC1", func(h *scanHost) { h.down = true }) },
			want: []Drift{{Host: "PL-AMER-DC1", KB: "KB958644", Kind: DriftRegression, Previous: rollout.StateCompliant,
				Current: rollout.StateUnreachable, Regression: true}},
		},
		{
			name:     "a pending reboot that never happened is reboot_overdue, not a regression, not notified",
			before:   func(f *scanFleet) { f.set("WS-AMER-0003", func(h *scanHost) { h.cbs = true }) },
			between:  func(*scanFleet) {},
			channels: []rollout.Channel{security},
			want: []Drift{{Host: "WS-AMER-0003", KB: "KB958644", Kind: DriftRebootOverdue, Previous: rollout.StatePendingReboot,
				Current: rollout.StatePendingReboot}},
		},
		{
			name:   "a host rebooted since is improved, regressions listed first",
			before: func(f *scanFleet) { f.set("WS-AMER-0003", func(h *scanHost) { h.cbs = true }) },
			between: func(f *scanFleet) {
				f.set("WS-AMER-0003", func(h *scanHost) { h.cbs = false; h.boot = testStart.Add(time.Hour) })
				f.set("WS-EMEA-0001", func(h *scanHost) { h.cbs = true })
			},
			want: []Drift{
				{Host: "WS-EMEA-0001", KB: "KB958644", Kind: DriftRegression, Previous: rollout.StateCompliant, Current: rollout.StatePendingReboot, Regression: true},
				{Host: "WS-AMER-0003", KB: "KB958644", Kind: DriftImproved, Previous: rollout.StatePendingReboot, Current: rollout.StateCompliant},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := scanInput(3, tt.channels...)
			var previous *ScanResult
			var hosts map[string]*scanHost
			if tt.before != nil {
				env := newScanEnv(t)
				fleet := newScanFleet(t, env, in.Hosts, testStart)
				tt.before(fleet)
				first := runScan(t, env, in)
				previous, hosts = &first, fleet.hosts
				if first.DriftCount != 0 || !first.PreviousAt.IsZero() {
					t.Fatalf("first scan reports drift %v since %s", first.Drift, first.PreviousAt)
				}
			}
			env := newScanEnv(t)
			env.SetStartTime(testStart.Add(24 * time.Hour))
			fleet := newScanFleet(t, env, in.Hosts, testStart)
			if hosts != nil {
				fleet.hosts = hosts
			}
			if tt.between != nil {
				tt.between(fleet)
			}
			if previous != nil {
				// As a Temporal Schedule hands it over: the result as stored.
				stored, err := previous.Compact()
				if err != nil {
					t.Fatal(err)
				}
				env.SetLastCompletionResult(stored)
			}
			res := runScan(t, env, in)

			var got []Drift
			for _, d := range res.Drift {
				d.Reason = ""
				got = append(got, d)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("drift:\n got %v\nwant %v", got, tt.want)
			}
			for _, d := range res.Drift {
				if d.Reason == "" {
					t.Errorf("drift of %s has no reason", d.Host)
				}
			}
			if previous != nil && !res.PreviousAt.Equal(previous.StartedAt) {
				t.Errorf("previous at %s, want %s", res.PreviousAt, previous.StartedAt)
			}
			regressions := 0
			for _, d := range tt.want {
				if d.Regression {
					regressions++
				}
			}
			if res.Regressions != regressions {
				t.Errorf("regressions = %d, want %d", res.Regressions, regressions)
			}
			evs := fleet.sent()
			if !tt.notified {
				if len(evs) != 0 {
					t.Errorf("notified %d events, want none", len(evs))
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("notified %d events, want 1", len(evs))
			}
			ev := evs[0]
			if ev.Kind != contract.EventScanDrift || !strings.HasPrefix(ev.Key, "scan/nightly/") ||
				!strings.Contains(ev.Text, "WS-EMEA-0002 KB958644: compliant -> not_effective") || fmt.Sprint(ev.Channels) != "[security]" {
				t.Errorf("event = %+v", ev)
			}
			if fmt.Sprint(res.Notified) != "[security]" {
				t.Errorf("notified = %v, want [security]", res.Notified)
			}
		})
	}
}

func TestScanSinceCarriesOverFromThePreviousScan(t *testing.T) {
	in := scanInput(1)
	env := newScanEnv(t)
	fleet := newScanFleet(t, env, in.Hosts, testStart)
	first := runScan(t, env, in)

	env = newScanEnv(t)
	env.SetStartTime(testStart.Add(24 * time.Hour))
	next := newScanFleet(t, env, in.Hosts, testStart)
	next.hosts = fleet.hosts
	next.set("WS-EMEA-0001", func(h *scanHost) { h.down = true })
	env.SetLastCompletionResult(first)
	second := runScan(t, env, in)

	if c := checkOfHost(second, "LAB-EMEA-01"); !c.Since.Equal(testStart) {
		t.Errorf("a host compliant at both scans is compliant since %s, want the first scan's start %s", c.Since, testStart)
	}
	if c := checkOfHost(second, "WS-EMEA-0001"); !c.Since.Equal(second.StartedAt) {
		t.Errorf("a host that changed state is in it since %s, want this scan's start %s", c.Since, second.StartedAt)
	}
}

// historyCount estimates a workflow's history from what it did, at worst:
// start and close, three events per activity or child (scheduled or
// initiated, started, completed), three per workflow task, one workflow
// task per completion plus the first, and one per search-attribute upsert.
type historyCount struct {
	mu       sync.Mutex
	commands map[string]int // workflow id -> activities and children started
}

func (h *historyCount) add(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commands[id]++
}

func (h *historyCount) events(id string, upserts int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := h.commands[id]
	return 2 + 3*n + 3*(n+1) + upserts
}

func TestScanOfThousandsOfHostsStaysUnderTheHistoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("3,000 hosts: not in -short")
	}
	in := scanInput(1500) // 3,008 hosts
	env := newScanEnv(t)
	fleet := newScanFleet(t, env, in.Hosts, testStart)
	for i := 1; i <= 30; i++ {
		fleet.set(fmt.Sprintf("WS-AMER-%04d", i), func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" })
	}
	count := &historyCount{commands: map[string]int{}}
	var children []string
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		count.add(info.WorkflowExecution.ID)
	})
	env.SetOnChildWorkflowStartedListener(func(info *workflow.Info, _ workflow.Context, _ converter.EncodedValues) {
		count.add(info.ParentWorkflowExecution.ID)
		children = append(children, info.WorkflowExecution.ID)
	})
	started := time.Now()
	packed, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	env.ExecuteWorkflow(ScanWorkflowName, packed)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("scan failed: %v", err)
	}
	var stored ScanResult
	if err := env.GetWorkflowResult(&stored); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(stored)
	res, err := stored.Expanded()
	if err != nil {
		t.Fatal(err)
	}

	parent := ScanWorkflowID("nightly")
	batches := len(children)
	parentEvents := count.events(parent, batches+2)
	worstChild := 0
	childEvents := 0
	for _, id := range children {
		n := count.events(id, 0)
		childEvents += n
		worstChild = max(worstChild, n)
	}
	t.Logf("%d hosts in %d batches (%s): parent <= %d events, largest child <= %d, all <= %.2f events per host; result %d bytes stored, packed input %d bytes",
		len(in.Hosts), batches, time.Since(started).Round(time.Millisecond), parentEvents, worstChild,
		float64(parentEvents+childEvents)/float64(len(in.Hosts)), len(raw), len(packed.Packed))
	if parentEvents >= 10240 || worstChild >= 10240 {
		t.Errorf("history over the 10,240-event warning: parent %d, largest child %d", parentEvents, worstChild)
	}
	if len(res.Checks) != len(in.Hosts) || res.Totals[rollout.StateCompliant] != len(in.Hosts)-30 || res.Totals[rollout.StateNotEffective] != 30 {
		t.Errorf("%d checks, totals %v; want %d with 30 not_effective", len(res.Checks), res.Totals, len(in.Hosts))
	}
	if len(raw) > 512<<10 {
		t.Errorf("stored result is %d bytes; want it compact (a schedule keeps it for the next run)", len(raw))
	}
	if fleet.verifies != len(in.Hosts) {
		t.Errorf("%d verifications for %d hosts, want one each", fleet.verifies, len(in.Hosts))
	}
}

func TestScanContinuesAsNewWithItsBaseline(t *testing.T) {
	in := scanInput(20) // 50 hosts
	in.Tuning = ScanTuning{BatchSize: 5, MaxPendingBatches: 2, MaxBatchesPerRun: 3}
	env := newScanEnv(t)
	fleet := newScanFleet(t, env, in.Hosts, testStart)
	first := runScan(t, env, ScanInput{ScanID: in.ScanID, Hosts: in.Hosts, Sites: in.Sites, Patches: in.Patches})
	fleet.set("WS-AMER-0020", func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" })

	next, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var res ScanResult
	runs := 0
	for ; runs < 20; runs++ {
		env := newScanEnv(t)
		env.SetStartTime(testStart.Add(24 * time.Hour))
		f := newScanFleet(t, env, in.Hosts, testStart)
		f.hosts = fleet.hosts
		if runs == 0 {
			env.SetLastCompletionResult(first)
		}
		env.ExecuteWorkflow(ScanWorkflowName, next)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			next = ScanInput{}
			if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &next); err != nil {
				t.Fatalf("decode continue-as-new input: %v", err)
			}
			if len(next.Hosts) != 0 || len(next.Packed) == 0 {
				t.Fatalf("continue-as-new input not packed: %d plain hosts", len(next.Hosts))
			}
			continue
		}
		if err != nil {
			t.Fatalf("run %d: %v", runs+1, err)
		}
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatal(err)
		}
		break
	}
	if runs < 3 {
		t.Errorf("50 hosts in batches of 5, 3 per run, finished in %d runs; want continue-as-new", runs+1)
	}
	if len(res.Checks) != len(in.Hosts) || res.Regressions != 1 || res.Drift[0].Host != "WS-AMER-0020" {
		t.Errorf("after %d runs: %d checks, drift %v; want %d checks and WS-AMER-0020's regression", runs+1, len(res.Checks), res.Drift, len(in.Hosts))
	}
}

func TestScanInputIsRefusedWhenIncomplete(t *testing.T) {
	patch := fixture.Rollout(testStart).Patch
	host := rollout.Host{Name: "h"}
	tests := []struct {
		name string
		in   ScanInput
		want string
	}{
		{"no hosts", ScanInput{ScanID: "x", Patches: []rollout.Patch{patch}}, "no hosts"},
		{"no patches", ScanInput{ScanID: "x", Hosts: []rollout.Host{host}}, "no patches"},
		{"the same KB twice", ScanInput{ScanID: "x", Hosts: []rollout.Host{host}, Patches: []rollout.Patch{patch, patch}}, "KB958644 twice"},
		{"no id", ScanInput{Hosts: []rollout.Host{host}, Patches: []rollout.Patch{patch}}, "no scan id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
