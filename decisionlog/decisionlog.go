// Package decisionlog reads a rollout's policy decisions back from its
// Temporal histories and gives them as OPA decision-log entries.
//
// The history is the record; nothing else is stored. The rollout
// workflow's decisions (risk, gates, waves, escalation) are local
// activities: each marker's result carries contract.DecisionRecord with
// the input exactly as the policy saw it. A host's compliance decision is
// kept compactly in its verdict (contract.ComplianceRecord): its input is
// rebuilt from the host activity's input (host and patch), the verdict's
// evidence and the recorded facts, by the function the worker judged
// with, and proven exact by the recorded input hash.
package decisionlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/proto"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// Entry is one decision as OPA's decision log writes it (decision_id,
// labels, bundles with the revision, path, input, result, timestamp), so
// a SIEM takes it as it takes OPA's own. Labels say where in history the
// decision is: rollout, workflow and run ids, event id, the input's
// SHA-256, and the host for a host's decision.
type Entry struct {
	DecisionID string            `json:"decision_id"`
	Labels     map[string]string `json:"labels"`
	Bundles    map[string]Bundle `json:"bundles"`
	Path       string            `json:"path"`
	Input      json.RawMessage   `json:"input"`
	Result     json.RawMessage   `json:"result"`
	Timestamp  time.Time         `json:"timestamp"`

	// Inexact marks a host decision whose rebuilt input does not hash to
	// the recorded one (the history was written by other code, or edited):
	// the input shown is then not proven to be what the policy saw.
	Inexact bool `json:"-"`
}

// Bundle names the policy bundle's revision that decided.
type Bundle struct {
	Revision string `json:"revision"`
}

// BundleName is the bundle name entries give the revision under.
const BundleName = "patchway"

// Options choose what Read reads.
type Options struct {
	// RunID starts at this run of the rollout's chain instead of its
	// first.
	RunID string
	// Follow waits for new decisions until the rollout's workflow ends.
	// A batch's host decisions come when the batch ends.
	Follow bool
	// Version is the Patchway version put in each entry's labels.
	Version string
}

// Read gives emit every decision of the rollout, oldest first: every
// run of its continue-as-new chain, and each batch child's host decisions
// where the parent sees the child end (children still running, without
// Follow, as far as they got).
func Read(ctx context.Context, c client.Client, rolloutID string, o Options, emit func(Entry) error) error {
	r := &reader{c: c, rollout: rolloutID, o: o, emit: emit}
	id := workflows.WorkflowID(rolloutID)
	runs, err := r.chain(ctx, id)
	if err != nil {
		return err
	}
	for i := 0; i < len(runs); i++ {
		next, err := r.run(ctx, id, runs[i])
		if err != nil {
			return err
		}
		if next != "" && (i == len(runs)-1) {
			runs = append(runs, next)
		}
	}
	return nil
}

type reader struct {
	c       client.Client
	rollout string
	o       Options
	emit    func(Entry) error
}

// chain lists the runs of the rollout's latest execution chain, first
// run first, from o.RunID when set.
func (r *reader) chain(ctx context.Context, id string) ([]string, error) {
	desc, err := r.c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return nil, fmt.Errorf("rollout %s: %w", r.rollout, err)
	}
	run := desc.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	var runs []string
	for run != "" {
		runs = append([]string{run}, runs...)
		if run == r.o.RunID {
			return runs, nil
		}
		it := r.c.GetWorkflowHistory(ctx, id, run, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		if !it.HasNext() {
			break
		}
		first, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("rollout %s: read run %s: %w", r.rollout, run, err)
		}
		run = first.GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
	}
	if r.o.RunID != "" {
		return nil, fmt.Errorf("rollout %s: run %s is not in the chain of its latest execution (%s)", r.rollout, r.o.RunID, runs[len(runs)-1])
	}
	return runs, nil
}

