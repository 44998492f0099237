package contract

import (
	"encoding/json"
	"time"
)

// DecisionRecord is one policy decision as it was made: the decision's
// path, the revision of the bundle that made it, its input exactly as the
// policy saw it, the SHA-256 of that input, the result and the time the
// policy was told was now. It is what `patchway decisions` prints as an
// OPA decision-log entry and what `patchway policy whatif` evaluates
// again. The rollout workflow's policy decisions (risk, gates, waves,
// escalation) are local activities, whose history markers keep the
// result and not the input, so the record travels in the result; the
// workflow drops it before it keeps the decision in its state.
type DecisionRecord struct {
	// Path is the decision's rule as OPA names it in a decision log:
	// "patchway/sla/decision".
	Path     string          `json:"path"`
	Revision string          `json:"revision"`
	Input    json.RawMessage `json:"input"`
	// InputHash is "sha256:" and the hex digest of Input as canonical
	// JSON (object keys sorted, no white space).
	InputHash string          `json:"input_hash"`
	Result    json.RawMessage `json:"result"`
	Time      time.Time       `json:"time"`
}

// ComplianceRecord is a host's compliance (or rollback) decision, kept
// compactly in the verdict: the input is not stored, because all of it
// but these facts is already in history (the host and the patch in the
// activity's input, the scan in the verdict's evidence). The reader
// rebuilds the input with the same function the worker used and proves
// it exact by the hash.
type ComplianceRecord struct {
	Path      string          `json:"path"`
	InputHash string          `json:"input_hash"`
	Facts     ComplianceFacts `json:"facts"`
	// The parts of the result the verdict does not hold.
	Install      bool   `json:"install,omitempty"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// ComplianceFacts are the facts of a compliance decision that neither the
// host target nor the scan holds.
type ComplianceFacts struct {
	// Reachable: a scan was gathered (the verdict's evidence is the scan).
	Reachable bool `json:"reachable"`
	// InstalledAt is when this rollout installed the patch (zero if it
	// did not).
	InstalledAt time.Time `json:"installed_at,omitzero"`
	// FirstContact is who answered for the host at its first scan in
	// this run.
	FirstContact *HostIdentity `json:"first_contact,omitempty"`
	// RebootWait is how a wait for a reboot requested in this run ended
	// without the host booting again.
	RebootWait *RebootWait `json:"reboot_wait,omitempty"`
	// CertPin is the certificate fingerprint the host was held to when
	// judged: the inventory's pin, or the one first contact pinned during
	// the activity (which the activity's input does not show).
	CertPin string `json:"cert_pin,omitempty"`
	// Now is the worker's clock when the policy judged the host.
	Now time.Time `json:"now"`
}

// RebootWait outcomes.
const (
	RebootNotRestarted = "not_restarted"  // answered, boot time unchanged
	RebootDidNotReturn = "did_not_return" // never answered after the request
)

// RebootWait is how a wait for a requested reboot ended without the host
// booting again.
type RebootWait struct {
	Outcome          string    `json:"outcome"`
	RequestedAt      time.Time `json:"requested_at"`
	PreviousBootTime time.Time `json:"previous_boot_time,omitzero"`
	// Waited is the wait, as Go prints a duration ("30m0s").
	Waited    string `json:"waited"`
	Polls     int    `json:"polls"`
	LastError string `json:"last_error,omitempty"`
}

// RebootRecord is one reboot admission, kept by reference: the host and
// the hosts in flight are named, because the batch child's input holds
// them (with the patch, window, sites, deadline and accelerations). The
// reader rebuilds the input with policies.NewRebootInput and proves it by
// the hash.
type RebootRecord struct {
	Host      string          `json:"host"`
	InFlight  []string        `json:"in_flight,omitempty"`
	Revision  string          `json:"revision"`
	InputHash string          `json:"input_hash"`
	Result    json.RawMessage `json:"result"`
	Time      time.Time       `json:"time"`
}
