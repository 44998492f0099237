package workflows

import (
	"errors"

	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/activities"
)

// RolloutCarry is the rollout workflow's state carried across
// continue-as-new. Clients never set it.
type RolloutCarry struct{}

// RolloutWorkflow walks a rollout along the staged path and returns the
// compliance report.
func RolloutWorkflow(ctx workflow.Context, in RolloutInput) (activities.Report, error) {
	return activities.Report{}, errors.New("rollout workflow: being written")
}

// HostBatchInput is a batch of hosts a child workflow patches.
type HostBatchInput struct{}

// HostBatchResult is what a batch child reports back.
type HostBatchResult struct{}

// HostBatchWorkflow patches one batch of hosts.
func HostBatchWorkflow(ctx workflow.Context, in HostBatchInput) (HostBatchResult, error) {
	return HostBatchResult{}, errors.New("host batch workflow: being written")
}
