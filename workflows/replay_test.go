package workflows

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

	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// record re-records the histories in testdata from a real run against the
// embedded dev server: go test ./workflows -run TestRecordHistories -record
var record = flag.Bool("record", false, "record workflow histories into testdata from a run against the embedded dev server")

// recordTag names a new recording (<kind>-<tag>.history.json), so the
// histories of earlier workflow code stay and keep being replayed.
var recordTag = flag.String("record-tag", "", "with -record: name the histories <kind>-<tag>.history.json, keeping the earlier ones")

// TestReplayRecordedHistories replays histories recorded from real runs:
// a change to workflow code that breaks determinism for running rollouts
// fails here.
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
			replayer := worker.NewWorkflowReplayer()
			Register(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(fixture.QuietLogger(), file); err != nil {
				t.Errorf("replay %s: %v", file, err)
			}
		})
	}
}

// TestRecordHistories runs a small rollout against the embedded dev server
// with a worker in this process (the test fleet plays the hosts) and
// writes the rollout's and one batch child's history to testdata.
func TestRecordHistories(t *testing.T) {
	if !*record {
		t.Skip("records histories only with -record (needs the embedded dev server, about a minute)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := devserver.Options{DisableUI: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	for _, a := range SearchAttributes {
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

	// The real policies, with the plan policy's minimum soaks lowered so
	// that the recording takes seconds, not days, and the people typed
	// names (an insecure dev identity: the workflow's path is the same as
	// with tokens, which the policy verifies in its local activity).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "recording.json"),
		[]byte(`{"plan": {"min_soak_hours": {"important": {"lab": 0, "prodlike": 0}}}, "oidc": {"insecure_dev_identity": true}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	engine, err := policies.Load(ctx, dir)
	if err != nil {
		t.Fatalf("load policies: %v", err)
	}
	w := worker.New(c, TaskQueue, worker.Options{})
	Register(w)
	registerEngine(w, engine)
	newTestFleet(w, time.Now)
	if err := w.Start(); err != nil {
		t.Fatalf("start worker: %v", err)
	}
	defer w.Stop()

	in := standardInput(6)
	in.Rollout.FiledAt = time.Now().UTC()
	for i := range in.Rollout.Stages {
		in.Rollout.Stages[i].Soak = time.Second
	}
	in.Tuning = Tuning{BatchSize: 4}
	// An emergency that skips prodlike: the rollout first waits at its
	// emergency gate.
	in.Rollout.Emergency = &rollout.EmergencyRequest{Reason: "worm in the wild", SkipStages: []string{"prodlike"}}
	run, err := c.ExecuteWorkflow(ctx, StartOptions(in), RolloutWorkflowName, in)
	if err != nil {
		t.Fatalf("start rollout: %v", err)
	}
	// Steer it as people would: a refused approval by the filer, then
	// approvals by a member of the group at each gate (the emergency
	// group's dave at the emergency gate).
	for gate, approver := range []string{"dave", "bob"} {
		waitFor(ctx, t, c, run.GetID(), func(p Progress) bool { return p.WaitingGate != "" })
		if gate == 0 {
			if err := sendUpdate(ctx, c, run.GetID(), UpdateApprove, GateRequest{User: "alice"}); err == nil {
				t.Fatal("the filer's approval was accepted")
			}
		}
		if err := sendUpdate(ctx, c, run.GetID(), UpdateApprove, GateRequest{User: approver, Reason: "clean"}); err != nil {
			t.Fatalf("approve: %v", err)
		}
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatalf("rollout: %v", err)
	}
	name := func(kind string) string {
		if *recordTag == "" {
			return kind + ".history.json"
		}
		return kind + "-" + *recordTag + ".history.json"
	}
	fixture.WriteHistory(ctx, t, c, run.GetID(), run.GetRunID(), name("rollout"))
	fixture.WriteHistory(ctx, t, c, WorkflowID(in.Rollout.ID)+"/emea/0", "", name("batch"))
	fixture.WriteHistory(ctx, t, c, WorkflowID(in.Rollout.ID)+"/"+preflightStep+"/0-scan", "", name("preflight"))
}

func sendUpdate(ctx context.Context, c client.Client, id, name string, arg any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: id, UpdateName: name, Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	return h.Get(ctx, nil)
}

func waitFor(ctx context.Context, t *testing.T, c client.Client, id string, cond func(Progress) bool) {
	t.Helper()
	for ctx.Err() == nil {
		if v, err := c.QueryWorkflow(ctx, id, "", QueryProgress); err == nil {
			var p Progress
			if err := v.Get(&p); err == nil && cond(p) {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("waiting for rollout %s: %v", id, ctx.Err())
}
