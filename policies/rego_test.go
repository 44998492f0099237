package policies

import (
	"context"
	"fmt"
	"strings"
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

func TestRunTestsWithUserDir(t *testing.T) {
	ctx := context.Background()
	userTest := "package patchway.site_test\n\nimport data.patchway.sla\n\ntest_critical_hours if {\n\td := sla.decision with input as {\"rollout\": {\"patch\": {\"severity\": \"critical\", \"published\": \"2008-10-23T17:00:00Z\"}}, \"now\": \"2008-10-23T18:00:00Z\"}\n\td.deadline == %q\n}\n"
	tests := []struct {
		name       string
		files      map[string]string
		wantFailed int
		wantErr    string
	}{
		{
			name:  "user data and user tests pass while default tests keep the default data",
			files: map[string]string{"overrides.json": `{"sla": {"hours": {"critical": 12}}}`, "site_test.rego": fmt.Sprintf(userTest, "2008-10-24T06:00:00Z")},
		},
		{
			name:       "a failing user test is reported",
			files:      map[string]string{"site_test.rego": fmt.Sprintf(userTest, "2008-10-24T06:00:00Z")},
			wantFailed: 1,
		},
		{
			name:    "a bundle missing a decision is refused with file:line",
			files:   map[string]string{"waves.rego": "package patchway.waves\n\nhalt := false\n"},
			wantErr: "waves.rego:1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report, err := RunTests(ctx, writeDir(t, tt.files))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if report.Failed() != tt.wantFailed {
				for _, r := range report.Results {
					if !r.Pass {
						t.Logf("failed: %s %s", r.Name, r.Error)
					}
				}
				t.Errorf("failed = %d, want %d", report.Failed(), tt.wantFailed)
			}
		})
	}
}
