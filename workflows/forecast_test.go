package workflows

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
)

// engineWith loads the default policies with data over them, people
// typing their names as in the other workflow tests.
func engineWith(t *testing.T, data string) *policies.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	e, err := policies.Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetData(ctx, "oidc/insecure_dev_identity", true); err != nil {
		t.Fatal(err)
	}
	return e
}

// The forecast escalates before the breach it predicts (compressed
// time): the forecast policy counts 300 h for each gate a person still
// has to decide, so right after the lab's first batch it finds a rollout
// of a 540-hour SLA finishing late; the gates are then decided only from
// 12 hours before the deadline, which passes. The forecast's notice comes first, by
// weeks; the final report says how far the first forecast was off.
func TestForecastEscalatesBeforeTheBreachItPredicts(t *testing.T) {
	in := standardInput(5)
	h := newHarnessWithEngine(t, in, engineWith(t, `{"forecast": {"gate_hours": 300}, "oidc": {"insecure_dev_identity": true}}`))
	h.env.SetTestTimeout(2 * time.Minute)
	var seen *contract.Forecast
	h.ticks = append(h.ticks, func(p Progress) {
		if p.Forecast != nil && seen == nil {
			seen = p.Forecast
		}
		if p.WaitingGate != "" && !p.Deadline.IsZero() && h.env.Now().After(p.Deadline.Add(-12*time.Hour)) {
			h.update(fmt.Sprintf("approve-%s", p.WaitingGate), UpdateApprove, GateRequest{Gate: p.WaitingGate, User: "bob", Reason: "late"})
		}
	})
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	forecasts, fAt := h.fleet.eventsOf(contract.EventSLAForecastBreach)
	breaches, bAt := h.fleet.eventsOf(contract.EventSLABreached)
	if len(forecasts) != 1 || len(breaches) == 0 {
		t.Fatalf("%d forecast notices and %d breach notices, want 1 and at least 1", len(forecasts), len(breaches))
	}
	if fAt[0] >= bAt[0] {
		t.Errorf("the forecast notice came at %s, not before the breach at %s", fAt[0], bAt[0])
	}
	t.Logf("forecast notice at +%s (%s), breach at +%s", fAt[0], forecasts[0].Title, bAt[0])
	if !strings.Contains(forecasts[0].Title, "SLA breach forecast") || len(forecasts[0].Contacts) == 0 {
		t.Errorf("forecast notice: %+v", forecasts[0])
	}
	if seen == nil || !seen.Breach || seen.Completion.Before(seen.At) {
		t.Errorf("progress showed no breach forecast: %+v", seen)
	}
	f := rep.Forecast
	if f == nil || f.FirstBreach == nil || f.Ended.IsZero() || f.OffBy == 0 {
		t.Fatalf("the report does not sum up the forecasts: %+v", f)
	}
	t.Logf("first forecast completion %s, ended %s: off by %s", f.First.Completion, f.Ended, f.OffBy)
}
