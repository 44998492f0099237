package workflows

import (
	"context"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
)

// testEngine loads the embedded default policy bundle once per test
// binary: the workflow tests run the real policies through the real
// policy activities.
var testEngine = sync.OnceValues(func() (*policies.Engine, error) {
	return policies.Load(context.Background(), "")
})

// registerPolicies registers the policy activities (run as local
// activities by the workflow) under their contract names.
func registerPolicies(t testing.TB, r activityRegistry) *policies.Engine {
	t.Helper()
	e, err := testEngine()
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	registerEngine(r, e)
	return e
}

// registerEngine registers the policy activities of engine e.
func registerEngine(r activityRegistry, e *policies.Engine) {
	p := activities.NewPolicyActivities(e)
	for name, fn := range map[string]any{
		contract.EvaluateRiskName:     p.EvaluateRisk,
		contract.AuthorizeGateName:    p.AuthorizeGate,
		contract.DecideRebootName:     p.DecideReboot,
		contract.DecideWaveName:       p.DecideWave,
		contract.DecideEscalationName: p.DecideEscalation,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
