package workflows

import (
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

func TestSkippingFailedHostsLetsAHaltedWaveGoOn(t *testing.T) {
	h := newHarness(t, standardInput(30))
	h.fleet.behave = haltingFleet(3)
	h.approveGates("bob")
	var halted HostStatus
	h.when(func(p Progress) bool { return p.Status == StatusHalted }, func(Progress) {
		halted = h.host("WS-EMEA-0001")
		h.update("skip", UpdateSkipHost, SkipHostRequest{Host: "WS-EMEA-0001", User: "carol", Reason: "disk replaced tomorrow"})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, done := h.result("skip"); !done || err != nil {
		t.Fatalf("skip_host: done %t, err %v", done, err)
	}
	if halted.State != rollout.StateFailed || halted.Stage != "emea" {
		t.Errorf("host query before skip = %+v, want failed in emea", halted)
	}
	for _, hr := range rep.Hosts {
		if hr.Name == "WS-EMEA-0001" && hr.State != rollout.StateFailed {
			t.Errorf("a skipped host keeps its state in the report, got %s", hr.State)
		}
	}
	if got, want := rep.Totals[rollout.StateCompliant], len(h.in.Hosts)-3; got != want {
		t.Errorf("compliant = %d, want %d: the wave did not go on once back within its threshold", got, want)
	}
}

func TestExceptedHostIsNotPatchedAndReportedExcepted(t *testing.T) {
	h := newHarness(t, standardInput(5))
	h.approveGates("bob")
	h.at(time.Minute, func() {
		h.update("except", UpdateExcept, ExceptRequest{Host: "WS-AMER-0003", User: "carol", Reason: "lab instrument, vendor forbids patching",
			Expires: testStart.Add(90 * 24 * time.Hour)})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, done := h.result("except"); !done || err != nil {
		t.Fatalf("except: done %t, err %v", done, err)
	}
	if n := h.fleet.patchCount("WS-AMER-0003"); n != 0 {
		t.Errorf("excepted host patched %d times", n)
	}
	if rep.Totals[rollout.StateExcepted] != 1 {
		t.Errorf("report totals %v, want one excepted host", rep.Totals)
	}
}

func TestPauseStopsStartingHostsUntilResumed(t *testing.T) {
	h := newHarness(t, standardInput(5))
	h.approveGates("bob")
	var paused Progress
	var patchedAtPause, patchedAtResume int
	h.at(time.Minute, func() {
		patchedAtPause = len(h.fleet.patchOrder())
		h.update("pause", UpdatePause, ControlRequest{User: "carol", Reason: "change freeze"})
	})
	h.at(30*time.Hour, func() {
		paused = h.progress()
		patchedAtResume = len(h.fleet.patchOrder())
		h.update("resume", UpdateResume, ControlRequest{User: "carol", Reason: "freeze over"})
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if !paused.Paused || paused.Status != StatusPaused {
		t.Errorf("at 30h: paused %t status %s, want paused", paused.Paused, paused.Status)
	}
	if patchedAtResume != patchedAtPause {
		t.Errorf("%d hosts patched while paused", patchedAtResume-patchedAtPause)
	}
	if got, want := rep.Totals[rollout.StateCompliant], len(h.in.Hosts); got != want {
		t.Errorf("compliant = %d, want %d after resume", got, want)
	}
}

func TestValidatorsRejectBadRequestsBeforeTheyReachHistory(t *testing.T) {
	tests := []struct {
		name, update string
		arg          any
		want         string
	}{
		{"approve while no gate waits", UpdateApprove, GateRequest{User: "bob"}, "not waiting at a gate"},
		{"reject without a reason", UpdateReject, GateRequest{User: "bob"}, "needs a reason"},
		{"pause without a token or a user", UpdatePause, ControlRequest{Reason: "x"}, "an identity token is required"},
		{"pause with a token too large to be one", UpdatePause, ControlRequest{Reason: "x", Token: strings.Repeat("a", 20000)}, "over the 16384 an identity token may be"},
		{"resume when neither paused nor halted", UpdateResume, ControlRequest{User: "bob", Reason: "x"}, "neither paused nor halted"},
		{"except an unknown host", UpdateExcept, ExceptRequest{Host: "NOPE", User: "bob", Reason: "x", Expires: testStart.Add(time.Hour)}, "not in rollout"},
		{"except with an expiry in the past", UpdateExcept, ExceptRequest{Host: "WS-EMEA-0001", User: "bob", Reason: "x", Expires: testStart}, "not in the future"},
		{"skip a host while no wave is halted", UpdateSkipHost, SkipHostRequest{Host: "WS-EMEA-0001", User: "bob", Reason: "x"}, "none is halted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, standardInput(2))
			h.at(time.Second, func() { h.update("bad", tc.update, tc.arg) })
			h.at(time.Minute, func() { h.update("abort", UpdateAbort, AbortRequest{User: "bob", Reason: "test over"}) })
			if _, err := h.run(); err != nil {
				t.Fatalf("rollout failed: %v", err)
			}
			err, done := h.result("bad")
			if !done || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got done %t err %v, want rejection containing %q", done, err, tc.want)
			}
		})
	}
}

// The wave policy counts what data.waves.failure_states lists: a host
// that never came back (unreachable) and one whose state could not be
// proven (unknown) count with the failed one against max_failures = 2.
func TestUnreachableAndUnknownHostsCountTowardTheWavesFailures(t *testing.T) {
	h := newHarness(t, standardInput(30))
	h.fleet.behave = func(host rollout.Host, _ time.Time) (rollout.HostState, error) {
		switch host.Name {
		case "WS-EMEA-0001":
			return rollout.StateFailed, nil
		case "WS-EMEA-0002":
			return "", unreachable(host)
		case "WS-EMEA-0003":
			return rollout.StateUnknown, nil
		}
		return rollout.StateCompliant, nil
	}
	h.approveGates("bob")
	var halted Progress
	h.when(func(p Progress) bool { return p.Status == StatusHalted }, func(p Progress) {
		halted = p
		h.update("abort", UpdateAbort, AbortRequest{User: "carol", Reason: "three bad hosts"})
	})
	if _, err := h.run(); err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if halted.Stage != "emea" {
		t.Fatalf("emea never halted with 1 failed, 1 unreachable and 1 unknown host over max_failures 2")
	}
	for _, s := range halted.Steps {
		if s.Name == "emea" && (s.Failures != 3 || s.Threshold != 2) {
			t.Errorf("emea shows failures %d/%d, want 3/2", s.Failures, s.Threshold)
		}
	}
}
