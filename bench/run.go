package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/patchway/patchway/decisionlog"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// sizeResult is everything measured for one fleet size.
type sizeResult struct {
	N, P int
	// RolloutWall runs from submit to the rollout workflow's completion,
	// approvals included; ApprovalWait is the part spent between seeing
	// a gate wait and its approval returning.
	RolloutWall  time.Duration
	ApprovalWait time.Duration
	Baseline     baselineResult
	// Executions, Events and MaxHistory: workflow executions of the
	// rollout (parent runs and batch children), their history events in
	// total, and the longest single history.
	Executions int
	Events     int64
	MaxHistory int64
	MaxHistID  string
	// HistoryBytes is the encoded size of every event of those
	// executions; RecordBytes the part that is decision records
	// (decisionlog.HistoryBytes).
	HistoryBytes, RecordBytes int64
	Worker                    usage
	Server                    usage
	Fleet                     usage
	Policy                    policies.StatsReport
	// WorkerProfile and ServerProfile are the CPU profiles' paths.
	WorkerProfile, ServerProfile string
}

// ratio is rollout wall time over baseline wall time.
func (r sizeResult) ratio() float64 {
	if r.Baseline.Wall <= 0 {
		return 0
	}
	return r.RolloutWall.Seconds() / r.Baseline.Wall.Seconds()
}

// sizeTimeout bounds one phase (the rollout, or the baseline) of a size.
func sizeTimeout(n int) time.Duration { return 3*time.Minute + time.Duration(n)*150*time.Millisecond }

var (
	serverReady = regexp.MustCompile(`Temporal frontend\s+(\S+) \(namespace (\S+)\)`)
	fleetReady  = regexp.MustCompile(`Simulated fleet ready: (\d+) hosts`)
	workerReady = regexp.MustCompile(`worker started`)
)

