package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/workflows"
)

// The end-to-end tests run the real patchway binary (built once per test
// run) against an embedded Temporal server and the simulated fleet, both
// in the test process. The worker is a child process, so a test can kill
// it with SIGKILL as a crash would.

// cliBinary builds the patchway binary once for the whole package.
type cliBinary struct {
	once sync.Once
	path string
	err  error
}

var binary cliBinary

func (b *cliBinary) get(t *testing.T) string {
	t.Helper()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "patchway-e2e-bin-")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "patchway")
		cmd := exec.Command("go", "build", "-o", b.path, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatalf("build patchway: %v", b.err)
	}
	return b.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.path != "" {
		_ = os.RemoveAll(filepath.Dir(binary.path))
	}
	os.Exit(code)
}

// e2e is one end-to-end test's world: the server, the fleet, the policy
// overrides and the environment the CLI runs with.
type e2e struct {
	t      *testing.T
	dir    string
	bin    string
	srv    *devserver.Server
	client client.Client
	env    []string
	opts   e2eOptions
	// port is the frontend port, kept across a server restart so the
	// worker and the CLI reconnect to the same address.
	port int
}

// e2eOptions shapes a test's world.
type e2eOptions struct {
	// ui starts the Web UI (only the browser test needs it).
	ui bool
	// stateDir persists the server in SQLite there ("" = in memory).
	stateDir string
	// policyData is a JSON object deep-merged over the default policy
	// data (short SLAs, no minimum soak, test approvers).
	policyData string
	// env adds variables for the CLI and the worker.
	env []string
	// verifiedIdentity: people act with tokens only. Otherwise the
	// worker accepts typed names (data.oidc.insecure_dev_identity, what
	// `patchway dev --insecure-dev-identity` sets) and cli adds
	// --insecure-dev-identity to every command given --as: the tests of
	// the staged path are not about identity (identity_test.go is).
	verifiedIdentity bool
}

// insecureIdentity is the policy data of a world whose people type
// their names.
const insecureIdentity = `{"oidc": {"insecure_dev_identity": true}}`

// newE2E starts the embedded server and prepares the CLI's environment.
func newE2E(t *testing.T, opts e2eOptions) *e2e {
	t.Helper()
	e := &e2e{t: t, dir: t.TempDir(), bin: binary.get(t), opts: opts}
	e.startServer()
	// The CLI and worker see no TEMPORAL_* of the developer's shell: the
	// flags name the test's server.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TEMPORAL_") && !strings.HasPrefix(kv, "PATCHWAY_") {
			e.env = append(e.env, kv)
		}
	}
	files := map[string]string{}
	if opts.policyData != "" {
		files["e2e-overrides.json"] = opts.policyData
	}
	if !opts.verifiedIdentity {
		files["e2e-identity.json"] = insecureIdentity
	}
	if len(files) > 0 {
		dir := filepath.Join(e.dir, "policy")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		e.env = append(e.env, "PATCHWAY_POLICY_DIR="+dir)
	}
	// The example inventory's credential sets, so the preflight lets its
	// rollouts start: bound to loopback, where none of its hosts is.
	for _, set := range []string{"APAC_ADMIN", "EMEA_ADMIN", "LAB_ADMIN", "LATAM_ADMIN", "NA_ADMIN"} {
		e.env = append(e.env, "PATCHWAY_CRED_"+set+"_USER=e2e", "PATCHWAY_CRED_"+set+"_PASSWORD=e2e-"+strings.ToLower(set), "PATCHWAY_CRED_"+set+"_ADDRESSES=127.0.0.0/8")
	}
	e.env = append(e.env, opts.env...)
	return e
}

func (e *e2e) startServer() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var attrs []devserver.SearchAttribute
	for _, a := range workflows.SearchAttributes {
		attrs = append(attrs, devserver.SearchAttribute{Name: a.Name, Type: a.Type})
	}
	srv, err := devserver.Start(ctx, devserver.Options{
		StateDir: e.opts.stateDir, DisableUI: !e.opts.ui, SearchAttributes: attrs, FrontendPort: e.port,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		e.t.Fatalf("start dev server: %v", err)
	}
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: testSDKLogger(io.Discard)})
	if err != nil {
		_ = srv.Stop()
		e.t.Fatalf("dial dev server: %v", err)
	}
	if e.srv == nil && e.port == 0 {
		e.t.Cleanup(e.stopServer)
	}
	e.srv, e.client = srv, c
	_, port, _ := net.SplitHostPort(srv.FrontendAddress())
	e.port, _ = strconv.Atoi(port)
}

