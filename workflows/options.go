package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
)

// WithPolicyOptions runs policy decisions as local activities: in-process,
// fast, and recorded in history as markers with their result.
func WithPolicyOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
}

// withHostOptions bounds one host's whole sequence: install plus reboot
// plus the wait for boot. PatchHost heartbeats its progress and resumes
// from it on retry; an unreachable host is retried a few times here, then
// left to the rollout's retry rounds.
func withHostOptions(ctx workflow.Context, summary string, bootTimeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: bootTimeout + time.Hour,
		// PatchHost heartbeats every 10s, even inside a long script; a
		// worker that died is noticed within a minute and the host's
		// sequence resumes from its last heartbeat on another worker.
		HeartbeatTimeout: time.Minute,
		// A lossy network gets five tries, 10s to 80s apart, before the
		// host counts unreachable and waits for the retry rounds; the
		// activity resumes its sequence and never installs twice.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    10 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    5 * time.Minute,
			MaximumAttempts:    5,
			NonRetryableErrorTypes: []string{
				contract.AuthFailed, contract.NotApplicable, contract.ChecksumMismatch,
				contract.UnsupportedOS, contract.InstallFailed, contract.HostDidNotReturn,
				contract.TransportRefused,
			},
		},
	})
}

// WithScanOptions runs one verification of a compliance scan: a scan and
// a policy evaluation, seconds on a healthy host. A host that does not answer is retried twice, then reported
// unreachable; refused credentials, a forbidden transport or a patch for
// another OS are not retried.
func WithScanOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    3,
			NonRetryableErrorTypes: []string{
				contract.AuthFailed, contract.NotApplicable, contract.UnsupportedOS,
				contract.TransportRefused, contract.HostConfigInvalid,
			},
		},
	})
}

// withPreflightOptions runs one preflight verification. The preflight
// takes a baseline and changes nothing, and the host's own step tries it
// again: a host that does not answer gets one more try, 2s later, so
// that thousands of hosts that are off delay the lab by seconds, not
// minutes.
func withPreflightOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 2 * time.Second,
			MaximumAttempts: 2,
			NonRetryableErrorTypes: []string{
				contract.AuthFailed, contract.NotApplicable, contract.UnsupportedOS,
				contract.TransportRefused, contract.HostConfigInvalid, contract.IdentityMismatch,
			},
		},
	})
}

// WithNotifyOptions delivers notifications with a few retries; the event's
// idempotency key makes them safe. Rollouts and scans both notify with it.
func WithNotifyOptions(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             summary,
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
	})
}

func withReportOptions(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		Summary:             "build the compliance report",
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
}

// upsert sets search attributes. An unregistered attribute would fail the
// workflow task forever on the server, so every key used here is listed
// in SearchAttributes for the server to register; an error is logged,
// never fatal to the rollout.
func (r *run) upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upsert search attributes", "error", err)
	}
}
