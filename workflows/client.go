package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// The client side of a rollout: what an operator's command asks of a
// rollout's workflow through a Temporal client. Every call names the
// rollout by its id, never by its workflow id.

// QueryTimeout bounds one query of a rollout (progress, host, report
// input).
const QueryTimeout = 30 * time.Second

// NewRolloutInput is the input a rollout loaded from its files is filed
// with: filed by filer at filedAt (UTC), on its inventory's hosts and
// sites, with the tuning given (zero fields take the defaults).
func NewRolloutInput(src *rollout.Source, filer string, filedAt time.Time, tuning Tuning) RolloutInput {
	r := *src.Rollout
	r.FiledBy = filer
	r.FiledAt = filedAt.UTC()
	return RolloutInput{Rollout: r, Hosts: src.Inventory.Hosts, Sites: src.Inventory.Sites, Tuning: tuning}
}

// CompletedError refuses to file a rollout under the id of one that
// completed: its record (report, status, decisions) stays reachable under
// that id, and the new rollout needs another.
type CompletedError struct {
	RolloutID string
	RunID     string
	ClosedAt  time.Time
}

func (e *CompletedError) Error() string {
	return fmt.Sprintf("rollout %s completed (run %s, closed %s) and its id is not reused, so its report and status stay reachable "+
		"(patchway report %s, patchway status %s); file the new rollout under another id, for example id = %q",
		e.RolloutID, e.RunID, e.ClosedAt.UTC().Format(time.RFC3339), e.RolloutID, e.RolloutID, e.RolloutID+"-2")
}

// Start starts the rollout's workflow. A rollout with the same id that is
// still running is not started again: running is then true and the error
// nil, so that the caller can show the running rollout instead. One that
// completed is refused with a *CompletedError; one that failed or was
// terminated is filed again as a new run.
func Start(ctx context.Context, c client.Client, in RolloutInput) (run client.WorkflowRun, running bool, err error) {
	opts := StartOptions(in)
	// Without this the SDK hands back the running rollout's handle as if
	// it had just been started.
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	start, err := PackStart(in)
	if err != nil {
		return nil, false, fmt.Errorf("start rollout %s: %w", in.Rollout.ID, err)
	}
	run, err = c.ExecuteWorkflow(ctx, opts, RolloutWorkflowName, start)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		desc, derr := c.DescribeWorkflowExecution(ctx, opts.ID, "")
		if derr != nil {
			return nil, false, fmt.Errorf("start rollout %s: %w (and describing the existing run: %v)", in.Rollout.ID, err, derr)
		}
		info := desc.GetWorkflowExecutionInfo()
		if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			return nil, true, nil
		}
		return nil, false, &CompletedError{RolloutID: in.Rollout.ID, RunID: info.GetExecution().GetRunId(), ClosedAt: info.GetCloseTime().AsTime()}
	}
	if err != nil {
		return nil, false, fmt.Errorf("start rollout %s: %w", in.Rollout.ID, err)
	}
	return run, false, nil
}

// Query asks the running rollout's workflow query name (with args) and
// decodes the answer into out; what names the answer in errors.
func Query(ctx context.Context, c client.Client, rolloutID, name, what string, out any, args ...any) error {
	qctx, cancel := context.WithTimeout(ctx, QueryTimeout)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, WorkflowID(rolloutID), "", name, args...)
	if err != nil {
		return fmt.Errorf("query %s of rollout %s: %w", what, rolloutID, err)
	}
	if err := v.Get(out); err != nil {
		return fmt.Errorf("decode %s of rollout %s: %w", what, rolloutID, err)
	}
	return nil
}

