package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/decisionlog"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// TestE2EDecisionsPrintsEveryDecisionAsOPADecisionLog runs MS08-067
// through the binary on the 14-host preflight fleet while `patchway
// decisions --follow` reads along, then reads the finished rollout again.
// Every line is an OPA decision-log entry whose input hashes to its
// recorded SHA-256; the risk, gate, wave and every host's compliance
// decisions are there; the follower ends by itself with the same
// decisions; a second read gives the same ids; no credential appears.
func TestE2EDecisionsPrintsEveryDecisionAsOPADecisionLog(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-preflight.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice")

	follow := exec.CommandContext(ctx, e.bin, "decisions", id, "--follow", "--address", e.address(), "--namespace", devserver.DefaultNamespace)
	follow.Env = e.env
	var followed strings.Builder
	follow.Stdout = &followed
	var followErr strings.Builder
	follow.Stderr = &followErr
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}

	p := e.drive(ctx, id, 4*time.Minute, nil)
	if p.Status != workflows.StatusCompleted {
		t.Fatalf("rollout ended %s", p.Status)
	}
	waited := make(chan error, 1)
	go func() { waited <- follow.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("decisions --follow: %v\n%s", err, followErr.String())
		}
	case <-time.After(time.Minute):
		_ = follow.Process.Kill()
		t.Fatal("decisions --follow did not end within a minute of the rollout's end")
	}

	out := e.mustCLI(ctx, "decisions", id)
	if again := e.mustCLI(ctx, "decisions", id); again != out {
		t.Errorf("a second read differs from the first")
	}
	if followed.String() != out {
		t.Errorf("--follow printed %d bytes, a read after the end %d; want the same decisions", followed.Len(), len(out))
	}
	for _, kv := range e.env {
		if pw, ok := strings.CutPrefix(kv, "PATCHWAY_CRED_FLEET_PASSWORD="); ok && pw != "" && strings.Contains(out, pw) {
			t.Fatal("the decision log holds the fleet's password")
		}
	}

	type entry struct {
		DecisionID string            `json:"decision_id"`
		Labels     map[string]string `json:"labels"`
		Bundles    map[string]struct {
			Revision string `json:"revision"`
		} `json:"bundles"`
		Path      string          `json:"path"`
		Input     json.RawMessage `json:"input"`
		Result    json.RawMessage `json:"result"`
		Timestamp time.Time       `json:"timestamp"`
	}
	ids := map[string]bool{}
	byPath := map[string]int{}
	bytesByPath := map[string]int{}   // input + result bytes, for the note on sizes
	finalState := map[string]string{} // host -> state of its last compliance decision
	approvals := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var en entry
		if err := json.Unmarshal(sc.Bytes(), &en); err != nil {
			t.Fatalf("not a JSON object: %v\n%s", err, sc.Text())
		}
		if en.DecisionID == "" || ids[en.DecisionID] {
			t.Errorf("decision id %q empty or repeated", en.DecisionID)
		}
		ids[en.DecisionID] = true
		if en.Bundles["patchway"].Revision == "" || en.Timestamp.IsZero() || len(en.Result) == 0 {
			t.Errorf("%s: missing revision, timestamp or result: %s", en.Path, sc.Text())
		}
		sum := sha256.Sum256(en.Input)
		if got := "sha256:" + hex.EncodeToString(sum[:]); got != en.Labels["input_sha256"] {
			t.Errorf("%s %s: input hashes to %s, label says %s", en.Path, en.Labels["host"], got, en.Labels["input_sha256"])
		}
		if en.Labels["rollout_id"] != id || en.Labels["run_id"] == "" || en.Labels["event_id"] == "" {
			t.Errorf("%s: labels %v lack the rollout, run or event", en.Path, en.Labels)
		}
		byPath[en.Path]++
		bytesByPath[en.Path] += len(en.Input) + len(en.Result)
		var in struct {
			Action string `json:"action"`
			User   string `json:"user"`
			Now    string `json:"now"`
		}
		_ = json.Unmarshal(en.Input, &in)
		if in.Now == "" {
			t.Errorf("%s: input has no now", en.Path)
		}
		switch en.Path {
		case "patchway/gates/decision":
			if in.Action == "approve" && in.User == "bob" {
				approvals++
			}
		case "patchway/compliance/decision":
			var res struct {
				State string `json:"state"`
			}
			_ = json.Unmarshal(en.Result, &res)
			finalState[en.Labels["host"]] = res.State
		}
	}
	for _, path := range []string{"patchway/sla/decision", "patchway/plan/decision", "patchway/gates/decision", "patchway/waves/decision", "patchway/compliance/decision", "patchway/reboot/decision"} {
		if byPath[path] == 0 {
			t.Errorf("no %s entry; paths seen: %v", path, byPath)
		}
	}
	if approvals == 0 {
		t.Errorf("no approve decision by bob")
	}
	for _, h := range fleet.Hosts() {
		if finalState[h.Name()] != "compliant" {
			t.Errorf("host %s: last compliance decision %q, want compliant", h.Name(), finalState[h.Name()])
		}
	}
	t.Logf("%d decisions (%d bytes): %v", len(ids), len(out), byPath)
	for path, n := range byPath {
		t.Logf("%s: %d decisions, %d bytes of input and result each on average", path, n, bytesByPath[path]/n)
	}

	// The same policy decides the same; a candidate that halves the
	// critical SLA (24h to 12h, halved again by the worm: 6h earlier)
	// and takes bob out of the approving groups moves the deadline and
	// refuses his approvals.
	same := e.cli(ctx, "policy", "whatif", id, "--fail-on-change")
	if same.code != 0 || same.stdout != "" || !strings.Contains(same.stderr, "0 difference(s)") {
		t.Errorf("whatif under the policy in force: exit %d\nstdout: %s\nstderr: %s", same.code, same.stdout, same.stderr)
	}
	cand := filepath.Join(e.dir, "candidate")
	if err := os.MkdirAll(cand, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cand, "e2e-overrides.json"), []byte(e2ePolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cand, "tighter.json"), []byte(`{"sla": {"hours": {"critical": 12}}, "groups": {"infrastructure-leads": ["carol"], "identity-team": ["carol"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	diff := e.cli(ctx, "policy", "whatif", id, "--policy-dir", cand, "--fail-on-change")
	if diff.code != 1 {
		t.Errorf("whatif under the candidate: exit %d, want 1 (--fail-on-change)\nstdout: %s\nstderr: %s", diff.code, diff.stdout, diff.stderr)
	}
	for _, want := range []string{id + "  deadline    sla KB958644: ", "earlier by 6h0m0s", "  refusal     approve ", " by bob: allowed -> refused (not_in_group"} {
		if !strings.Contains(diff.stdout, want) {
			t.Errorf("whatif under the candidate lacks %q:\n%s", want, diff.stdout)
		}
	}
	t.Logf("whatif under the candidate:\n%s%s", diff.stdout, diff.stderr)
	// A candidate that counts compliant hosts as failures halts the waves.
	halting := filepath.Join(e.dir, "halting")
	if err := os.MkdirAll(halting, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"e2e-overrides.json": e2ePolicy, "halt.json": `{"waves": {"failure_states": ["failed", "compliant"]}}`} {
		if err := os.WriteFile(filepath.Join(halting, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	halts := e.cli(ctx, "policy", "whatif", id, "--policy-dir", halting)
	if halts.code != 0 || !strings.Contains(halts.stdout, "  halt        ") || !strings.Contains(halts.stdout, ": goes on -> halts (failures_over_threshold") ||
		strings.Contains(halts.stdout, "deadline") {
		t.Errorf("whatif with compliant counted as a failure: exit %d, want halts and nothing else of the deadline\nstdout: %s\nstderr: %s", halts.code, halts.stdout, halts.stderr)
	}
	since := e.cli(ctx, "policy", "whatif", "--since", "1h", "--policy-dir", cand, "--json")
	var moved bool
	for _, line := range strings.Split(strings.TrimSpace(since.stdout), "\n") {
		var ch decisionlog.Change
		if json.Unmarshal([]byte(line), &ch) == nil && ch.Kind == contract.DifferenceDeadline && ch.Rollout == "ms08-067" {
			moved = true
		}
	}
	if since.code != 0 || !strings.Contains(since.stderr, "1 rollout(s)") || !moved {
		t.Errorf("whatif --since 1h: exit %d, want the rollout found by visibility\nstdout: %s\nstderr: %s", since.code, since.stdout, since.stderr)
	}
	if r := e.cli(ctx, "policy", "whatif"); r.code == 0 || !strings.Contains(r.stderr, "--since") {
		t.Errorf("whatif with no rollout: exit %d, stderr %q; want a refusal naming --since", r.code, r.stderr)
	}
	broken := filepath.Join(e.dir, "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "gates.rego"), []byte("package patchway.gates\n\ndecision := {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.cli(ctx, "policy", "whatif", id, "--policy-dir", broken); r.code == 0 || !strings.Contains(r.stderr, "gates.rego:") {
		t.Errorf("whatif under a broken candidate: exit %d, stderr %q; want a refusal at gates.rego:line", r.code, r.stderr)
	}

	// explain: a host's chain with its evidence and the rule that
	// decided; a gate's approvals; the rollout's own decisions.
	host := e.mustCLI(ctx, "explain", id, "--host", "EMEA-PATCHED-0001")
	for _, want := range []string{"host EMEA-PATCHED-0001 in rollout ms08-067: ", "compliance  state compliant (preflight baseline: compliant)",
		"rule compliant at compliance.rego:", "because: ", "evidence (scan at ", "netapi32.dll"} {
		if !strings.Contains(host, want) {
			t.Errorf("explain --host lacks %q:\n%s", want, host)
		}
	}
	if gate := e.mustCLI(ctx, "explain", id, "--gate", "lab"); !strings.Contains(gate, "approve lab by bob: allowed") {
		t.Errorf("explain --gate lab lacks bob's approval:\n%s", gate)
	}
	if own := e.mustCLI(ctx, "explain", id); !strings.Contains(own, "sla  deadline ") || !strings.Contains(own, "rule deadline at sla.rego:") || strings.Contains(own, "compliance  state") {
		t.Errorf("explain of the rollout: want its deadline with the rule, and no host's decision:\n%s", own)
	}
	t.Logf("explain --host EMEA-PATCHED-0001:\n%s", host)
	if r := e.cli(ctx, "explain", id, "--host", "NO-SUCH-HOST"); r.code == 0 || !strings.Contains(r.stderr, "no recorded decision for host NO-SUCH-HOST") {
		t.Errorf("explain of an unknown host: exit %d, stderr %q", r.code, r.stderr)
	}

	// History per host, with the records and without them.
	runsSeen := map[[2]string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var en struct {
			Labels map[string]string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(line), &en); err == nil {
			runsSeen[[2]string{en.Labels["workflow_id"], en.Labels["run_id"]}] = true
		}
	}
	total, records := historyBytes(ctx, t, e.client, runsSeen)
	hosts := len(fleet.Hosts())
	t.Logf("history of %d runs: %d bytes, %d of them decision records: %d bytes per host with the records, %d without",
		len(runsSeen), total, records, total/hosts, (total-records)/hosts)

	if r := e.cli(ctx, "decisions", "no-such-rollout"); r.code == 0 || !strings.Contains(r.stderr, "no-such-rollout") {
		t.Errorf("decisions of an unknown rollout: exit %d, stderr %q; want an error naming it", r.code, r.stderr)
	}
}

// TestE2EDecisionsFollowEveryContinueAsNew starts MS08-067 on the
// 14-host preflight fleet with run limits small enough that the rollout
// and its batch children continue as new many times (2 batches per
// rollout run, 2 hosts per batch run). Every decision is still read,
// every rebuilt input is exact (the command exits 0), and every host's
// last compliance decision is compliant.
func TestE2EDecisionsFollowEveryContinueAsNew(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	fleet, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-preflight.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "ms08-067"
	src, diags := rollout.LoadSource(e.fastRollout(), rollout.LoadOptions{InventoryPath: inv})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	in := workflows.NewRolloutInput(src, "alice", time.Now(), workflows.Tuning{BatchSize: 4, MaxBatchesPerRun: 2, MaxHostsPerRun: 2})
	if _, _, err := workflows.Start(ctx, e.client, in); err != nil {
		t.Fatal(err)
	}
	if p := e.drive(ctx, id, 4*time.Minute, nil); p.Status != workflows.StatusCompleted {
		t.Fatalf("rollout ended %s", p.Status)
	}
	out := e.mustCLI(ctx, "decisions", id)
	runs := map[string]map[string]bool{} // workflow id -> run ids
	final := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var en struct {
			Labels map[string]string `json:"labels"`
			Path   string            `json:"path"`
			Result struct {
				State string `json:"state"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(line), &en); err != nil {
			t.Fatal(err)
		}
		w := en.Labels["workflow_id"]
		if runs[w] == nil {
			runs[w] = map[string]bool{}
		}
		runs[w][en.Labels["run_id"]] = true
		if en.Path == "patchway/compliance/decision" {
			final[en.Labels["host"]] = en.Result.State
		}
	}
	rolloutRuns, batchMulti := len(runs[workflows.WorkflowID(id)]), 0
	for w, r := range runs {
		if w != workflows.WorkflowID(id) && len(r) > 1 {
			batchMulti++
		}
	}
	if rolloutRuns < 2 || batchMulti == 0 {
		t.Errorf("decisions from %d rollout run(s) and %d batch(es) with several runs; want both to have continued as new", rolloutRuns, batchMulti)
	}
	for _, h := range fleet.Hosts() {
		if final[h.Name()] != "compliant" {
			t.Errorf("host %s: last compliance decision %q, want compliant", h.Name(), final[h.Name()])
		}
	}
	t.Logf("decisions from %d rollout runs and %d workflows; %d batches ran several runs", rolloutRuns, len(runs), batchMulti)
}

// historyBytes sums decisionlog.HistoryBytes over the runs.
func historyBytes(ctx context.Context, t *testing.T, c client.Client, runs map[[2]string]bool) (total, records int) {
	t.Helper()
	for run := range runs {
		n, r, err := decisionlog.HistoryBytes(ctx, c, run[0], run[1])
		if err != nil {
			t.Fatal(err)
		}
		total, records = total+n, records+r
	}
	return total, records
}
