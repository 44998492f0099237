package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runPolicyCLI runs the CLI in process and returns stdout and the exit code.
func runPolicyCLI(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	var ee exitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.code
	default:
		return out.String() + err.Error(), 2
	}
}

func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate.json")
	if err := os.WriteFile(gate, []byte(`{"rollout_id":"r1","filed_by":"alice","gate":"lab","action":"approve","user":"alice","now":"2008-10-23T18:00:00Z"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     []string
	}{
		{"eval prints a refusal with its code and exits 1", "", []string{"policy", "eval", "gates", "--input", gate}, 1, []string{`"code": "four_eyes"`, `"revision": "`}},
		{"eval takes stdin and --now", `{"filed_by":"alice","gate":"lab","action":"approve","user":"bob"}`, []string{"policy", "eval", "gates", "--input", "-", "--now", "2008-10-23T18:00:00Z"}, 0, []string{`"allow": true`, `"group": "security-team"`}},
		{"eval refuses an input without now", `{"user":"bob"}`, []string{"policy", "eval", "gates", "--input", "-"}, 2, []string{`needs "now"`}},
		{"eval refuses an unknown decision", `{}`, []string{"policy", "eval", "nope", "--input", "-", "--now", "2008-10-23T18:00:00Z"}, 2, []string{"unknown decision"}},
		{"test runs the embedded tests with coverage", "", []string{"policy", "test", "--min-coverage", "90"}, 0, []string{"0 failed; line coverage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := runPolicyCLI(t, tt.stdin, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", code, tt.wantCode, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestPolicyFmtCheck(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.rego")
	if err := os.WriteFile(p, []byte("package x\nallow if {  true }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, code := runPolicyCLI(t, "", "policy", "fmt", "--check", dir); code != 1 {
		t.Errorf("fmt --check on an unformatted file: exit %d, want 1", code)
	}
	if _, code := runPolicyCLI(t, "", "policy", "fmt", dir); code != 0 {
		t.Errorf("fmt: exit %d", code)
	}
	if _, code := runPolicyCLI(t, "", "policy", "fmt", "--check", dir); code != 0 {
		t.Errorf("fmt --check after fmt: exit %d, want 0", code)
	}
}
