package activities_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// patchHostWorkflow runs PatchHost as the rollout's batches do: one
// activity per host with heartbeats, a few retries, and the host
// operations' non-retryable errors.
func patchHostWorkflow(ctx workflow.Context, in contract.PatchHostInput) (contract.PatchHostResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			// Five tries, as the rollout gives a host (withHostOptions): a
			// flaky host's dropped connections are retried by the runner
			// and the activity alike.
			InitialInterval: 100 * time.Millisecond, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{contract.AuthFailed, contract.InstallFailed, contract.HostDidNotReturn},
		},
	})
	var res contract.PatchHostResult
	err := workflow.ExecuteActivity(ctx, contract.PatchHostName, in).Get(ctx, &res)
	return res, err
}

// TestPatchHostOnTheSimulatedFleet drives PatchHost over real WinRM (the
// masterzen client, HTTPS verified with the fleet's CA) against a
// simulated host per fault profile, with the real compliance policy, and
// checks the state Patchway concludes, how many installs the host saw,
// and the evidence the verdict quotes.
func TestPatchHostOnTheSimulatedFleet(t *testing.T) {
	ro, _, diags := rollout.Load(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("load ms08-067.hcl: %v", diags)
	}
	const os = "windows-xp-sp3"
	evidence := ro.Patch.FilesDeclaredFor(os)
	if len(evidence) == 0 {
		t.Fatal("ms08-067.hcl has no file evidence for " + os)
	}
	file := evidence[0]

	tests := []struct {
		name      string
		faults    []fleetsim.FaultSpec
		installed bool
		noReboot  bool
		hostOS    string
		// files and otherKBs are in effect at start: file versions and
		// updates other than the patch (Get-HotFix lists them).
		files    map[string]string
		otherKBs []string
		// wantSteps is the host sequence's steps, when the case checks it.
		wantSteps string
		// certPin pins the listener's certificate in the inventory.
		certPin string
		// facts sets host facts a scenario's population can set.
		facts        func(*fleetsim.HostSpec)
		bootTimeout  time.Duration
		wantState    rollout.HostState
		wantErrType  string
		wantInstalls int
		wantExit     int64
		// wantReason and wantProof are substrings of the verdict's
		// reasons and evidence.
		wantReason, wantProof string
	}{
		{name: "clean host is patched, rebooted and compliant on proof", wantState: rollout.StateCompliant, wantInstalls: 1,
			wantProof: file.Path + " " + file.MinVersion + " (expected >= " + file.MinVersion + ")"},
		{name: "a host already patched is verified, not installed again", installed: true, wantState: rollout.StateCompliant, wantInstalls: 0,
			wantProof: "hotfix KB958644 listed by Get-HotFix"},
		{name: "registry_only: the hotfix without the new file is not_effective", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultRegistryOnly}},
			wantState: rollout.StateNotEffective, wantInstalls: 1, wantReason: "is present but the fix is not in effect", wantProof: "(expected >= " + file.MinVersion + ")"},
		{name: "no_reboot: installed but never rebooted is pending_reboot, and the reasons say the reboot was accepted", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultNoReboot}},
			wantState: rollout.StatePendingReboot, wantInstalls: 1, wantReason: "accepted the reboot requested at"},
		{name: "a later update in effect: compliant naming it, neither installed nor rebooted",
			files: map[string]string{file.Path: bumped(file.MinVersion)}, otherKBs: []string{"KB2509553"},
			wantState: rollout.StateCompliant, wantInstalls: 0, wantSteps: "scan,verify",
			wantReason: "superseded: KB2509553, installed "},
		{name: "fix in effect from a non-CBS installer Get-HotFix cannot see: compliant on the file evidence",
			files:     map[string]string{file.Path: file.MinVersion},
			wantState: rollout.StateCompliant, wantInstalls: 0, wantSteps: "scan,verify",
			wantReason: "fix in effect by file evidence: 1 file(s) at or above expected versions (" + file.Path + " " + file.MinVersion + ")"},
		{name: "never_returns: unreachable once the boot timeout passes, and the reason says so", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultNeverReturns}},
			wantState: rollout.StateUnreachable, wantInstalls: 1, wantReason: "host did not come back within "},
		{name: "install_fails: failed with the installer's exit code", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultInstallFails, ExitCode: 1603}},
			wantState: rollout.StateFailed, wantInstalls: 1, wantExit: 1603},
		{name: "flaky: 30% of connections dropped, compliant after retries with one install", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultFlaky, Rate: 0.3}},
			wantState: rollout.StateCompliant, wantInstalls: 1},
		{name: "slow: every answer late, still compliant", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultSlow, Delay: 200 * time.Millisecond}},
			wantState: rollout.StateCompliant, wantInstalls: 1},
		{name: "auth_fails: refused credentials fail without a retry", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultAuthFails}},
			wantErrType: contract.AuthFailed, wantInstalls: 0},
		{name: "reverts_on_boot: not_effective after the reboot", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultRevertsOnBoot}},
			wantState: rollout.StateNotEffective, wantInstalls: 1},
		{name: "pending_rename_noise: another program's rename entry does not block compliance", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultPendingRenameNoise}},
			wantState: rollout.StateCompliant, wantInstalls: 1, wantReason: "PendingFileRenameOperations", wantProof: "reboot pending: PendingFileRenameOperations"},
		{name: "a reboot the policy does not allow now leaves the host pending_reboot", noReboot: true,
			wantState: rollout.StatePendingReboot, wantInstalls: 1},
		{name: "no package for the host's OS is not_applicable", hostOS: "windows-nt4-sp6",
			wantState: rollout.StateNotApplicable, wantInstalls: 0, wantReason: "windows-nt4-sp6"},
		{name: "impostor: another machine at the address is identity_mismatch and never installed", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultImpostor, AnswersAs: "WS-LYO-0042"}},
			installed: true, wantState: rollout.StateIdentityMismatch, wantInstalls: 0, wantReason: `answered as "ws-lyo-0042"`},
		{name: "replaced_on_boot: the machine that answers after the reboot is not the one patched", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultReplacedOnBoot}},
			wantState: rollout.StateIdentityMismatch, wantInstalls: 1, wantReason: "changed during the run"},
		{name: "a listener whose certificate is not the pinned one is refused before any credential", certPin: strings.Repeat("0f", 32),
			wantErrType: contract.IdentityMismatch, wantInstalls: 0},
		{name: "down: a host whose port refuses connections is unreachable, nothing installed", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultDown}},
			wantErrType: contract.Unreachable, wantInstalls: 0, wantReason: "connection refused"},
		{name: "slow_boot: a reboot that keeps the port closed for a while is waited for, then compliant", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultSlowBoot, Delay: 1500 * time.Millisecond}},
			bootTimeout: 10 * time.Second, wantState: rollout.StateCompliant, wantInstalls: 1},
		{name: "services_late: WinRM answers before the services after the boot; waited for, then compliant", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultServicesLate, Delay: 1500 * time.Millisecond}},
			bootTimeout: 10 * time.Second, wantState: rollout.StateCompliant, wantInstalls: 1},
		{name: "cbs_revert: servicing reverts the install at boot; the KB is gone and the host is not compliant", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultCBSRevert}},
			wantState: rollout.StateNotEffective, wantInstalls: 1, wantReason: "neither KB958644 nor the new files are present"},
		{name: "installer exit 0x00240006 (already installed) with nothing in effect is not compliant", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultInstallFails, ExitCode: 2359302}},
			wantState: rollout.StateNotEffective, wantInstalls: 1, wantExit: 2359302},
		{name: "installer exit 0x80240017 (not applicable) is not_applicable", faults: []fleetsim.FaultSpec{{Kind: fleetsim.FaultInstallFails, ExitCode: 2149842967}},
			wantState: rollout.StateNotApplicable, wantInstalls: 1},
		{name: "an earlier update's CBS reboot pending before the run: patched, rebooted, compliant",
			facts:     func(h *fleetsim.HostSpec) { h.CBSRebootPending, h.WURebootRequired = true, true },
			wantState: rollout.StateCompliant, wantInstalls: 1},
		{name: "the patch installed by a non-CBS installer Get-HotFix does not list: compliant on the files, not installed",
			facts:     func(h *fleetsim.HostSpec) { h.Hidden = []string{"KB958644"} },
			wantState: rollout.StateCompliant, wantInstalls: 0, wantSteps: "scan,verify", wantReason: "fix in effect by file evidence"},
	}

	var specs []fleetsim.HostSpec
	for i, tt := range tests {
		spec := fleetsim.HostSpec{Host: rollout.Host{Name: "host-" + string(rune('a'+i)), OS: cmp.Or(tt.hostOS, os), Site: "paris", Region: "emea",
			Tier: rollout.TierProduction, Role: "workstation", Owner: "it@corp.example"}, Faults: tt.faults, Files: tt.files, Installed: tt.otherKBs}
		if tt.installed {
			spec.Installed = append(spec.Installed, ro.Patch.KB)
		}
		if tt.facts != nil {
			tt.facts(&spec)
		}
		specs = append(specs, spec)
	}
	sf := startSimulatedFleet(t, ro.Patch, specs)
	fleet, inv, acts, password := sf.fleet, sf.inv, sf.acts, sf.password

	for i, tt := range tests {
		host := inv.Hosts[i]
		host.TLS.CertSHA256 = tt.certPin
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetTestTimeout(time.Minute)
			env.RegisterWorkflow(patchHostWorkflow)
			activities.Register(env, activities.Deps{Hosts: acts})
			env.ExecuteWorkflow(patchHostWorkflow, contract.PatchHostInput{
				Target:      contract.HostTarget{RolloutID: ro.ID, Host: host, Patch: ro.Patch, DistributionPoint: sf.distributionPoint},
				Reboot:      !tt.noReboot,
				BootTimeout: cmp.Or(tt.bootTimeout, 3*time.Second),
			})
			if n := fleet.Host(host.Name).InstallCount(ro.Patch.KB); n != tt.wantInstalls {
				t.Errorf("the host saw %d installs, want %d", n, tt.wantInstalls)
			}
			if tt.wantErrType != "" {
				var ae *temporal.ApplicationError
				if err := env.GetWorkflowError(); !errors.As(err, &ae) || ae.Type() != tt.wantErrType {
					t.Fatalf("error %v, want type %s", err, tt.wantErrType)
				}
				if strings.Contains(env.GetWorkflowError().Error(), password) {
					t.Error("the error quotes the password")
				}
				if tt.wantReason != "" && !strings.Contains(env.GetWorkflowError().Error(), tt.wantReason) {
					t.Errorf("error %q lacks %q", env.GetWorkflowError(), tt.wantReason)
				}
				return
			}
			var res contract.PatchHostResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatalf("PatchHost: %v", err)
			}
			v := res.Verdict
			t.Logf("%s: %s", v.State, strings.Join(v.Reasons, "; "))
			if v.State != tt.wantState {
				t.Errorf("state %s (%s), want %s", v.State, strings.Join(v.Reasons, "; "), tt.wantState)
			}
			if tt.wantExit != 0 && res.ExitCode != tt.wantExit {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantExit)
			}
			if tt.wantReason != "" && !strings.Contains(strings.Join(v.Reasons, "\n"), tt.wantReason) {
				t.Errorf("reasons %q lack %q", v.Reasons, tt.wantReason)
			}
			if tt.wantSteps != "" && strings.Join(res.Steps, ",") != tt.wantSteps {
				t.Errorf("steps %q, want %q", strings.Join(res.Steps, ","), tt.wantSteps)
			}
			if tt.wantProof != "" && !strings.Contains(strings.Join(v.Proof, "\n"), tt.wantProof) {
				t.Errorf("evidence %q lacks %q", v.Proof, tt.wantProof)
			}
		})
	}
}

