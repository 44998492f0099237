package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/workflows"
)

// CallTimeout bounds each call to Temporal that is not a wait for a
// scan's result (start, schedule create/update/describe/trigger/delete).
const CallTimeout = time.Minute

// StartOptions are the options a client starts a one-off scan with:
// its id, the task queue and the static summary (in is the unpacked
// input).
func StartOptions(in Input) client.StartWorkflowOptions {
	return client.StartWorkflowOptions{
		ID:                                       WorkflowID(in.ScanID),
		TaskQueue:                                workflows.TaskQueue,
		StaticSummary:                            Summary(in),
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}
}

// Start starts a one-off scan of in (unpacked; it travels packed). A scan
// of the same id still running is an error saying so.
func Start(ctx context.Context, c client.Client, in Input) (client.WorkflowRun, error) {
	opts := StartOptions(in)
	packed, err := in.Pack()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, opts, WorkflowName, packed)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil, fmt.Errorf("scan %s is already running (workflow %s): wait for it, or scan with another --id", in.ScanID, opts.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("start scan %s: %w", in.ScanID, err)
	}
	return run, nil
}

// Await waits for a scan workflow (runID "" is the latest run of the id;
// continue-as-new is followed) and returns its result, expanded.
func Await(ctx context.Context, c client.Client, workflowID, runID string) (Result, error) {
	var res Result
	if err := c.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res); err != nil {
		return res, fmt.Errorf("scan %s: %w", workflowID, refusedOr(err))
	}
	return res.Expanded()
}

// refusedOr is the gates policy's refusal alone when err is one (the
// person reads the reasons, not the failure's wrapping), else err.
func refusedOr(err error) error {
	var app *temporal.ApplicationError
	if errors.As(err, &app) && app.Type() == contract.Refused {
		return errors.New(app.Message())
	}
	return err
}

// Last returns the latest completed scan of a scan id: of its schedule's
// recent runs the newest that completed, else the one-off scan of that
// id; once the schedule is deleted, the newest completed run visibility
// still lists.
func Last(ctx context.Context, c client.Client, scanID string) (Result, error) {
	id := WorkflowID(scanID)
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	var candidates []string
	d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		for _, a := range slices.Backward(d.Info.RecentActions) {
			if a.StartWorkflowResult != nil {
				candidates = append(candidates, a.StartWorkflowResult.WorkflowID)
			}
		}
	case errors.As(err, &notFound):
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1, Query: fmt.Sprintf(
			"WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND (WorkflowId = '%s' OR TemporalScheduledById = '%s')",
			WorkflowName, id, id)})
		if err != nil {
			return Result{}, fmt.Errorf("list scans of %s: %w", scanID, err)
		}
		for _, e := range resp.GetExecutions() {
			candidates = append(candidates, e.GetExecution().GetWorkflowId())
		}
	default:
		return Result{}, fmt.Errorf("describe schedule %s: %w", id, err)
	}
	candidates = append(candidates, id)
	for _, wid := range candidates {
		desc, err := c.DescribeWorkflowExecution(ctx, wid, "")
		if errors.As(err, &notFound) {
			continue
		}
		if err != nil {
			return Result{}, fmt.Errorf("describe scan %s: %w", wid, err)
		}
		if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			continue
		}
		return Await(ctx, c, wid, "")
	}
	return Result{}, fmt.Errorf("no completed scan of %s yet", scanID)
}
