// Package workflows holds Patchway's Temporal workflows: the staged path of
// a patch rollout (risk, advisory, lab, production-like, geographic waves,
// report) with its gates, controls and SLA clock.
//
// This file is the contract clients build against: the task queue, the
// workflow id, the input, the names and argument types of the updates and
// queries, the progress shape, the search attributes the server must know,
// and the registration of the workflows with a worker.
package workflows

import (
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// TaskQueue is the one task queue Patchway's workers poll: workflows and
// activities alike.
const TaskQueue = "patchway"

// WorkflowID is the id of the rollout workflow for a rollout id. It is
// stable, so submitting the same rollout twice is refused by the server and
// every CLI command finds the rollout by its id alone.
func WorkflowID(rolloutID string) string { return "rollout/" + rolloutID }

// Workflow type names as registered with the worker.
const (
	RolloutWorkflowName   = "RolloutWorkflow"
	HostBatchWorkflowName = "HostBatchWorkflow"
)

// RolloutInput starts a rollout: the filed rollout (FiledBy and FiledAt set
// by the submitter) and the hosts and sites of its inventory. Hosts name
// their credential set; nothing here is secret.
type RolloutInput struct {
	Rollout rollout.Rollout `json:"rollout"`
	Hosts   []rollout.Host  `json:"hosts"`
	Sites   []rollout.Site  `json:"sites,omitempty"`
	// FilerToken is the filer's OpenID Connect token for submitting this
	// rollout (bound to it, minutes long): the gates policy proves from
	// it who filed, and the rollout then names the verified subject in
	// Rollout.FiledBy. The rollout drops it once verified.
	FilerToken string `json:"filer_token,omitempty"`
	// Shadow is a candidate policy run beside the live one (submit
	// --shadow-policy DIR): asked about every decision, acted on never.
	Shadow *contract.ShadowPolicy `json:"shadow_policy,omitempty"`

	// Tuning overrides the scale knobs; zero fields take the defaults.
	Tuning Tuning `json:"tuning,omitzero"`

	// Carry is the workflow's own state when it continues as new; clients
	// leave it nil.
	Carry *RolloutCarry `json:"carry,omitempty"`
	// Packed is Hosts, Sites and Carry, gzipped, as the rollout hands them
	// to its next run: a host list compresses about tenfold, which keeps
	// the continue-as-new input far below the 2 MB payload limit. Clients
	// leave it nil.
	Packed []byte `json:"packed,omitempty"`
}

// Tuning holds the scale knobs of a rollout. Zero fields take defaults
// sized for Temporal's limits: history events per run, pending children
// and payload sizes (bench/ measures them).
type Tuning struct {
	// BatchSize is the number of hosts per batch child workflow (100).
	BatchSize int `json:"batch_size,omitempty"`
	// MaxPendingBatches bounds the sliding window of running batch
	// children per stage or wave (4).
	MaxPendingBatches int `json:"max_pending_batches,omitempty"`
	// MaxBatchesPerRun makes the rollout continue as new after this many
	// batches even if the server has not suggested it (300), so its
	// history stays well under 10,240 events.
	MaxBatchesPerRun int `json:"max_batches_per_run,omitempty"`
	// MaxHostsPerRun does the same for a batch child (500 hosts).
	MaxHostsPerRun int `json:"max_hosts_per_run,omitempty"`
	// RetryInterval is the pause between rounds that retry unreachable
	// hosts and laptops until the deadline (4h).
	RetryInterval time.Duration `json:"retry_interval,omitempty"`
	// BootTimeout bounds the wait for a host to come back from its reboot
	// (30m).
	BootTimeout time.Duration `json:"boot_timeout,omitempty"`
	// PreflightParallel bounds the hosts the preflight scan verifies at
	// once, over all its batch children (64).
	PreflightParallel int `json:"preflight_parallel,omitempty"`
}

// Update names: the gates and controls a person uses on a running rollout.
const (
	// UpdateApprove approves the gate the rollout waits at (GateRequest).
	UpdateApprove = "approve"
	// UpdateReject rejects the gate the rollout waits at (GateRequest); the
	// rollout then stops and reports.
	UpdateReject = "reject"
	// UpdatePause stops starting new hosts (ControlRequest); hosts in flight
	// finish.
	UpdatePause = "pause"
	// UpdateResume lifts a pause or a halted wave (ControlRequest).
	UpdateResume = "resume"
	// UpdateAbort stops the rollout (AbortRequest), optionally rolling back
	// the hosts of the current wave.
	UpdateAbort = "abort"
	// UpdateExcept grants a host exception with an expiry (ExceptRequest).
	UpdateExcept = "except"
	// UpdateSkipHost takes a failed host out of a halted wave's failure
	// count (SkipHostRequest), so the wave can resume without it.
	UpdateSkipHost = "skip_host"
	// UpdateThreat adds risk facts to a running rollout (ThreatRequest):
	// the sla and plan policies decide its deadline again, never later.
	UpdateThreat = "threat_update"
)

// Query names.
const (
	// QueryProgress returns Progress.
	QueryProgress = "progress"
	// QueryHost takes a host name and returns HostStatus.
	QueryHost = "host"
	// QueryReport returns the contract.ReportInput the rollout would
	// build its compliance report from now (packed when large: Unpack
	// it), for a provisional report of a running rollout.
	QueryReport = "report"
)

// GateRequest approves or rejects a gate. Gate is the gate's name as shown
// in Progress.WaitingGate (the stage or wave name); empty means the gate the
// rollout waits at now.
type GateRequest struct {
	Gate   string `json:"gate,omitempty"`
	User   string `json:"user,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token string `json:"token,omitempty"`
}

// ThreatRequest adds what became known since filing: exploitation in
// the wild, a worm, a public exploit. A fact is only ever added.
type ThreatRequest struct {
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token         string `json:"token,omitempty"`
	User          string `json:"user,omitempty"`
	Reason        string `json:"reason"`
	Exploited     bool   `json:"exploited,omitempty"`
	WormInTheWild bool   `json:"worm_in_the_wild,omitempty"`
	ExploitPublic bool   `json:"exploit_public,omitempty"`
	// KEV names CVEs of the rollout that a KEV catalogue import lists,
	// and PolicyRevision the revision of the policy bundle with it: a
	// worker on another revision reads its policy directory again before
	// the sla policy decides.
	KEV            []string `json:"kev,omitempty"`
	PolicyRevision string   `json:"policy_revision,omitempty"`
}

// ControlRequest pauses or resumes a rollout.
type ControlRequest struct {
	User   string `json:"user,omitempty"`
	Reason string `json:"reason"`
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token string `json:"token,omitempty"`
}

// AbortRequest stops a rollout. Rollback uninstalls the patch from the
// hosts of the current wave that received it.
type AbortRequest struct {
	User     string `json:"user,omitempty"`
	Reason   string `json:"reason"`
	Rollback bool   `json:"rollback,omitempty"`
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token string `json:"token,omitempty"`
}

// ExceptRequest grants an exception to one host until Expires: the host is
// reported excepted, not compliant, and is no longer patched.
type ExceptRequest struct {
	Host    string    `json:"host"`
	User    string    `json:"user,omitempty"`
	Reason  string    `json:"reason"`
	Expires time.Time `json:"expires"`
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token string `json:"token,omitempty"`
}

// SkipHostRequest removes one failed host from a halted wave's failure
// count, so the wave can go on without it.
type SkipHostRequest struct {
	Host   string `json:"host"`
	User   string `json:"user,omitempty"`
	Reason string `json:"reason"`
	// Token is the person's OpenID Connect token for this one action
	// (bound to the rollout, the action and its gate or host, minutes
	// long, used once); the gates policy proves who acts from it. User is
	// read only on a dev server started with --insecure-dev-identity.
	Token string `json:"token,omitempty"`
}

// Status is where the rollout as a whole stands.
type Status string

// Rollout statuses.
const (
	StatusRunning   Status = "running"
	StatusWaiting   Status = "waiting_approval"
	StatusSoaking   Status = "soaking"
	StatusPaused    Status = "paused"
	StatusHalted    Status = "halted"
	StatusWindow    Status = "waiting_window"
	StatusAborted   Status = "aborted"
	StatusRejected  Status = "rejected"
	StatusCompleted Status = "completed"
	// StatusFailed: the workflow ended without a report (refused by
	// policy before any host was touched, terminated); Progress.Failure
	// says why. Clients set it from the workflow's close status.
	StatusFailed Status = "failed"
)

// StepKind tells pre-production stages from production waves.
type StepKind string

// Step kinds.
const (
	KindStage StepKind = "stage"
	KindWave  StepKind = "wave"
	// KindRetry is the rounds that retry unreachable hosts until the
	// deadline, after the last wave.
	KindRetry StepKind = "retry"
	// KindPreflight is the preflight scan before the first stage.
	KindPreflight StepKind = "preflight"
)

// StepStatus is where one stage or wave stands.
type StepStatus string

// Step statuses.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSoaking   StepStatus = "soaking"
	StepWaiting   StepStatus = "waiting_approval"
	StepHalted    StepStatus = "halted"
	StepWindow    StepStatus = "waiting_window"
	StepDone      StepStatus = "done"
	StepSkipped   StepStatus = "skipped"
	StepAborted   StepStatus = "aborted"
	StepRejected  StepStatus = "rejected"
	StepRetrying  StepStatus = "retrying"
	StepApproved  StepStatus = "approved"
	StepNoHosts   StepStatus = "no_hosts"
	StepRollingBk StepStatus = "rolling_back"
)

// Progress is the answer to the progress query: what the CLI's status
// command prints and what SetCurrentDetails summarises.
type Progress struct {
	RolloutID string           `json:"rollout_id"`
	KB        string           `json:"kb"`
	Severity  rollout.Severity `json:"severity"`
	Status    Status           `json:"status"`
	// Stage is the name of the current stage or wave.
	Stage string `json:"stage,omitempty"`
	// WaitingGate names the gate waiting for approval, if any.
	WaitingGate string    `json:"waiting_gate,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`
	Breached    bool      `json:"breached"`
	Paused      bool      `json:"paused"`
	// PolicyRevision is the revision of the policy bundle that made the
	// risk decision.
	PolicyRevision string `json:"policy_revision,omitempty"`
	// CVEs are the patch's; KEV those of them the risk decision found in
	// the KEV catalogue.
	CVEs       []string       `json:"cves,omitempty"`
	KEV        []string       `json:"kev,omitempty"`
	HostsDone  int            `json:"hosts_done"`
	HostsTotal int            `json:"hosts_total"`
	Steps      []StepProgress `json:"steps"`
	// Decisions are the most recent decisions, oldest first (bounded; the
	// full record is the workflow history).
	Decisions []Record `json:"decisions"`
	// Exceptions granted so far.
	Exceptions []Exception `json:"exceptions,omitempty"`
	// Baseline is what the preflight scan found (partial while it runs).
	Baseline *contract.Baseline `json:"baseline,omitempty"`
	// Forecast is the forecast policy's latest answer: when the rollout
	// completes at the rate observed so far, and whether that is late.
	Forecast *contract.Forecast `json:"forecast,omitempty"`
	// Shadow is where the shadow policy disagreed so far (nil: none).
	Shadow *contract.ShadowSummary `json:"shadow,omitempty"`
	// Failure is why the workflow failed (StatusFailed), set by clients.
	Failure string `json:"failure,omitempty"`
}

// StepProgress is one stage or wave.
type StepProgress struct {
	Name   string     `json:"name"`
	Kind   StepKind   `json:"kind"`
	Status StepStatus `json:"status"`
	Hosts  int        `json:"hosts"`
	// Totals counts the step's hosts per state.
	Totals map[rollout.HostState]int `json:"totals"`
	// Failures the wave policy last counted against the threshold, and
	// the threshold itself (hosts), both from its decision.
	Failures  int `json:"failures"`
	Threshold int `json:"threshold"`
	// Batches started so far (child workflows).
	Batches int `json:"batches"`
}

// Record is one decision taken during the rollout: by a policy or by a
// person, with why. Every record is also in workflow history.
type Record struct {
	At time.Time `json:"at"`
	// Kind is risk, plan, wave, gate, approve, reject, pause, resume,
	// abort, except, skip_host, escalation, halt, breach.
	Kind string `json:"kind"`
	// Subject is what the decision is about: a gate, a wave, a host.
	Subject    string              `json:"subject,omitempty"`
	User       string              `json:"user,omitempty"`
	Allow      bool                `json:"allow"`
	Reason     string              `json:"reason,omitempty"`
	Violations []rollout.Violation `json:"violations,omitempty"`
	// Revision of the policy bundle, for policy decisions.
	Revision string `json:"revision,omitempty"`
	// Person is who acted, as the gates policy proved it (a verified
	// token's subject, groups, issuer, key id and token hash; or an
	// unverified dev identity). User is then Person.Name.
	Person *contract.Person `json:"person,omitempty"`
}

// Exception is a host exception granted during the rollout.
type Exception struct {
	Host      string    `json:"host"`
	Reason    string    `json:"reason"`
	GrantedBy string    `json:"granted_by"`
	Expires   time.Time `json:"expires"`
}

// HostStatus answers the host query.
type HostStatus struct {
	Name    string            `json:"name"`
	State   rollout.HostState `json:"state"`
	Reasons []string          `json:"reasons,omitempty"`
	// Evidence is what the host showed at its last verification.
	Evidence []string `json:"evidence,omitempty"`
	// Stage is the stage or wave the host belongs to.
	Stage string `json:"stage"`
	// Attempts counts patch rounds (unreachable hosts and laptops are
	// retried until the deadline).
	Attempts int `json:"attempts"`
}

// SearchAttribute is a custom search attribute the server must have
// registered before a rollout starts (upserting an unregistered one fails
// the workflow task forever).
type SearchAttribute struct {
	Name string
	Type enumspb.IndexedValueType
}

// Search attribute keys. The set fits the SQLite dev server's limits
// (10 Keyword, 3 Int, 3 Datetime, 3 Bool, 3 KeywordList).
var (
	// AttrRolloutID is on the rollout workflow and its batch children.
	AttrRolloutID = temporal.NewSearchAttributeKeyKeyword("RolloutId")
	AttrPatchKB   = temporal.NewSearchAttributeKeyKeyword("PatchKB")
	AttrSeverity  = temporal.NewSearchAttributeKeyKeyword("Severity")
	// AttrStage is the current stage or wave (on a batch child: its own).
	AttrStage       = temporal.NewSearchAttributeKeyKeyword("RolloutStage")
	AttrSLADeadline = temporal.NewSearchAttributeKeyTime("SLADeadline")
	AttrSLABreached = temporal.NewSearchAttributeKeyBool("SLABreached")
	AttrHostsDone   = temporal.NewSearchAttributeKeyInt64("HostsDone")
	AttrHostsTotal  = temporal.NewSearchAttributeKeyInt64("HostsTotal")
	// AttrHosts lists the host names of a batch child, so any host is
	// found in the UI with `PatchwayHosts = 'WS-EMEA-0042'`.
	AttrHosts = temporal.NewSearchAttributeKeyKeywordList("PatchwayHosts")
	// AttrScanRegressed is set on a compliance scan when a host that was
	// compliant at the previous scan no longer is: `ScanRegressed = true`.
	AttrScanRegressed = temporal.NewSearchAttributeKeyBool("ScanRegressed")
)

// SearchAttributes lists every custom search attribute Patchway upserts,
// for the dev server (or an operator) to register.
var SearchAttributes = []SearchAttribute{
	{Name: AttrRolloutID.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: AttrPatchKB.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: AttrSeverity.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: AttrStage.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD},
	{Name: AttrSLADeadline.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_DATETIME},
	{Name: AttrSLABreached.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_BOOL},
	{Name: AttrHostsDone.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_INT},
	{Name: AttrHostsTotal.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_INT},
	{Name: AttrHosts.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST},
	{Name: AttrScanRegressed.GetName(), Type: enumspb.INDEXED_VALUE_TYPE_BOOL},
}

// hostsAttrBudget is how many bytes of JSON the PatchwayHosts value may
// take: the server refuses a search attribute value over 2,048 bytes and
// terminates the parent whose child carries it.
const hostsAttrBudget = 2000

// HostsAttr returns the PatchwayHosts value of a batch (a rollout's or a
// scan's): its host names, as many as fit the server's size limit, in
// order. A batch of 100 hosts fits whole while names average under 17
// characters; beyond, the last names are left out of the attribute (the
// rollout's host query still finds them: patchway status --host).
func HostsAttr(names []string) []string {
	size := 2 // []
	for i, n := range names {
		size += len(n) + 3 // "n",
		if size > hostsAttrBudget {
			return names[:i:i]
		}
	}
	return names
}

// StartOptions are the options a client starts a rollout with: its stable
// id, the task queue, the search attributes known at submission, and a
// one-line static summary for the UI.
func StartOptions(in RolloutInput) client.StartWorkflowOptions {
	r := in.Rollout
	return client.StartWorkflowOptions{
		ID:        WorkflowID(r.ID),
		TaskQueue: TaskQueue,
		// A completed rollout's id is never reused: its report and status
		// stay reachable under the id (a new run would hide them). One
		// that failed, was terminated or timed out may be filed again.
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE_FAILED_ONLY,
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrRolloutID.ValueSet(r.ID),
			AttrPatchKB.ValueSet(r.Patch.KB),
			AttrSeverity.ValueSet(string(r.Patch.Severity)),
			AttrHostsTotal.ValueSet(int64(len(in.Hosts))),
			AttrHostsDone.ValueSet(0),
		),
		StaticSummary: staticSummary(in),
	}
}