// bumped is a version above v: the file a later update leaves
// ("5.1.2600.5694" -> "5.1.2600.6694").
func bumped(v string) string {
	i := strings.LastIndexByte(v, '.')
	n, _ := strconv.Atoi(v[i+1:])
	return v[:i+1] + strconv.Itoa(n+1000)
}

// simulatedFleet is a running fleet of simulated hosts with the real
// WinRM runner and policies pointed at it.
type simulatedFleet struct {
	fleet             *fleetsim.Fleet
	inv               *rollout.Inventory
	acts              *activities.HostActivities
	password          string
	distributionPoint string
}

// startSimulatedFleet starts hosts whose catalogue is patch, over HTTPS
// verified with the fleet's CA, with a random password.
func startSimulatedFleet(t testing.TB, patch rollout.Patch, specs []fleetsim.HostSpec) simulatedFleet {
	t.Helper()
	sc := &fleetsim.Scenario{Name: "activities", Credential: "fleet", Hosts: specs,
		Catalog: fleetsim.CatalogOfPatch(patch),
		Sites:   []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris", DistributionPoint: `\\dp01.paris.example\wsus`}}}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	password := hex.EncodeToString(b)
	fleet, err := fleetsim.Start(context.Background(), sc, fleetsim.Options{Password: password, Seed: 7, RebootDowntime: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fleet.Close() })
	engine, err := policies.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	acts := &activities.HostActivities{
		Runner: &activities.WinRMRunner{Credentials: activities.StaticCredentials{"fleet": {Username: "patchway", Password: password, Binding: activities.CredentialBinding{Addresses: []string{"127.0.0.0/8"}}}},
			Transport: engine, DialTimeout: time.Second, OperationTimeout: 2 * time.Second},
		Policy: engine, PollInitial: 20 * time.Millisecond, PollMax: 100 * time.Millisecond, PollTimeout: 2 * time.Second,
		HeartbeatEvery: 50 * time.Millisecond, RebootDelay: -1,
	}
	return simulatedFleet{fleet: fleet, inv: fleet.Inventory(), acts: acts, password: password, distributionPoint: sc.Sites[0].DistributionPoint}
}

// patchThenRollBack patches a host, then rolls it back, as an abort with
// rollback does after the host's wave.
func patchThenRollBack(ctx workflow.Context, patch contract.PatchHostInput, rb contract.UninstallPatchInput) (contract.UninstallPatchResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute, HeartbeatTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 100 * time.Millisecond, MaximumAttempts: 3,
			NonRetryableErrorTypes: []string{contract.AuthFailed, contract.InstallFailed, contract.UninstallFailed, contract.HostDidNotReturn}},
	})
	if patch.Target.Host.Name != "" {
		var res contract.PatchHostResult
		if err := workflow.ExecuteActivity(ctx, contract.PatchHostName, patch).Get(ctx, &res); err != nil {
			return contract.UninstallPatchResult{}, err
		}
	}
	var res contract.UninstallPatchResult
	err := workflow.ExecuteActivity(ctx, contract.UninstallPatchName, rb).Get(ctx, &res)
	return res, err
}

