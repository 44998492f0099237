package activities

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// simHost is a scripted Windows host behind wsmanHost: just enough state
// (hotfix, one file version staged until reboot, CBS flag, boot time) to
// drive the activities' sequencing through the real runner and the real
// compliance policy. Fault behaviour mirrors fleetsim's profiles.
type simHost struct {
	mu          sync.Mutex
	hotfix      bool
	version     string
	staged      string
	cbs         bool
	boot        time.Time
	downUntil   time.Time
	gone        bool
	installs    int
	installExit int64
	// profile: "", "registry_only", "no_reboot", "never_returns", "reverts_on_boot".
	profile      string
	loseInstalls int // install replies still to lose (flaky)
	// noInstallTime: the installer reports no install time.
	noInstallTime bool
	downtime      time.Duration
}

const (
	testKB      = "KB958644"
	testFile    = `C:\Windows\System32\netapi32.dll`
	oldVersion  = "5.2.3790.4392"
	newVersion  = "5.2.3790.4393"
	testOS      = "windows-server-2003"
	testPackage = `patches\WindowsServer2003-KB958644-x86-ENU.msu`
)

func newSimHost(profile string) *simHost {
	return &simHost{version: oldVersion, boot: time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second),
		installExit: 3010, profile: profile, downtime: 150 * time.Millisecond}
}

func (h *simHost) down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gone || time.Now().Before(h.downUntil)
}

func (h *simHost) installCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.installs
}

func (h *simHost) loseReply(stdin string) bool {
	op, _, _ := hostscript.Parse(stdin)
	h.mu.Lock()
	defer h.mu.Unlock()
	if op == hostscript.OpInstall && h.loseInstalls > 0 {
		h.loseInstalls--
		return true
	}
	return false
}

