package policies

import (
	"context"
	"testing"
)

// minCoverage is the Rego line coverage below which the suite fails.
const minCoverage = 90.0

// TestRegoPolicies runs every _test.rego through OPA's tester with the
// production capabilities: a failing Rego test, coverage under 90 % or a
// file `opa fmt` would change fails go test.
func TestRegoPolicies(t *testing.T) {
	report, err := RunTests(context.Background(), "")
	if err != nil {
		t.Fatalf("run Rego tests: %v", err)
	}
	if len(report.Results) == 0 {
		t.Fatal("no Rego tests found in the embedded bundle")
	}
	for _, r := range report.Results {
		if !r.Pass {
			t.Errorf("%s (%s:%d) failed: %s\n%s", r.Name, r.File, r.Line, r.Error, r.Output)
		}
	}
	for _, f := range report.Files {
		t.Logf("coverage %-34s %5.1f%% missed lines %v", f.File, f.Percent, f.Missed)
	}
	t.Logf("Rego tests: %d passed of %d; line coverage %.1f%%", len(report.Results)-report.Failed(), len(report.Results), report.Coverage)
	if report.Coverage < minCoverage {
		t.Errorf("Rego line coverage %.1f%% is under %.0f%%", report.Coverage, minCoverage)
	}
	for _, f := range report.Unformatted {
		t.Errorf("%s is not opa fmt clean", f)
	}
}