// TestRollbackOnTheSimulatedFleet: a rollback is rolled_back only on
// proof (the hotfix gone, the files back below the fixed version after
// the reboot); an uninstall whose reboot is not allowed now is
// pending_reboot, one whose host never restarts says so, and one that
// never comes back is unreachable, saying so.
func TestRollbackOnTheSimulatedFleet(t *testing.T) {
	ro, _, diags := rollout.Load(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		t.Fatalf("load ms08-067.hcl: %v", diags)
	}
	tests := []struct {
		name string
		// patchFirst: the rollout patched the host before the rollback.
		patchFirst bool
		faults     []fleetsim.FaultSpec
		reboot     bool
		wantState  rollout.HostState
		wantSteps  string
		// wantReason is a substring of the verdict's reasons.
		wantReason string
	}{
		{name: "uninstall, reboot, verify: rolled_back on proof", patchFirst: true, reboot: true,
			wantState: rollout.StateRolledBack, wantSteps: "scan,uninstall,reboot,wait_for_boot,verify", wantReason: "back below the fixed version"},
		{name: "a reboot not allowed now leaves the uninstall pending_reboot", patchFirst: true, reboot: false,
			wantState: rollout.StatePendingReboot, wantSteps: "scan,uninstall,verify", wantReason: "uninstall of KB958644 waits for a reboot"},
		{name: "a host that accepts the reboot but never restarts stays pending_reboot, and the reasons say so", patchFirst: true, reboot: true,
			faults:    []fleetsim.FaultSpec{{Kind: fleetsim.FaultNoReboot}},
			wantState: rollout.StatePendingReboot, wantSteps: "scan,uninstall,reboot,wait_for_boot,verify", wantReason: "accepted the reboot requested at"},
		{name: "a host that never got the patch has nothing to uninstall and is proven clean", reboot: true,
			wantState: rollout.StateRolledBack, wantSteps: "scan,uninstall,verify", wantReason: "no longer listed nor installed"},
	}
	const os = "windows-xp-sp3"
	var specs []fleetsim.HostSpec
	for i, tt := range tests {
		specs = append(specs, fleetsim.HostSpec{Host: rollout.Host{Name: "rb-" + string(rune('a'+i)), OS: os, Site: "paris", Region: "emea",
			Tier: rollout.TierProduction, Role: "workstation", Owner: "it@corp.example"}, Faults: tt.faults})
	}
	sf := startSimulatedFleet(t, ro.Patch, specs)
	for i, tt := range tests {
		host := sf.inv.Hosts[i]
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var s testsuite.WorkflowTestSuite
			env := s.NewTestWorkflowEnvironment()
			env.SetTestTimeout(time.Minute)
			env.RegisterWorkflow(patchThenRollBack)
			activities.Register(env, activities.Deps{Hosts: sf.acts})
			target := contract.HostTarget{RolloutID: ro.ID, Host: host, Patch: ro.Patch, DistributionPoint: sf.distributionPoint}
			var patch contract.PatchHostInput
			if tt.patchFirst {
				patch = contract.PatchHostInput{Target: target, Reboot: true, BootTimeout: 3 * time.Second}
			}
			env.ExecuteWorkflow(patchThenRollBack, patch, contract.UninstallPatchInput{Target: target, Reboot: tt.reboot, BootTimeout: 3 * time.Second})
			var res contract.UninstallPatchResult
			if err := env.GetWorkflowResult(&res); err != nil {
				t.Fatalf("rollback: %v", err)
			}
			v := res.Verdict
			t.Logf("%s: %s", v.State, strings.Join(v.Reasons, "; "))
			if v.State != tt.wantState {
				t.Errorf("state %s (%s), want %s", v.State, strings.Join(v.Reasons, "; "), tt.wantState)
			}
			if got := strings.Join(res.Steps, ","); got != tt.wantSteps {
				t.Errorf("steps %q, want %q", got, tt.wantSteps)
			}
			if !strings.Contains(strings.Join(v.Reasons, "\n"), tt.wantReason) {
				t.Errorf("reasons %q lack %q", v.Reasons, tt.wantReason)
			}
			snap := sf.fleet.Host(host.Name).Snapshot()
			if tt.wantState == rollout.StateRolledBack && len(snap.Hotfixes) != 0 {
				t.Errorf("rolled_back, but the host still lists %v", snap.Hotfixes)
			}
		})
	}
}

