package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/scan"
	"github.com/patchway/patchway/workflows"
)

// TestScanRefusesWhatItCannotScan checks the command's refusals, which
// happen before any connection to Temporal.
func TestScanRefusesWhatItCannotScan(t *testing.T) {
	example := filepath.Join("..", "..", "examples", "ms08-067.hcl")
	blaster := filepath.Join("..", "..", "examples", "ms03-026.hcl")
	inventory := filepath.Join("..", "..", "examples", "inventory.hcl")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a KB no rollout file defines names the files searched",
			[]string{"--inventory", inventory, "--patch", "KB000001", "--rollouts", example + "," + blaster},
			"patch KB000001 is not defined by the rollout files searched: " + example + " (KB958644), " + blaster + " (KB823980)"},
		{"a channel no rollout file declares lists the declared ones",
			[]string{"--inventory", inventory, "--patch", "KB958644", "--rollouts", example, "--channel", "nowhere"},
			`channel "nowhere" is not declared by the rollout files searched (` + example + `); declared: pager, security-chat`},
		{"an interval under a minute is refused",
			[]string{"--inventory", inventory, "--patch", "KB958644", "--rollouts", example, "--every", "10s"},
			`--every "10s": want a duration of at least 1m0s`},
		{"an id that is no workflow id is refused",
			[]string{"--inventory", inventory, "--patch", "KB958644", "--rollouts", example, "--id", "my scan"},
			`--id "my scan": use letters, digits`},
		{"patches come from rollout files",
			[]string{"--inventory", inventory, "--patch", "KB958644"}, "--rollouts is required"},
		{"--last needs the scan id", []string{"--last"}, "--delete and --last need --id"},
		{"an unreadable rollout file says which",
			[]string{"--inventory", inventory, "--patch", "KB958644", "--rollouts", "no-such.hcl"}, "read rollout file: open no-such.hcl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRootCmd()
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			// An address nothing listens on: no test may reach Temporal.
			cmd.SetArgs(append([]string{"scan", "--address", "127.0.0.1:1"}, tt.args...))
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("scan %s: error %v, want %q (stderr %s)", strings.Join(tt.args, " "), err, tt.want, errOut.String())
			}
		})
	}
}

