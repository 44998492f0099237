package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// policyBase is the data every run of the policy-data test shares: the
// rollout goes straight to its waves (no lab or production-like stage is
// required of it) and bob approves. Each run adds one change to it.
const policyBase = `"plan": {"required_stages": {"critical": []}, "min_soak_hours": {"critical": {"lab": 0, "prodlike": 0}}},
  "groups": {"security-team": ["alice", "bob"]}`

// TestE2EPolicyDataAloneChangesTheRunningRollout proves the Rego is the
// rule: one fleet, one binary, one rollout file, and only the policy data
// under --policy-dir changes between the runs (the worker restarts to load
// it). Per region, one workstation's installer fails and one never comes
// back from its reboot, against max_failures = 1.
//
//   - waves.failure_states without unreachable: the never-returning host
//     is no counted failure, the first wave stays within its budget and the
//     second wave runs.
//   - the shipped failure_states: the same host is a failure, the first
//     wave halts and the second never starts; the filer's skip-host is
//     refused by the four-eyes rule.
//   - gates.actions.skip_host without four-eyes: the same skip-host by the
//     filer on the same halted rollout is allowed.
//   - the shipped reboot data reboots a "may" host whose installer exited
//     3010 and proves it; reboot.pending_exit_codes and pending_evidence
//     emptied, no reboot is ever scheduled and the host is not compliant.
func TestE2EPolicyDataAloneChangesTheRunningRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: "{" + policyBase + "}"})
	fleet, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-policy.hcl"),
		fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	submit := func(id, region string) {
		t.Helper()
		e.mustCLI(ctx, "submit", e.policyRollout(id, region), "--inventory", inv, "--as", "alice", "--boot-timeout", "3s")
	}
	host := func(name string) *fleetsim.Host {
		for _, h := range fleet.Hosts() {
			if h.Name() == name {
				return h
			}
		}
		t.Fatalf("no host %s in the fleet", name)
		return nil
	}

	// Run 1: unreachable is not a wave failure.
	e.setPolicyData(`{` + policyBase + `, "waves": {"failure_states": ["failed", "not_effective"]}}`)
	w := e.startWorker()
	submit("emea-lenient", "emea")
	p := e.waitFor(ctx, "emea-lenient", "the second wave to finish", 3*time.Minute, func(p workflows.Progress) bool {
		return p.Status == workflows.StatusHalted || stepOf(p, "file-servers").Status == workflows.StepDone
	})
	first := stepOf(p, "workstations")
	if p.Status == workflows.StatusHalted || first.Failures != 1 || first.Totals[rollout.StateUnreachable] != 1 {
		t.Errorf("failure_states without unreachable: rollout %s, first wave failures %d/%d with %v; "+
			"want the never-returning host unreachable and uncounted, and the second wave run",
			p.Status, first.Failures, first.Threshold, first.Totals)
	}
	e.mustCLI(ctx, "abort", "emea-lenient", "--as", "bob", "--reason", "e2e: run 1 seen")
	w.stop(t)

	// Run 2: the shipped data counts unreachable, and four-eyes guards skip-host.
	e.setPolicyData(`{` + policyBase + `}`)
	w = e.startWorker()
	submit("na-strict", "na")
	p = e.waitFor(ctx, "na-strict", "the first wave to halt", 3*time.Minute, func(p workflows.Progress) bool {
		return p.Status == workflows.StatusHalted || begun(stepOf(p, "file-servers"))
	})
	first = stepOf(p, "workstations")
	if p.Status != workflows.StatusHalted || first.Failures != 2 || begun(stepOf(p, "file-servers")) {
		t.Fatalf("shipped failure_states: rollout %s, first wave failures %d/%d with %v, second wave %s; "+
			"want the wave halted on 2 failures and the second wave never started",
			p.Status, first.Failures, first.Threshold, first.Totals, stepOf(p, "file-servers").Status)
	}
	skip := []string{"skip-host", "na-strict", "NA-0004", "--as", "alice", "--reason", "e2e: decommissioned"}
	const fourEyes = "alice filed rollout na-strict and may not skip host NA-0004: another person must (four-eyes)"
	if r := e.cli(ctx, skip...); r.code != 1 || !strings.Contains(r.stdout+r.stderr, fourEyes) {
		t.Errorf("shipped gates data: the filer's skip-host exited %d with\n%s%s\nwant exit 1 and %q", r.code, r.stdout, r.stderr, fourEyes)
	}
	w.stop(t)

	// Run 3: skip-host without four-eyes; a reboot rule that never asks.
	e.setPolicyData(`{` + policyBase + `,
  "gates": {"actions": {"skip_host": {"group": "security-team", "four_eyes": false}}},
  "reboot": {"pending_exit_codes": [], "pending_evidence": []}}`)
	e.startWorker()
	if r := e.cli(ctx, skip...); r.code != 0 || !strings.Contains(r.stdout, "NA-0004") {
		t.Errorf("skip_host without four-eyes: the filer's skip-host exited %d with\n%s%s\nwant it allowed", r.code, r.stdout, r.stderr)
	}
	e.waitFor(ctx, "na-strict", "the skip to be recorded", 30*time.Second, func(p workflows.Progress) bool {
		return hasRecord(p, "skip_host", "alice", "e2e: decommissioned")
	})
	e.mustCLI(ctx, "abort", "na-strict", "--as", "bob", "--reason", "e2e: run 2 seen")

	submit("apac-noreboot", "apac")
	e.waitFor(ctx, "apac-noreboot", "the workstations to end", 2*time.Minute, func(p workflows.Progress) bool {
		s := stepOf(p, "workstations")
		return p.Status == workflows.StatusHalted || s.Status == workflows.StepDone
	})
	states := e.hostStates(ctx, "apac-noreboot")
	for _, name := range []string{"APAC-0001", "APAC-0002"} {
		h := host(name)
		if h.InstallCount("KB958644") != 1 || h.BootTime().After(started) || states[name] == rollout.StateCompliant {
			t.Errorf("reboot data that never asks: %s installed %d times, booted at %s (test began %s), state %s; "+
				"want installed once, never rebooted, not compliant",
				name, h.InstallCount("KB958644"), h.BootTime().Format(time.RFC3339), started.Format(time.RFC3339), states[name])
		}
	}
	// The shipped reboot data, in run 1: the installer's 3010 scheduled
	// the reboot and the host was proven patched after it.
	states = e.hostStates(ctx, "emea-lenient")
	for _, name := range []string{"EMEA-0001", "EMEA-0002"} {
		if h := host(name); !h.BootTime().After(started) || states[name] != rollout.StateCompliant {
			t.Errorf("shipped reboot data: %s booted at %s (test began %s), state %s; want rebooted after its 3010 and compliant",
				name, h.BootTime().Format(time.RFC3339), started.Format(time.RFC3339), states[name])
		}
	}
}

