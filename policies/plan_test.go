package policies

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

func TestFillPlanSetsTheSLADeadlineAndMilestones(t *testing.T) {
	ctx := context.Background()
	src, diags := rollout.LoadSource(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	plan, err := rollout.BuildPlan(src.Rollout, src.Inventory)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	d, err := engine.FillPlan(ctx, src.Rollout, plan, now)
	if err != nil {
		t.Fatal(err)
	}
	sla, err := engine.SLA(ctx, SLAInput{Rollout: *src.Rollout, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Deadline == nil || !plan.Deadline.Equal(sla.Deadline) {
		t.Errorf("deadline = %v, want the SLA's %v", plan.Deadline, sla.Deadline)
	}
	if len(plan.Milestones) != len(sla.Milestones) || len(plan.Milestones) == 0 {
		t.Fatalf("milestones = %v, want the SLA's %v", plan.Milestones, sla.Milestones)
	}
	for i, m := range sla.Milestones {
		if got := plan.Milestones[i]; got.AtPercent != m.AtPercent || !got.At.Equal(m.At) || got.Breach != m.Breach {
			t.Errorf("milestone %d = %+v, want %+v", i, got, m)
		}
	}
	if d.Revision == "" {
		t.Error("the plan decision has no policy revision")
	}
}
