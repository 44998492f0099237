package devserver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/devserver"
)

var (
	stageAttr = temporal.NewSearchAttributeKeyKeyword("TestStage")
	doneAttr  = temporal.NewSearchAttributeKeyInt64("TestDone")
)

var testAttrs = []devserver.SearchAttribute{
	{Name: stageAttr.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: doneAttr.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_INT},
}

// stageWorkflow upserts custom search attributes (done only when
// positive), which fails the workflow task forever when the server does not
// know them.
func stageWorkflow(ctx workflow.Context, stage string, done int64) (string, error) {
	updates := []temporal.SearchAttributeUpdate{stageAttr.ValueSet(stage)}
	if done > 0 {
		updates = append(updates, doneAttr.ValueSet(done))
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		return "", fmt.Errorf("upsert search attributes: %w", err)
	}
	return "at " + stage, nil
}

// testLogger logs warnings to the test log until the test ends; the
// server's goroutines may still log while stopping, after t.Log is no
// longer allowed.
func testLogger(t *testing.T) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    *testing.T
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

func start(t *testing.T, opts devserver.Options) *devserver.Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts.Logger = testLogger(t)
	s, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	return s
}

func dial(t *testing.T, s *devserver.Server) client.Client {
	t.Helper()
	c, err := client.Dial(client.Options{
		HostPort:  s.FrontendAddress(),
		Namespace: s.Namespace(),
		Logger:    sdklog.NewStructuredLogger(testLogger(t)),
	})
	if err != nil {
		t.Fatalf("dial %s: %v", s.FrontendAddress(), err)
	}
	return c
}

// runStage runs stageWorkflow to completion with a worker in this process.
func runStage(t *testing.T, c client.Client, id, stage string, done int64) {
	t.Helper()
	w := worker.New(c, "devserver-test", worker.Options{})
	w.RegisterWorkflow(stageWorkflow)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: id, TaskQueue: "devserver-test",
		// A task failure (unknown search attribute) must fail the test,
		// not retry until the timeout.
		WorkflowTaskTimeout: 10 * time.Second,
	}, stageWorkflow, stage, done)
	if err != nil {
		t.Fatalf("start workflow: %v", err)
	}
	var got string
	if err := run.Get(ctx, &got); err != nil {
		t.Fatalf("workflow %s: %v", id, err)
	}
	if got != "at "+stage {
		t.Fatalf("workflow result = %q, want %q", got, "at "+stage)
	}
}

// countByStage lists workflows by the custom search attribute, waiting for
// visibility to catch up.
func countByStage(t *testing.T, c client.Client, stage string) int {
	t.Helper()
	query := fmt.Sprintf("%s = '%s'", stageAttr.GetName(), stage)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			t.Fatalf("list %q: %v", query, err)
		}
		if n := len(resp.GetExecutions()); n > 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func customAttrs(t *testing.T, c client.Client, ns string) map[string]enumspb.IndexedValueType {
	t.Helper()
	resp, err := c.OperatorService().ListSearchAttributes(context.Background(),
		&operatorservice.ListSearchAttributesRequest{Namespace: ns})
	if err != nil {
		t.Fatalf("list search attributes: %v", err)
	}
	return resp.GetCustomAttributes()
}

func TestInMemoryServerRunsWorkflowsWithCustomSearchAttributesAndServesTheUI(t *testing.T) {
	s := start(t, devserver.Options{SearchAttributes: testAttrs})
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	if s.DatabasePath() != "" {
		t.Errorf("in-memory server has database path %q", s.DatabasePath())
	}
	for _, addr := range []string{s.FrontendAddress(), strings.TrimPrefix(s.UIAddress(), "http://")} {
		if !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("address %q is not on loopback", addr)
		}
	}

	c := dial(t, s)
	defer c.Close()
	runStage(t, c, "memory-1", "wave:emea", 3)
	if n := countByStage(t, c, "wave:emea"); n != 1 {
		t.Errorf("workflows with stage wave:emea = %d, want 1", n)
	}

	resp, err := http.Get(s.UIAddress() + "/namespaces/default/workflows")
	if err != nil {
		t.Fatalf("GET web UI: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.ToLower(string(body)), "<html") {
		t.Errorf("web UI answered %d with %.200q, want the UI's HTML page", resp.StatusCode, body)
	}
}

