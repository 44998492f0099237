package policies

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC) // a Monday

func mustLoad(t testing.TB, dir string) *Engine {
	t.Helper()
	e, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatalf("Load(%q): %v", dir, err)
	}
	return e
}

// writeDir writes files into a fresh directory.
func writeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadRefusesBadUserPolicies(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{
			name:  "syntax error names file and line",
			files: map[string]string{"sla.rego": "package patchway.sla\n\ndecision := {\n  \"allow\": true,\n"},
			want:  []string{"sla.rego:", "rego_parse_error"},
		},
		{
			name:  "type error names file and line",
			files: map[string]string{"gates.rego": "package patchway.gates\n\ndecision := {\"allow\": x} if {\n\tx := 1 + \"a\"\n}\n"},
			want:  []string{"gates.rego:4", "rego_type_error"},
		},
		{
			name:  "missing required rule names the package file",
			files: map[string]string{"reboot.rego": "package patchway.reboot\n\nallow := true\n"},
			want:  []string{"reboot.rego:1", `package patchway.reboot does not define the required rule "decision"`},
		},
		{
			name:  "non-deterministic builtin is refused",
			files: map[string]string{"clock.rego": "package patchway.clock\n\nnow := time.now_ns()\n"},
			want:  []string{"clock.rego:3", "undefined function time.now_ns"},
		},
		{
			name:  "network builtin is refused",
			files: map[string]string{"net.rego": "package patchway.net\n\nr := http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1\"})\n"},
			want:  []string{"net.rego:3", "undefined function http.send"},
		},
		{
			name:  "invalid data names file and line",
			files: map[string]string{"data.json": "{\n  \"sla\": {\n    \"hours\": [1,,]\n}\n"},
			want:  []string{"data.json:3", "not a JSON object"},
		},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeDir(t, tt.files)
			e, err := Load(ctx, dir)
			if err == nil {
				t.Fatalf("Load accepted the bundle (revision %s)", e.Revision())
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			// The defaults stay usable.
			def := typedNames(t, mustLoad(t, ""))
			if d, err := def.Gate(ctx, GateInput{FiledBy: "alice", User: "bob", Action: "approve", Gate: "lab", Now: t0}); err != nil || !d.Allow {
				t.Errorf("defaults after a refused bundle: %+v, %v", d, err)
			}
		})
	}
}

