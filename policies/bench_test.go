package policies

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/patchway/patchway/activities/hostscript"
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

// reportP50 times n sequential decisions and reports their median.
func reportP50(b *testing.B, n int, decide func() error) {
	b.Helper()
	durations := make([]time.Duration, 0, n)
	for range n {
		start := time.Now()
		if err := decide(); err != nil {
			b.Fatal(err)
		}
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	b.ReportMetric(float64(durations[len(durations)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(durations[len(durations)*99/100].Nanoseconds()), "p99-ns")
}

func BenchmarkComplianceDecision(b *testing.B) {
	e := mustLoad(b, "")
	ctx := context.Background()
	in := benchComplianceInput()
	if d, err := e.Compliance(ctx, in); err != nil || d.State != rollout.StateCompliant {
		b.Fatalf("benchmark input is not compliant: %+v %v", d, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Compliance(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportP50(b, 2000, func() error { _, err := e.Compliance(ctx, in); return err })
}

func BenchmarkRebootDecision(b *testing.B) {
	e := mustLoad(b, "")
	ctx := context.Background()
	in := benchRebootInput()
	if d, err := e.Reboot(ctx, in); err != nil || !d.Allow {
		b.Fatalf("benchmark input is not allowed: %+v %v", d, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.Reboot(ctx, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	reportP50(b, 2000, func() error { _, err := e.Reboot(ctx, in); return err })
}
