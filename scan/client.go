package scan

import (
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/workflows"
)

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
