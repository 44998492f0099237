package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/patchway/patchway/policies"
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
	// Typed names, as on a dev server with --insecure-dev-identity.
	typed := filepath.Join(dir, "typed")
	if err := os.MkdirAll(typed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(typed, "identity.json"), []byte(insecureIdentity), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		want     []string
	}{
		{"eval prints a refusal with its code and exits 1", "", []string{"--policy-dir", typed, "policy", "eval", "gates", "--input", gate}, 1, []string{`"code": "four_eyes"`, `"revision": "`}},
		{"eval takes stdin and --now", `{"filed_by":"alice","gate":"lab","action":"approve","user":"bob"}`, []string{"--policy-dir", typed, "policy", "eval", "gates", "--input", "-", "--now", "2008-10-23T18:00:00Z"}, 0, []string{`"allow": true`, `"group": "security-team"`}},
		{"a typed name decides nothing by default", `{"filed_by":"alice","gate":"lab","action":"approve","user":"bob"}`, []string{"policy", "eval", "gates", "--input", "-", "--now", "2008-10-23T18:00:00Z"}, 1, []string{`"code": "token_missing"`, `"person": null`}},
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

// TestWatchPoliciesAppliesAChangedDirectory: the worker's watch reads
// the policy directory on its tick and on SIGHUP, swaps in a changed
// bundle, and keeps the last good one when the directory breaks.
func TestWatchPoliciesAppliesAChangedDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "overrides.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"sla": {"hours": {"critical": 8}}}`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engine, err := policies.Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	hup := make(chan os.Signal, 1)
	done := make(chan struct{})
	go func() { watchPolicies(ctx, engine, 0, hup, logger); close(done) }()
	waitRevision := func(what string, changed func(string) bool) string {
		t.Helper()
		for range 200 {
			if rev := engine.Revision(); changed(rev) {
				return rev
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: the revision stayed %s", what, engine.Revision())
		return ""
	}
	first := engine.Revision()
	write(`{"sla": {"hours": {"critical": 4}}}`)
	hup <- syscall.SIGHUP
	second := waitRevision("after SIGHUP", func(r string) bool { return r != first })
	write("{\n  \"sla\": \n")
	hup <- syscall.SIGHUP
	for range 200 {
		mu.Lock()
		logged := strings.Contains(logs.String(), "policy directory not applied")
		mu.Unlock()
		if logged {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if !strings.Contains(out, "policy bundle reloaded") || !strings.Contains(out, "policy directory not applied") || !strings.Contains(out, "overrides.json:") {
		t.Errorf("log:\n%s\nwant the reload and the refused directory with its file:line", out)
	}
	if engine.Revision() != second {
		t.Errorf("a broken directory replaced the bundle: %s, want %s kept", engine.Revision(), second)
	}
	cancel()
	<-done
}

// lockedWriter serialises writes to w (the watch logs from its goroutine).
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
