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
		h.update("foreign", UpdateThreat, ThreatRequest{User: "carol", Reason: "KEV lists it", KEV: []string{"CVE-1999-0001"}})
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
	if err, _ := h.result("foreign"); err == nil || !strings.Contains(err.Error(), "CVE-1999-0001 is not a CVE of the rollout's patch") {
		t.Errorf("a KEV listing of another CVE: %v, want refused", err)
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

// TestThreatUpdateShrinksTheSoaksAhead files a critical rollout (24 h x
// 0.75 for its public exploit = 18 h) with 6 h soaks in the lab and the
// production-like stage, and reports it exploited an hour in, while the
// lab soaks: 12 h, 11 h left, and the plan policy shrinks the soaks still
// ahead to fit half of that (5.5 h), each at least its minimum. The lab's
// soak under way ends early, and the production-like stage soaks less
// than filed.
func TestThreatUpdateShrinksTheSoaksAhead(t *testing.T) {
	in := standardInput(3)
	in.Rollout.Patch.Severity = "critical"
	for i := range in.Rollout.Stages {
		in.Rollout.Stages[i].Soak = 6 * time.Hour
	}
	h := newHarness(t, in)
	h.at(time.Hour, func() {
		if p := h.progress(); p.Stage != "lab" {
			t.Errorf("an hour in the rollout is at %q, want the lab soaking", p.Stage)
		}
		h.update("threat", UpdateThreat, ThreatRequest{User: "carol", Reason: "MSRC: Exploitation Detected", Exploited: true})
	})
	waiting := map[string]time.Duration{}
	h.ticks = append(h.ticks, func(p Progress) {
		if g := p.WaitingGate; g != "" {
			if _, seen := waiting[g]; !seen {
				waiting[g] = h.env.Now().Sub(testStart)
			}
			h.update("approve-"+g, UpdateApprove, GateRequest{Gate: g, User: "bob", Reason: "ok"})
		}
	})
	if _, err := h.run(); err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if err, _ := h.result("threat"); err != nil {
		t.Fatalf("threat update refused: %v", err)
	}
	var again *Record
	p := h.progress()
	for i, rec := range p.Decisions {
		if rec.Kind == "risk" && strings.Contains(rec.Reason, "threat update") {
			again = &p.Decisions[i]
		}
	}
	if again == nil || !strings.Contains(again.Reason, "soaks shortened: lab, prodlike") || !strings.Contains(again.Reason, "shrink to fit 50% of the") {
		t.Fatalf("threat decision %+v, want both soaks shortened with the plan policy's reason", again)
	}
	lab, prodlike := waiting["lab"], waiting["prodlike"]
	if lab == 0 || prodlike == 0 {
		t.Fatalf("gates waited at %v, want the lab and prodlike gates", waiting)
	}
	t.Logf("gates waited from lab %s, prodlike %s; %s", lab, prodlike, again.Reason)
	// Filed, the lab gate opens after its 6 h soak; shrunk, before 4 h.
	if lab >= 4*time.Hour {
		t.Errorf("the lab gate waited from %s, want before 4h: the soak under way was not shortened", lab)
	}
	// prodlike patches and soaks between the two gates: at least its 2 h
	// minimum, less than the 6 h filed.
	if d := prodlike - lab; d < 2*time.Hour || d >= 6*time.Hour {
		t.Errorf("prodlike took %s between the gates, want its shrunk soak (2h..6h)", d)
	}
}
