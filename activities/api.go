// Package activities holds Patchway's Temporal activities: host operations
// over WinRM, policy evaluation, notification and reporting. This file is
// the contract the workflows call: activity names and their input and
// output types. Everything here is plain data, JSON in history, and carries
// no secret: hosts name their credential set, the worker resolves it.
package activities

import (
	"time"

	"github.com/patchway/patchway/activities/hostscript"
	"github.com/patchway/patchway/rollout"
)

// Activity names as registered with the worker. Workflows refer to
// activities by these names so that workflow code needs no worker types.
const (
	// Host operations (WinRM).
	ScanHostName       = "ScanHost"
	InstallPatchName   = "InstallPatch"
	RebootHostName     = "RebootHost"
	WaitForBootName    = "WaitForBoot"
	VerifyPatchName    = "VerifyPatch"
	UninstallPatchName = "UninstallPatch"
	// PatchHostName runs the whole per-host sequence in one activity:
	// scan, install, reboot, wait for boot, verify. It keeps Temporal's
	// per-host cost at one activity (DESIGN.md §3, "What Temporal work costs").
	PatchHostName = "PatchHost"

	// Policy decisions (run as local activities: fast, recorded in history).
	EvaluateRiskName     = "EvaluateRisk"
	AuthorizeGateName    = "AuthorizeGate"
	DecideRebootName     = "DecideReboot"
	DecideWaveName       = "DecideWave"
	DecideEscalationName = "DecideEscalation"

	// Notification and reporting.
	NotifyName      = "Notify"
	BuildReportName = "BuildReport"
)

// Error types: stable names for temporal.ApplicationError types, so
// workflows and tests can tell failures apart. The non-retryable ones are
// marked so in the error itself.
const (
	ErrAuthFailed       = "AuthFailed"       // non-retryable
	ErrNotApplicable    = "NotApplicable"    // non-retryable
	ErrChecksumMismatch = "ChecksumMismatch" // non-retryable
	ErrUnsupportedOS    = "UnsupportedOS"    // non-retryable
	ErrInstallFailed    = "InstallFailed"    // non-retryable: carries the exit code
	ErrHostDidNotReturn = "HostDidNotReturn" // non-retryable: reboot never came back
	ErrTransportRefused = "TransportRefused" // non-retryable: policy forbids http/insecure/ntlm-over-http
	ErrUnreachable      = "Unreachable"      // retryable: connection refused, timeouts
)

// HostTarget is one host to operate on, with the patch facts the scripts
// need. The credential is a name; the worker resolves the secret.
type HostTarget struct {
	RolloutID string       `json:"rollout_id"`
	Host      rollout.Host `json:"host"`
	// DistributionPoint of the host's site, joined with package sources.
	DistributionPoint string        `json:"distribution_point,omitempty"`
	Patch             rollout.Patch `json:"patch"`
}

// ScanHostInput asks for a scan.
type ScanHostInput struct {
	Target HostTarget `json:"target"`
}

// InstallPatchInput asks for an install; the activity scans first and
// never installs twice.
type InstallPatchInput struct {
	Target HostTarget `json:"target"`
}

// InstallPatchResult says what the install did. Skipped is true when the
// scan found the patch already present (retry or replay).
type InstallPatchResult struct {
	Skipped bool                      `json:"skipped"`
	Scan    hostscript.ScanResult     `json:"scan"`
	Install *hostscript.InstallResult `json:"install,omitempty"`
}

// RebootHostInput asks for a reboot.
type RebootHostInput struct {
	Target       HostTarget `json:"target"`
	DelaySeconds int        `json:"delay_seconds"`
}

// WaitForBootInput waits until the host's boot time differs from
// PreviousBootTime, or Timeout passes (then HostDidNotReturn).
type WaitForBootInput struct {
	Target           HostTarget    `json:"target"`
	PreviousBootTime time.Time     `json:"previous_boot_time"`
	Timeout          time.Duration `json:"timeout"`
}

// WaitForBootResult is the proof of the reboot.
type WaitForBootResult struct {
	BootTime time.Time `json:"boot_time"`
	Polls    int       `json:"polls"`
}

// VerifyPatchInput asks for a scan judged by the compliance policy.
// InstalledAt is when this rollout installed the patch (zero if it did not).
type VerifyPatchInput struct {
	Target      HostTarget `json:"target"`
	InstalledAt time.Time  `json:"installed_at,omitzero"`
}

// HostVerdict is the compliance policy's judgement of one host, with the
// evidence it was made on.
type HostVerdict struct {
	Host     string                `json:"host"`
	State    rollout.HostState     `json:"state"`
	Reasons  []string              `json:"reasons"`
	Evidence hostscript.ScanResult `json:"evidence"`
	Decision rollout.Decision      `json:"decision"`
}

// UninstallPatchInput asks for a rollback on one host.
type UninstallPatchInput struct {
	Target HostTarget `json:"target"`
}

// PatchHostInput runs the whole per-host sequence. Reboot says whether the
// workflow's reboot decision allowed a reboot now; BootTimeout bounds
// WaitForBoot.
type PatchHostInput struct {
	Target      HostTarget    `json:"target"`
	Reboot      bool          `json:"reboot"`
	BootTimeout time.Duration `json:"boot_timeout"`
}

// PatchHostResult is the host's outcome. Steps lists what was done, in
// order, for the report ("scan", "install", "reboot", "wait_for_boot",
// "verify").
type PatchHostResult struct {
	Verdict     HostVerdict `json:"verdict"`
	Steps       []string    `json:"steps"`
	InstalledAt time.Time   `json:"installed_at,omitzero"`
	ExitCode    int64       `json:"exit_code,omitempty"`
}
