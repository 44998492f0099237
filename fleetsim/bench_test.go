package fleetsim

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// BenchmarkRoundTrip measures what the simulator can serve to the real
// client: each operation is one scan command (Create, Command, Send,
// Receive, Delete: five WS-Management round trips over HTTPS) on one of
// 64 hosts, with 1, 16 and 64 clients at once. It bounds every later
// benchmark that drives hosts over WinRM.
func BenchmarkRoundTrip(b *testing.B) {
	const hosts = 64
	sc := &Scenario{Name: "bench", Credential: "fleet", Catalog: map[string]CatalogEntry{"KB958644": CatalogFromPatch(testPatch)},
		Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}}}
	for i := range hosts {
		sc.Hosts = append(sc.Hosts, HostSpec{Host: rollout.Host{Name: fmt.Sprintf("ws%02d", i), OS: "windows-xp-sp3",
			Site: "paris", Region: "emea", Tier: "production", Role: "workstation"}})
	}
	f, err := Start(context.Background(), sc, Options{Password: testPassword})
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	script, err := hostscript.Render(hostscript.OpScan, hostscript.ScanParams{KB: "KB958644",
		Files: []hostscript.FileCheck{{Path: `C:\Windows\System32\netapi32.dll`}}}, "Write-Output 'body'\n")
	if err != nil {
		b.Fatal(err)
	}
	clients := make([]*winrm.Client, hosts)
	for i, h := range f.Inventory().Hosts {
		clients[i] = benchClient(b, f, h)
	}
	for _, n := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("clients=%d", n), func(b *testing.B) {
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			start := time.Now()
			for w := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := clients[w%hosts]
					for next.Add(1) <= int64(b.N) {
						var stdout, stderr bytes.Buffer
						exit, err := c.RunWithContextWithInput(context.Background(), hostscript.CommandLine(), &stdout, &stderr, strings.NewReader(script))
						if err != nil || exit != 0 {
							errs <- fmt.Errorf("scan: exit %d: %v %s", exit, err, stderr.String())
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			secs := time.Since(start).Seconds()
			b.ReportMetric(float64(b.N)/secs, "commands/s")
			b.ReportMetric(5*float64(b.N)/secs, "roundtrips/s")
		})
	}
}

func benchClient(b *testing.B, f *Fleet, h rollout.Host) *winrm.Client {
	b.Helper()
	host, port, _ := strings.Cut(h.Address, ":")
	var p int
	fmt.Sscan(port, &p)
	ep := winrm.NewEndpoint(host, p, true, false, f.CAPEM(), nil, nil, 10*time.Second)
	c, err := winrm.NewClientWithParameters(ep, "patchway", testPassword, winrm.NewParameters("PT5S", "en-US", 153600))
	if err != nil {
		b.Fatal(err)
	}
	return c
}