// setPolicyData replaces the policy data the next worker loads.
func (e *e2e) setPolicyData(data string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "policy", "e2e-overrides.json"), []byte(data), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// policyRollout writes testdata/policy-rollout.hcl as rollout id on the
// hosts of region.
func (e *e2e) policyRollout(id, region string) string {
	e.t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "policy-rollout.hcl"))
	if err != nil {
		e.t.Fatal(err)
	}
	s := strings.NewReplacer("ROLLOUT_ID", id, "SITE_REGION", region).Replace(string(src))
	path := filepath.Join(e.dir, id+".hcl")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// hostStates reads each host's state from the rollout's report.
func (e *e2e) hostStates(ctx context.Context, id string) map[string]rollout.HostState {
	e.t.Helper()
	var rep contract.Report
	if err := json.Unmarshal([]byte(e.mustCLI(ctx, "report", id, "--format", "json")), &rep); err != nil {
		e.t.Fatalf("report %s: %v", id, err)
	}
	states := map[string]rollout.HostState{}
	for _, h := range rep.Hosts {
		states[h.Name] = h.State
	}
	return states
}

// stepOf finds a stage or wave in progress (the zero step if absent).
func stepOf(p workflows.Progress, name string) workflows.StepProgress {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return workflows.StepProgress{}
}

