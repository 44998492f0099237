package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// e2eKB is the patch examples/ms08-067.hcl rolls out.
const e2eKB = "KB958644"

// e2ePolicy lets the tests' rollout through in seconds: no minimum soak,
// and bob in every approval group the example names (alice files, so the
// four-eyes rule holds).
const e2ePolicy = `{
  "plan": {"min_soak_hours": {"critical": {"lab": 0, "prodlike": 0}}},
  "groups": {"infrastructure-leads": ["bob"], "identity-team": ["bob"]},
  "oidc": {"insecure_dev_identity": true}
}`

// startFleet starts the 48-host end-to-end fleet (testdata/fleet-e2e.hcl).
// Call it before startWorker.
func (e *e2e) startFleet(opts fleetsim.Options) (*fleetsim.Fleet, string) {
	e.t.Helper()
	return e.startFleetFrom(filepath.Join("testdata", "fleet-e2e.hcl"), opts)
}

// startFleetFrom starts the fleet of a scenario file in the test process,
// writes its inventory, and gives the worker and the CLI its credential
// set through the environment (a random password, never printed). It
// returns the fleet and the inventory's path.
func (e *e2e) startFleetFrom(scenario string, opts fleetsim.Options) (*fleetsim.Fleet, string) {
	e.t.Helper()
	sc, diags := fleetsim.LoadScenario(scenario)
	if diags.HasErrors() {
		e.t.Fatalf("load fleet %s: %v", scenario, diags)
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		e.t.Fatal(err)
	}
	opts.Password = hex.EncodeToString(b)
	opts.Dir = filepath.Join(e.dir, "fleet")
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	f, err := fleetsim.Start(context.Background(), sc, opts)
	if err != nil {
		e.t.Fatalf("start fleet: %v", err)
	}
	e.t.Cleanup(func() { _ = f.Close() })
	inv := filepath.Join(opts.Dir, "inventory.hcl")
	if err := f.WriteInventory(inv); err != nil {
		e.t.Fatal(err)
	}
	e.env = append(e.env, "PATCHWAY_CRED_FLEET_USER=patchway", "PATCHWAY_CRED_FLEET_PASSWORD="+opts.Password,
		"PATCHWAY_CRED_FLEET_ADDRESSES="+fleetsim.ListenAddresses)
	return f, inv
}

// unreachableInventory writes examples/inventory.hcl with every host on
// its own loopback port that nothing listens on, for the tests whose
// rollout runs but never reaches a host: their worker resolves no name
// and dials nothing outside this machine. It returns the path and the
// number of hosts.
func (e *e2e) unreachableInventory() (string, int) {
	e.t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "inventory.hcl"))
	if err != nil {
		e.t.Fatal(err)
	}
	port := 0
	inv := regexp.MustCompile(`address\s*=\s*"[^"]*"`).ReplaceAllStringFunc(string(src), func(string) string {
		port++
		return fmt.Sprintf("address = \"127.0.0.1:%d\"", port)
	})
	path := filepath.Join(e.dir, "inventory-unreachable.hcl")
	if err := os.WriteFile(path, []byte(inv), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path, port
}

// fastRollout writes examples/ms08-067.hcl with one-second soaks and no
// maintenance window, so the whole staged path runs within the test.
func (e *e2e) fastRollout() string {
	e.t.Helper()
	return e.fastRolloutOf("ms08-067.hcl")
}

// fastRolloutOf is fastRollout for another example rollout.
func (e *e2e) fastRolloutOf(example string) string {
	e.t.Helper()
	return e.fastRolloutFrom(filepath.Join("..", "..", "examples", example))
}

// fastRolloutFrom is fastRollout for any rollout file; the copy is named
// as the file.
func (e *e2e) fastRolloutFrom(file string) string {
	e.t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		e.t.Fatal(err)
	}
	s := regexp.MustCompile(`soak(\s*)=\s*"[^"]*"`).ReplaceAllString(string(src), `soak$1= "1s"`)
	s = regexp.MustCompile(`(?s)\n\s*window \{.*?\n\s*\}`).ReplaceAllString(s, "")
	path := filepath.Join(e.dir, filepath.Base(file))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// drive approves every gate as bob until the rollout ends, calling each
