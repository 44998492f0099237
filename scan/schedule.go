package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/workflows"
)

// MinInterval keeps a schedule from hammering the fleet.
const MinInterval = time.Minute

// Schedule creates the scan's Temporal Schedule (id WorkflowID(in.ScanID))
// running the scan every interval, or updates an existing one with the new
// input and interval; updated says which. Scans of one schedule never
// overlap, and a scan missed by more than an interval (server down) is
// replaced by the next one rather than run late.
func Schedule(ctx context.Context, c client.Client, in Input, every time.Duration) (h client.ScheduleHandle, updated bool, err error) {
	if every < MinInterval {
		return nil, false, fmt.Errorf("schedule scan %s every %s: at least %s", in.ScanID, every, MinInterval)
	}
	id := WorkflowID(in.ScanID)
	packed, err := in.Pack()
	if err != nil {
		return nil, false, err
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID: id, Workflow: WorkflowName, Args: []any{packed}, TaskQueue: workflows.TaskQueue,
		StaticSummary: Summary(in),
	}
	catchup := max(every, 10*time.Second)

	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	sc := c.ScheduleClient()
	h, err = sc.Create(ctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchup,
		Note: "patchway scan, by " + in.RequestedBy,
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		updated = true
		h = sc.GetHandle(ctx, id)
		err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := u.Description.Schedule
			s.Spec, s.Action = &spec, action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap, s.Policy.CatchupWindow = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, catchup
			return &client.ScheduleUpdate{Schedule: &s}, nil
		}})
	}
	if err != nil {
		return nil, false, fmt.Errorf("schedule scan %s: %w", in.ScanID, err)
	}
	return h, updated, nil
}

// Triggered is a scan a schedule was asked to start now.
type Triggered struct {
	h client.ScheduleHandle
	// seen holds the first run ids of the schedule's recent actions
	// before the trigger.
	seen map[string]bool
}

// Trigger asks the schedule for one scan now. With BUFFER_ONE, a scan
// already running finishes first; this one then compares against it.
func Trigger(ctx context.Context, h client.ScheduleHandle) (*Triggered, error) {
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	before, err := h.Describe(ctx)
	if err != nil {
		return nil, fmt.Errorf("describe schedule %s: %w", h.GetID(), err)
	}
	// Runs are told apart by run id: the server names a scheduled run
	// by the second it started, so two triggers in one second share a
	// workflow id.
	seen := map[string]bool{}
	for _, a := range before.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			seen[a.StartWorkflowResult.FirstExecutionRunID] = true
		}
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE}); err != nil {
		return nil, fmt.Errorf("start a scan of schedule %s now: %w", h.GetID(), err)
	}
	return &Triggered{h: h, seen: seen}, nil
}

// Run waits for the schedule to start the workflow the trigger asked for:
// the first recent action not seen before it.
func (t *Triggered) Run(ctx context.Context) (*client.ScheduleWorkflowExecution, error) {
	for {
		dctx, cancel := context.WithTimeout(ctx, CallTimeout)
		d, err := t.h.Describe(dctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe schedule %s: %w", t.h.GetID(), err)
		}
		for _, a := range slices.Backward(d.Info.RecentActions) {
			if r := a.StartWorkflowResult; r != nil && !t.seen[r.FirstExecutionRunID] {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the scan of schedule %s to start: %w", t.h.GetID(), ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// DeleteSchedule stops a scan's schedule; its past scans stay in history.
func DeleteSchedule(ctx context.Context, c client.Client, scanID string) error {
	id := WorkflowID(scanID)
	ctx, cancel := context.WithTimeout(ctx, CallTimeout)
	defer cancel()
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("no scan schedule %s", id)
	}
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	return nil
}
