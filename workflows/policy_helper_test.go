package workflows

import (
	"context"
	"sync"
	"testing"

	"github.com/patchway/patchway/activities"
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
func registerPolicies(t testing.TB, r activities.Registry) *policies.Engine {
	t.Helper()
	e, err := testEngine()
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	registerEngine(r, e)
	return e
}

// registerEngine registers the policy activities of engine e, as the
// worker does.
func registerEngine(r activities.Registry, e *policies.Engine) {
	activities.Register(r, activities.Deps{Policy: activities.NewPolicyActivities(e)})
}
