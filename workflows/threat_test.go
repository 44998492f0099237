package workflows

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestThreatUpdateTightensTheRunningClock files an important rollout with
// a public exploit (720 h x 0.75 = 540 h), reports it exploited in the
// wild an hour in, and holds the lab gate
// for 200 hours: the sla policy takes the exploited factor (0.5):
// 360 h, the deadline moves 180 h earlier, and the 50 % escalation fires
// at 180 h of the new clock, not at 270 h of the old. The same fact again, and a person outside the
// gates policy's group, are refused; the facts reach the report's rollout.
func TestThreatUpdateTightensTheRunningClock(t *testing.T) {
	h := newHarness(t, standardInput(3))
	h.at(time.Hour, func() {
		h.update("threat", UpdateThreat, ThreatRequest{User: "carol", Reason: "MSRC: Exploitation Detected", Exploited: true})
	})
	h.at(2*time.Hour, func() {
		h.update("again", UpdateThreat, ThreatRequest{User: "carol", Reason: "still exploited", Exploited: true})
	})
	h.at(3*time.Hour, func() {
		h.update("outsider", UpdateThreat, ThreatRequest{User: "mallory", Reason: "saw it on the news", WormInTheWild: true})
	})
	h.ticks = append(h.ticks, func(p Progress) {
		if p.WaitingGate != "" && h.env.Now().Sub(testStart) > 200*time.Hour {
			h.update(fmt.Sprintf("approve-%s", p.WaitingGate), UpdateApprove, GateRequest{Gate: p.WaitingGate, User: "bob", Reason: "ok"})
		}
	})
	if _, err := h.run(); err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, _ := h.result("threat"); err != nil {
		t.Fatalf("threat update refused: %v", err)
	}
	if err, _ := h.result("again"); err == nil || !strings.Contains(err.Error(), "no new risk fact") {
		t.Errorf("the same fact again: %v, want refused as no new fact", err)
	}
	if err, _ := h.result("outsider"); err == nil || !strings.Contains(err.Error(), "not_in_group") {
		t.Errorf("mallory's update: %v, want refused by the gates policy", err)
	}
	p := h.progress()
	var first, again *Record
	var fifty []Record
	for i, rec := range p.Decisions {
		switch {
		case rec.Kind == "risk" && first == nil:
			first = &p.Decisions[i]
		case rec.Kind == "risk":
			again = &p.Decisions[i]
		case rec.Kind == "escalation" && rec.Subject == "SLA 50%":
			fifty = append(fifty, rec)
		}
	}
	if first == nil || again == nil {
		t.Fatalf("want the filing's risk decision and the threat update's; decisions: %+v", p.Decisions)
	}
	start := p.Deadline.Add(-360 * time.Hour)
	if !strings.Contains(again.Reason, "threat update (exploited)") || !strings.Contains(again.Reason, "exploited tightens the SLA by a factor of 0.5") ||
		again.User != "carol" || again.Revision == "" {
		t.Errorf("threat decision %+v", *again)
	}
	if want := start.Add(540 * time.Hour).UTC().Format(time.RFC3339); !strings.Contains(first.Reason, "deadline "+want) {
		t.Errorf("filing decision %q, want the 540 h deadline %s", first.Reason, want)
	}
	if len(fifty) != 1 || !fifty[0].At.Equal(start.Add(180*time.Hour)) {
		t.Errorf("50%% escalations %+v, want one at %s (180 h of the new clock)", fifty, start.Add(180*time.Hour))
	}
	if h.in.Rollout.Risk.Exploited {
		t.Fatal("the test's input changed")
	}
	if p.Deadline.Sub(start) != 360*time.Hour {
		t.Errorf("deadline %s is %s after the start, want 360h", p.Deadline, p.Deadline.Sub(start))
	}
}
