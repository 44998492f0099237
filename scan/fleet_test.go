package scan

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// testStart is when the test scans start (simulated time).
var testStart = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// testLogLevel keeps the SDK's test environment quiet.
const testLogLevel = slog.LevelError + 4

// testEngine loads the embedded default policy bundle once per test
// binary: VerifyPatch judges the hosts with the real compliance policy,
// and the gates policy proves who requests a scan. Its people are typed
// names, as on a dev server started with --insecure-dev-identity;
// tokens are proven by cmd/patchway's identity tests.
var testEngine = sync.OnceValues(func() (*policies.Engine, error) {
	ctx := context.Background()
	e, err := policies.Load(ctx, "")
	if err != nil {
		return nil, err
	}
	return e, e.SetData(ctx, "oidc/insecure_dev_identity", true)
})

// netapi is the file MS08-067 replaces on the test inventory's OS.
const netapi = `C:\Windows\System32\netapi32.dll`

// scanHost is what one scripted host shows a scan.
type scanHost struct {
	hotfixes []string
	files    map[string]string // path -> version in effect
	cbs      bool              // CBS RebootPending
	boot     time.Time
	down     bool
}

// scanFleet answers the scan script for scripted hosts, so that the real
// VerifyPatch activity and the real compliance policy judge them: the
// workflow and the policy are under test, Windows is not here. It also
// records notifications.
type scanFleet struct {
	mu       sync.Mutex
	hosts    map[string]*scanHost
	verifies int
	events   []contract.Event
}

// newScanFleet gives every host the patch in effect (compliant) and
// registers VerifyPatch (real, over this runner, with the real policies)
// and Notify.
func newScanFleet(t testing.TB, env *testsuite.TestWorkflowEnvironment, hosts []rollout.Host, now time.Time) *scanFleet {
	t.Helper()
	f := scriptedFleet(hosts, now)
	f.register(t, env, env.Now)
	return f
}

// scriptedFleet gives every host the patch in effect (compliant), booted
// three days before now.
func scriptedFleet(hosts []rollout.Host, now time.Time) *scanFleet {
	f := &scanFleet{hosts: map[string]*scanHost{}}
	for _, h := range hosts {
		f.hosts[h.Name] = &scanHost{hotfixes: []string{"KB958644"}, files: map[string]string{netapi: "6.1.7600.16385"}, boot: now.Add(-72 * time.Hour)}
	}
	return f
}

// register registers the host activities (real, over this fleet, with the
// real policies, on the clock now) and Notify, as the worker does.
func (f *scanFleet) register(t testing.TB, r activities.Registry, now func() time.Time) {
	t.Helper()
	engine, err := testEngine()
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	acts := &activities.HostActivities{Runner: f, Policy: engine, Now: now}
	activities.Register(r, activities.Deps{Hosts: acts, Notifier: f, Policy: activities.NewPolicyActivities(engine)})
}

// set changes a host's state between scans.
func (f *scanFleet) set(name string, change func(*scanHost)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f.hosts[name])
}

// Run prints what the scan script would print for the host.
func (f *scanFleet) Run(_ context.Context, host rollout.Host, script string) (activities.RunResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verifies++
	h := f.hosts[host.Name]
	if h == nil || h.down {
		return activities.RunResult{}, &contract.HostError{Type: contract.Unreachable, Host: host.Name, Msg: "connection refused"}
	}
	if !strings.Contains(script, "scan") {
		return activities.RunResult{ExitCode: 1, Stderr: "only scans in a scan"}, nil
	}
	res := hostscript.ScanResult{Hostname: host.Name, LastBootUpTime: h.boot, Reboot: hostscript.Reboot{CBSRebootPending: h.cbs}}
	for _, kb := range h.hotfixes {
		res.Hotfixes = append(res.Hotfixes, hostscript.Hotfix{ID: kb, InstalledOn: h.boot.Add(-24 * time.Hour)})
	}
	for p, v := range h.files {
		res.Files = append(res.Files, hostscript.File{Path: p, Exists: true, Version: v})
	}
	out, err := json.Marshal(res)
	return activities.RunResult{Stdout: string(out)}, err
}

// Notify records the event.
func (f *scanFleet) Notify(_ context.Context, in contract.NotifyInput) (contract.NotifyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, in.Event)
	return contract.NotifyResult{Delivered: in.Event.Channels}, nil
}

func (f *scanFleet) sent() []contract.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]contract.Event(nil), f.events...)
}

// scanInput is a nightly scan of the standard test inventory for MS08-067.
func scanInput(perRegion int, channels ...rollout.Channel) Input {
	hosts, sites := fixture.Inventory(perRegion)
	return Input{ScanID: "nightly", Hosts: hosts, Sites: sites, Patches: []rollout.Patch{fixture.Rollout(testStart).Patch},
		Channels: channels, RequestedBy: "alice"}
}

func newScanEnv(t testing.TB) *testsuite.TestWorkflowEnvironment {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	suite.SetLogger(log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: testLogLevel}))))
	env := suite.NewTestWorkflowEnvironment()
	env.SetStartTime(testStart)
	env.SetTestTimeout(2 * time.Minute)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: WorkflowID("nightly"), TaskQueue: workflows.TaskQueue})
	Register(env)
	return env
}

// runScan runs one scan to its end and returns its result, expanded.
func runScan(t testing.TB, env *testsuite.TestWorkflowEnvironment, in Input) Result {
	t.Helper()
	packed, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	env.ExecuteWorkflow(WorkflowName, packed)
	if !env.IsWorkflowCompleted() {
		t.Fatal("scan did not complete")
	}
	if err := env.GetWorkflowError(); err != nil {
		t.Fatalf("scan failed: %v", err)
	}
	var res Result
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatalf("decode scan result: %v", err)
	}
	full, err := res.Expanded()
	if err != nil {
		t.Fatal(err)
	}
	return full
}

func checkOfHost(res Result, host string) HostCheck {
	for _, c := range res.Checks {
		if c.Host == host {
			return c
		}
	}
	return HostCheck{}
}