// begun tells whether a step has started.
func begun(s workflows.StepProgress) bool {
	return s.Status != "" && s.Status != workflows.StepPending
}

// TestE2EShadowPolicyRecordsWhatItWouldHaveDecided: the rollout of run 2
// above (the shipped failure_states halt its first wave) runs with a
// shadow policy that counts no unreachable host as a failure and gives
// critical patches 12 hours. The live policy decides everything (the wave
// halts, the deadline stands); the shadow's disagreements (the halt, the
// deadline) show in status, explain and the report, and every host's
// compliance was asked of it without an error. A shadow that does not
// compile is refused with file:line before anything is filed.
func TestE2EShadowPolicyRecordsWhatItWouldHaveDecided(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: "{" + policyBase + "}"})
	_, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-policy.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	shadow := filepath.Join(e.dir, "shadow")
	if err := os.MkdirAll(shadow, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(shadow, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The candidate is a whole policy directory, as --policy-dir is: the
	// live data, then the change.
	write("e2e-identity.json", insecureIdentity)
	write("e2e-overrides.json", `{`+policyBase+`, "waves": {"failure_states": ["failed", "not_effective"]}, "sla": {"hours": {"critical": 12}}}`)
	write("broken.rego", "package patchway.broken\n\nallow if {\n")
	rollout := e.policyRollout("na-shadow", "na")
	r := e.cli(ctx, "submit", rollout, "--inventory", inv, "--as", "alice", "--shadow-policy", shadow)
	if r.code == 0 || !strings.Contains(r.stderr, "broken.rego:") {
		t.Fatalf("a shadow that does not compile: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("broken shadow refused: %s", strings.TrimSpace(r.stderr))
	if err := os.Remove(filepath.Join(shadow, "broken.rego")); err != nil {
		t.Fatal(err)
	}

	e.startWorker()
	out := e.mustCLI(ctx, "submit", rollout, "--inventory", inv, "--as", "alice", "--boot-timeout", "3s", "--shadow-policy", shadow)
	if !strings.Contains(out, "shadow policy "+shadow) {
		t.Errorf("submit does not name the shadow:\n%s", out)
	}
	p := e.waitFor(ctx, "na-shadow", "the first wave to halt", 3*time.Minute, func(p workflows.Progress) bool {
		return p.Status == workflows.StatusHalted || begun(stepOf(p, "file-servers"))
	})
	if p.Status != workflows.StatusHalted || begun(stepOf(p, "file-servers")) {
		t.Fatalf("rollout %s; want the live policy's halt, whatever the shadow says", p.Status)
	}
	s := p.Shadow
	if s == nil || s.ByKind[contract.DifferenceHalt] == 0 || s.ByKind[contract.DifferenceDeadline] != 1 || s.ByKind[contract.DifferenceError] != 0 {
		t.Fatalf("shadow summary %v; want the halt and the deadline, no error", s)
	}
	if hosts := len(e.hostStates(ctx, "na-shadow")); s.Compared < hosts {
		t.Errorf("the shadow was asked %d decisions for %d hosts; want every host's compliance among them", s.Compared, hosts)
	}
	status := e.mustCLI(ctx, "status", "na-shadow")
	if !strings.Contains(status, "shadow policy "+shadow) {
		t.Errorf("status does not show the shadow:\n%s", status)
	}
	explain := e.mustCLI(ctx, "explain", "na-shadow", "--wave", "workstations")
	if !strings.Contains(explain, "halt ") || !strings.Contains(explain, "halts -> goes on") {
		t.Errorf("explain --wave does not show the shadow's halt:\n%s", explain)
	}
	report := e.mustCLI(ctx, "report", "na-shadow")
	if !strings.Contains(report, "SHADOW POLICY "+shadow) || !strings.Contains(report, "deadline sla KB958644") {
		t.Errorf("report does not list the shadow's differences:\n%s", report)
	}
	t.Logf("explain --wave workstations:\n%s\nreport:\n%s", explain, report)
	e.mustCLI(ctx, "abort", "na-shadow", "--as", "bob", "--reason", "e2e: shadow seen")
}
