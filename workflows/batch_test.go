package workflows

import (
	"errors"
	"fmt"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// A host's reason is the activity's own message, not the SDK's wrapper
// with event ids and the worker's identity.
func TestErrorReasonKeepsTheActivityMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("activity error (type: PatchHost, scheduledEventID: 147): %w",
			temporal.NewNonRetryableApplicationError("host sin-ws004: host rejected the credentials (HTTP 401)", "AuthFailed", nil)),
			"host sin-ws004: host rejected the credentials (HTTP 401)"},
		{fmt.Errorf("activity error: %w", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)),
			"no answer in time (heartbeat timeout): the host, or the worker working on it, stopped responding"},
		{errors.New("something else"), "something else"},
	} {
		if got := errorReason(tc.err); got != tc.want {
			t.Errorf("errorReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
