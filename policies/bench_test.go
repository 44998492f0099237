package policies

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

func benchComplianceInput() ComplianceInput {
	return ComplianceInput{
		Host: rollout.Host{Name: "web042", OS: "windows-server-2019", Site: "paris", Tier: rollout.TierProduction, Role: "web"},
		Patch: rollout.Patch{
			KB: "KB5005030", Severity: rollout.SeverityCritical, Reboot: rollout.RebootRequired,
			Packages: []rollout.Package{{OS: "windows-server-2016"}, {OS: "windows-server-2019"}},
			Evidence: rollout.Evidence{Hotfix: "KB5005030", Files: []rollout.FileEvidence{
				{Path: `C:\Windows\System32\ntoskrnl.exe`, MinVersion: "10.0.17763.2114"},
				{Path: `C:\Windows\System32\win32k.sys`, MinVersion: "10.0.17763.2114"},
			}},
		},
		Scan: &hostscript.ScanResult{
			Hostname: "web042",
			Hotfixes: []hostscript.Hotfix{{ID: "KB5004424"}, {ID: "KB5005030"}},
			Files: []hostscript.File{
				{Path: `C:\Windows\System32\ntoskrnl.exe`, Exists: true, Version: "10.0.17763.2114"},
				{Path: `C:\Windows\System32\win32k.sys`, Exists: true, Version: "10.0.17763.2145"},
			},
			Reboot:         hostscript.Reboot{PendingFileRename: true},
			LastBootUpTime: t0.Add(-10 * time.Minute),
		},
		Reachable:   true,
		InstalledAt: t0.Add(-time.Hour),
		Now:         t0,
	}
}

func benchRebootInput() RebootInput {
	return RebootInput{
		Host:     rollout.Host{Name: "dc1", Site: "paris", Role: "domain_controller"},
		Patch:    rollout.Patch{KB: "KB5005030", Reboot: rollout.RebootRequired},
		Window:   &rollout.Window{Start: 0, End: 0},
		TimeZone: "Europe/Paris",
		Deadline: t0.Add(20 * time.Hour),
		InFlight: []rollout.Host{{Name: "web1", Site: "paris"}, {Name: "dc9", Site: "lyon", Role: "domain_controller"}, {Name: "sql1", Site: "paris", Cluster: "c1"}},
		Now:      t0,
	}
}