// GetProgress is the rollout's progress query. A workflow that failed
// (refused before any host was touched, terminated) answers with the
// state it stopped in; its status is then StatusFailed and Failure says
// why, from the workflow's own result.
func GetProgress(ctx context.Context, c client.Client, rolloutID string) (Progress, error) {
	var p Progress
	if err := Query(ctx, c, rolloutID, QueryProgress, "progress", &p); err != nil {
		return p, err
	}
	desc, err := c.DescribeWorkflowExecution(ctx, WorkflowID(rolloutID), "")
	if err != nil {
		return p, nil // the query answered; the status it derived stands
	}
	info := desc.GetWorkflowExecutionInfo()
	switch st := info.GetStatus(); st {
	case enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		p.Status = StatusFailed
		p.Failure = strings.ToLower(strings.TrimPrefix(st.String(), "WORKFLOW_EXECUTION_STATUS_"))
		werr := c.GetWorkflow(ctx, WorkflowID(rolloutID), info.GetExecution().GetRunId()).Get(ctx, nil)
		var app *temporal.ApplicationError
		switch {
		case errors.As(werr, &app):
			p.Failure = app.Message()
		case werr != nil:
			p.Failure += ": " + werr.Error()
		}
	}
	return p, nil
}

// GetHost is the rollout's host query of one host.
func GetHost(ctx context.Context, c client.Client, rolloutID, host string) (HostStatus, error) {
	var h HostStatus
	err := Query(ctx, c, rolloutID, QueryHost, "host "+host, &h, host)
	return h, err
}

// Ended tells the statuses a rollout never leaves.
func (s Status) Ended() bool {
	switch s {
	case StatusCompleted, StatusAborted, StatusRejected, StatusFailed:
		return true
	}
	return false
}

// Closed tells whether the rollout's workflow is closed (completed,
// failed, terminated...): no query will see it change again.
func Closed(ctx context.Context, c client.Client, rolloutID string) (bool, error) {
	desc, err := c.DescribeWorkflowExecution(ctx, WorkflowID(rolloutID), "")
	if err != nil {
		return false, err
	}
	st := desc.GetWorkflowExecutionInfo().GetStatus()
	return st != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && st != enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW, nil
}

// RunningRollouts lists the ids of the rollouts whose workflow runs, by
// visibility, sorted.
func RunningRollouts(ctx context.Context, c client.Client) ([]string, error) {
	return listRollouts(ctx, c, "running rollouts", "ExecutionStatus = 'Running'")
}

// RolloutsSince lists the ids of the rollouts with a run started at or
// after since, running or closed, by visibility, sorted.
func RolloutsSince(ctx context.Context, c client.Client, since time.Time) ([]string, error) {
	return listRollouts(ctx, c, "rollouts since "+since.UTC().Format(time.RFC3339),
		fmt.Sprintf("StartTime >= '%s'", since.UTC().Format(time.RFC3339)))
}

// listRollouts lists the rollout ids of the rollout workflows a
// visibility condition selects, each once, sorted.
func listRollouts(ctx context.Context, c client.Client, what, cond string) ([]string, error) {
	var ids []string
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query:         fmt.Sprintf("WorkflowType = '%s' AND %s", RolloutWorkflowName, cond),
			NextPageToken: token,
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", what, err)
		}
		for _, e := range resp.GetExecutions() {
			if id, ok := strings.CutPrefix(e.GetExecution().GetWorkflowId(), WorkflowID("")); ok && !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// SendUpdate runs update name (one of the Update* names) on the rollout
// with arg, waits for its result and returns the recorded decision. A
// refusal is returned as is, for AsRefusal.
func SendUpdate(ctx context.Context, c client.Client, rolloutID, name string, arg any) (Record, error) {
	var rec Record
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   WorkflowID(rolloutID),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &rec)
	}
	if err != nil {
		if _, ok := AsRefusal(err); ok {
			return rec, err
		}
		return rec, fmt.Errorf("%s rollout %s: %w", name, rolloutID, err)
	}
	return rec, nil
}

// Refusal is an update the workflow turned down: by the gates policy
// (with violations) or by its own checks (not waiting at a gate, unknown
// host...).
type Refusal struct {
	ByPolicy   bool
	Message    string
	Violations []rollout.Violation
}

// AsRefusal tells whether err is an update's refusal, and which.
func AsRefusal(err error) (Refusal, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return Refusal{}, false
	}
	r := Refusal{ByPolicy: app.Type() == contract.Refused, Message: app.Message()}
	if r.ByPolicy && app.HasDetails() {
		// Details are optional: a refusal without violations still
		// carries its reason in the message.
		_ = app.Details(&r.Violations)
	}
	return r, true
}