func TestFileServerKeepsNamespaceWorkflowsAndAddsNewSearchAttributesOnRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	// First start knows only the stage attribute, as an older Patchway
	// would have registered.
	s := start(t, devserver.Options{StateDir: dir, Namespace: "patchway", DisableUI: true, SearchAttributes: testAttrs[:1]})
	c := dial(t, s)
	runStage(t, c, "file-1", "lab", 0)
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	info, err := os.Stat(filepath.Join(dir, devserver.DatabaseFile))
	if err != nil {
		t.Fatalf("SQLite file after stop: %v", err)
	}
	if info.Size() == 0 {
		t.Fatalf("SQLite file is empty")
	}

	s = start(t, devserver.Options{StateDir: dir, Namespace: "patchway", DisableUI: true, SearchAttributes: testAttrs})
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()
	c = dial(t, s)
	defer c.Close()

	attrs := customAttrs(t, c, "patchway")
	for _, a := range testAttrs {
		if attrs[a.Name] != a.Type {
			t.Errorf("search attribute %s = %v after restart, want %v", a.Name, attrs[a.Name], a.Type)
		}
	}
	desc, err := c.WorkflowService().DescribeNamespace(context.Background(),
		&workflowservice.DescribeNamespaceRequest{Namespace: "patchway"})
	if err != nil {
		t.Fatalf("describe namespace: %v", err)
	}
	if got := desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration(); got != devserver.DefaultRetention {
		t.Errorf("retention = %v, want %v", got, devserver.DefaultRetention)
	}
	if _, err := c.DescribeWorkflowExecution(context.Background(), "file-1", ""); err != nil {
		t.Errorf("workflow of the first run is gone after restart: %v", err)
	}
	if n := countByStage(t, c, "lab"); n != 1 {
		t.Errorf("workflows with stage lab after restart = %d, want 1", n)
	}
	// The attribute added at this start is usable at once.
	runStage(t, c, "file-2", "wave:amer", 7)
	if n := countByStage(t, c, "wave:amer"); n != 1 {
		t.Errorf("workflows with stage wave:amer = %d, want 1", n)
	}
}

func TestStartRefusesABusyUIPort(t *testing.T) {
	s := start(t, devserver.Options{DisableUI: true})
	defer func() { _ = s.Stop() }()
	_, port, _ := strings.Cut(s.FrontendAddress(), ":")
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("frontend port %q: %v", port, err)
	}
	_, err = devserver.Start(context.Background(), devserver.Options{UIPort: p})
	if err == nil || !strings.Contains(err.Error(), "not free") {
		t.Fatalf("Start on a busy UI port = %v, want a 'not free' error", err)
	}
}

// TestStartRefusesACorruptStateFileNamingItAndHowToRecover: a file that is
// not a database, and a real state file with 64 KiB of garbage in its
// middle, are refused before the server starts, with the file's path and
// both ways out; the file is left as it was, for a restore or a post-mortem.
func TestStartRefusesACorruptStateFileNamingItAndHowToRecover(t *testing.T) {
	good := filepath.Join(t.TempDir(), "state")
	s := start(t, devserver.Options{StateDir: good, Namespace: "patchway", DisableUI: true, SearchAttributes: testAttrs})
	c := dial(t, s)
	runStage(t, c, "before-corruption", "lab", 0)
	c.Close()
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	db, err := os.ReadFile(filepath.Join(good, devserver.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + 13)
	}
	if len(db) < 3*len(garbage) {
		t.Fatalf("state file of %d bytes is too small to corrupt its middle", len(db))
	}
	middle := append([]byte(nil), db...)
	copy(middle[len(db)/2-len(garbage)/2:], garbage)

	for name, content := range map[string][]byte{
		"not a database":           []byte("this is not SQLite\n"),
		"64 KiB of garbage inside": middle,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, devserver.DatabaseFile)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			s, err := devserver.Start(ctx, devserver.Options{StateDir: dir, Namespace: "patchway", DisableUI: true, Logger: testLogger(t)})
			if err == nil {
				_ = s.Stop()
				t.Fatalf("Start over a corrupt state file succeeded")
			}
			for _, want := range []string{path, "not a usable SQLite database", "mv " + path + " " + path + ".broken", "restore a copy"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Start error %q lacks %q", err, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
				t.Errorf("the corrupt state file was changed")
			}
		})
	}
}
