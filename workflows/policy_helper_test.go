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
// policy activities. The people of these tests are typed names, as on a
// dev server started with --insecure-dev-identity: the tests are about
// the staged path; tokens are proven in policies' and cmd/patchway's
// identity tests.
var testEngine = sync.OnceValues(func() (*policies.Engine, error) {
	ctx := context.Background()
	e, err := policies.Load(ctx, "")
	if err != nil {
		return nil, err
	}
	return e, e.SetData(ctx, "oidc/insecure_dev_identity", true)
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