// run emits the decisions of one run of the rollout workflow and returns
// the run it continued as, if any.
func (r *reader) run(ctx context.Context, id, runID string) (string, error) {
	it := r.c.GetWorkflowHistory(ctx, id, runID, r.o.Follow, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var (
		open []*commonpb.WorkflowExecution // children started, not yet read
		next string
	)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("rollout %s: read run %s: %w", r.rollout, runID, err)
		}
		at := where{workflow: id, run: runID, event: ev.GetEventId()}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if err := r.marker(at, ev.GetMarkerRecordedEventAttributes(), nil); err != nil {
				return "", err
			}
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
			open = append(open, ev.GetChildWorkflowExecutionStartedEventAttributes().GetWorkflowExecution())
		case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
			enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED, enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
			enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED:
			// The closing event names the child's last run; its decisions
			// start at the run the started event named.
			ex := closedChild(ev)
			for i, o := range open {
				if o.GetWorkflowId() == ex.GetWorkflowId() {
					ex = o
					open = append(open[:i], open[i+1:]...)
					break
				}
			}
			if err := r.child(ctx, ex); err != nil {
				return "", err
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	for _, ex := range open {
		if err := r.child(ctx, ex); err != nil {
			return "", err
		}
	}
	return next, nil
}

func closedChild(ev *historypb.HistoryEvent) *commonpb.WorkflowExecution {
	switch ev.GetEventType() {
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
		return ev.GetChildWorkflowExecutionCompletedEventAttributes().GetWorkflowExecution()
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
		return ev.GetChildWorkflowExecutionFailedEventAttributes().GetWorkflowExecution()
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED:
		return ev.GetChildWorkflowExecutionCanceledEventAttributes().GetWorkflowExecution()
	case enumspb.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT:
		return ev.GetChildWorkflowExecutionTimedOutEventAttributes().GetWorkflowExecution()
	default:
		return ev.GetChildWorkflowExecutionTerminatedEventAttributes().GetWorkflowExecution()
	}
}

// where a decision is in history.
type where struct {
	workflow, run string
	event         int64
}

// localActivityMarker is the SDK's marker name for a local activity; its
// "result" detail is the activity's result.
const localActivityMarker = "LocalActivity"

// marker emits the records a local activity's result carries: decision
// records, and in a batch child (batch set) reboot admissions, rebuilt
// from the batch's input. The result is decoded once for both.
func (r *reader) marker(at where, m *historypb.MarkerRecordedEventAttributes, batch *workflows.HostBatchInput) error {
	if m.GetMarkerName() != localActivityMarker {
		return nil
	}
	res, ok := m.GetDetails()["result"]
	if !ok || len(res.GetPayloads()) == 0 {
		return nil // a failed local activity has no result
	}
	var carried struct {
		Records       []contract.DecisionRecord `json:"records"`
		RebootRecords []contract.RebootRecord   `json:"reboot_records"`
	}
	if err := converter.GetDefaultDataConverter().FromPayloads(res, &carried); err != nil {
		// Not every local activity result is an object of records.
		return nil
	}
	for i, rec := range carried.Records {
		if err := r.emit(r.entry(at, i, rec, "")); err != nil {
			return err
		}
	}
	return r.reboots(at, carried.RebootRecords, batch)
}

// entry makes a record an OPA decision-log entry. The decision id is a
// name-based UUID of where the decision is in history, so reading twice
// gives the same ids.
func (r *reader) entry(at where, i int, rec contract.DecisionRecord, host string) Entry {
	event := strconv.FormatInt(at.event, 10)
	labels := map[string]string{
		"id": "patchway", "version": r.o.Version, "rollout_id": r.rollout,
		"workflow_id": at.workflow, "run_id": at.run, "event_id": event, "input_sha256": rec.InputHash,
	}
	if host != "" {
		labels["host"] = host
	}
	return Entry{
		DecisionID: uuid.NewSHA1(idSpace, []byte(at.workflow+"/"+at.run+"/"+event+"/"+strconv.Itoa(i))).String(),
		Labels:     labels,
		Bundles:    map[string]Bundle{BundleName: {Revision: rec.Revision}},
		Path:       rec.Path, Input: rec.Input, Result: rec.Result, Timestamp: rec.Time,
	}
}

// idSpace is the UUID name space of Patchway's decision ids.
var idSpace = uuid.MustParse("6f1c8a52-3b0e-4c2a-9d55-7e0a4b1f2c90")

// child emits the host decisions of a batch child's history, following
// the runs it continued as.
func (r *reader) child(ctx context.Context, ex *commonpb.WorkflowExecution) error {
	for run := ex.GetRunId(); run != ""; {
		next, err := r.childRun(ctx, ex.GetWorkflowId(), run)
		if err != nil {
			return err
		}
		run = next
	}
	return nil
}

// childRun emits the decisions of one run of a batch child: its reboot
// admissions (rebuilt from the run's input) and its hosts' compliance
// decisions. It returns the run it continued as, if any.
func (r *reader) childRun(ctx context.Context, id, runID string) (string, error) {
	it := r.c.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	var (
		batch *workflows.HostBatchInput
		next  string
	)
	dc := converter.GetDefaultDataConverter()
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("rollout %s: read batch %s: %w", r.rollout, id, err)
		}
		at := where{workflow: id, run: runID, event: ev.GetEventId()}
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
			var in workflows.HostBatchInput
			if err := dc.FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in); err == nil {
				batch = &in
			}
		case enumspb.EVENT_TYPE_MARKER_RECORDED:
			if err := r.marker(at, ev.GetMarkerRecordedEventAttributes(), batch); err != nil {
				return "", err
			}
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			scheduled[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes()
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			done := ev.GetActivityTaskCompletedEventAttributes()
			s := scheduled[done.GetScheduledEventId()]
			if s == nil {
				continue
			}
			e, ok, err := hostEntry(s, done.GetResult())
			if err != nil {
				return "", fmt.Errorf("rollout %s: batch %s event %d: %w", r.rollout, id, ev.GetEventId(), err)
			}
			if !ok {
				continue
			}
			entry := r.entry(at, 0, e.record, e.host)
			entry.Inexact = e.inexact
			if err := r.emit(entry); err != nil {
				return "", err
			}
		case enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
			next = ev.GetWorkflowExecutionContinuedAsNewEventAttributes().GetNewExecutionRunId()
		}
	}
	return next, nil
}

