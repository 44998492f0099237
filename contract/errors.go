package contract

import (
	"fmt"
	"time"

	"github.com/patchway/patchway/rollout"
)

// Error types: the stable temporal.ApplicationError type of every way a
// host operation can fail, so that workflows, the report and receivers can
// tell failures apart. Each constant is named after its value. Whether
// Temporal retries is the error's own (HostError.Retryable); which host
// state a workflow records when it gives up is StateForErrorType.
const (
	// ErrAuthFailed: the host refused the credential set. Not retried.
	ErrAuthFailed = "AuthFailed"
	// ErrNotApplicable: no package of the patch applies to the host's OS.
	ErrNotApplicable = "NotApplicable"
	// ErrChecksumMismatch: the downloaded package is not the one filed.
	ErrChecksumMismatch = "ChecksumMismatch"
	// ErrUnsupportedOS: the host runs an OS the scripts cannot serve.
	ErrUnsupportedOS = "UnsupportedOS"
	// ErrInstallFailed: the installer failed; carries the exit code.
	ErrInstallFailed = "InstallFailed"
	// ErrHostDidNotReturn: the host never came back from its reboot.
	ErrHostDidNotReturn = "HostDidNotReturn"
	// ErrTransportRefused: the transport policy forbids the connection
	// (http, an unverified certificate, NTLM over http).
	ErrTransportRefused = "TransportRefused"
	// ErrUnreachable: connection refused or timed out. Retried.
	ErrUnreachable = "Unreachable"
	// ErrHostConfigInvalid: the inventory entry cannot work as written
	// (bad address, unreadable CA file, unknown credential set, a
	// certificate that does not verify). A retry would fail the same way.
	ErrHostConfigInvalid = "HostConfigInvalid"
	// ErrScriptFailed: the script ran but exited non-zero or printed no
	// result (WMI hiccup, servicing busy). Retried.
	ErrScriptFailed = "ScriptFailed"
	// ErrDownloadFailed: the package could not be fetched from the
	// distribution point. Retried.
	ErrDownloadFailed = "DownloadFailed"
	// ErrRebootFailed: shutdown.exe refused to schedule the restart.
	// Retried (a retry lands on 1190 if one was scheduled after all).
	ErrRebootFailed = "RebootFailed"
	// ErrUninstallFailed: the uninstall failed; carries the exit code.
	ErrUninstallFailed = "UninstallFailed"
	// ErrPolicyEvaluationFailed: the compliance policy could not be
	// evaluated. Retried (the decision fails closed meanwhile).
	ErrPolicyEvaluationFailed = "PolicyEvaluationFailed"
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
	case ErrUnreachable, ErrScriptFailed, ErrDownloadFailed, ErrRebootFailed:
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
	case ErrNotApplicable, ErrUnsupportedOS:
		return rollout.StateNotApplicable
	case ErrUnreachable, ErrHostDidNotReturn:
		return rollout.StateUnreachable
	case "":
		return rollout.StateUnknown
	}
	return rollout.StateFailed
}
