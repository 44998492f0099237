package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/patchway/patchway/"

// forbidden lists, per package, the import paths (prefixes) that must not
// appear among its dependencies, direct or indirect: the "must not import"
// column of ARCHITECTURE.md.
var forbidden = map[string][]string{
	"rollout":    {module},
	"hostscript": {module},
	"contract":   {"github.com/open-policy-agent/", "github.com/masterzen/", "go.temporal.io/sdk/worker", module + "policies", module + "activities", module + "workflows"},
	"policies":   {module + "workflows", module + "activities", module + "scan", module + "report"},
	"workflows":  {"github.com/open-policy-agent/", "github.com/masterzen/", module + "policies", module + "activities", module + "scan"},
	"scan":       {"github.com/open-policy-agent/", "github.com/masterzen/", module + "policies", module + "activities"},
	"report":     {"github.com/open-policy-agent/", "github.com/masterzen/", module + "policies", module + "activities", module + "workflows"},
	"activities": {module + "workflows", module + "scan"},
	"fleetsim":   {module + "activities", module + "policies", module + "workflows"},
	"devserver":  {module},
	"threat":     {module},
	// decisionlog reads history and rebuilds inputs; it never acts on a
	// host or runs a workflow.
	"decisionlog": {"github.com/masterzen/", module + "activities", module + "scan", module + "report"},
	// oidc is a client of an identity provider: it verifies and decides
	// nothing, so it needs no policy; devidp is a provider, of no part
	// of Patchway.
	"oidc":             {module, "github.com/open-policy-agent/"},
	"devidp":           {module},
	"internal/devcert": {module},
	// console reads through the workflows' client side and acts through
	// their updates: the policy decides inside the workflow, never here.
	"console": {"github.com/open-policy-agent/", "github.com/masterzen/", module + "policies", module + "activities", module + "scan", module + "decisionlog"},
}

// TestPackagesImportOnlyWhatTheirPlaceAllows runs go list -deps on each
// package and fails on every forbidden dependency it finds.
func TestPackagesImportOnlyWhatTheirPlaceAllows(t *testing.T) {
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", module+pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == module+pkg {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(dep, b) && !strings.HasPrefix(dep, module+pkg+"/") {
					t.Errorf("%s depends on %s, which ARCHITECTURE.md forbids it", pkg, dep)
				}
			}
		}
	}
}
