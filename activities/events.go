package activities

import (
	"time"

	"github.com/patchway/patchway/rollout"
)

// EventKind names what happened; notifiers and receivers rely on these.
type EventKind string

// The events a rollout notifies.
const (
	EventAdvisory         EventKind = "advisory"
	EventGateWaiting      EventKind = "gate_waiting"
	EventGateDecided      EventKind = "gate_decided"
	EventWaveHalted       EventKind = "wave_halted"
	EventSLAMilestone     EventKind = "sla_milestone"
	EventSLABreached      EventKind = "sla_breached"
	EventRolloutCompleted EventKind = "rollout_completed"
)

// Event is one notification. Key is the idempotency key: stable for the
// same event across activity retries and workflow replays (the workflow
// builds it from the rollout id, the kind and a sequence), so a receiver
// never acts twice.
type Event struct {
	Key       string    `json:"key"`
	Kind      EventKind `json:"kind"`
	RolloutID string    `json:"rollout_id"`
	At        time.Time `json:"at"`
	Title     string    `json:"title"`
	// Markdown and Text are the same message for rich and plain channels.
	Markdown string `json:"markdown"`
	Text     string `json:"text"`
	// Contacts are the people or groups addressed (escalation ladder).
	Contacts []string `json:"contacts,omitempty"`
	// Channels are the channel names to deliver on.
	Channels []string `json:"channels"`
	// Fields are structured facts for machine receivers (stage, wave,
	// milestone percent, deadline...), in a stable order.
	Fields []Field `json:"fields,omitempty"`
}

// Field is one structured fact of an event.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// NotifyInput delivers an event on the named channels; the channel
// declarations come from the rollout, their addresses and keys from the
// worker's environment.
type NotifyInput struct {
	Event    Event             `json:"event"`
	Channels []rollout.Channel `json:"channels"`
}

// NotifyResult says per channel whether delivery succeeded.
type NotifyResult struct {
	Delivered []string `json:"delivered"`
	Failed    []string `json:"failed,omitempty"`
}

// ReportInput is everything the compliance report is built from.
type ReportInput struct {
	Rollout  rollout.Rollout `json:"rollout"`
	Hosts    []rollout.Host  `json:"hosts"`
	Verdicts []HostVerdict   `json:"verdicts"`
	// Exceptions granted during the rollout, by host name.
	Exceptions  []HostException `json:"exceptions,omitempty"`
	GeneratedAt time.Time       `json:"generated_at"`
}

// HostException is an exception granted under policy: the host is counted
// excepted, not compliant, until Expires.
type HostException struct {
	Host      string    `json:"host"`
	Reason    string    `json:"reason"`
	GrantedBy string    `json:"granted_by"`
	Expires   time.Time `json:"expires"`
}

// Report is the final compliance report, stored as the workflow result.
type Report struct {
	RolloutID   string       `json:"rollout_id"`
	KB          string       `json:"kb"`
	Severity    string       `json:"severity"`
	GeneratedAt time.Time    `json:"generated_at"`
	Hosts       []HostReport `json:"hosts"`
	// Totals counts hosts per state over the whole rollout.
	Totals map[rollout.HostState]int `json:"totals"`
	// CompliancePercent is compliant hosts over all hosts less
	// not_applicable ones, times 100.
	CompliancePercent float64 `json:"compliance_percent"`
	// By breaks the totals down per dimension ("region", "site", "tier",
	// "role") and value.
	By []Breakdown `json:"by"`
}

// HostReport is one host's line in the report.
type HostReport struct {
	Name     string            `json:"name"`
	Region   string            `json:"region"`
	Site     string            `json:"site"`
	Tier     rollout.Tier      `json:"tier"`
	Role     string            `json:"role"`
	Owner    string            `json:"owner,omitempty"`
	Purpose  string            `json:"purpose,omitempty"`
	State    rollout.HostState `json:"state"`
	Reasons  []string          `json:"reasons,omitempty"`
	Evidence []string          `json:"evidence,omitempty"`
}

// Breakdown is compliance for one value of one dimension.
type Breakdown struct {
	Dimension         string                    `json:"dimension"`
	Value             string                    `json:"value"`
	Totals            map[rollout.HostState]int `json:"totals"`
	CompliancePercent float64                   `json:"compliance_percent"`
}
