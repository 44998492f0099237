package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

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
			var previous *Result
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
	env.ExecuteWorkflow(WorkflowName, packed)
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("scan failed: %v", err)
	}
	var stored Result
	if err := env.GetWorkflowResult(&stored); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(stored)
	res, err := stored.Expanded()
	if err != nil {
		t.Fatal(err)
	}

	parent := WorkflowID("nightly")
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
	in.Tuning = Tuning{BatchSize: 5, MaxPendingBatches: 2, MaxBatchesPerRun: 3}
	env := newScanEnv(t)
	fleet := newScanFleet(t, env, in.Hosts, testStart)
	first := runScan(t, env, Input{ScanID: in.ScanID, Hosts: in.Hosts, Sites: in.Sites, Patches: in.Patches, RequestedBy: "bob"})
	fleet.set("WS-AMER-0020", func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" })

	next, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	runs := 0
	for ; runs < 20; runs++ {
		env := newScanEnv(t)
		env.SetStartTime(testStart.Add(24 * time.Hour))
		f := newScanFleet(t, env, in.Hosts, testStart)
		f.hosts = fleet.hosts
		if runs == 0 {
			env.SetLastCompletionResult(first)
		}
		env.ExecuteWorkflow(WorkflowName, next)
		err := env.GetWorkflowError()
		var can *workflow.ContinueAsNewError
		if errors.As(err, &can) {
			next = Input{}
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