func (h *simHost) answer(_, stdin string) (string, int) {
	op, raw, err := hostscript.Parse(stdin)
	if err != nil {
		return "", 1
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var out any
	switch op {
	case hostscript.OpScan:
		var p hostscript.ScanParams
		_ = json.Unmarshal(raw, &p)
		s := hostscript.ScanResult{Hostname: "PARIS-DC-01", OSCaption: "Microsoft Windows Server 2003", OSBuild: "3790",
			LastBootUpTime: h.boot, ScannedAt: time.Now().UTC(), Reboot: hostscript.Reboot{CBSRebootPending: h.cbs}}
		if h.hotfix {
			s.Hotfixes = append(s.Hotfixes, hostscript.Hotfix{ID: testKB})
		}
		for _, f := range p.Files {
			s.Files = append(s.Files, hostscript.File{Path: f.Path, Exists: true, Version: h.version})
		}
		out = s
	case hostscript.OpInstall:
		h.installs++
		r := hostscript.InstallResult{KB: testKB, ExitCode: h.installExit}
		switch h.installExit {
		case 0, 3010:
			h.hotfix, h.cbs = true, true
			if h.profile != "registry_only" {
				h.staged = newVersion
			}
			r.Outcome, r.RebootRequired, r.InstalledAt = hostscript.InstallOKRebootRequired, true, time.Now().UTC()
			if h.noInstallTime {
				r.InstalledAt = time.Time{}
			}
		default:
			r.Outcome = hostscript.InstallFailed
		}
		out = r
	case hostscript.OpReboot:
		out = hostscript.RebootResult{Outcome: hostscript.RebootScheduled, PreviousBootTime: h.boot}
		time.AfterFunc(10*time.Millisecond, h.reboot)
	case hostscript.OpUninstall:
		r := hostscript.UninstallResult{KB: testKB, Outcome: hostscript.UninstallNotInstalled}
		if h.hotfix {
			h.hotfix, h.cbs = false, true
			r.Outcome, r.ExitCode, r.RebootRequired = hostscript.UninstallOKRebootRequired, 3010, true
		}
		out = r
	default:
		return "", 1
	}
	b, _ := json.Marshal(out)
	return string(b), 0
}

func (h *simHost) reboot() {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch h.profile {
	case "no_reboot":
		return
	case "never_returns":
		h.gone = true
		return
	}
	h.downUntil = time.Now().Add(h.downtime)
	h.boot = h.downUntil.UTC().Truncate(time.Second).Add(time.Second)
	h.cbs = false
	if h.staged != "" && h.profile != "reverts_on_boot" {
		h.version = h.staged
	}
	h.staged = ""
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs the real activities and runner against one simHost.
type harness struct {
	t        *testing.T
	sim      *simHost
	acts     *HostActivities
	env      *testsuite.TestActivityEnvironment
	logs     *syncBuffer
	password string
	target   contract.HostTarget
	mu       sync.Mutex
	lastBeat *patchProgress
	attempts int
	// maxAttempts bounds run's retries (default 5).
	maxAttempts int
}

var (
	policyOnce   sync.Once
	policyEngine *policies.Engine
	policyErr    error
)

func testPolicy(t *testing.T) *policies.Engine {
	t.Helper()
	policyOnce.Do(func() { policyEngine, policyErr = policies.Load(context.Background(), "") })
	if policyErr != nil {
		t.Fatal(policyErr)
	}
	return policyEngine
}

func randomPassword(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "pw-" + hex.EncodeToString(b)
}

func newHarness(t *testing.T, sim *simHost, password string) *harness {
	t.Helper()
	h := &harness{t: t, sim: sim, logs: &syncBuffer{}, password: randomPassword(t)}
	if password == "" {
		password = h.password
	}
	addr, ca := tlsServer(t, &wsmanHost{answer: sim.answer, down: sim.down, loseReply: sim.loseReply, password: h.password})
	engine := testPolicy(t)
	h.acts = &HostActivities{
		Runner: &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "patchway", Password: password, Binding: loopbackBinding}},
			Transport: engine, DialTimeout: time.Second, OperationTimeout: 2 * time.Second},
		Policy:         engine,
		PollInitial:    20 * time.Millisecond,
		PollMax:        100 * time.Millisecond,
		PollTimeout:    2 * time.Second,
		HeartbeatEvery: 20 * time.Millisecond,
		RebootDelay:    -1,
	}
	h.setupEnv()
	h.target = contract.HostTarget{
		RolloutID:         "ms08-067",
		DistributionPoint: `\\dp01.paris.example\wsus`,
		Host: rollout.Host{Name: "paris-dc-01", Address: addr, OS: testOS, Site: "paris", Region: "emea",
			Tier: rollout.TierProduction, Role: "domain_controller", Credential: "fleet", TLS: rollout.HostTLS{CAFile: ca}},
		Patch: rollout.Patch{KB: testKB, Severity: rollout.SeverityCritical, Reboot: rollout.RebootRequired,
			Packages: []rollout.Package{{OS: testOS, Source: testPackage, SHA256: strings.Repeat("ab", 32), Type: "msu"}},
			Evidence: rollout.Evidence{Hotfix: testKB, Files: []rollout.FileEvidence{{Path: testFile, MinVersion: newVersion}}}},
	}
	return h
}

// setupEnv builds the activity environment with captured logs and
// heartbeat details.
func (h *harness) setupEnv() {
	suite := &testsuite.WorkflowTestSuite{}
	suite.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	h.env = suite.NewTestActivityEnvironment()
	Register(h.env, Deps{Hosts: h.acts})
	h.env.SetOnActivityHeartbeatListener(func(_ *activity.Info, d converter.EncodedValues) {
		var p patchProgress
		if d != nil && d.HasValues() && d.Get(&p) == nil {
			h.mu.Lock()
			h.lastBeat = &p
			h.mu.Unlock()
		}
	})
}

// run executes an activity the way Temporal would: retryable failures are
// retried (up to maxAttempts) with the last heartbeat details.
func (h *harness) run(name string, in, out any) error {
	h.t.Helper()
	var err error
	maxAttempts := cmp.Or(h.maxAttempts, 5)
	for h.attempts = 1; h.attempts <= maxAttempts; h.attempts++ {
		var val converter.EncodedValue
		val, err = h.env.ExecuteActivity(name, in)
		if err == nil {
			return val.Get(out)
		}
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) || ae.NonRetryable() {
			return err
		}
		h.mu.Lock()
		if h.lastBeat != nil {
			h.env.SetHeartbeatDetails(*h.lastBeat)
		}
		h.mu.Unlock()
	}
	return err
}

func appErrorType(err error) (string, bool) {
	var ae *temporal.ApplicationError
	if errors.As(err, &ae) {
		return ae.Type(), ae.NonRetryable()
	}
	return "", false
}

