package scan

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// record re-records the scan histories in testdata from a real run
// against the embedded dev server: go test ./scan -run TestRecordHistories -record
var record = flag.Bool("record", false, "record scan histories into testdata from a run against the embedded dev server")

// recordTag names a new set of recorded histories (scan-TAG-*.history.json)
// so the ones of earlier workflow versions stay and keep replaying.
var recordTag = flag.String("record-tag", "", "with -record: name the new histories scan-TAG-*.history.json")

// TestReplayRecordedHistories replays scan histories recorded from real
// runs of a schedule: a change to the scan's workflow code that breaks
// determinism for scheduled or running scans fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.history.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata (record them with -record)")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h, err := client.HistoryFromJSON(f, client.HistoryJSONOptions{})
			if err != nil {
				t.Fatalf("read %s: %v", file, err)
			}
			// The scan names its batch children after its own workflow
			// id, which the replayer would otherwise make up.
			id := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId()
			replayer := worker.NewWorkflowReplayer()
			Register(replayer)
			err = replayer.ReplayWorkflowHistoryWithOptions(fixture.QuietLogger(), h,
				worker.ReplayWorkflowHistoryOptions{OriginalExecution: workflow.Execution{ID: id}})
			if err != nil {
				t.Errorf("replay %s: %v", file, err)
			}
		})
	}
}

// TestRecordHistories schedules a small scan on the embedded dev server,
// with a worker in this process (the scripted fleet plays the hosts, the
// real compliance policy judges them), runs it twice with a regression in
// between, and writes to testdata the second scan's first run (it
// continues as new), its last run (drift, notification) and one batch
// child.
func TestRecordHistories(t *testing.T) {
	if !*record {
		t.Skip("records histories only with -record (needs the embedded dev server, about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := devserver.Options{DisableUI: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	for _, a := range workflows.SearchAttributes {
		opts.SearchAttributes = append(opts.SearchAttributes, devserver.SearchAttribute{Name: a.Name, Type: a.Type})
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatalf("start dev server: %v", err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace(), Logger: fixture.QuietLogger()})
	if err != nil {
		t.Fatalf("dial dev server: %v", err)
	}
	defer c.Close()

	in := scanInput(3, rollout.Channel{Name: "security", Type: "webhook"}) // 14 hosts
	in.Tuning = Tuning{BatchSize: 4, MaxPendingBatches: 2, MaxBatchesPerRun: 2}
	fleet := scriptedFleet(in.Hosts, time.Now())
	w := worker.New(c, workflows.TaskQueue, worker.Options{})
	Register(w)
	fleet.register(t, w, time.Now)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	defer w.Stop()

	// As patchway scan --every does: the requester proven once, the
	// schedule keeping the grant.
	g, err := Authorize(ctx, c, AuthorizeInput{ScanID: in.ScanID, User: in.RequestedBy})
	if err != nil {
		t.Fatal(err)
	}
	in.Grant = &g
	h, _, err := Schedule(ctx, c, in, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = DeleteSchedule(context.Background(), c, in.ScanID) }()
	scanNow := func() (*client.ScheduleWorkflowExecution, Result) {
		t.Helper()
		tr, err := Trigger(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		run, err := tr.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Await(ctx, c, run.WorkflowID, "")
		if err != nil {
			t.Fatal(err)
		}
		return run, res
	}
	if _, first := scanNow(); first.Regressions != 0 || first.Totals[rollout.StateCompliant] != len(in.Hosts) {
		t.Fatalf("first scan: %d regressions, totals %v; want a compliant baseline", first.Regressions, first.Totals)
	}
	fleet.set("WS-EMEA-0002", func(h *scanHost) { h.files[netapi] = "6.1.7600.16000" })
	run, second := scanNow()
	if second.Regressions != 1 || len(fleet.sent()) != 1 {
		t.Fatalf("second scan: %d regressions, %d notifications; want WS-EMEA-0002's, notified once", second.Regressions, len(fleet.sent()))
	}
	prefix := "scan-"
	if *recordTag != "" {
		prefix += *recordTag + "-"
	}
	fixture.WriteHistory(ctx, t, c, run.WorkflowID, run.FirstExecutionRunID, prefix+"continued.history.json")
	fixture.WriteHistory(ctx, t, c, run.WorkflowID, "", prefix+"regression.history.json")
	fixture.WriteHistory(ctx, t, c, run.WorkflowID+"/batch-0", "", prefix+"batch.history.json")
	if *recordTag != "" {
		fixture.WriteHistory(ctx, t, c, g.Workflow, g.Run, prefix+"authorize.history.json")
	}
}
