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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

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
}

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
	if opts.policyData != "" {
		dir := filepath.Join(e.dir, "policy")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "e2e-overrides.json"), []byte(opts.policyData), 0o644); err != nil {
			t.Fatal(err)
		}
		e.env = append(e.env, "PATCHWAY_POLICY_DIR="+dir)
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
	e.t.Cleanup(func() { w.stop(e.t) })
	return w
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

// webhookReceiver records the JSON bodies posted to it.
type webhookReceiver struct {
	url string
	mu  sync.Mutex
	got []map[string]any
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			m = map[string]any{"raw": string(body)}
		}
		r.mu.Lock()
		r.got = append(r.got, m)
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
	return queryProgress(ctx, e.client, rolloutID)
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
