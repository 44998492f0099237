package workflows

import (
	"testing"

	"github.com/patchway/patchway/rollout"
)

// TestPlanStepsOfARolloutWithOnlyWaves: a policy may require no stage,
// and a rollout of waves alone is planned (it once indexed a stage that
// did not exist and panicked every workflow task).
func TestPlanStepsOfARolloutWithOnlyWaves(t *testing.T) {
	ro := rollout.Rollout{Waves: []rollout.Wave{
		{Name: "first", Hosts: "role:workstation"},
		{Name: "second", Hosts: "role:file", After: []string{"first"}},
	}}
	hosts := []rollout.Host{{Name: "WS-1", Role: "workstation"}, {Name: "FS-1", Role: "file"}, {Name: "DC-1", Role: "domain_controller"}}
	steps, unplanned, err := planSteps(ro, hosts)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || unplanned != 1 || steps[0].Name != "first" || len(steps[0].Members) != 1 || steps[1].Members[0] != 1 {
		t.Errorf("planned %d steps, %d unplanned: %+v; want first = [WS-1], second = [FS-1], DC-1 unplanned", len(steps), unplanned, steps)
	}
}