func TestParseInterval(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"24h", 24 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"59s", 0, false},
		{"-1d", 0, false},
		{"daily", 0, false},
	}
	for _, tt := range tests {
		got, err := parseInterval(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseInterval(%q) = %s, %v; want %s, ok %t", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// netapiXP is the file MS08-067 replaces on Windows XP SP3 and the version
// an older cumulative update puts back.
const (
	netapiXP    = `C:\Windows\System32\netapi32.dll`
	netapiOldXP = "5.1.2600.5512"
)

// startScanFleet starts the scan test's fleet (testdata/fleet-scan.hcl)
// and writes its inventory, and a second one with one more host,
// GONE-0001, whose address nothing listens on. The worker gets the
// credential set through the environment (a random password, never
// printed).
func (e *e2e) startScanFleet() (*fleetsim.Fleet, string, string) {
	e.t.Helper()
	f, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-scan.hcl"), fleetsim.Options{})
	withGone := filepath.Join(filepath.Dir(inv), "inventory-gone.hcl")
	if err := f.WriteInventory(withGone); err != nil {
		e.t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	closed := l.Addr().String()
	_ = l.Close()
	gone := fmt.Sprintf(`
host "GONE-0001" {
  address    = %q
  os         = "windows-xp-sp3"
  site       = "paris"
  region     = "emea"
  tier       = "production"
  role       = "workstation"
  owner      = "it-emea@corp.example"
  credential = "fleet"
  tls {
    transport = "https"
    ca_file   = %q
  }
}
`, closed, f.Inventory().Hosts[0].TLS.CAFile)
	fh, err := os.OpenFile(withGone, os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = fh.WriteString(gone)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return f, inv, withGone
}

// TestE2EScheduledScanReportsARegressionAfterAFileIsOverwritten drives the
// real `patchway scan` against the embedded server, a real worker and the
// simulated fleet over WinRM: a one-off scan reports every host's state
// without drift (the host nothing listens on is unreachable, never
// compliant); a schedule's first scan is the baseline; after a later update
// puts an old netapi32.dll back on WS-0002, the next scan of the schedule
// reports WS-0002 compliant -> not_effective as a regression and notifies
// the signed webhook; --last shows it; --delete stops the schedule.
func TestE2EScheduledScanReportsARegressionAfterAFileIsOverwritten(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	fleet, inv, withGone := e.startScanFleet()
	pager := newWebhookReceiver(t, "pager-signing-key")
	e.env = append(e.env, "PATCHWAY_CHANNEL_PAGER_URL="+pager.url, "PATCHWAY_CHANNEL_PAGER_KEY=pager-signing-key")
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rollouts := filepath.Join("..", "..", "examples", "ms08-067.hcl")
	scanCmd := []string{"scan", "--patch", "KB958644", "--rollouts", rollouts, "--as", "alice"}

	// A one-off scan: states, no drift. (GONE-0001 only here: the WinRM
	// client's connection retries and the scan's make an unreachable host
	// take about 24 s.)
	out := e.mustCLI(ctx, append(scanCmd, "--inventory", withGone, "--id", "adhoc")...)
	t.Logf("one-off scan:\n%s", out)
	for _, want := range []string{
		"Scan adhoc  KB958644  8 hosts",
		"checks: pending 1, compliant 6, unreachable 1",
		"KB958644: 75.0 % compliant (6 of 8 applicable)",
		"No previous scan of this id: no drift.",
		"GONE-0001  KB958644  unreachable",
		"NEW-0001   KB958644  pending",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("one-off scan output lacks %q", want)
		}
	}

	// A schedule: its first scan is the baseline.
	nightly := append(scanCmd, "--inventory", inv, "--id", "nightly", "--every", "24h", "--channel", "pager", "--wait", "--json")
	first := e.scanJSON(ctx, nightly)
	if first.Regressions != 0 || !first.PreviousAt.IsZero() || first.Totals[rollout.StateCompliant] != 6 {
		t.Fatalf("first scheduled scan: %d regressions since %s, totals %v; want a baseline of 6 compliant", first.Regressions, first.PreviousAt, first.Totals)
	}

	// A later update overwrites the patched file on WS-0002.
	fleet.Host("WS-0002").SetFileVersion(netapiXP, netapiOldXP)
	second := e.scanJSON(ctx, nightly)
	if second.Regressions != 1 || len(second.Drift) != 1 {
		t.Fatalf("second scan: %d regressions, drift %+v; want WS-0002's", second.Regressions, second.Drift)
	}
	d := second.Drift[0]
	if d.Host != "WS-0002" || d.Previous != rollout.StateCompliant || d.Current != rollout.StateNotEffective || !d.Regression ||
		!strings.Contains(d.Reason, netapiOldXP) {
		t.Errorf("drift = %+v, want WS-0002 compliant -> not_effective naming %s", d, netapiOldXP)
	}
	if !second.PreviousAt.Equal(first.StartedAt) {
		t.Errorf("second scan compares with the scan of %s, want the first's %s", second.PreviousAt, first.StartedAt)
	}
	var drift []map[string]any
	for _, ev := range pager.received() {
		if ev["kind"] == string(contract.EventScanDrift) {
			drift = append(drift, ev)
		}
	}
	if len(drift) != 1 || !strings.Contains(fmt.Sprint(drift[0]["text"]), "WS-0002 KB958644: compliant -> not_effective") {
		t.Errorf("webhook received %d scan_drift events (%v), want one naming WS-0002", len(drift), drift)
	}
	if pager.badSignatures != 0 {
		t.Errorf("%d webhook requests had a bad signature", pager.badSignatures)
	}

	last := e.mustCLI(ctx, "scan", "--id", "nightly", "--last")
	t.Logf("scan --last:\n%s", last)
	if !strings.Contains(last, "REGRESSION  WS-0002  KB958644  compliant -> not_effective") {
		t.Errorf("--last lacks the regression:\n%s", last)
	}
	for _, q := range []string{
		"WorkflowType = 'ScanWorkflow' AND ScanRegressed = true",
		"WorkflowType = 'ScanBatchWorkflow' AND PatchwayHosts = 'WS-0002'",
	} {
		if n := e.countWorkflows(ctx, q); n == 0 {
			t.Errorf("no workflow found by %s", q)
		}
	}
	e.logScanHistory(ctx, "scan/adhoc")

	if out := e.mustCLI(ctx, "scan", "--id", "nightly", "--delete"); !strings.Contains(out, "deleted schedule scan/nightly") {
		t.Errorf("delete said %q", out)
	}
	if r := e.cli(ctx, "scan", "--id", "nightly", "--delete"); r.code != 1 || !strings.Contains(r.stderr, "no scan schedule scan/nightly") {
		t.Errorf("deleting again exited %d: %s", r.code, r.stderr)
	}
}

// scanJSON runs a scan command with --json and decodes its result.
func (e *e2e) scanJSON(ctx context.Context, args []string) scan.Result {
	e.t.Helper()
	r := e.cli(ctx, args...)
	if r.code != 0 {
		e.t.Fatalf("patchway %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	e.t.Logf("patchway scan --every said:\n%s", r.stderr)
	var res scan.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		e.t.Fatalf("decode scan result: %v\n%s", err, r.stdout)
	}
	return res
}

func checkNamed(res scan.Result, host string) scan.HostCheck {
	for _, c := range res.Checks {
		if c.Host == host {
			return c
		}
	}
	return scan.HostCheck{}
}

// logScanHistory logs the history length of a scan and its batch
// children, as measured on the real server.
func (e *e2e) logScanHistory(ctx context.Context, workflowID string) {
	e.t.Helper()
	count := func(id string) int {
		it := e.client.GetWorkflowHistory(ctx, id, "", false, 0)
		n := 0
		for it.HasNext() {
			if _, err := it.Next(); err != nil {
				e.t.Errorf("history of %s: %v", id, err)
				return n
			}
			n++
		}
		return n
	}
	e.t.Logf("history: %s %d events, %s/batch-0 %d events", workflowID, count(workflowID), workflowID, count(workflowID+"/batch-0"))
}

// benchRunner answers every scan script as a host with MS08-067 in
// effect on Windows XP SP3: the benchmark measures Temporal's work per
// host, not WinRM's.
type benchRunner struct{ boot time.Time }

func (r benchRunner) Run(_ context.Context, host rollout.Host, _ string) (activities.RunResult, error) {
	res := hostscript.ScanResult{Hostname: host.Name, LastBootUpTime: r.boot,
		Hotfixes: []hostscript.Hotfix{{ID: "KB958644", InstalledOn: r.boot.Add(-24 * time.Hour)}},
		Files:    []hostscript.File{{Path: netapiXP, Exists: true, Version: "5.1.2600.5694"}}}
	out, err := json.Marshal(res)
	return activities.RunResult{Stdout: string(out)}, err
}

// BenchmarkScanOnTheEmbeddedServer scans PATCHWAY_BENCH_HOSTS (default
// 3,000) hosts through the real workflows on the embedded server, with a
// worker in this process whose VerifyPatch (real activity, real compliance
// policy) talks to a scripted runner instead of WinRM, and reports the
// history events per host and the hosts scanned per second. Run it with
// `go test ./cmd/patchway -run '^$' -bench ScanOnTheEmbeddedServer -benchtime 1x`.
func BenchmarkScanOnTheEmbeddedServer(b *testing.B) {
	n := 3000
	if v, err := strconv.Atoi(os.Getenv("PATCHWAY_BENCH_HOSTS")); err == nil && v > 0 {
		n = v
	}
	ctx := context.Background()
	var attrs []devserver.SearchAttribute
	for _, a := range workflows.SearchAttributes {
		attrs = append(attrs, devserver.SearchAttribute{Name: a.Name, Type: a.Type})
	}
	srv, err := devserver.Start(ctx, devserver.Options{DisableUI: true, SearchAttributes: attrs, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: testSDKLogger(io.Discard)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	engine, err := policies.Load(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	// The requester is a typed name, as on `patchway dev --insecure-dev-identity`.
	if err := engine.SetData(ctx, "oidc/insecure_dev_identity", true); err != nil {
		b.Fatal(err)
	}
	w := worker.New(c, workflows.TaskQueue, worker.Options{})
	workflows.Register(w)
	scan.Register(w)
	hosts := &activities.HostActivities{Runner: benchRunner{boot: time.Now().Add(-72 * time.Hour)}, Policy: engine}
	activities.Register(w, activities.Deps{Hosts: hosts, Policy: activities.NewPolicyActivities(engine)})
	if err := w.Start(); err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	r, diags := rollout.DecodeRollout("ms08-067.hcl", mustReadFile(b, filepath.Join("..", "..", "examples", "ms08-067.hcl")))
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	in := scan.Input{ScanID: "bench", RequestedBy: "alice", Patches: []rollout.Patch{r.Patch}, Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}}}
	for i := range n {
		in.Hosts = append(in.Hosts, rollout.Host{Name: fmt.Sprintf("WS-%05d", i), Address: "127.0.0.1:5986", OS: "windows-xp-sp3",
			Site: "paris", Region: "emea", Tier: rollout.TierProduction, Role: "workstation", Credential: "fleet"})
	}
	for i := 0; i < b.N; i++ {
		in.ScanID = fmt.Sprintf("bench-%d", i)
		packed, err := in.Pack()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		run, err := c.ExecuteWorkflow(ctx, scan.StartOptions(in), scan.WorkflowName, packed)
		if err != nil {
			b.Fatal(err)
		}
		var res scan.Result
		if err := run.Get(ctx, &res); err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		if res.Totals[rollout.StateCompliant] != n {
			b.Fatalf("totals %v, want %d compliant", res.Totals, n)
		}
		events := func(id string) int {
			it := c.GetWorkflowHistory(ctx, id, "", false, 0)
			k := 0
			for it.HasNext() {
				if _, err := it.Next(); err != nil {
					b.Fatal(err)
				}
				k++
			}
			return k
		}
		id := scan.WorkflowID(in.ScanID)
		parent, total, largest := events(id), 0, 0
		batches := 0
		for ; ; batches++ {
			desc, err := c.DescribeWorkflowExecution(ctx, fmt.Sprintf("%s/batch-%d", id, batches), "")
			if err != nil || desc == nil {
				break
			}
			k := events(fmt.Sprintf("%s/batch-%d", id, batches))
			total += k
			largest = max(largest, k)
		}
		total += parent
		b.ReportMetric(float64(total)/float64(n), "events/host")
		b.ReportMetric(float64(n)/took.Seconds(), "hosts/s")
		b.ReportMetric(float64(parent), "parent-events")
		b.ReportMetric(float64(largest), "largest-batch-events")
		b.Logf("%d hosts in %d batches in %s: parent %d events, largest batch %d, %d in all", n, batches, took.Round(time.Millisecond), parent, largest, total)
	}
}

func mustReadFile(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}