// runSize runs the rollout benchmark and then the baseline for a fleet of
// n hosts, each against its own freshly started fleet.
func runSize(ctx context.Context, cfg config, n int) (sizeResult, error) {
	res := sizeResult{N: n, P: cfg.parallel}
	dir := filepath.Join(cfg.workDir, fmt.Sprintf("n%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	rolloutPath, scenarioPath, policyDir, err := writeScenario(dir, cfg.examples, n, cfg.parallel)
	if err != nil {
		return res, err
	}
	pwBytes := make([]byte, 18)
	if _, err := rand.Read(pwBytes); err != nil {
		return res, err
	}
	const user = "patchway"
	password := hex.EncodeToString(pwBytes)
	env := append(cleanEnv(),
		"PATCHWAY_FLEET_USER="+user, "PATCHWAY_FLEET_PASSWORD="+password,
		"PATCHWAY_CRED_FLEET_USER="+user, "PATCHWAY_CRED_FLEET_PASSWORD="+password,
		"PATCHWAY_CRED_FLEET_ADDRESSES="+fleetsim.ListenAddresses,
		"PATCHWAY_POLICY_DIR="+policyDir)
	ps := &procSet{}
	defer ps.killAll()

	res.ServerProfile = filepath.Join(dir, "server.pprof")
	server, m, err := ps.start(ctx, "server", dir, cfg.patchway, []string{"dev", "--no-worker", "--headless", "--in-memory",
		"--scenario=", "--port", "0", "--console-port", "-1", "--cpuprofile", res.ServerProfile}, env, serverReady, 2*time.Minute)
	if err != nil {
		return res, err
	}
	address, namespace := m[1], m[2]
	fleetDir := filepath.Join(dir, "fleet")
	fleet, _, err := ps.start(ctx, "fleet", dir, cfg.patchway, []string{"fleet", "--scenario", scenarioPath, "--dir", fleetDir,
		"--reboot-downtime", cfg.rebootDowntime.String()}, env, fleetReady, 10*time.Minute)
	if err != nil {
		return res, err
	}
	res.WorkerProfile = filepath.Join(dir, "worker.pprof")
	statsPath := filepath.Join(dir, "policy-stats.json")
	worker, _, err := ps.start(ctx, "worker", dir, cfg.patchway, []string{"worker", "--address", address, "--namespace", namespace,
		"--cpuprofile", res.WorkerProfile, "--policy-stats", statsPath}, env, workerReady, 2*time.Minute)
	if err != nil {
		return res, err
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: address, Namespace: namespace,
		Logger: sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))})
	if err != nil {
		return res, fmt.Errorf("dial the server: %w", err)
	}
	defer c.Close()
	cli := func(ctx context.Context, args ...string) (string, error) {
		return runCLI(ctx, cfg.patchway, env, append(args, "--address", address, "--namespace", namespace)...)
	}

	id := fmt.Sprintf("bench-%d", n)
	rctx, cancel := context.WithTimeout(ctx, sizeTimeout(n))
	defer cancel()
	fmt.Fprintf(cfg.log, "N=%d: rollout over %d simulated hosts, max parallel %d...\n", n, n, cfg.parallel)
	start := time.Now()
	if _, err := cli(rctx, "submit", rolloutPath, "--inventory", filepath.Join(fleetDir, "inventory.hcl"), "--insecure-dev-identity", "--as", benchFiler); err != nil {
		return res, fmt.Errorf("submit the rollout: %w", err)
	}
	done := make(chan error, 1)
	go func() {
		var report json.RawMessage
		done <- c.GetWorkflow(rctx, workflows.WorkflowID(id), "").Get(rctx, &report)
	}()
	if res.ApprovalWait, err = driveGates(rctx, c, cli, id, done); err != nil {
		return res, err
	}
	if err := <-done; err != nil {
		return res, fmt.Errorf("rollout %s: %w", id, err)
	}
	res.RolloutWall = time.Since(start)
	if err := checkCompleted(rctx, c, id, n); err != nil {
		return res, err
	}
	if res.Executions, res.Events, res.MaxHistory, res.MaxHistID, res.HistoryBytes, res.RecordBytes, err = historySizes(rctx, c, namespace, id); err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.log, "N=%d: rollout done in %s; stopping worker, server and fleet\n", n, res.RolloutWall.Round(time.Millisecond))
	c.Close()
	if res.Worker, err = worker.stop(time.Minute); err != nil {
		return res, err
	}
	if res.Server, err = server.stop(time.Minute); err != nil {
		return res, err
	}
	if res.Fleet, err = fleet.stop(time.Minute); err != nil {
		return res, err
	}
	b, err := os.ReadFile(statsPath)
	if err != nil {
		return res, fmt.Errorf("policy statistics: %w", err)
	}
	if err := json.Unmarshal(b, &res.Policy); err != nil {
		return res, fmt.Errorf("policy statistics: %w", err)
	}

	// The baseline, against a fresh fleet: every host unpatched again.
	fmt.Fprintf(cfg.log, "N=%d: baseline over a fresh fleet, %d goroutines...\n", n, cfg.parallel)
	baseDir := filepath.Join(dir, "fleet-baseline")
	bfleet, _, err := ps.start(ctx, "fleet-baseline", dir, cfg.patchway, []string{"fleet", "--scenario", scenarioPath, "--dir", baseDir,
		"--reboot-downtime", cfg.rebootDowntime.String()}, env, fleetReady, 10*time.Minute)
	if err != nil {
		return res, err
	}
	inv, diags := rollout.LoadInventory(filepath.Join(baseDir, "inventory.hcl"))
	if diags.HasErrors() {
		return res, fmt.Errorf("baseline inventory: %w", diags)
	}
	src, err := os.ReadFile(rolloutPath)
	if err != nil {
		return res, err
	}
	ro, diags := rollout.DecodeRollout(rolloutPath, src)
	if diags.HasErrors() {
		return res, fmt.Errorf("baseline rollout: %w", diags)
	}
	bctx, bcancel := context.WithTimeout(ctx, sizeTimeout(n))
	defer bcancel()
	res.Baseline, err = runBaseline(bctx, inv, ro.Patch, policyDir, user, password, cfg.parallel)
	if err != nil {
		return res, err
	}
	if res.Baseline.Compliant != n {
		return res, fmt.Errorf("baseline: %d of %d hosts compliant; first problem: %s", res.Baseline.Compliant, n, res.Baseline.FirstError)
	}
	if res.Baseline.Fleet, err = bfleet.stop(time.Minute); err != nil {
		return res, err
	}
	fmt.Fprintf(cfg.log, "N=%d: baseline done in %s (ratio %.2f)\n", n, res.Baseline.Wall.Round(time.Millisecond), res.ratio())
	return res, nil
}

// cleanEnv is this process's environment without TEMPORAL_* and
// PATCHWAY_* variables: the flags and the benchmark's own settings name
// everything the processes use.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "PATCHWAY_") {
			env = append(env, kv)
		}
	}
	return env
}