// TestPatchHostLostInstallReplyIsNotInstalledTwice covers what the
// simulated fleet cannot stage on demand: the installer ran but its reply
// was lost. The retried attempt scans first, sees the hotfix, and does not
// install again. Every fault profile runs against fleetsim in
// fleet_test.go.
func TestPatchHostLostInstallReplyIsNotInstalledTwice(t *testing.T) {
	sim := newSimHost("")
	sim.loseInstalls = 1
	h := newHarness(t, sim, "")
	var res contract.PatchHostResult
	if err := h.run(contract.PatchHostName, contract.PatchHostInput{Target: h.target, Reboot: true, BootTimeout: 600 * time.Millisecond}, &res); err != nil {
		t.Fatalf("PatchHost: %v", err)
	}
	if res.Verdict.State != rollout.StateCompliant || sim.installCount() != 1 || h.attempts != 2 {
		t.Errorf("state %s after %d attempts with %d installs; want compliant after 2 attempts with 1 install", res.Verdict.State, h.attempts, sim.installCount())
	}
	if want := []string{"scan", "install", "reboot", "wait_for_boot", "verify"}; !slices.Equal(res.Steps, want) {
		t.Errorf("steps = %v, want %v", res.Steps, want)
	}
}

func TestPatchHostResumesAfterAWorkerCrashWithoutReinstalling(t *testing.T) {
	sim := newSimHost("")
	h := newHarness(t, sim, "")
	// The crashed attempt had started the install, which completed on the
	// host; its heartbeat recorded only that it started.
	if _, _ = sim.answer("", mustScript(t, hostscript.OpInstall, hostscript.InstallParams{KB: testKB})); sim.installCount() != 1 {
		t.Fatal("setup: install did not apply")
	}
	started := time.Now().UTC().Add(-time.Minute)
	h.env.SetHeartbeatDetails(patchProgress{Steps: []string{"scan"}, InstallStarted: true, InstallStartedAt: started})
	var res contract.PatchHostResult
	if err := h.run(contract.PatchHostName, contract.PatchHostInput{Target: h.target, Reboot: true, BootTimeout: time.Second}, &res); err != nil {
		t.Fatal(err)
	}
	if sim.installCount() != 1 {
		t.Errorf("installs = %d after resume, want 1", sim.installCount())
	}
	if res.Verdict.State != rollout.StateCompliant || !res.InstalledAt.Equal(started) {
		t.Errorf("state %s installed_at %s; want compliant with the recorded start %s", res.Verdict.State, res.InstalledAt, started)
	}
}

// TestPatchHostStampsTheInstallWithItsClock: when the installer reports
// no install time, the one the compliance policy judges is read from
// HostActivities.Now, the clock a test sets.
func TestPatchHostStampsTheInstallWithItsClock(t *testing.T) {
	sim := newSimHost("")
	sim.noInstallTime = true
	h := newHarness(t, sim, "")
	clock := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	h.acts.Now = func() time.Time { return clock }
	var res contract.PatchHostResult
	if err := h.run(contract.PatchHostName, contract.PatchHostInput{Target: h.target, Reboot: true, BootTimeout: time.Second}, &res); err != nil {
		t.Fatal(err)
	}
	if res.Verdict.State != rollout.StateCompliant || !res.InstalledAt.Equal(clock) {
		t.Errorf("state %s installed_at %s; want compliant, installed at the clock's %s", res.Verdict.State, res.InstalledAt, clock)
	}
}

