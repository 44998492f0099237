package contract

import (
	"fmt"
	"time"

	"github.com/patchway/patchway/rollout"
)

// Error types: every temporal.ApplicationError type Patchway raises, in
// one list, so that workflows, the report, the CLI and receivers can tell
// failures apart. Each constant is named after its value, a CamelCase
// name of what went wrong. The values are stable: they are in recorded
// histories, in the retry policies of running workflows
// (NonRetryableErrorTypes) and in what receivers match on, so a new name
// is a new constant, never a new value for an old one.
//
// For host operations, whether Temporal retries is the error's own
// (HostError.Retryable), and the host state a workflow records when it
// gives up is StateForErrorType.
const (
	// AuthFailed: the host refused the credential set. Not retried.
	AuthFailed = "AuthFailed"
	// NotApplicable: no package of the patch applies to the host's OS.
	NotApplicable = "NotApplicable"
	// ChecksumMismatch: the downloaded package is not the one filed.
	ChecksumMismatch = "ChecksumMismatch"
	// UnsupportedOS: the host runs an OS the scripts cannot serve.
	UnsupportedOS = "UnsupportedOS"
	// InstallFailed: the installer failed; carries the exit code.
	InstallFailed = "InstallFailed"
	// HostDidNotReturn: the host never came back from its reboot.
	HostDidNotReturn = "HostDidNotReturn"
	// TransportRefused: the transport policy forbids the connection
	// (http, an unverified certificate, NTLM over http).
	TransportRefused = "TransportRefused"
	// IdentityMismatch: the listener presented a TLS certificate other
	// than the one pinned for the host (by the inventory, or at first
	// contact in the run); nothing was sent to it. Not retried.
	IdentityMismatch = "IdentityMismatch"
	// Unreachable: connection refused or timed out. Retried.
	Unreachable = "Unreachable"
	// HostConfigInvalid: the inventory entry cannot work as written
	// (bad address, unreadable CA file, unknown credential set, a
	// certificate that does not verify). A retry would fail the same way.
	HostConfigInvalid = "HostConfigInvalid"
	// ScriptFailed: the script ran but exited non-zero or printed no
	// result (WMI hiccup, servicing busy). Retried.
	ScriptFailed = "ScriptFailed"
	// DownloadFailed: the package could not be fetched from the
	// distribution point. Retried.
	DownloadFailed = "DownloadFailed"
	// RebootFailed: shutdown.exe refused to schedule the restart.
	// Retried (a retry lands on 1190 if one was scheduled after all).
	RebootFailed = "RebootFailed"
	// UninstallFailed: the uninstall failed; carries the exit code.
	UninstallFailed = "UninstallFailed"
	// PolicyEvaluationFailed: the compliance policy could not be
	// evaluated. Retried (the decision fails closed meanwhile).
	PolicyEvaluationFailed = "PolicyEvaluationFailed"

	// NotifyFailed: a Notify attempt left some channel undelivered for a
	// reason that may pass (timeout, 5xx, 429). Retried.
	NotifyFailed = "NotifyFailed"

	// Refused: the policies refused the rollout as filed, or the gates
	// policy an update (the message is the reason, the details the
	// violations); also an update to a gate decided meanwhile.
	Refused = "Refused"
	// InvalidInput: a workflow or activity input (carried state, a packed
	// payload) cannot be decoded. Not retried.
	InvalidInput = "InvalidInput"
	// InvalidRollout: the rollout cannot be planned as filed. Not retried.
	InvalidRollout = "InvalidRollout"
)

// HostError is a classified failure of an operation on one host. Activities
// turn it into a temporal.ApplicationError of type Type at their boundary;
// it never carries a credential.
type HostError struct {
	Type     string
	Host     string
	Msg      string
	ExitCode int64
	Err      error
}

func (e *HostError) Error() string {
	s := fmt.Sprintf("host %s: %s", e.Host, e.Msg)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *HostError) Unwrap() error { return e.Err }

// Retryable says whether Temporal should retry the operation.
func (e *HostError) Retryable() bool {
	switch e.Type {
	case Unreachable, ScriptFailed, DownloadFailed, RebootFailed:
		return true
	}
	return false
}

// HostErrorDetails travel as the details of the ApplicationError.
type HostErrorDetails struct {
	Host     string `json:"host"`
	ExitCode int64  `json:"exit_code,omitempty"`
	// Reachable is set by HostDidNotReturn: true when the host answered
	// but its boot time never changed (it did not reboot).
	Reachable bool      `json:"reachable,omitempty"`
	BootTime  time.Time `json:"boot_time,omitzero"`
}

// StateForErrorType maps a host operation's error type to the host state
// a workflow records when it gives up on the host.
func StateForErrorType(errType string) rollout.HostState {
	switch errType {
	case NotApplicable, UnsupportedOS:
		return rollout.StateNotApplicable
	case Unreachable, HostDidNotReturn:
		return rollout.StateUnreachable
	case IdentityMismatch:
		return rollout.StateIdentityMismatch
	case "":
		return rollout.StateUnknown
	}
	return rollout.StateFailed
}