// address is the frontend address the CLI and the worker use.
func (e *e2e) address() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(e.port)) }

// stopServer stops the client and the server (idempotent).
func (e *e2e) stopServer() {
	if e.client != nil {
		e.client.Close()
		e.client = nil
	}
	if e.srv != nil {
		if err := e.srv.Stop(); err != nil {
			e.t.Errorf("stop dev server: %v", err)
		}
		e.srv = nil
	}
}

// identityCommands are the commands whose --as needs
// --insecure-dev-identity (draft keeps a plain label).
var identityCommands = map[string]bool{
	"submit": true, "approve": true, "reject": true, "pause": true, "resume": true, "abort": true,
	"except": true, "skip-host": true, "threat": true, "scan": true,
}

// cliResult is one CLI run's outcome.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the patchway binary with the connection flags of the test's
// server and waits for it.
func (e *e2e) cli(ctx context.Context, args ...string) cliResult {
	e.t.Helper()
	full := append(append([]string{}, args...), "--address", e.address(), "--namespace", devserver.DefaultNamespace)
	if !e.opts.verifiedIdentity && slices.Contains(args, "--as") && identityCommands[args[0]] {
		full = append(full, "--insecure-dev-identity")
	}
	cmd := exec.CommandContext(ctx, e.bin, full...)
	cmd.Env = e.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := cliResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		e.t.Fatalf("run patchway %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func (e *e2e) mustCLI(ctx context.Context, args ...string) string {
	e.t.Helper()
	r := e.cli(ctx, args...)
	if r.code != 0 {
		e.t.Fatalf("patchway %s exited %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// workerProc is a `patchway worker` child process.
type workerProc struct {
	cmd  *exec.Cmd
	log  string
	done chan error
}

func (e *e2e) startWorker(extra ...string) *workerProc {
	e.t.Helper()
	logPath := filepath.Join(e.dir, fmt.Sprintf("worker-%d.log", time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	args := append([]string{"worker", "--address", e.address(), "--namespace", devserver.DefaultNamespace}, extra...)
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start worker: %v", err)
	}
	w := &workerProc{cmd: cmd, log: logPath, done: make(chan error, 1)}
	go func() {
		w.done <- cmd.Wait()
		_ = f.Close()
	}()
	e.t.Cleanup(func() {
		w.stop(e.t)
		if e.t.Failed() {
			w.logTail(e.t, 40)
		}
	})
	return w
}

// logTail logs the last n lines of the worker's log, so a failed test
// shows what the worker saw.
func (w *workerProc) logTail(t *testing.T, n int) {
	b, err := os.ReadFile(w.log)
	if err != nil {
		t.Logf("worker log %s: %v", w.log, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	t.Logf("last lines of the worker log %s:\n%s", w.log, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// kill ends the worker as a crash would: SIGKILL, no clean-up.
func (w *workerProc) kill(t *testing.T) {
	t.Helper()
	if w.cmd.ProcessState != nil {
		return
	}
	if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill worker: %v", err)
	}
	<-w.done
	w.done <- nil
}

// stop asks the worker to stop (SIGTERM) and waits for it, bounded.
func (w *workerProc) stop(t *testing.T) {
	select {
	case err := <-w.done:
		w.done <- err
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-w.done:
		w.done <- err
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		t.Errorf("worker did not stop within 30s of SIGTERM; log %s", w.log)
	}
}

// webhookReceiver records the JSON bodies posted to it. With a key it
// verifies X-Patchway-Signature the way a real receiver must (HMAC-SHA256
// over the raw body, constant-time compare) and answers 401 otherwise.
type webhookReceiver struct {
	url string
	key []byte
	mu  sync.Mutex
	got []map[string]any
	// badSignatures counts requests refused for their signature.
	badSignatures int
	// keys are the Idempotency-Key headers, in arrival order.
	keys []string
}

func newWebhookReceiver(t *testing.T, key string) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{}
	if key != "" {
		r.key = []byte(key)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if r.key != nil && activities.VerifySignature(r.key, body, req.Header.Get(activities.SignatureHeader), time.Now(), activities.SignatureTolerance) != nil {
			r.mu.Lock()
			r.badSignatures++
			r.mu.Unlock()
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			m = map[string]any{"raw": string(body)}
		}
		r.mu.Lock()
		r.got = append(r.got, m)
		r.keys = append(r.keys, req.Header.Get(activities.IdempotencyHeader))
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.url = "http://" + l.Addr().String() + "/hook"
	return r
}

func (r *webhookReceiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.got...)
}

// progress asks the rollout's progress query directly (faster than the CLI
// for polling).
func (e *e2e) progress(ctx context.Context, rolloutID string) (workflows.Progress, error) {
	return workflows.GetProgress(ctx, e.client, rolloutID)
}

// waitFor polls the rollout's progress until cond holds, failing the test
// after timeout with the last progress seen.
func (e *e2e) waitFor(ctx context.Context, rolloutID, what string, timeout time.Duration, cond func(workflows.Progress) bool) workflows.Progress {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var last workflows.Progress
	var lastErr error
	for time.Now().Before(deadline) {
		p, err := e.progress(ctx, rolloutID)
		if err == nil {
			last = p
			if cond(p) {
				return p
			}
		}
		lastErr = err
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("rollout %s: %s not reached within %s (last error %v)\n%s", rolloutID, what, timeout, lastErr, renderProgress(last, time.Now()))
	return last
}

func testSDKLogger(w io.Writer) sdklog.Logger {
	return sdklog.NewStructuredLogger(slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// TestE2EGateAndControlCommandsAgainstARunningRollout drives every operator
// command through the real binary against a real rollout workflow and the
// real policies: what is refused exits 1 with the reason, what is allowed
// is recorded with who and why. The default gates data governs every
// control: pause is a brake the filer may pull too; an exception needs
// another person. The example's hosts sit on closed loopback ports (the rollout
// is controlled, not completed).
func TestE2EGateAndControlCommandsAgainstARunningRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const id = "ms08-067"
	inv, _ := e.unreachableInventory()
	out := e.mustCLI(ctx, "submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", inv, "--as", "alice")
	if !strings.Contains(out, "filed rollout ms08-067 (KB958644, critical) by alice") {
		t.Errorf("submit said %q", out)
	}
	e.waitFor(ctx, id, "the risk decision", time.Minute, func(p workflows.Progress) bool { return len(p.Steps) > 0 })

	steps := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		check    func(workflows.Progress) bool
	}{
		{"filing the same rollout again is refused with its status",
			[]string{"submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", inv, "--as", "carol"}, 1, "already running", nil},
		{"approving when no gate waits is refused by the rollout",
			[]string{"approve", id, "--as", "bob"}, 1, "not waiting at a gate", nil},
		{"a pause without a reason is refused by the CLI",
			[]string{"pause", id, "--as", "bob"}, 1, `required flag(s) "reason" not set`, nil},
		{"someone outside the security team may not pause",
			[]string{"pause", id, "--as", "mallory", "--reason", "curious"}, 1, "not_in_group", nil},
		{"the filer may pull the pause brake on her own rollout, recorded with the reason",
			[]string{"pause", id, "--as", "alice", "--reason", "change freeze"}, 0, "alice paused ms08-067",
			func(p workflows.Progress) bool { return p.Paused && hasRecord(p, "pause", "alice", "change freeze") }},
		{"pausing twice is refused",
			[]string{"pause", id, "--as", "carol", "--reason", "again"}, 1, "already paused", nil},
		{"resume lifts the pause",
			[]string{"resume", id, "--as", "carol", "--reason", "freeze over"}, 0, "carol resumed ms08-067",
			func(p workflows.Progress) bool { return !p.Paused && hasRecord(p, "resume", "carol", "freeze over") }},
		{"the filer may not grant an exception on her own rollout (four-eyes)",
			[]string{"except", id, "lab-par01", "--as", "alice", "--reason", "mine", "--expires", "7d"}, 1,
			"alice filed rollout ms08-067 and may not except lab-par01: another person must (four-eyes)", nil},
		{"an exception is granted to a host until its expiry",
			[]string{"except", id, "lab-par01", "--as", "bob", "--reason", "vendor support pending", "--expires", "7d"}, 0, "excepted lab-par01",
			func(p workflows.Progress) bool { return len(p.Exceptions) == 1 && p.Exceptions[0].Host == "lab-par01" }},
		{"an exception for a host outside the rollout is refused",
			[]string{"except", id, "no-such-host", "--as", "bob", "--reason", "x", "--expires", "1d"}, 1, "not in rollout", nil},
		// The example's hosts do not exist: whether the lab has halted on
		// them by now or not, lab-par02 is no counted failure to skip.
		{"skip-host takes only a counted failure out of a halted wave",
			[]string{"skip-host", id, "lab-par02", "--as", "bob", "--reason", "x"}, 1, "skip_host refused by rollout ms08-067", nil},
		{"abort stops the rollout",
			[]string{"abort", id, "--as", "bob", "--reason", "superseded by MS08-068"}, 0, "bob aborted ms08-067",
			func(p workflows.Progress) bool { return p.Status == workflows.StatusAborted }},
	}
	for _, s := range steps {
		r := e.cli(ctx, s.args...)
		if r.code != s.wantCode || !strings.Contains(r.stdout+r.stderr, s.wantOut) {
			t.Errorf("%s: patchway %s exited %d\nstdout: %s\nstderr: %s\nwant exit %d and %q",
				s.name, strings.Join(s.args, " "), r.code, r.stdout, r.stderr, s.wantCode, s.wantOut)
			continue
		}
		if s.check != nil {
			e.waitFor(ctx, id, s.name, 30*time.Second, s.check)
		}
	}

	// status: plain, one host, JSON, and --watch returns once the rollout
	// has ended.
	if out := e.mustCLI(ctx, "status", id); !strings.Contains(out, "Rollout ms08-067  KB958644 (critical)  ABORTED") {
		t.Errorf("status = %q", out)
	}
	if out := e.mustCLI(ctx, "status", id, "--host", "lab-par01"); !strings.Contains(out, "lab-par01  excepted") {
		t.Errorf("status --host = %q, want lab-par01 excepted", out)
	}
	var p workflows.Progress
	if err := json.Unmarshal([]byte(e.mustCLI(ctx, "status", id, "--json")), &p); err != nil || p.RolloutID != id {
		t.Errorf("status --json: %v, rollout %q", err, p.RolloutID)
	}
	watchCtx, cancelWatch := context.WithTimeout(ctx, 30*time.Second)
	defer cancelWatch()
	if r := e.cli(watchCtx, "status", id, "--watch", "--interval", "200ms"); r.code != 0 || !strings.Contains(r.stdout, "ABORTED") {
		t.Errorf("status --watch of an aborted rollout exited %d with %q", r.code, r.stdout)
	}
}

// hasRecord tells whether progress holds a decision of kind by user with
// reason.
func hasRecord(p workflows.Progress, kind, user, reason string) bool {
	for _, r := range p.Decisions {
		if r.Kind == kind && r.User == user && r.Reason == reason {
			return true
		}
	}
	return false
}

// countWorkflows lists workflows matching a visibility query, waiting a
// little for visibility to catch up.
func (e *e2e) countWorkflows(ctx context.Context, query string) int {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			e.t.Fatalf("list %q: %v", query, err)
		}
		if n := len(resp.GetExecutions()); n > 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restartServer stops the server and starts it again on the same SQLite
// file and port, as a machine reboot would.
func (e *e2e) restartServer() {
	e.t.Helper()
	if e.opts.stateDir == "" {
		e.t.Fatal("restartServer needs a state directory")
	}
	e.stopServer()
	e.startServer()
}

// TestE2EServerRestartOnItsSQLiteFileKeepsTheRollout stops the embedded
// server while a rollout runs and starts it again on its SQLite file: the
// rollout, its recorded decisions and its search attributes are all there,
// and the worker (a child process that never restarted) picks up again.
func TestE2EServerRestartOnItsSQLiteFileKeepsTheRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{stateDir: filepath.Join(t.TempDir(), "state")})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const id = "ms08-067"
	inv, _ := e.unreachableInventory()
	e.mustCLI(ctx, "submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", inv, "--as", "alice")
	e.mustCLI(ctx, "pause", id, "--as", "bob", "--reason", "before the restart")
	e.waitFor(ctx, id, "the pause", 30*time.Second, func(p workflows.Progress) bool { return p.Paused })

	e.restartServer()

	// The worker reconnects by itself: the update needs it to run.
	e.mustCLI(ctx, "resume", id, "--as", "carol", "--reason", "after the restart")
	p := e.waitFor(ctx, id, "the resume", time.Minute, func(p workflows.Progress) bool { return !p.Paused })
	if !hasRecord(p, "pause", "bob", "before the restart") || !hasRecord(p, "resume", "carol", "after the restart") {
		t.Errorf("decisions across the restart are not all recorded:\n%s", renderProgress(p, time.Now()))
	}
	if n := e.countWorkflows(ctx, fmt.Sprintf("RolloutId = '%s' AND WorkflowType = '%s' AND ExecutionStatus = 'Running'", id, workflows.RolloutWorkflowName)); n != 1 {
		t.Errorf("rollout not found by its search attribute after the restart (%d found)", n)
	}
	e.mustCLI(ctx, "abort", id, "--as", "bob", "--reason", "end of test")
	e.waitFor(ctx, id, "the abort", 30*time.Second, func(p workflows.Progress) bool { return p.Status == workflows.StatusAborted })
}