func mustScript(t *testing.T, op hostscript.Op, params any) string {
	t.Helper()
	s, err := hostscript.Script(op, params)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestInstallPatchNeverInstallsTwice(t *testing.T) {
	sim := newSimHost("")
	h := newHarness(t, sim, "")
	var first, second contract.InstallPatchResult
	if err := h.run(contract.InstallPatchName, contract.InstallPatchInput{Target: h.target}, &first); err != nil {
		t.Fatal(err)
	}
	if err := h.run(contract.InstallPatchName, contract.InstallPatchInput{Target: h.target}, &second); err != nil {
		t.Fatal(err)
	}
	if first.Skipped || first.Install == nil || first.Install.Outcome != hostscript.InstallOKRebootRequired {
		t.Errorf("first install = %+v", first)
	}
	if !second.Skipped || second.Install != nil {
		t.Errorf("second install not skipped: %+v", second)
	}
	if sim.installCount() != 1 {
		t.Errorf("installs = %d, want 1", sim.installCount())
	}
}

func TestHostOperationErrorsAreClassified(t *testing.T) {
	tests := []struct {
		name          string
		setup         func(*simHost)
		wrongPassword bool
		activity      string
		input         func(contract.HostTarget) any
		wantType      string
		wantNonRetry  bool
		check         func(*testing.T, *temporal.ApplicationError)
	}{
		{name: "install_fails carries the exit code", setup: func(h *simHost) { h.installExit = 1603 }, activity: contract.InstallPatchName,
			input: func(t contract.HostTarget) any { return contract.InstallPatchInput{Target: t} }, wantType: contract.InstallFailed, wantNonRetry: true,
			check: func(t *testing.T, ae *temporal.ApplicationError) {
				var d contract.HostErrorDetails
				if err := ae.Details(&d); err != nil || d.ExitCode != 1603 {
					t.Errorf("details = %+v, %v; want exit code 1603", d, err)
				}
			}},
		{name: "auth_fails is non-retryable AuthFailed", wrongPassword: true, activity: contract.ScanHostName,
			input: func(t contract.HostTarget) any { return contract.ScanHostInput{Target: t} }, wantType: contract.AuthFailed, wantNonRetry: true},
		{name: "host down is retryable Unreachable", setup: func(h *simHost) { h.gone = true }, activity: contract.ScanHostName,
			input: func(t contract.HostTarget) any { return contract.ScanHostInput{Target: t} }, wantType: contract.Unreachable, wantNonRetry: false},
		{name: "no package for the OS is UnsupportedOS", activity: contract.InstallPatchName,
			input: func(t contract.HostTarget) any {
				t.Host.OS = "windows-server-2003-r2"
				return contract.InstallPatchInput{Target: t}
			}, wantType: contract.UnsupportedOS, wantNonRetry: true},
		{name: "never_returns: WaitForBoot gives HostDidNotReturn, host unreachable", setup: func(h *simHost) { h.gone = true }, activity: contract.WaitForBootName,
			input: func(t contract.HostTarget) any {
				return contract.WaitForBootInput{Target: t, PreviousBootTime: time.Now().Add(-time.Hour), Timeout: 300 * time.Millisecond}
			}, wantType: contract.HostDidNotReturn, wantNonRetry: true,
			check: func(t *testing.T, ae *temporal.ApplicationError) {
				var d contract.HostErrorDetails
				if err := ae.Details(&d); err != nil || d.Reachable {
					t.Errorf("details = %+v, %v; want reachable false", d, err)
				}
			}},
		{name: "no_reboot: WaitForBoot gives HostDidNotReturn, host reachable with its old boot time", activity: contract.WaitForBootName,
			input: func(t contract.HostTarget) any { return nil }, wantType: contract.HostDidNotReturn, wantNonRetry: true,
			check: func(t *testing.T, ae *temporal.ApplicationError) {
				var d contract.HostErrorDetails
				if err := ae.Details(&d); err != nil || !d.Reachable || d.BootTime.IsZero() {
					t.Errorf("details = %+v, %v; want reachable with a boot time", d, err)
				}
				if !strings.Contains(ae.Error(), "did not reboot") {
					t.Errorf("message %q should say the host did not reboot", ae.Error())
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := newSimHost("")
			if tt.setup != nil {
				tt.setup(sim)
			}
			pw := ""
			if tt.wrongPassword {
				pw = "wrong-" + randomPassword(t)
			}
			h := newHarness(t, sim, pw)
			in := tt.input(h.target)
			if in == nil { // WaitForBoot against a host that keeps its boot time
				in = contract.WaitForBootInput{Target: h.target, PreviousBootTime: sim.boot, Timeout: 300 * time.Millisecond}
			}
			_, err := h.env.ExecuteActivity(tt.activity, in)
			var ae *temporal.ApplicationError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want an ApplicationError", err)
			}
			if ae.Type() != tt.wantType || ae.NonRetryable() != tt.wantNonRetry {
				t.Fatalf("error %q: type %s non-retryable %v; want %s %v", ae.Error(), ae.Type(), ae.NonRetryable(), tt.wantType, tt.wantNonRetry)
			}
			if tt.check != nil {
				tt.check(t, ae)
			}
		})
	}
}

func TestWaitForBootSeesTheNewBootTime(t *testing.T) {
	sim := newSimHost("")
	// Down longer than the runner's own connection retries, so that
	// WaitForBoot itself has to poll again.
	sim.downtime = 2 * time.Second
	h := newHarness(t, sim, "")
	previous := sim.boot
	time.AfterFunc(50*time.Millisecond, sim.reboot)
	var res contract.WaitForBootResult
	if err := h.run(contract.WaitForBootName, contract.WaitForBootInput{Target: h.target, PreviousBootTime: previous, Timeout: 5 * time.Second}, &res); err != nil {
		t.Fatal(err)
	}
	if !res.BootTime.After(previous) || res.Polls < 2 {
		t.Errorf("boot time %s after %d polls; want a later boot than %s seen after polling", res.BootTime, res.Polls, previous)
	}
}

func TestVerifyPatchJudgesWithThePolicy(t *testing.T) {
	sim := newSimHost("")
	sim.hotfix, sim.version = true, newVersion
	h := newHarness(t, sim, "")
	var v contract.HostVerdict
	if err := h.run(contract.VerifyPatchName, contract.VerifyPatchInput{Target: h.target}, &v); err != nil {
		t.Fatal(err)
	}
	if v.State != rollout.StateCompliant || v.Decision.Revision == "" || v.Evidence.LastBootUpTime.IsZero() {
		t.Errorf("verdict = %+v; want compliant with the policy revision and evidence", v)
	}
}

func TestUninstallPatchIsIdempotent(t *testing.T) {
	sim := newSimHost("")
	sim.hotfix = true
	h := newHarness(t, sim, "")
	var res [2]contract.UninstallPatchResult
	for i := range res {
		if err := h.run(contract.UninstallPatchName, contract.UninstallPatchInput{Target: h.target}, &res[i]); err != nil {
			t.Fatal(err)
		}
	}
	first, second := res[0].Uninstall, res[1].Uninstall
	if first.Outcome != hostscript.UninstallOKRebootRequired || !first.RebootRequired || second.Outcome != hostscript.UninstallNotInstalled {
		t.Errorf("uninstall outcomes %q then %q; want %q then %q", first.Outcome, second.Outcome, hostscript.UninstallOKRebootRequired, hostscript.UninstallNotInstalled)
	}
	// No reboot was allowed: the uninstall waits for it, and is not
	// called rolled_back.
	if st := res[0].Verdict.State; st == rollout.StateRolledBack {
		t.Errorf("rolled_back before the uninstall's reboot: %v", res[0].Verdict.Reasons)
	}
}

// TestNoCredentialLeaks runs every activity, successful and failing, and
// looks for the random password in inputs, results, errors and logs.
func TestNoCredentialLeaks(t *testing.T) {
	for _, wrong := range []bool{false, true} {
		t.Run(fmt.Sprint("wrong password ", wrong), func(t *testing.T) {
			sim := newSimHost("")
			h := newHarness(t, sim, "")
			secret := h.password
			if wrong {
				secret = "wrong-" + randomPassword(t)
				h = newHarness(t, sim, secret)
			}
			var seen []string
			record := func(v any) {
				b, _ := json.Marshal(v)
				seen = append(seen, string(b), fmt.Sprintf("%+v", v))
			}
			calls := []struct {
				name string
				in   any
			}{
				{contract.ScanHostName, contract.ScanHostInput{Target: h.target}},
				{contract.InstallPatchName, contract.InstallPatchInput{Target: h.target}},
				{contract.PatchHostName, contract.PatchHostInput{Target: h.target, Reboot: true, BootTimeout: time.Second}},
				{contract.VerifyPatchName, contract.VerifyPatchInput{Target: h.target}},
				{contract.UninstallPatchName, contract.UninstallPatchInput{Target: h.target}},
			}
			for _, c := range calls {
				record(c.in)
				val, err := h.env.ExecuteActivity(c.name, c.in)
				if err != nil {
					seen = append(seen, err.Error())
					var ae *temporal.ApplicationError
					if errors.As(err, &ae) && ae.HasDetails() {
						var d contract.HostErrorDetails
						_ = ae.Details(&d)
						record(d)
					}
					continue
				}
				var out json.RawMessage
				_ = val.Get(&out)
				seen = append(seen, string(out))
			}
			seen = append(seen, h.logs.String())
			if len(h.logs.String()) == 0 {
				t.Fatal("no logs captured: the test would prove nothing")
			}
			for _, s := range seen {
				if strings.Contains(s, secret) {
					t.Fatalf("credential found in %q", s)
				}
			}
		})
	}
}
