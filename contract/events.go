package contract

import (
	"time"

	"github.com/patchway/patchway/rollout"
)

// EventKind names what happened; notifiers and receivers rely on these.
type EventKind string

// The events a rollout notifies.
const (
	EventAdvisory     EventKind = "advisory"
	EventGateWaiting  EventKind = "gate_waiting"
	EventGateDecided  EventKind = "gate_decided"
	EventWaveHalted   EventKind = "wave_halted"
	EventSLAMilestone EventKind = "sla_milestone"
	EventSLABreached  EventKind = "sla_breached"
	// EventSLAForecastBreach: the forecast policy finds the rollout will
	// finish after its deadline, before the breach.
	EventSLAForecastBreach EventKind = "sla_forecast_breach"
	EventRolloutCompleted  EventKind = "rollout_completed"
	// EventScanDrift: a compliance scan found hosts compliant at its
	// previous scan and no longer compliant. RolloutID holds the scan's
	// "scan/<id>"; the fields name the scan id, KBs and counts.
	EventScanDrift EventKind = "scan_drift"
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

// NotifyResult says per channel whether delivery succeeded. Errors says
// why each Failed channel failed ("name: reason"), without addresses or
// keys.
type NotifyResult struct {
	Delivered []string `json:"delivered"`
	Failed    []string `json:"failed,omitempty"`
	Errors    []string `json:"errors,omitempty"`
}

// ReportInput is everything the compliance report is built from. It is
// an activity input (and the report query's answer), so a large one
// travels packed: see Pack.
type ReportInput struct {
	Rollout  rollout.Rollout `json:"rollout"`
	Hosts    []rollout.Host  `json:"hosts"`
	Verdicts []HostVerdict   `json:"verdicts"`
	// Exceptions granted during the rollout, by host name.
	Exceptions  []HostException `json:"exceptions,omitempty"`
	GeneratedAt time.Time       `json:"generated_at"`
	// Baseline is the preflight scan, when the rollout ran one.
	Baseline *Baseline `json:"baseline,omitempty"`
	// OutsideSteps counts the inventory's hosts that no stage or wave
	// selects: they are not in Hosts, and the report does not count them
	// (an MS08-067 rollout says nothing of a Server 2022 host).
	OutsideSteps int `json:"outside_steps,omitempty"`
	// Unverified lists the actions people took with a typed, unverified
	// identity (a dev server's --insecure-dev-identity), one line each.
	Unverified []string `json:"unverified,omitempty"`
	// Forecast sums up the SLA forecasts (nil: none was made).
	Forecast *ReportForecast `json:"forecast,omitempty"`
	// Shadow is where the rollout's shadow policy disagreed (nil: none).
	Shadow *ShadowSummary `json:"shadow,omitempty"`
	// Packed holds Hosts and Verdicts gzipped (then both are nil) when
	// their JSON is over InlineLimit: 10,000 hosts with their verdicts
	// are several megabytes, over the server's 2 MB payload limit.
	Packed []byte `json:"packed,omitempty"`
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
// The summary (totals, compliance, breakdowns, unowned hosts) is plain
// JSON, readable in the Temporal Web UI; the per-host list is plain in
// Hosts for a small rollout and gzipped in HostsGzip for a large one, so
// the result stays under the 2 MB payload limit. Read hosts with HostList.
type Report struct {
	RolloutID   string    `json:"rollout_id"`
	KB          string    `json:"kb"`
	Severity    string    `json:"severity"`
	GeneratedAt time.Time `json:"generated_at"`
	// Provisional says why the report is not final ("rollout still
	// running"); set by a client that built it from the report query,
	// never by the workflow.
	Provisional string `json:"provisional,omitempty"`
	// HostCount is the number of hosts reported, not_applicable included:
	// the hosts of the rollout's stages and waves.
	HostCount int `json:"host_count"`
	// OutsideSteps is how many inventory hosts no stage or wave selects;
	// they are neither reported nor counted.
	OutsideSteps int `json:"outside_steps,omitempty"`
	// CompliancePercent is Percent of compliant hosts over all hosts less
	// not_applicable ones, unrounded (show it with PercentText); 0 when
	// no host is applicable.
	CompliancePercent float64 `json:"compliance_percent"`
	// Totals counts hosts per state over the whole rollout, with every
	// state of rollout.HostStates present (zeros included).
	Totals map[rollout.HostState]int `json:"totals"`
	// By breaks the totals down per dimension ("region", "site", "tier",
	// "role", in that order) and value (sorted).
	By []Breakdown `json:"by"`
	// Unowned lists the hosts whose owner or purpose is unknown, by name:
	// nobody answers for them, so a finding there goes nowhere.
	Unowned []UnownedHost `json:"unowned,omitempty"`
	// Baseline is what the preflight scan found before the rollout
	// touched any host, when it ran one.
	Baseline *Baseline `json:"baseline,omitempty"`
	// Unverified lists the actions taken with an unverified (typed)
	// identity: who they name proves nothing.
	Unverified []string `json:"unverified,omitempty"`
	// Forecast is what the SLA forecasts said and, in a final report, how
	// far the first was off the actual end.
	Forecast *ReportForecast `json:"forecast,omitempty"`
	// Shadow is what the rollout's shadow policy, run beside the live one
	// and never acted on, decided otherwise.
	Shadow *ShadowSummary `json:"shadow,omitempty"`
	// Hosts is every host's line, sorted by name, when the list is small;
	// nil when it is in HostsGzip.
	Hosts []HostReport `json:"hosts,omitempty"`
	// HostsGzip is the host list as gzipped JSON when its plain JSON is
	// over InlineLimit.
	HostsGzip []byte `json:"hosts_gzip,omitempty"`
}

// UnownedHost is a host nobody answers for, with what is missing
// ("owner unknown", `purpose "?"`).
type UnownedHost struct {
	Host   string `json:"host"`
	Reason string `json:"reason"`
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

// Breakdown is compliance for one value of one dimension. Totals holds
// only the states some host is in, which keeps a report with hundreds of
// sites small.
type Breakdown struct {
	Dimension         string                    `json:"dimension"`
	Value             string                    `json:"value"`
	Hosts             int                       `json:"hosts"`
	Totals            map[rollout.HostState]int `json:"totals"`
	CompliancePercent float64                   `json:"compliance_percent"`
}

// ReportForecast sums up a rollout's SLA forecasts: the first, the latest
// and the first that found it late. OffBy (final reports only) is the
// actual end less the first forecast's completion: positive when the
// rollout ended later than first forecast.
type ReportForecast struct {
	First       Forecast   `json:"first"`
	Last        Forecast   `json:"last"`
	FirstBreach *time.Time `json:"first_breach,omitempty"`
	// Ended is when the rollout ended (zero while it runs).
	Ended time.Time     `json:"ended,omitzero"`
	OffBy time.Duration `json:"off_by,omitempty"`
}
