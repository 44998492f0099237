package activities

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/log"
)

// The host operations also run outside a Temporal activity: the baseline
// benchmark drives them with no orchestration at all. These helpers use
// the activity's logger and heartbeats when there is an activity, and do
// nothing otherwise.

// logger is the activity's logger, or one that discards outside an
// activity.
func logger(ctx context.Context) log.Logger {
	if activity.IsActivity(ctx) {
		return activity.GetLogger(ctx)
	}
	return discardLogger{}
}

// heartbeat records details when ctx is an activity's.
func heartbeat(ctx context.Context, details ...any) {
	if activity.IsActivity(ctx) {
		activity.RecordHeartbeat(ctx, details...)
	}
}

// lastHeartbeat decodes the previous attempt's heartbeat details into v,
// and says whether there were any.
func lastHeartbeat(ctx context.Context, v any) bool {
	if !activity.IsActivity(ctx) || !activity.HasHeartbeatDetails(ctx) {
		return false
	}
	return activity.GetHeartbeatDetails(ctx, v) == nil
}

type discardLogger struct{}

func (discardLogger) Debug(string, ...any) {}
func (discardLogger) Info(string, ...any)  {}
func (discardLogger) Warn(string, ...any)  {}
func (discardLogger) Error(string, ...any) {}