// ReportState is what a rollout tells of its report now: a completed
// rollout's report (its workflow result), or the input a provisional
// report is built from, with why it is provisional.
type ReportState struct {
	// Report is the completed rollout's report, expanded; nil otherwise.
	Report *contract.Report
	// Input is what the report would be built from now, when Report is
	// nil; its GeneratedAt is the rollout's last workflow task.
	Input contract.ReportInput
	// Provisional says why the report is not final, when Report is nil.
	Provisional string
}

// FetchReport reads a completed rollout's report, or asks a running (or
// ended without a report: terminated, failed) rollout for its report
// input.
func FetchReport(ctx context.Context, c client.Client, rolloutID string) (ReportState, error) {
	id := WorkflowID(rolloutID)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return ReportState{}, fmt.Errorf("find rollout %s: %w", rolloutID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	status := info.GetStatus()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var rep contract.Report
		if err := c.GetWorkflow(ctx, id, info.GetExecution().GetRunId()).Get(ctx, &rep); err != nil {
			return ReportState{}, fmt.Errorf("read the report of rollout %s: %w", rolloutID, err)
		}
		rep, err = rep.Expanded()
		if err != nil {
			return ReportState{}, err
		}
		return ReportState{Report: &rep}, nil
	}
	var in contract.ReportInput
	if err := Query(ctx, c, rolloutID, QueryReport, "the report input (a worker must be up to answer)", &in); err != nil {
		return ReportState{}, err
	}
	in, err = in.Unpack()
	if err != nil {
		return ReportState{}, fmt.Errorf("rollout %s: %w", rolloutID, err)
	}
	st := ReportState{Input: in, Provisional: "rollout still running"}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		st.Provisional = fmt.Sprintf("rollout %s before its report", strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")))
	}
	return st, nil
}

// Act is one person's gate or control action on a rollout, as a command
// or the console sends it: the update, what it names, and who acts (an
// action token bound to Audience, or on a dev server a typed User).
type Act struct {
	// Update is one of the Update* names.
	Update string
	// Gate names the gate of an approval or rejection; Host the host of
	// an exception or a skip.
	Gate, Host string
	Reason     string
	// Expires ends an exception.
	Expires time.Time
	// Rollback: an abort uninstalls the current wave's patch.
	Rollback bool
	// The risk facts a threat update adds.
	Exploited, WormInTheWild, ExploitPublic bool
	Token, User                             string
}

// Request is the update's argument.
func (a Act) Request() any {
	switch a.Update {
	case UpdateApprove, UpdateReject:
		return GateRequest{Gate: a.Gate, User: a.User, Token: a.Token, Reason: a.Reason}
	case UpdateAbort:
		return AbortRequest{User: a.User, Token: a.Token, Reason: a.Reason, Rollback: a.Rollback}
	case UpdateExcept:
		return ExceptRequest{Host: a.Host, User: a.User, Token: a.Token, Reason: a.Reason, Expires: a.Expires}
	case UpdateSkipHost:
		return SkipHostRequest{Host: a.Host, User: a.User, Token: a.Token, Reason: a.Reason}
	case UpdateThreat:
		return ThreatRequest{User: a.User, Token: a.Token, Reason: a.Reason, Exploited: a.Exploited, WormInTheWild: a.WormInTheWild, ExploitPublic: a.ExploitPublic}
	}
	return ControlRequest{User: a.User, Token: a.Token, Reason: a.Reason}
}

// Audience is the audience of the act's token: the rollout, the action
// and the gate or host it names.
func (a Act) Audience(rolloutID string) string {
	target := a.Host
	if a.Update == UpdateApprove || a.Update == UpdateReject {
		target = a.Gate
	}
	return contract.ActionAudience(rolloutID, a.Update, target)
}

// ParseExpiry reads an exception's end: a duration from now (Go syntax or
// whole days "7d", as durations are written in HCL) or an RFC 3339 time.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--expires %q: want a positive duration (72h, 7d) or an RFC 3339 time", s)
	}
	return now.Add(d), nil
}
