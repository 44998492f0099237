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
	behave  func(h rollout.Host, now time.Time) (rollout.HostState, error)
	patched map[string]int
	// present: hosts whose patch is already in effect, so PatchHost
	// verifies without installing.
	present map[string]bool
	// unknownSets are credential sets the worker cannot resolve.
	unknownSets map[string]bool
	// found decides what the preflight scan finds on a host; nil means
	// vulnerable. verified counts the scans per host.
	found       func(h rollout.Host) (contract.HostVerdict, error)
	verified    map[string]int
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
	f := &testFleet{HostActivities: &activities.HostActivities{}, now: now, start: now(), patched: map[string]int{}, present: map[string]bool{}, unknownSets: map[string]bool{}, uninstalled: map[string]int{}, verified: map[string]int{}}
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
	steps := []string{"scan", "install", "reboot", "wait_for_boot", "verify"}
	f.mu.Lock()
	if f.present[in.Target.Host.Name] {
		steps = []string{"scan", "verify"}
	}
	f.mu.Unlock()
	return contract.PatchHostResult{
		Verdict: contract.HostVerdict{Host: in.Target.Host.Name, State: state, Reasons: []string{"scripted " + string(state)}},
		Steps:   steps, InstalledAt: now,
	}, nil
}

// VerifyPatch answers the preflight scan as found says.
func (f *testFleet) VerifyPatch(_ context.Context, in contract.VerifyPatchInput) (contract.HostVerdict, error) {
	f.mu.Lock()
	f.verified[in.Target.Host.Name]++
	found := f.found
	f.mu.Unlock()
	if found != nil {
		return found(in.Target.Host)
	}
	return contract.HostVerdict{Host: in.Target.Host.Name, State: rollout.StatePending, Baseline: "vulnerable",
		Reasons: []string{"scripted: the patch is not installed"}}, nil
}

// PreflightCredentials knows every set but those listed in unknownSets.
func (f *testFleet) PreflightCredentials(_ context.Context, in contract.PreflightCredentialsInput) (contract.PreflightCredentialsResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var res contract.PreflightCredentialsResult
	for _, u := range in.Uses {
		if f.unknownSets[u.Set] {
			res.Unknown = append(res.Unknown, contract.CredentialProblem{CredentialUse: u, Reason: "credential set not found"})
		}
	}
	return res, nil
}

// UninstallPatch records a rollback, proven by the scripted host.
func (f *testFleet) UninstallPatch(_ context.Context, in contract.UninstallPatchInput) (contract.UninstallPatchResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.uninstalled[in.Target.Host.Name]++
	return contract.UninstallPatchResult{
		Uninstall: hostscript.UninstallResult{KB: in.Target.Patch.KB, Outcome: hostscript.UninstallOKRebootRequired, ExitCode: 3010, RebootRequired: true},
		Verdict:   contract.HostVerdict{Host: in.Target.Host.Name, State: rollout.StateRolledBack, Reasons: []string{"scripted rolled_back"}},
		Steps:     []string{"scan", "uninstall", "reboot", "wait_for_boot", "verify"},
	}, nil
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