// runCLI runs one patchway command and returns its standard output.
func runCLI(ctx context.Context, bin string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("patchway %s: %w\n%s%s", args[0], err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// driveGates approves each gate as it comes, as a person in the gates
// policy other than the filer would, polling the progress query every
// 100 ms until every gate is approved (or the rollout ends). It returns
// the time spent from first seeing each gate wait to its approval.
func driveGates(ctx context.Context, c client.Client, cli func(context.Context, ...string) (string, error), id string, done <-chan error) (time.Duration, error) {
	seen := map[string]time.Time{}
	approved := map[string]bool{}
	var wait time.Duration
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(approved) < len(benchGates) {
		select {
		case err := <-done:
			// Ended before its gates: report it to the caller as is.
			return wait, fmt.Errorf("rollout %s ended before its gates were approved (%d of %d): %v", id, len(approved), len(benchGates), err)
		case <-ctx.Done():
			return wait, fmt.Errorf("rollout %s: gates: %w", id, ctx.Err())
		case <-tick.C:
		}
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		var p workflows.Progress
		v, err := c.QueryWorkflow(qctx, workflows.WorkflowID(id), "", workflows.QueryProgress)
		if err == nil {
			err = v.Get(&p)
		}
		cancel()
		if err != nil {
			continue
		}
		switch p.Status {
		case workflows.StatusHalted, workflows.StatusRejected, workflows.StatusAborted:
			return wait, fmt.Errorf("rollout %s is %s at %s", id, p.Status, p.Stage)
		}
		g := p.WaitingGate
		if g == "" || approved[g] {
			continue
		}
		if _, ok := seen[g]; !ok {
			seen[g] = time.Now()
		}
		if _, err := cli(ctx, "approve", id, g, "--insecure-dev-identity", "--as", benchApprover, "--reason", "benchmark: automatic approval"); err != nil {
			return wait, err
		}
		approved[g] = true
		wait += time.Since(seen[g])
	}
	return wait, nil
}

// checkCompleted refuses a run in which not every host ended compliant:
// its timings would not be comparable with the baseline's.
func checkCompleted(ctx context.Context, c client.Client, id string, n int) error {
	v, err := c.QueryWorkflow(ctx, workflows.WorkflowID(id), "", workflows.QueryProgress)
	if err != nil {
		return fmt.Errorf("final progress of %s: %w", id, err)
	}
	var p workflows.Progress
	if err := v.Get(&p); err != nil {
		return err
	}
	compliant := 0
	for _, s := range p.Steps {
		compliant += s.Totals[rollout.StateCompliant]
	}
	if p.Status != workflows.StatusCompleted || p.HostsTotal != n || compliant != n {
		return fmt.Errorf("rollout %s ended %s with %d of %d hosts compliant (%d total)", id, p.Status, compliant, n, p.HostsTotal)
	}
	return nil
}

// historySizes lists every workflow execution of the rollout by its
// RolloutId search attribute (the parent's runs and every batch child's)
// once visibility shows them all closed, and sums their history lengths
// and sizes (with the part that is decision records).
func historySizes(ctx context.Context, c client.Client, namespace, id string) (executions int, events, maxLen int64, maxID string, total, records int64, err error) {
	type exec struct{ wf, run string }
	var list []exec
	deadline := time.Now().Add(time.Minute)
	for prev := -1; ; {
		list = list[:0]
		open := 0
		var token []byte
		for {
			resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
				Namespace: namespace, Query: fmt.Sprintf("RolloutId = '%s'", id), NextPageToken: token, PageSize: 1000,
			})
			if err != nil {
				return 0, 0, 0, "", 0, 0, fmt.Errorf("list the executions of %s: %w", id, err)
			}
			for _, e := range resp.Executions {
				list = append(list, exec{e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()})
				if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
					open++
				}
			}
			if token = resp.NextPageToken; len(token) == 0 {
				break
			}
		}
		if open == 0 && len(list) == prev {
			break
		}
		if time.Now().After(deadline) {
			return 0, 0, 0, "", 0, 0, fmt.Errorf("visibility of %s did not settle within a minute (%d executions, %d open)", id, len(list), open)
		}
		prev = len(list)
		time.Sleep(500 * time.Millisecond)
	}
	if !slices.ContainsFunc(list, func(e exec) bool { return e.wf == workflows.WorkflowID(id) }) {
		return 0, 0, 0, "", 0, 0, errors.New("the rollout workflow itself is not among the executions listed by RolloutId")
	}
	for _, e := range list {
		n, rec, err := decisionlog.HistoryBytes(ctx, c, e.wf, e.run)
		if err != nil {
			return 0, 0, 0, "", 0, 0, err
		}
		total, records = total+int64(n), records+int64(rec)
		d, err := c.DescribeWorkflowExecution(ctx, e.wf, e.run)
		if err != nil {
			return 0, 0, 0, "", 0, 0, fmt.Errorf("describe %s: %w", e.wf, err)
		}
		l := d.GetWorkflowExecutionInfo().GetHistoryLength()
		events += l
		if l > maxLen {
			maxLen, maxID = l, e.wf
		}
	}
	return len(list), events, maxLen, maxID, total, records, nil
}
