package contract

import (
	"encoding/json"
	"fmt"
	"strings"
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

// Kinds of PolicyDifference: what a candidate policy would have decided
// otherwise than the policy that decided.
const (
	DifferenceDeadline   = "deadline"   // the SLA deadline moves
	DifferenceVerdict    = "verdict"    // a host's state flips
	DifferenceRefusal    = "refusal"    // a gate, control or plan allowed becomes refused, or the reverse
	DifferenceHalt       = "halt"       // a wave halts that did not, or the reverse
	DifferenceEscalation = "escalation" // other contacts, channels or accelerations
	DifferenceError      = "error"      // the candidate cannot evaluate the recorded input
)

// DifferenceKinds lists the kinds in the order summaries print them.
var DifferenceKinds = []string{DifferenceDeadline, DifferenceVerdict, DifferenceRefusal, DifferenceHalt, DifferenceEscalation, DifferenceError}

// PolicyDifference is one decision a candidate policy decides otherwise,
// in the respects the product acts on: `patchway policy whatif` over
// recorded decisions, and a rollout's shadow policy as it runs.
type PolicyDifference struct {
	Kind string `json:"kind"`
	Path string `json:"path"`
	// Subject names what was decided: a host, "approve lab by bob", a
	// wave.
	Subject string `json:"subject"`
	Was     string `json:"was"`
	Would   string `json:"would"`
	// Why is the candidate's reason, where it gives one.
	Why string `json:"why,omitempty"`
}

// PolicyFile is one file of a policy directory (.rego or .json), as a
// shadow policy carries it to the worker.
type PolicyFile struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ShadowPolicy is a candidate policy a rollout runs beside the live one
// (submit --shadow-policy DIR): the directory's files, overlaid on the
// embedded defaults as --policy-dir is, and the revision they make.
// Policy files hold rules and data, never a secret.
type ShadowPolicy struct {
	Dir      string       `json:"dir"`
	Revision string       `json:"revision"`
	Files    []PolicyFile `json:"files"`
}

// ShadowInput asks the shadow policy about decisions the live one just
// took: the rollout's own (Records) and hosts' compliance (Verdicts,
// whose inputs the activity rebuilds as the live one built them).
type ShadowInput struct {
	Policy   ShadowPolicy     `json:"policy"`
	Records  []DecisionRecord `json:"records,omitempty"`
	Verdicts []ShadowVerdict  `json:"verdicts,omitempty"`
}

// ShadowVerdict is a host's compliance decision as the live policy took
// it: the target and the verdict (with its evidence and record).
type ShadowVerdict struct {
	Target  HostTarget  `json:"target"`
	Verdict HostVerdict `json:"verdict"`
}

// ShadowResult is what the shadow policy decided otherwise, of Compared
// decisions.
type ShadowResult struct {
	Revision    string             `json:"revision"`
	Compared    int                `json:"compared"`
	Differences []PolicyDifference `json:"differences,omitempty"`
}

// MaxShadowDifferences bounds the differences a ShadowSummary lists (it
// counts them all).
const MaxShadowDifferences = 100

// ShadowSummary is what a rollout's shadow policy decided otherwise so
// far: how many decisions it was asked about, how many it decided
// otherwise (by kind), and the first MaxShadowDifferences of them. It is
// in the rollout's state and report; nothing acts on it.
type ShadowSummary struct {
	Dir         string             `json:"dir"`
	Revision    string             `json:"revision"`
	Compared    int                `json:"compared"`
	Differing   int                `json:"differing"`
	ByKind      map[string]int     `json:"by_kind,omitempty"`
	Differences []PolicyDifference `json:"differences,omitempty"`
}

// Add counts a ShadowDecide result (or another summary's, merged) in.
// It is deterministic: workflow code calls it.
func (s *ShadowSummary) Add(compared int, diffs []PolicyDifference, byKind map[string]int, differing int) {
	s.Compared += compared
	s.Differing += differing
	for _, k := range DifferenceKinds {
		if n := byKind[k]; n > 0 {
			if s.ByKind == nil {
				s.ByKind = map[string]int{}
			}
			s.ByKind[k] += n
		}
	}
	room := max(0, MaxShadowDifferences-len(s.Differences))
	s.Differences = append(s.Differences, diffs[:min(room, len(diffs))]...)
}

// AddResult counts one ShadowDecide result in.
func (s *ShadowSummary) AddResult(r ShadowResult) {
	byKind := map[string]int{}
	for _, d := range r.Differences {
		byKind[d.Kind]++
	}
	s.Add(r.Compared, r.Differences, byKind, len(r.Differences))
}

// Merge counts another summary (a batch child's) in.
func (s *ShadowSummary) Merge(o *ShadowSummary) {
	if o != nil {
		s.Add(o.Compared, o.Differences, o.ByKind, o.Differing)
	}
}

// String sums up a shadow summary: "DIR (REVISION, never acted on): 3
// of 41 decisions decided otherwise (1 deadline, 2 verdict)".
func (s *ShadowSummary) String() string {
	line := fmt.Sprintf("%s (%s, never acted on): %d of %d decisions decided otherwise", s.Dir, s.Revision[:min(12, len(s.Revision))], s.Differing, s.Compared)
	var kinds []string
	for _, k := range DifferenceKinds {
		if n := s.ByKind[k]; n > 0 {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(kinds) > 0 {
		line += " (" + strings.Join(kinds, ", ") + ")"
	}
	if len(s.Differences) < s.Differing {
		line += fmt.Sprintf("; the first %d listed", len(s.Differences))
	}
	return line
}

// String is one difference as a line: "deadline sla KB958644:
// 2026-11-24T09:00:00Z -> 2026-11-23T21:00:00Z (earlier by 12h0m0s)".
func (d PolicyDifference) String() string {
	s := fmt.Sprintf("%s %s: %s -> %s", d.Kind, d.Subject, d.Was, d.Would)
	if d.Why != "" {
		s += " (" + d.Why + ")"
	}
	return s
}