// time progress is seen; it returns the final progress.
func (e *e2e) drive(ctx context.Context, id string, timeout time.Duration, each func(workflows.Progress)) workflows.Progress {
	e.t.Helper()
	approved := map[string]bool{}
	deadline := time.Now().Add(timeout)
	var last workflows.Progress
	for time.Now().Before(deadline) {
		p, err := e.progress(ctx, id)
		if err != nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		last = p
		if each != nil {
			each(p)
		}
		switch p.Status {
		case workflows.StatusCompleted, workflows.StatusAborted, workflows.StatusRejected, workflows.StatusFailed:
			return p
		case workflows.StatusHalted:
			e.t.Fatalf("rollout halted:\n%s", renderProgress(p, time.Now()))
		}
		if g := p.WaitingGate; g != "" && !approved[g] {
			out := e.mustCLI(ctx, "approve", id, g, "--as", "bob", "--reason", "e2e: "+g+" healthy")
			if !strings.Contains(out, "bob approved") {
				e.t.Errorf("approve %s said %q", g, out)
			}
			approved[g] = true
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("rollout %s did not end within %s\n%s", id, timeout, renderProgress(last, time.Now()))
	return last
}

// TestE2EFullRolloutOverTheFleetSurvivesAWorkerKill files MS08-067 on 48
// simulated hosts through the real binary, approves each gate through the
// CLI as a second user, kills the worker with SIGKILL in the middle of the
// emea wave and starts a new one: the rollout completes every stage and
// wave, every host is compliant on proof, and every host saw exactly one
// install. Every stage's batches stay findable by their search attributes.
func TestE2EFullRolloutOverTheFleetSurvivesAWorkerKill(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleet(fleetsim.Options{RebootDowntime: 300 * time.Millisecond, InstallDuration: 2 * time.Second})
	w := e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")

	killed := false
	p := e.drive(ctx, id, 7*time.Minute, func(p workflows.Progress) {
		if killed || p.Stage != "emea" {
			return
		}
		for _, s := range p.Steps {
			if s.Name == "emea" && s.Totals[rollout.StateInProgress] > 0 {
				t.Logf("SIGKILL the worker with %d emea hosts in progress", s.Totals[rollout.StateInProgress])
				w.kill(t)
				w = e.startWorker()
				killed = true
			}
		}
	})
	if !killed {
		t.Errorf("the emea wave was never seen in progress, so the worker was never killed")
	}
	if p.Status != workflows.StatusCompleted || p.HostsDone != 48 {
		t.Fatalf("rollout ended %s with %d/48 hosts done:\n%s", p.Status, p.HostsDone, renderProgress(p, time.Now()))
	}
	for _, s := range p.Steps {
		if s.Status != workflows.StepDone || s.Totals[rollout.StateCompliant] != s.Hosts {
			t.Errorf("step %s: %s with %v, want done with all %d compliant", s.Name, s.Status, s.Totals, s.Hosts)
		}
	}
	for _, h := range fleet.Hosts() {
		if n := h.InstallCount(e2eKB); n != 1 {
			t.Errorf("host %s saw %d installs of %s, want exactly 1", h.Name(), n, e2eKB)
		}
	}
	// Each wave's batch workflows carry the stage and their hosts' names.
	for _, q := range []string{
		fmt.Sprintf("RolloutId = '%s' AND RolloutStage = 'emea'", id),
		fmt.Sprintf("RolloutId = '%s' AND RolloutStage = 'domain-controllers'", id),
		"PatchwayHosts = 'EMEA-0003'",
	} {
		if n := e.countWorkflows(ctx, q); n == 0 {
			t.Errorf("no workflow found by %s", q)
		}
	}
}

// TestE2EEscalationReachesTheWebhookWhileTheRolloutWaitsAtAGate files
// MS08-067 with a critical SLA of 0.03 h (54 s once the worm halves it)
// and leaves the lab gate unapproved: the SLA clock keeps running, the
// 50 % milestone reaches the Slack-compatible channel and the breach
// reaches the signed webhook, while the rollout still waits at the gate.
// The receivers are local HTTP servers; the webhook one checks every
// signature.
func TestE2EEscalationReachesTheWebhookWhileTheRolloutWaitsAtAGate(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: `{
  "sla": {"hours": {"critical": 0.03}},
  "plan": {"min_soak_hours": {"critical": {"lab": 0, "prodlike": 0}}}
}`})
	_, inv := e.startFleet(fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	pager := newWebhookReceiver(t, "pager-signing-key")
	chat := newWebhookReceiver(t, "")
	e.env = append(e.env,
		"PATCHWAY_CHANNEL_PAGER_URL="+pager.url, "PATCHWAY_CHANNEL_PAGER_KEY=pager-signing-key",
		"PATCHWAY_CHANNEL_SECURITY_CHAT_URL="+chat.url)
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")
	e.waitFor(ctx, id, "the lab gate", 2*time.Minute, func(p workflows.Progress) bool { return p.WaitingGate == "lab" })

	var breach map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for breach == nil && time.Now().Before(deadline) {
		for _, ev := range pager.received() {
			if ev["kind"] == string(contract.EventSLABreached) {
				breach = ev
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if breach == nil {
		t.Fatalf("no sla_breached event reached the webhook; it received %v", pager.received())
	}
	p, err := e.progress(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.WaitingGate != "lab" || !p.Breached {
		t.Errorf("after the breach the rollout waits at %q, breached %t; want still at the lab gate, breached", p.WaitingGate, p.Breached)
	}
	if contacts, _ := breach["contacts"].([]any); len(contacts) == 0 || contacts[0] != "ciso@corp.example" {
		t.Errorf("breach event contacts %v, want the breach step's (ciso@corp.example first)", breach["contacts"])
	}
	if pager.badSignatures != 0 {
		t.Errorf("%d webhook requests had a bad signature", pager.badSignatures)
	}
	seen := map[string]bool{}
	for _, k := range pager.keys {
		if k == "" || seen[k] {
			t.Errorf("webhook idempotency keys %v: want one distinct key per event", pager.keys)
			break
		}
		seen[k] = true
	}
	var milestone bool
	for _, m := range chat.received() {
		if text, _ := m["text"].(string); strings.Contains(text, "50% of the SLA elapsed") {
			milestone = true
		}
	}
	if !milestone {
		t.Errorf("the 50%% milestone never reached the chat channel; it received %v", chat.received())
	}
	if n := e.countWorkflows(ctx, fmt.Sprintf("RolloutId = '%s' AND SLABreached = true", id)); n != 1 {
		t.Errorf("%d rollouts found by SLABreached = true, want 1", n)
	}
	e.mustCLI(ctx, "abort", id, "--as", "bob", "--reason", "e2e: escalation seen")
}

// TestE2EAbortWithRollbackOverTheFleet files MS08-067 on the simulated
// fleet, lets the lab stage patch its hosts and wait at its gate, then
// aborts with rollback through the CLI as a second person: every lab
// host is uninstalled, rebooted as the reboot policy requires and
// verified, and ends rolled_back on proof (the hotfix gone from the host);
// no host outside the lab is touched.
func TestE2EAbortWithRollbackOverTheFleet(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleet(fleetsim.Options{RebootDowntime: 300 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")
	e.waitFor(ctx, id, "the lab gate", 3*time.Minute, func(p workflows.Progress) bool { return p.WaitingGate == "lab" })

	out := e.mustCLI(ctx, "abort", id, "--rollback", "--as", "bob", "--reason", "e2e: the lab found a regression")
	if !strings.Contains(out, "bob aborted ms08-067") {
		t.Errorf("abort --rollback said %q", out)
	}
	// The rollout shows aborted at once; the rollback runs after, until no
	// lab host is left as the patch made it.
	labStep := func(p workflows.Progress) workflows.StepProgress {
		for _, s := range p.Steps {
			if s.Name == "lab" {
				return s
			}
		}
		return workflows.StepProgress{}
	}
	p := e.waitFor(ctx, id, "the rollback", 3*time.Minute, func(p workflows.Progress) bool {
		lab := labStep(p)
		return p.Status == workflows.StatusAborted && lab.Hosts > 0 && lab.Totals[rollout.StateCompliant] == 0 && lab.Totals[rollout.StateInProgress] == 0
	})
	lab := labStep(p)
	if lab.Hosts == 0 || lab.Totals[rollout.StateRolledBack] != lab.Hosts {
		t.Errorf("lab step after the rollback: %d hosts, %v; want every one rolled_back\n%s", lab.Hosts, lab.Totals, renderProgress(p, time.Now()))
	}
	patched := 0
	for _, h := range fleet.Hosts() {
		if h.InstallCount(e2eKB) == 0 {
			continue
		}
		patched++
		if s := h.Snapshot(); len(s.Hotfixes) != 0 {
			t.Errorf("host %s still lists %v after the rollback", h.Name(), s.Hotfixes)
		}
	}
	if patched != lab.Hosts {
		t.Errorf("%d hosts were patched, want only the %d lab hosts", patched, lab.Hosts)
	}
}

// TestE2EPreflightTakesTheBaselineBeforeTheLab files MS08-067 through the
// real binary on 14 simulated hosts, one already patched and one waiting
// for an earlier update's reboot. The preflight scans every host before
// the lab; status shows the baseline; the patched host is settled by it
// and never installed; the others are patched; the report keeps the
// baseline.
func TestE2EPreflightTakesTheBaselineBeforeTheLab(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-preflight.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")

	const baseline = "14 of 14 hosts scanned: 1 compliant, 1 pending_reboot, 12 vulnerable; 1 settled, not patched again"
	e.waitFor(ctx, id, "the baseline", 2*time.Minute, func(p workflows.Progress) bool { return p.Baseline != nil && p.Baseline.Done })
	if out := e.mustCLI(ctx, "status", id); !strings.Contains(out, "preflight: "+baseline) {
		t.Errorf("status lacks the baseline %q:\n%s", baseline, out)
	}
	p := e.drive(ctx, id, 4*time.Minute, nil)
	if p.Status != workflows.StatusCompleted || p.HostsDone != 14 {
		t.Fatalf("rollout ended %s with %d/14 hosts done:\n%s", p.Status, p.HostsDone, renderProgress(p, time.Now()))
	}
	for _, h := range fleet.Hosts() {
		want := 1
		if h.Name() == "EMEA-PATCHED-0001" {
			want = 0
		}
		if n := h.InstallCount(e2eKB); n != want {
			t.Errorf("host %s saw %d installs of %s, want %d", h.Name(), n, e2eKB, want)
		}
	}
	out := e.mustCLI(ctx, "status", id, "--host", "EMEA-PATCHED-0001")
	if !strings.Contains(out, "compliant") || !strings.Contains(out, "preflight scan: ") {
		t.Errorf("the host the preflight settled shows:\n%s", out)
	}
	t.Logf("the host the preflight settled:\n%s", out)
	if out := e.mustCLI(ctx, "report", id); !strings.Contains(out, "PREFLIGHT SCAN (before any host was touched): "+baseline) {
		t.Errorf("report lacks the baseline:\n%s", out)
	}
}

// TestE2EModernPatchTuesdayOnTheDemoFleet files examples/kb5013944.hcl
// (May 2022's cumulative update for Windows Server 2022, proven by OS
// build) on examples/fleet-demo.hcl, the fleet `make demo` runs, through
// the real binary. validate and plan select the 13 Server 2022 hosts of
// its 213. Builds move at reboot: every host on April's build ends
// compliant at 20348.707; the host already on June's build is compliant at
// the preflight, named after KB5014678, and never installed; the host
// whose servicing reverts the update ends not_effective, its build
// unchanged; no host of an older Windows is touched.
func TestE2EModernPatchTuesdayOnTheDemoFleet(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleetFrom(filepath.Join("..", "..", "examples", "fleet-demo.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	const id, kb = "kb5013944", "KB5013944"
	example := filepath.Join("..", "..", "examples", "kb5013944.hcl")
	if code, stdout, stderr := run(t, "validate", example, "--inventory", inv); code != 0 || !strings.Contains(stdout, "2 stages, 2 waves over 213 hosts") {
		t.Fatalf("validate exited %d:\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run(t, "plan", example, "--inventory", inv); code != 0 || !strings.Contains(stdout, "13 of 213 inventory hosts in 4 steps") {
		t.Fatalf("plan exited %d:\n%s%s", code, stdout, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// CISA's catalogue lists CVE-2022-26925: the worker's risk decision
	// names the entry (its due date is long past; the critical SLA stays
	// the shorter).
	if code, stdout, stderr := run(t, "threat", "import", realKEVFile(t), "--policy-dir", filepath.Join(e.dir, "policy"), "--running=false"); code != 0 {
		t.Fatalf("threat import exited %d:\n%s%s", code, stdout, stderr)
	}
	e.startWorker()
	e.mustCLI(ctx, "submit", e.fastRolloutOf("kb5013944.hcl"), "--inventory", inv, "--as", "alice")
	p := e.drive(ctx, id, 4*time.Minute, nil)
	kev := "CVE-2022-26925 is in CISA's KEV catalogue 2025.08.25 (Microsoft Windows LSA Spoofing Vulnerability, added 2022-07-01): due 2022-07-22"
	if !slices.ContainsFunc(p.Decisions, func(r workflows.Record) bool { return r.Kind == "risk" && strings.Contains(r.Reason, kev) }) {
		t.Errorf("no risk decision names the KEV entry: %+v", p.Decisions)
	}
	if p.Status != workflows.StatusCompleted || p.HostsDone != 13 {
		t.Fatalf("rollout ended %s with %d/13 hosts done:\n%s", p.Status, p.HostsDone, renderProgress(p, time.Now()))
	}
	if b := p.Baseline; b == nil || b.Count("compliant") != 1 || b.Count("pending_reboot") != 1 || b.Count("vulnerable") != 11 {
		t.Errorf("baseline %s, want 1 compliant, 1 pending_reboot, 11 vulnerable", p.Baseline.Summary())
	}
	var rep contract.Report
	if err := json.Unmarshal([]byte(e.mustCLI(ctx, "report", id, "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	hosts, err := rep.HostList()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		reasons := strings.Join(h.Reasons, "; ")
		installs := fleet.Host(h.Name).InstallCount(kb)
		switch h.Name {
		case "W22-JUNE-0001":
			if h.State != rollout.StateCompliant || installs != 0 || !strings.Contains(reasons, "superseded: KB5014678") || !strings.Contains(reasons, "OS build 20348.768 at or above 20348.707") {
				t.Errorf("%s: %s after %d installs (%s), want compliant, superseded by KB5014678, never installed", h.Name, h.State, installs, reasons)
			}
		case "W22-SRV-0006":
			if h.State != rollout.StateNotEffective || installs != 1 || !strings.Contains(reasons, "OS build is 20348.643, below 20348.707") {
				t.Errorf("%s: %s after %d installs (%s), want not_effective with its build unchanged", h.Name, h.State, installs, reasons)
			}
		default:
			if h.State != rollout.StateCompliant || installs != 1 || !strings.Contains(reasons, "OS build 20348.707 at or above 20348.707, KB5013944 present") {
				t.Errorf("%s: %s after %d installs (%s), want compliant at build 20348.707 after one install", h.Name, h.State, installs, reasons)
			}
		}
	}
	// explain names the evidence, the rule and the reason of the
	// not_effective host.
	why := e.mustCLI(ctx, "explain", id, "--host", "W22-SRV-0006")
	for _, want := range []string{"compliance  state not_effective", "rule not_effective at compliance.rego:", "because: ", "OS build is 20348.643, below 20348.707", "evidence (scan at ", "OS build 20348.643"} {
		if !strings.Contains(why, want) {
			t.Errorf("explain --host W22-SRV-0006 lacks %q:\n%s", want, why)
		}
	}
	if len(hosts) != 13 || rep.OutsideSteps != 200 {
		t.Errorf("the report lists %d hosts and %d outside the steps, want the 13 Server 2022 hosts and the other 200 outside", len(hosts), rep.OutsideSteps)
	}
	for _, h := range fleet.Hosts() {
		if s := h.Snapshot(); !strings.HasPrefix(s.Name, "W22-") && len(s.InstallsByKB) != 0 {
			t.Errorf("%s (not Server 2022) saw installs %v", s.Name, s.InstallsByKB)
		}
	}
}

// TestE2EUnknownCredentialSetIsRefusedBeforeAnyHost files MS08-067 through
// the binary on the preflight fleet with one host naming a credential set
// the worker does not define: validate warns that it cannot know, submit
// files it, the worker refuses it before any host is scanned or patched,
// and status says FAILED with the refusal naming the set and the host.
func TestE2EUnknownCredentialSetIsRefusedBeforeAnyHost(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-preflight.hcl"), fleetsim.Options{})
	src, err := os.ReadFile(inv)
	if err != nil {
		t.Fatal(err)
	}
	// The first host's credential becomes a set nobody defined.
	s := strings.Replace(string(src), `credential = "fleet"`, `credential = "emea-admins"`, 1)
	if s == string(src) {
		t.Fatalf("no credential in the fleet's inventory:\n%s", src)
	}
	if err := os.WriteFile(inv, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const id = "ms08-067"
	if code, stdout, stderr := run(t, "validate", e.fastRollout(), "--inventory", inv); code != 0 || !strings.Contains(stdout+stderr, "emea-admins") {
		t.Errorf("validate exited %d without naming the set it cannot check:\n%s%s", code, stdout, stderr)
	}
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")
	p := e.waitFor(ctx, id, "the refusal", 2*time.Minute, func(p workflows.Progress) bool { return p.Status == workflows.StatusFailed })
	for _, want := range []string{"refused before any host was touched", `credential set "emea-admins", named by 1 host(s) (LAB-0001)`} {
		if !strings.Contains(p.Failure, want) {
			t.Errorf("failure %q lacks %q", p.Failure, want)
		}
	}
	out := e.mustCLI(ctx, "status", id)
	if !strings.Contains(out, "FAILED") || !strings.Contains(out, "failed: rollout ms08-067 refused before any host was touched") {
		t.Errorf("status does not show the refusal:\n%s", out)
	}
	for _, h := range fleet.Hosts() {
		if n := h.InstallCount(e2eKB); n != 0 {
			t.Errorf("host %s saw %d installs before the refusal", h.Name(), n)
		}
	}
}