func TestUserDirOverridesAndExtends(t *testing.T) {
	ctx := context.Background()
	def := mustLoad(t, "")
	in := SLAInput{Rollout: rollout.Rollout{Patch: rollout.Patch{Severity: rollout.SeverityCritical, Published: t0}}, Now: t0}

	dir := writeDir(t, map[string]string{
		"overrides.json": `{"sla": {"hours": {"critical": 8}}}`,
		"extra.rego":     "package patchway.extra\n\nanswer := 42\n",
	})
	user := mustLoad(t, dir)
	if user.Revision() == def.Revision() {
		t.Errorf("revision did not change with content: %s", user.Revision())
	}
	d, err := user.SLA(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if d.SLA != 8*time.Hour || !d.Deadline.Equal(t0.Add(8*time.Hour)) {
		t.Errorf("overridden critical SLA = %v deadline %v, want 8h", d.SLA, d.Deadline)
	}
	if d.Revision != user.Revision() {
		t.Errorf("decision revision %q, engine %q", d.Revision, user.Revision())
	}
	// Other defaults are kept (important is still 30 days).
	in.Rollout.Patch.Severity = rollout.SeverityImportant
	if d, _ := user.SLA(ctx, in); d.SLA != 720*time.Hour {
		t.Errorf("important SLA = %v, want 720h", d.SLA)
	}
	raw, err := user.Eval(ctx, "extra_is_not_a_decision", map[string]any{"now": t0})
	if err == nil {
		t.Errorf("unknown decision evaluated: %s", raw)
	}

	// A same-named file replaces the default one.
	replaced := mustLoad(t, writeDir(t, map[string]string{"transport.rego": "package patchway.transport\n\ndecision := {\"allow\": true, \"transport\": \"https\", \"auth\": \"basic\", \"insecure\": false, \"violations\": []}\n"}))
	td, err := replaced.Transport(ctx, TransportInput{Host: rollout.Host{Name: "h", Tier: rollout.TierProduction, TLS: rollout.HostTLS{Transport: "http"}}, Now: t0})
	if err != nil || !td.Allow {
		t.Errorf("replaced transport policy not used: %+v %v", td, err)
	}
}

func TestRevisionIsAContentHash(t *testing.T) {
	a, b := mustLoad(t, ""), mustLoad(t, "")
	if a.Revision() != b.Revision() || len(a.Revision()) != 12 {
		t.Fatalf("revisions %q %q: want equal 12-hex hashes", a.Revision(), b.Revision())
	}
	d1 := writeDir(t, map[string]string{"x.json": `{"x": 1}`})
	d2 := writeDir(t, map[string]string{"x.json": `{"x": 2}`})
	if r1, r2 := mustLoad(t, d1).Revision(), mustLoad(t, d2).Revision(); r1 == r2 || r1 == a.Revision() {
		t.Errorf("revisions do not follow content: default %s, x=1 %s, x=2 %s", a.Revision(), r1, r2)
	}
}

// conflicting makes a decision whose evaluation errors: two complete
// definitions that produce different values.
const conflicting = `package patchway.%s

decision := {"allow": true, "state": "compliant"} if input.now

decision := {"allow": false, "state": "other"} if input.now
`

func TestEvaluationErrorsFailClosed(t *testing.T) {
	ctx := context.Background()
	files := map[string]string{}
	for _, n := range Decisions {
		files[n+".rego"] = strings.ReplaceAll(conflicting, "%s", n)
	}
	e := mustLoad(t, writeDir(t, files))

	c, err := e.Compliance(ctx, ComplianceInput{Reachable: true, Now: t0})
	if err == nil || c.Allow || c.State != rollout.StateUnknown || c.Error == "" || c.Revision != e.Revision() {
		t.Errorf("compliance did not fail closed: %+v, %v", c, err)
	}
	if c.Violations[len(c.Violations)-1].Code != "policy_error" {
		t.Errorf("violations %+v lack policy_error", c.Violations)
	}
	checks := map[string]func() (rollout.Decision, error){
		"reboot": func() (rollout.Decision, error) {
			d, err := e.Reboot(ctx, RebootInput{Now: t0})
			return d.Decision, err
		},
		"sla":  func() (rollout.Decision, error) { d, err := e.SLA(ctx, SLAInput{Now: t0}); return d.Decision, err },
		"plan": func() (rollout.Decision, error) { d, err := e.Plan(ctx, PlanInput{Now: t0}); return d.Decision, err },
		"gate": func() (rollout.Decision, error) { d, err := e.Gate(ctx, GateInput{Now: t0}); return d.Decision, err },
		"wave": func() (rollout.Decision, error) {
			d, err := e.Wave(ctx, WaveInput{Now: t0})
			if !d.Halt {
				t.Error("failed wave decision does not halt")
			}
			return d.Decision, err
		},
		"escalation": func() (rollout.Decision, error) {
			d, err := e.Escalation(ctx, EscalationInput{Now: t0})
			return d.Decision, err
		},
		"transport": func() (rollout.Decision, error) {
			d, err := e.Transport(ctx, TransportInput{Now: t0})
			return d.Decision, err
		},
	}
	for name, check := range checks {
		d, err := check()
		if err == nil || d.Allow || d.Error == "" || !strings.Contains(err.Error(), "evaluate") {
			t.Errorf("%s did not fail closed: %+v, %v", name, d, err)
		}
	}
}

func TestUndefinedDecisionFailsClosed(t *testing.T) {
	e := mustLoad(t, writeDir(t, map[string]string{
		"reboot.rego": "package patchway.reboot\n\ndecision := {\"allow\": true} if input.never\n",
	}))
	d, err := e.Reboot(context.Background(), RebootInput{Host: rollout.Host{Name: "h"}, Now: t0})
	if err == nil || d.Allow || !strings.Contains(d.Error, "undefined") {
		t.Errorf("undefined decision did not fail closed: %+v, %v", d, err)
	}
}

func TestEvalNeedsNow(t *testing.T) {
	e := typedNames(t, mustLoad(t, ""))
	if _, err := e.Eval(context.Background(), DecisionGates, map[string]any{"user": "bob"}); err == nil || !strings.Contains(err.Error(), "now") {
		t.Errorf("Eval without now: %v", err)
	}
	raw, err := e.Eval(context.Background(), DecisionGates, map[string]any{"user": "bob", "filed_by": "alice", "action": "approve", "gate": "lab", "now": t0})
	if err != nil {
		t.Fatal(err)
	}
	var d GateDecision
	if err := json.Unmarshal(raw, &d); err != nil || !d.Allow || d.Group != "security-team" {
		t.Errorf("Eval gates = %s (%v)", raw, err)
	}
}

func TestTypedDecisions(t *testing.T) {
	ctx := context.Background()
	e := typedNames(t, mustLoad(t, ""))
	patch := rollout.Patch{
		KB: "KB958644", Severity: rollout.SeverityCritical, Published: t0.Add(-2 * time.Hour), Reboot: rollout.RebootRequired,
		Packages: []rollout.Package{{OS: "windows-server-2003", Source: "p.exe", Type: "exe"}},
		Evidence: rollout.Evidence{Hotfix: "KB958644", Files: []rollout.FileEvidence{{Path: `C:\Windows\System32\netapi32.dll`, MinVersion: "5.2.3790.4392"}}},
	}
	r := rollout.Rollout{ID: "ms08-067", FiledBy: "alice", FiledAt: t0, Patch: patch,
		Risk:   rollout.Risk{WormInTheWild: true},
		Stages: []rollout.Stage{{Name: "lab", Soak: time.Hour}, {Name: "prodlike", Soak: 2 * time.Hour}},
	}

	t.Run("sla deadline and milestones are absolute times", func(t *testing.T) {
		d, err := e.SLA(ctx, SLAInput{Rollout: r, Now: t0})
		if err != nil || !d.Allow {
			t.Fatalf("%+v %v", d, err)
		}
		if d.SLA != 12*time.Hour || !d.Deadline.Equal(t0.Add(12*time.Hour)) || !d.Start.Equal(t0) {
			t.Errorf("sla %v start %v deadline %v", d.SLA, d.Start, d.Deadline)
		}
		want := []rollout.Milestone{{AtPercent: 50, At: t0.Add(6 * time.Hour)}, {AtPercent: 75, At: t0.Add(9 * time.Hour)}, {AtPercent: 100, At: t0.Add(12 * time.Hour), Breach: true}}
		for i, m := range want {
			if got := d.Milestones[i]; got.AtPercent != m.AtPercent || !got.At.Equal(m.At) || got.Breach != m.Breach {
				t.Errorf("milestone %d = %+v, want %+v", i, got, m)
			}
		}
		if d.StepMax["production"] != 48*time.Hour {
			t.Errorf("production step max %v", d.StepMax["production"])
		}
	})
	t.Run("plan with soaks that fit is allowed", func(t *testing.T) {
		d, err := e.Plan(ctx, PlanInput{Rollout: r, Now: t0})
		if err != nil || !d.Allow || d.TotalSoak != 3*time.Hour || len(d.RequiredStages) != 2 {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("registry key without new file is not_effective", func(t *testing.T) {
		d, err := e.Compliance(ctx, ComplianceInput{
			Host: rollout.Host{Name: "dc1", OS: "windows-server-2003"}, Patch: patch, Reachable: true, InstalledAt: t0.Add(-time.Hour), Now: t0,
			Scan: &hostscript.ScanResult{
				Hostname:       "DC1",
				Hotfixes:       []hostscript.Hotfix{{ID: "KB958644"}},
				Files:          []hostscript.File{{Path: `C:\Windows\System32\netapi32.dll`, Exists: true, Version: "5.2.3790.3229"}},
				LastBootUpTime: t0.Add(-30 * time.Minute),
			},
		})
		if err != nil || d.Allow || d.State != rollout.StateNotEffective || d.Violations[0].Code != "not_effective" {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("nil scan is unknown", func(t *testing.T) {
		d, err := e.Compliance(ctx, ComplianceInput{Host: rollout.Host{OS: "windows-server-2003"}, Patch: patch, Reachable: true, Now: t0})
		if err != nil || d.Allow || d.State != rollout.StateUnknown {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("wave window times decode", func(t *testing.T) {
		w := rollout.Wave{Name: "emea", MaxFailures: rollout.Threshold{Count: 1}, Window: &rollout.Window{Days: []time.Weekday{time.Monday}, Start: 22 * 60, End: 6 * 60}}
		d, err := e.Wave(ctx, WaveInput{Wave: w, Hosts: 10, Now: t0})
		if err != nil || d.Allow || d.WindowOpen || !d.NextWindow.Equal(time.Date(2026, 11, 23, 22, 0, 0, 0, time.UTC)) {
			t.Errorf("%+v %v", d, err)
		}
		d, err = e.Wave(ctx, WaveInput{Wave: w, Hosts: 10, States: map[rollout.HostState]int{rollout.StateUnreachable: 2}, Now: t0.Add(13 * time.Hour)})
		if err != nil || !d.Halt || d.Failures != 2 || !d.WindowEnd.Equal(time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)) {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("reboot limits per cluster", func(t *testing.T) {
		d, err := e.Reboot(ctx, RebootInput{
			Host: rollout.Host{Name: "sql1", Site: "paris", Role: "sql", Cluster: "c1"}, Patch: patch,
			InFlight: []rollout.Host{{Name: "sql2", Site: "lyon", Cluster: "c1"}}, Now: t0,
		})
		if err != nil || d.Allow || !d.Required || d.Violations[0].Code != "cluster_member_rebooting" {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("gate four-eyes", func(t *testing.T) {
		d, err := e.Gate(ctx, GateInput{RolloutID: "r", FiledBy: "alice", User: "alice", Gate: "lab", Action: "approve", Now: t0})
		if err != nil || d.Allow || d.Violations[0].Code != "four_eyes" {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("escalation at breach", func(t *testing.T) {
		d, err := e.Escalation(ctx, EscalationInput{Rollout: r, Milestone: rollout.Milestone{AtPercent: 100, At: t0, Breach: true}, Deadline: t0, Now: t0})
		if err != nil || len(d.Contacts) == 0 || len(d.Accelerations) != 3 {
			t.Errorf("%+v %v", d, err)
		}
	})
	t.Run("transport refuses http in production", func(t *testing.T) {
		d, err := e.Transport(ctx, TransportInput{Host: rollout.Host{Name: "h", Tier: rollout.TierProduction, TLS: rollout.HostTLS{Transport: "http", Auth: "ntlm"}}, Now: t0})
		if err != nil || d.Allow || d.Violations[0].Code != "http_not_allowed" {
			t.Errorf("%+v %v", d, err)
		}
	})
}

func TestConcurrentEvaluationSharesPreparedQueries(t *testing.T) {
	e := mustLoad(t, "")
	ctx := context.Background()
	in := benchComplianceInput()
	want, err := e.Compliance(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				if (g+i)%2 == 0 {
					d, err := e.Compliance(ctx, in)
					if err != nil || d.State != want.State || d.Revision != want.Revision {
						errs <- "compliance differs under concurrency"
						return
					}
					continue
				}
				if d, err := e.Reboot(ctx, benchRebootInput()); err != nil || !d.Allow {
					errs <- "reboot differs under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
}

func TestCapabilitiesExcludeNonDeterministicBuiltins(t *testing.T) {
	caps := Capabilities()
	have := map[string]bool{}
	for _, b := range caps.Builtins {
		have[b.Name] = true
		if b.Nondeterministic {
			t.Errorf("non-deterministic builtin %s is allowed", b.Name)
		}
	}
	for _, name := range []string{"time.now_ns", "http.send", "rand.intn", "uuid.rfc4122", "net.lookup_ip_addr", "opa.runtime"} {
		if have[name] {
			t.Errorf("%s is allowed", name)
		}
	}
	for _, name := range []string{"time.parse_rfc3339_ns", "sprintf", versionCompareName} {
		if !have[name] {
			t.Errorf("%s is missing", name)
		}
	}
}

// TestReloadSwapsInAChangedBundleAndKeepsTheLastGoodOne: a changed data
// file decides the next decision with the new revision (also through an
// engine WithStats derived before the reload); an unchanged directory is
// a no-op; a broken file is refused with file:line and the bundle in
// force keeps deciding.
func TestReloadSwapsInAChangedBundleAndKeepsTheLastGoodOne(t *testing.T) {
	ctx := context.Background()
	dir := writeDir(t, map[string]string{"overrides.json": `{"sla": {"hours": {"critical": 8}}}`})
	e := mustLoad(t, dir)
	derived := e.WithStats(nil)
	in := SLAInput{Rollout: rollout.Rollout{Patch: rollout.Patch{Severity: rollout.SeverityCritical, Published: t0}}, Now: t0}
	first := e.Revision()
	if from, to, err := e.Reload(ctx); err != nil || from != first || to != first {
		t.Fatalf("reload of an unchanged directory: %s -> %s, %v; want %s, no change", from, to, err, first)
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "overrides.json"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"sla": {"hours": {"critical": 4}}}`)
	from, to, err := e.Reload(ctx)
	if err != nil || from != first || to == first || e.Revision() != to {
		t.Fatalf("reload of a changed directory: %s -> %s, %v (engine at %s)", from, to, err, e.Revision())
	}
	for name, eng := range map[string]*Engine{"engine": e, "derived": derived} {
		d, err := eng.SLA(ctx, in)
		if err != nil || d.SLA != 4*time.Hour || d.Revision != to {
			t.Errorf("%s after the reload: SLA %s revision %s (%v), want 4h under %s", name, d.SLA, d.Revision, err, to)
		}
	}
	write("{\n  \"sla\": {\"hours\": \n}")
	if _, after, err := e.Reload(ctx); err == nil || !strings.Contains(err.Error(), "overrides.json:3") || after != to {
		t.Errorf("reload of a broken file: %v (revision %s), want the file:line refused and %s kept", err, after, to)
	}
	if d, _ := e.SLA(ctx, in); d.SLA != 4*time.Hour || d.Revision != to {
		t.Errorf("after a refused reload: SLA %s under %s, want the last good bundle (4h, %s)", d.SLA, d.Revision, to)
	}
}

// typedNames lets e's gates policy take typed names, as a dev server
// started with --insecure-dev-identity does: these tests are about other
// rules (oidc_test.go proves tokens).
func typedNames(t *testing.T, e *Engine) *Engine {
	t.Helper()
	if err := e.SetData(context.Background(), "oidc/insecure_dev_identity", true); err != nil {
		t.Fatal(err)
	}
	return e
}
