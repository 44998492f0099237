package activities_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// TestRunsOfAHostResumeItsTLSSession runs scans on a simulated host over
// verified HTTPS: the first run is a full TLS handshake, the next ones
// resume its session, and a resumed session is still held to the pin: the
// same host pinned to another certificate is refused before anything is
// sent. With NoTLSResumption every run is a full handshake.
func TestRunsOfAHostResumeItsTLSSession(t *testing.T) {
	ro, _, diags := rollout.Load(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("load ms08-067.hcl: %v", diags)
	}
	patch := ro.Patch
	sf := startSimulatedFleet(t, patch, []fleetsim.HostSpec{{Host: rollout.Host{Name: "WS-0001", OS: "windows-xp-sp3", Site: "paris",
		Region: "emea", Tier: "production", Role: "workstation"}}})
	host := sf.inv.Hosts[0]
	script, err := hostscript.Script(hostscript.OpScan, hostscript.ScanParams{KB: patch.KB})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runner := sf.acts.Runner.(*activities.WinRMRunner)
	var cert string
	for i := range 4 {
		res, err := runner.Run(ctx, host, script)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		cert = res.TLSCertSHA256
	}
	full, resumed := runner.TLSHandshakes()
	// A run opens a second connection for stdin while the first polls,
	// so the first run may make two full handshakes before a ticket is
	// kept; every later connection resumes.
	t.Logf("4 runs: %d full, %d resumed handshakes", full, resumed)
	if full > 2 || resumed < 4 {
		t.Errorf("4 runs on one host: %d full and %d resumed handshakes, want at most the first run's full and the rest resumed", full, resumed)
	}

	pinned := host
	pinned.TLS.CertSHA256 = strings.Repeat("ab", 32)
	_, err = runner.Run(ctx, pinned, script)
	var he *contract.HostError
	if !errors.As(err, &he) || he.Type != contract.IdentityMismatch || !strings.Contains(err.Error(), cert) {
		t.Errorf("a resumed session to a host pinned to another certificate: %v; want identity_mismatch naming the certificate %s", err, cert)
	}

	fresh := &activities.WinRMRunner{Credentials: runner.Credentials, Transport: runner.Transport, NoTLSResumption: true}
	for range 3 {
		if _, err := fresh.Run(ctx, host, script); err != nil {
			t.Fatal(err)
		}
	}
	if full, resumed := fresh.TLSHandshakes(); full < 3 || resumed != 0 {
		t.Errorf("NoTLSResumption: %d full and %d resumed handshakes, want only full ones", full, resumed)
	}
}

// BenchmarkScanRunTLS measures the process CPU (client and the in-process
// fleet) per scan run on 16 hosts, with the TLS session resumed across a
// host's runs and with a full handshake every time; compare the two
// sub-benchmarks' cpu-ms/run in one run.
func BenchmarkScanRunTLS(b *testing.B) {
	ro, _, diags := rollout.Load(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	var specs []fleetsim.HostSpec
	for i := range 16 {
		specs = append(specs, fleetsim.HostSpec{Host: rollout.Host{Name: fmt.Sprintf("WS-%04d", i+1), OS: "windows-xp-sp3", Site: "paris",
			Region: "emea", Tier: "production", Role: "workstation"}})
	}
	sf := startSimulatedFleet(b, ro.Patch, specs)
	script, err := hostscript.Script(hostscript.OpScan, hostscript.ScanParams{KB: ro.Patch.KB})
	if err != nil {
		b.Fatal(err)
	}
	base := sf.acts.Runner.(*activities.WinRMRunner)
	for _, mode := range []struct {
		name string
		off  bool
	}{{"resumed", false}, {"full-handshake", true}} {
		b.Run(mode.name, func(b *testing.B) {
			r := &activities.WinRMRunner{Credentials: base.Credentials, Transport: base.Transport, NoTLSResumption: mode.off}
			hosts := sf.inv.Hosts
			cpu0 := processCPU()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.Run(context.Background(), hosts[i%len(hosts)], script); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/run")
			full, resumed := r.TLSHandshakes()
			b.ReportMetric(float64(resumed)/float64(max(full+resumed, 1)), "resumed-share")
		})
	}
}

// processCPU is the process's user and system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
