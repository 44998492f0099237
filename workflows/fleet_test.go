package workflows

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// testFleet plays the host, notification and report activities for
// workflow tests: Windows cannot run here, and the workflow is what is
// under test. Host behaviour is scripted per host name; everything it is
// asked to do is recorded.
type testFleet struct {
	// The host operations the workflows do not call are the real ones
	// without a runner: they fail with HostConfigInvalid if called.
	*activities.HostActivities

	now   func() time.Time
	start time.Time

	mu sync.Mutex
	// behave decides a host's outcome at the (simulated) time it is
	// patched; nil means compliant.
	behave      func(h rollout.Host, now time.Time) (rollout.HostState, error)
	patched     map[string]int
	order       []string
	uninstalled map[string]int
	events      []contract.Event
	eventTimes  []time.Duration
	reports     int
}

// newTestFleet registers the fleet's activities; now is the clock hosts
// see (the test environment's simulated one, or the wall clock against a
// real server).
func newTestFleet(r activities.Registry, now func() time.Time) *testFleet {
	f := &testFleet{HostActivities: &activities.HostActivities{}, now: now, start: now(), patched: map[string]int{}, uninstalled: map[string]int{}}
	activities.Register(r, activities.Deps{Hosts: f, Notifier: f, Reports: f})
	return f
}

// PatchHost answers as the scripted host would.
func (f *testFleet) PatchHost(ctx context.Context, in contract.PatchHostInput) (contract.PatchHostResult, error) {
	now := f.now()
	f.mu.Lock()
	f.patched[in.Target.Host.Name]++
	f.order = append(f.order, in.Target.Host.Name)
	behave := f.behave
	f.mu.Unlock()
	state, err := rollout.StateCompliant, error(nil)
	if behave != nil {
		state, err = behave(in.Target.Host, now)
	}
	if err != nil {
		return contract.PatchHostResult{}, err
	}
	return contract.PatchHostResult{
		Verdict: contract.HostVerdict{Host: in.Target.Host.Name, State: state, Reasons: []string{"scripted " + string(state)}},
		Steps:   []string{"scan", "install", "reboot", "wait_for_boot", "verify"}, InstalledAt: now,
	}, nil
}

// UninstallPatch records a rollback.
func (f *testFleet) UninstallPatch(_ context.Context, in contract.UninstallPatchInput) (hostscript.UninstallResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uninstalled[in.Target.Host.Name]++
	return hostscript.UninstallResult{KB: in.Target.Patch.KB, Outcome: hostscript.UninstallOK}, nil
}

// Notify records the event and when (simulated) it was sent.
func (f *testFleet) Notify(ctx context.Context, in contract.NotifyInput) (contract.NotifyResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, in.Event)
	f.eventTimes = append(f.eventTimes, in.Event.At.Sub(f.start))
	return contract.NotifyResult{Delivered: in.Event.Channels}, nil
}

// BuildReport counts the reports asked for and builds them with the real
// activity and policies: nothing to script.
func (f *testFleet) BuildReport(ctx context.Context, in contract.ReportInput) (contract.Report, error) {
	f.mu.Lock()
	f.reports++
	f.mu.Unlock()
	engine, err := testEngine()
	if err != nil {
		return contract.Report{}, err
	}
	return activities.ReportActivities{Policy: engine}.BuildReport(ctx, in)
}

func (f *testFleet) eventsOf(kind contract.EventKind) (evs []contract.Event, at []time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, e := range f.events {
		if e.Kind == kind {
			evs = append(evs, e)
			at = append(at, f.eventTimes[i])
		}
	}
	return evs, at
}

// patchOrder lists the hosts in the order they were patched.
func (f *testFleet) patchOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

func (f *testFleet) patchCount(host string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patched[host]
}

// unreachable is the error a host that does not answer gives.
func unreachable(h rollout.Host) error {
	return temporal.NewApplicationError(fmt.Sprintf("host %s: connection refused", h.Name), contract.Unreachable)
}

// testInventory builds hosts: per region, lab, prodlike and production
// hosts, with one laptop per region.
func testInventory(perRegion int) ([]rollout.Host, []rollout.Site) {
	var hosts []rollout.Host
	sites := []rollout.Site{
		{Name: "paris", Region: "emea", TimeZone: "Europe/Paris", DistributionPoint: `\\paris-dp\patches`},
		{Name: "dallas", Region: "amer", TimeZone: "America/Chicago", DistributionPoint: `\\dallas-dp\patches`},
	}
	for _, s := range sites {
		code := map[string]string{"emea": "EMEA", "amer": "AMER"}[s.Region]
		add := func(name string, tier rollout.Tier, role string) {
			hosts = append(hosts, rollout.Host{Name: name, Address: "127.0.0.1:5986", OS: "windows-server-2008-r2", Site: s.Name,
				Region: s.Region, Tier: tier, Role: role, Credential: "fleet", Owner: "it-" + s.Region, Purpose: "test"})
		}
		add(fmt.Sprintf("LAB-%s-01", code), rollout.TierLab, "web")
		add(fmt.Sprintf("PL-%s-DC1", code), rollout.TierProdlike, "domain_controller")
		add(fmt.Sprintf("PL-%s-MAIL1", code), rollout.TierProdlike, "mail")
		for i := 1; i <= perRegion; i++ {
			add(fmt.Sprintf("WS-%s-%04d", code, i), rollout.TierProduction, "workstation")
		}
		add(fmt.Sprintf("LT-%s-0001", code), rollout.TierProduction, "laptop")
	}
	return hosts, sites
}

// testRollout is an important patch on the staged path: lab, prodlike,
// EMEA then AMER.
func testRollout(filed time.Time) rollout.Rollout {
	return rollout.Rollout{
		ID: "ms08-067", FiledBy: "alice", FiledAt: filed,
		Patch: rollout.Patch{
			KB: "KB958644", Bulletin: "MS08-067", Title: "Server service RPC", CVEs: []string{"CVE-2008-4250"},
			Severity: rollout.SeverityImportant, Published: filed.Add(-time.Hour), Reboot: rollout.RebootRequired,
			Packages: []rollout.Package{{OS: "windows-server-2008-r2", Source: "KB958644.msu", SHA256: "ab", Type: "msu"}},
			Evidence: rollout.Evidence{Hotfix: "KB958644", Files: []rollout.FileEvidence{{Path: `C:\Windows\System32\netapi32.dll`, MinVersion: "6.1.7600.16385"}}},
		},
		Risk: rollout.Risk{ExploitPublic: true, Exposure: "internal", Workaround: "block TCP 139/445", Scanners: []string{"nmap smb-check-vulns"}},
		// The plan policy's minimum soaks for an important patch.
		Stages: []rollout.Stage{
			{Name: "lab", Hosts: "tier:lab", Soak: 24 * time.Hour, ApprovalGroup: "security-team"},
			{Name: "prodlike", Hosts: "tier:prodlike", Soak: 48 * time.Hour, ApprovalGroup: "security-team"},
		},
		Waves: []rollout.Wave{
			{Name: "amer", Hosts: "region:amer and tier:production", After: []string{"emea"}, MaxParallel: 10, MaxFailures: rollout.Threshold{Percent: 20}},
			{Name: "emea", Hosts: "region:emea and tier:production", MaxParallel: 10, MaxFailures: rollout.Threshold{Count: 2}},
		},
		Channels: []rollout.Channel{{Name: "security", Type: "webhook"}},
	}
}