// reboots emits the reboot admissions of a DecideReboot result, each
// input rebuilt from the batch's input by policies.NewRebootInput. An
// admission naming a host the batch does not hold is emitted without an
// input and marked inexact.
func (r *reader) reboots(at where, records []contract.RebootRecord, batch *workflows.HostBatchInput) error {
	if len(records) == 0 {
		return nil
	}
	hosts := map[string]workflows.BatchHost{}
	if batch != nil {
		for _, h := range batch.Hosts {
			hosts[h.Host.Name] = h
		}
	}
	for i, rec := range records {
		dr := contract.DecisionRecord{Path: policies.DecisionPath(policies.DecisionReboot), Revision: rec.Revision, InputHash: rec.InputHash, Result: rec.Result, Time: rec.Time}
		exact := false
		if h, ok := hosts[rec.Host]; ok && batch != nil {
			call := contract.DecideRebootInput{Patch: batch.Patch, Window: batch.Window, Sites: batch.Sites,
				Deadline: batch.Deadline, Accelerations: batch.Accelerations, Now: rec.Time}
			if h.RebootPending {
				call.RebootPending = []string{h.Host.Name}
			}
			inFlight := make([]rollout.Host, 0, len(rec.InFlight))
			found := true
			for _, name := range rec.InFlight {
				f, ok := hosts[name]
				found = found && ok
				inFlight = append(inFlight, f.Host)
			}
			if found {
				input, hash, err := policies.InputRecord(policies.NewRebootInput(call, h.Host, inFlight))
				if err != nil {
					return err
				}
				dr.Input, exact = input, hash == rec.InputHash
			}
		}
		entry := r.entry(at, 1000+i, dr, rec.Host)
		entry.Inexact = !exact
		if err := r.emit(entry); err != nil {
			return err
		}
	}
	return nil
}

type hostDecision struct {
	host    string
	record  contract.DecisionRecord
	inexact bool
}

// hostEntry rebuilds the compliance decision of a host activity's
// verdict: ok false when the activity carries none (not a host
// activity, or recorded before verdicts kept their decision).
func hostEntry(s *historypb.ActivityTaskScheduledEventAttributes, result *commonpb.Payloads) (hostDecision, bool, error) {
	var v contract.HostVerdict
	dc := converter.GetDefaultDataConverter()
	switch s.GetActivityType().GetName() {
	case contract.VerifyPatchName:
		if err := dc.FromPayloads(result, &v); err != nil {
			return hostDecision{}, false, fmt.Errorf("decode %s result: %w", contract.VerifyPatchName, err)
		}
	case contract.PatchHostName, contract.UninstallPatchName:
		var res struct {
			Verdict contract.HostVerdict `json:"verdict"`
		}
		if err := dc.FromPayloads(result, &res); err != nil {
			return hostDecision{}, false, fmt.Errorf("decode %s result: %w", s.GetActivityType().GetName(), err)
		}
		v = res.Verdict
	default:
		return hostDecision{}, false, nil
	}
	if v.Judged == nil {
		return hostDecision{}, false, nil
	}
	var in struct {
		Target contract.HostTarget `json:"target"`
	}
	if err := dc.FromPayloads(s.GetInput(), &in); err != nil {
		return hostDecision{}, false, fmt.Errorf("decode %s input: %w", s.GetActivityType().GetName(), err)
	}
	rec, exact, err := policies.RebuildCompliance(in.Target, v)
	if err != nil {
		return hostDecision{}, false, err
	}
	return hostDecision{host: v.Host, record: rec, inexact: !exact}, true, nil
}

// HistoryBytes sums the encoded size of every event of one run's history,
// and the part of it that is decision records (a local activity's
// records and reboot_records, a verdict's judged): how much the decision
// record costs in history.
func HistoryBytes(ctx context.Context, c client.Client, workflowID, runID string) (total, records int, err error) {
	recordBytes := func(ps *commonpb.Payloads) int {
		n := 0
		for _, p := range ps.GetPayloads() {
			var top map[string]json.RawMessage
			if json.Unmarshal(p.GetData(), &top) != nil {
				continue
			}
			n += len(top["records"]) + len(top["reboot_records"]) + len(top["judged"])
			var v map[string]json.RawMessage
			if json.Unmarshal(top["verdict"], &v) == nil {
				n += len(v["judged"])
			}
		}
		return n
	}
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return total, records, fmt.Errorf("history of %s run %s: %w", workflowID, runID, err)
		}
		total += proto.Size(ev)
		if m := ev.GetMarkerRecordedEventAttributes(); m != nil {
			records += recordBytes(m.GetDetails()["result"])
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			records += recordBytes(a.GetResult())
		}
	}
	return total, records, nil
}
