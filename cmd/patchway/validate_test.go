package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// run executes the patchway command line and returns its exit code.
func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return 0, out.String(), errOut.String()
	case errors.As(err, &ee):
		return ee.code, out.String(), errOut.String()
	}
	t.Fatalf("patchway %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

func TestValidateExitsOneOnEveryInvalidFile(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "rollout", "testdata", "invalid", "*"))
	if len(files) < 30 {
		t.Fatalf("found %d invalid files", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			code, _, stderr := run(t, "validate", path)
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(stderr, "Error: ") || !strings.Contains(stderr, "^") {
				t.Errorf("stderr lacks an error with a caret:\n%s", stderr)
			}
		})
	}
}

func TestValidateExamplesExitsZero(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.hcl"))
	csvs, _ := filepath.Glob(filepath.Join("..", "..", "examples", "*.csv"))
	code, stdout, stderr := run(t, append(append([]string{"validate"}, files...), csvs...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "rollout ms08-067 is valid") || !strings.Contains(stdout, "draft-template.hcl: draft template: 2 stages, 2 waves") {
		t.Errorf("stdout:\n%s", stdout)
	}
}

func TestValidateJSONListsEveryDiagnosticWithPosition(t *testing.T) {
	path := filepath.Join("..", "..", "rollout", "testdata", "invalid", "unknown-severity.hcl")
	code, stdout, _ := run(t, "validate", "--json", path)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	var diags []diagnosticJSON
	if err := json.Unmarshal([]byte(stdout), &diags); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if len(diags) != 1 || diags[0].Line != 7 || diags[0].Column != 17 || diags[0].Severity != "error" || diags[0].Summary != "Unknown severity" || diags[0].File != path {
		t.Errorf("diagnostics %+v", diags)
	}
}

func TestPlanPrintsStepsInOrderWithLocalWindows(t *testing.T) {
	code, stdout, stderr := run(t, "plan", filepath.Join("..", "..", "rollout", "testdata", "valid.hcl"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"1. stage lab: 1 host  ", "2. wave emea: 2 hosts", "3. wave apac: 2 hosts", "after emea", "paris", "sat,sun 22:00-06:00", "tokyo", "mon-fri 20:00-23:00"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("plan output lacks %q:\n%s", want, stdout)
		}
	}
	if code, _, _ := run(t, "plan", filepath.Join("..", "..", "rollout", "testdata", "invalid", "after-cycle.hcl")); code != 1 {
		t.Errorf("plan of an invalid rollout exits %d, want 1", code)
	}
}

// submit refuses every invalid file as validate does, before it connects,
// showing the offending line even when the file does not parse at all.
func TestSubmitRefusesEveryInvalidFileWithItsSourceLine(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "rollout", "testdata", "invalid", "*.hcl"))
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			code, _, stderr := run(t, "submit", path, "--insecure-dev-identity", "--as", "alice", "--address", "127.0.0.1:1")
			if code != 1 || !strings.Contains(stderr, "Error: ") || !strings.Contains(stderr, "^") ||
				strings.Contains(stderr, "source code not available") {
				t.Errorf("exit %d, stderr lacks the error with its line and caret:\n%s", code, stderr)
			}
		})
	}
}