// reportP50 times n sequential decisions and reports their median and
// 99th percentile. With a floor it also times n floor evaluations,
// alternating with the decisions so that both see the same machine, and
// reports the ratio of the medians (x-floor).
func reportP50(b *testing.B, n int, decide, floor func() error) {
	b.Helper()
	durations := make([]time.Duration, 0, n)
	floors := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := decide(); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
		if floor != nil {
			start = time.Now()
			if err := floor(); err != nil {
				b.Fatal(err)
			}
			floors = append(floors, time.Since(start))
		}
	}
	slices.Sort(durations)
	p50 := durations[len(durations)/2]
	b.ReportMetric(float64(p50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
	if floor != nil {
		slices.Sort(floors)
		b.ReportMetric(float64(p50)/float64(floors[len(floors)/2]), "x-floor")
	}
}

func BenchmarkComplianceDecision(b *testing.B) {
	e := mustLoad(b, "")
	ctx := context.Background()
	floor := floorDecision(b)
	notEffective := benchComplianceInput()
	notEffective.Scan.Files[1].Version = "10.0.17763.1999"
	for _, tc := range []struct {
		name  string
		in    ComplianceInput
		state rollout.HostState
	}{
		{"compliant", benchComplianceInput(), rollout.StateCompliant},
		{"not_effective", notEffective, rollout.StateNotEffective},
	} {
		b.Run(tc.name, func(b *testing.B) {
			if d, err := e.Compliance(ctx, tc.in); err != nil || d.State != tc.state {
				b.Fatalf("benchmark input is not %s: %+v %v", tc.state, d, err)
			}
			benchDecision(b, func() error { _, err := e.Compliance(ctx, tc.in); return err }, floor)
		})
		// As the worker judges: with the decision recorded (input hash).
		b.Run(tc.name+"/recorded", func(b *testing.B) {
			benchDecision(b, func() error {
				rctx, _ := WithRecorder(ctx)
				_, err := e.Compliance(rctx, tc.in)
				return err
			}, floor)
		})
	}
}

// floorPolicy proves only the compliant case of benchComplianceInput, in
// one rule body: no precedence, no reasons for other states, no notes. Its
// cost is what OPA's evaluator needs on this machine for the bare checks,
// the floor under BenchmarkComplianceDecision.
const floorPolicy = `package floor

decision := {"allow": true, "state": "compliant", "reasons": [msg], "violations": []} if {
	not input.exception
	os := lower(input.host.os)
	some p in input.patch.packages
	lower(p.os) == os
	input.reachable == true
	scanned := {lower(f.path): f | some f in input.scan.files}
	every f in input.patch.evidence.files {
		s := scanned[lower(f.path)]
		s.exists == true
		patchway.version_compare(s.version, f.min_version) >= 0
	}
	kb := upper(input.patch.kb)
	some h in input.scan.hotfixes
	upper(h.id) == kb
	input.scan.reboot.cbs_reboot_pending == false
	input.scan.reboot.wu_reboot_required == false
	boot := time.parse_rfc3339_ns(input.scan.last_boot_up_time)
	boot >= time.parse_rfc3339_ns(input.installed_at)
	msg := sprintf("%d file(s) at or above expected versions, %s present, booted at %s", [count(input.patch.evidence.files), kb, time.format(boot)])
}
`

// BenchmarkComplianceFloor evaluates floorPolicy on the same input, through
// the same conversion and evaluation path as a decision.
func BenchmarkComplianceFloor(b *testing.B) {
	benchDecision(b, floorDecision(b), nil)
}

// floorDecision prepares floorPolicy and returns one evaluation of it on
// benchComplianceInput.
func floorDecision(b testing.TB) func() error {
	b.Helper()
	ctx := context.Background()
	in := benchComplianceInput()
	pq, err := rego.New(
		rego.Query("data.floor.decision"),
		rego.Module("floor.rego", floorPolicy),
		rego.SetRegoVersion(ast.RegoV1),
		versionCompareFunc(),
	).PrepareForEval(ctx)
	if err != nil {
		b.Fatal(err)
	}
	return func() error {
		v, err := toValue(in)
		if err != nil {
			return err
		}
		rs, err := pq.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(in.Now), rego.EvalMetrics(noMetrics))
		if err != nil {
			return err
		}
		if len(rs) == 0 {
			return errors.New("floor policy is undefined for the benchmark input")
		}
		return nil
	}
}

// benchDecision runs decide in parallel on every core, then times 2,000
// sequential decisions for their p50 and p99 (and, with a floor, the ratio
// of their p50 to the floor's).
func benchDecision(b *testing.B, decide, floor func() error) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := decide(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportP50(b, 2000, decide, floor)
}

func BenchmarkRebootDecision(b *testing.B) {
	e := mustLoad(b, "")
	ctx := context.Background()
	in := benchRebootInput()
	if d, err := e.Reboot(ctx, in); err != nil || !d.Allow {
		b.Fatalf("benchmark input is not allowed: %+v %v", d, err)
	}
	benchDecision(b, func() error { _, err := e.Reboot(ctx, in); return err }, nil)
}

// TestBenchmarkInputs keeps the benchmarks honest when they are not run:
// the floor policy proves the benchmark's clean host, which the real
// policy also judges compliant (the floor is not measuring an early
// failure).
func TestBenchmarkInputs(t *testing.T) {
	if err := floorDecision(t)(); err != nil {
		t.Fatal(err)
	}
	e := mustLoad(t, "")
	if d, err := e.Compliance(context.Background(), benchComplianceInput()); err != nil || d.State != rollout.StateCompliant {
		t.Fatalf("benchmark input is not compliant: %+v %v", d, err)
	}
}