func staticSummary(in RolloutInput) string {
	r := in.Rollout
	title := r.Patch.Title
	if title == "" {
		title = r.Patch.Bulletin
	}
	return fmt.Sprintf("%s %s (%s): %s, %d stages, %d waves, filed by %s",
		r.Patch.KB, title, r.Patch.Severity, PlannedHosts(in), len(r.Stages), len(r.Waves), r.FiledBy)
}

// PlannedHosts says how many of the inventory's hosts the rollout's stages
// and waves select, as the workflow will plan them: "13 of 213 inventory
// hosts", or "200 hosts" when they select every one.
func PlannedHosts(in RolloutInput) string {
	_, unplanned, err := planSteps(in.Rollout, in.Hosts)
	if err != nil || unplanned == 0 {
		return fmt.Sprintf("%d hosts", len(in.Hosts))
	}
	return fmt.Sprintf("%d of %d inventory hosts", len(in.Hosts)-unplanned, len(in.Hosts))
}

// Register registers the rollout's workflows with a worker (or a
// replayer); the compliance scan's are registered by package scan.
func Register(r worker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(RolloutWorkflow, workflow.RegisterOptions{Name: RolloutWorkflowName})
	r.RegisterWorkflowWithOptions(HostBatchWorkflow, workflow.RegisterOptions{Name: HostBatchWorkflowName})
}