// TestServicingStackPrerequisiteIsInstalledFirst patches Windows Server
// 2019 with May 2022's cumulative update, whose package names the
// servicing-stack update as a prerequisite: PatchHost installs KB5014031,
// then KB5013941 through DISM, and the host ends compliant at the new
// build. Without the prerequisite declared, the simulated installer
// refuses as Windows does (0x800F0823) and the host fails with a reason
// that says what to do.
func TestServicingStackPrerequisiteIsInstalledFirst(t *testing.T) {
	path := filepath.Join("testdata", "kb5013941-ssu.hcl")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, diags := rollout.DecodeRollout(path, src)
	if ro == nil || diags.HasErrors() {
		t.Fatalf("decode: %v", diags)
	}
	specs := []fleetsim.HostSpec{
		{Host: rollout.Host{Name: "srv19-a", OS: "windows-server-2019", Build: "17763.2868", Site: "paris", Region: "emea", Tier: rollout.TierLab, Role: "server", Owner: "it@corp.example"}},
		{Host: rollout.Host{Name: "srv19-b", OS: "windows-server-2019", Build: "17763.2868", Site: "paris", Region: "emea", Tier: rollout.TierLab, Role: "server", Owner: "it@corp.example"}},
	}
	sf := startSimulatedFleet(t, ro.Patch, specs)
	withoutSSU := ro.Patch
	withoutSSU.Packages = slices.Clone(ro.Patch.Packages)
	withoutSSU.Packages[0].Prerequisites = nil
	for i, tc := range []struct {
		patch                    rollout.Patch
		want                     rollout.HostState
		ssuInstalls, lcuInstalls int
		reason                   string
	}{
		{ro.Patch, rollout.StateCompliant, 1, 1, "OS build 17763.2928 at or above 17763.2928, KB5013941 present"},
		{withoutSSU, rollout.StateFailed, 0, 0, "needs a newer servicing stack: install its servicing-stack update first"},
	} {
		host := sf.inv.Hosts[i]
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(time.Minute)
		env.RegisterWorkflow(patchHostWorkflow)
		activities.Register(env, activities.Deps{Hosts: sf.acts})
		env.ExecuteWorkflow(patchHostWorkflow, contract.PatchHostInput{
			Target: contract.HostTarget{RolloutID: ro.ID, Host: host, Patch: tc.patch, DistributionPoint: sf.distributionPoint},
			Reboot: true, BootTimeout: 5 * time.Second,
		})
		var res contract.PatchHostResult
		if err := env.GetWorkflowResult(&res); err != nil {
			t.Fatalf("%s: PatchHost: %v", host.Name, err)
		}
		reasons := strings.Join(res.Verdict.Reasons, "; ")
		t.Logf("%s: %s: %s", host.Name, res.Verdict.State, reasons)
		h := sf.fleet.Host(host.Name)
		if res.Verdict.State != tc.want || !strings.Contains(reasons, tc.reason) {
			t.Errorf("%s: %s (%s), want %s with %q", host.Name, res.Verdict.State, reasons, tc.want, tc.reason)
		}
		if h.InstallCount("KB5014031") != tc.ssuInstalls || h.InstallCount("KB5013941") != tc.lcuInstalls {
			t.Errorf("%s: %d servicing-stack and %d cumulative installs, want %d and %d", host.Name,
				h.InstallCount("KB5014031"), h.InstallCount("KB5013941"), tc.ssuInstalls, tc.lcuInstalls)
		}
	}
}
