// Package activities holds Patchway's Temporal activities: host operations
// over WinRM, policy evaluation, notification and reporting. This file is
// the contract the workflows call: activity names and their input and
// output types. Everything here is plain data, JSON in history, and carries
// no secret: hosts name their credential set, the worker resolves it.
package contract

import (
	"time"

	"github.com/patchway/patchway/hostscript"
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
	// per-host cost at one activity: each activity is several history
	// events and a task round trip, which dominate at 100,000 hosts.
	PatchHostName = "PatchHost"
	// PreflightCredentialsName checks, before any host is touched, that
	// the worker can resolve every credential set the rollout's hosts name.
	PreflightCredentialsName = "PreflightCredentials"

	// Policy decisions (run as local activities: fast, recorded in history).
	EvaluateRiskName     = "EvaluateRisk"
	AuthorizeGateName    = "AuthorizeGate"
	DecideRebootName     = "DecideReboot"
	DecideWaveName       = "DecideWave"
	DecideEscalationName = "DecideEscalation"
	ForecastSLAName      = "ForecastSLA"
	// ShadowDecideName asks a rollout's shadow policy about decisions
	// the live one took; nothing acts on its answer.
	ShadowDecideName = "ShadowDecide"

	// Notification and reporting.
	NotifyName      = "Notify"
	BuildReportName = "BuildReport"
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

// HostIdentity is who answered for a host: the name it answered as, its
// machine GUID and the TLS certificate its listener presented (SHA-256
// hex). PatchHost pins the first answer of a run and the identity policy
// refuses any later answer from another machine.
type HostIdentity struct {
	Hostname      string `json:"hostname,omitempty"`
	MachineGUID   string `json:"machine_guid,omitempty"`
	TLSCertSHA256 string `json:"tls_cert_sha256,omitempty"`
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
	Proof    []string              `json:"proof,omitempty"`
	// Judged is the compliance decision's record (nil in verdicts
	// recorded before decisions were).
	Judged *ComplianceRecord `json:"judged,omitempty"`
	// Baseline is how a preflight scan counts the host (the compliance
	// policy's baseline category: vulnerable, pending_reboot, ...).
	Baseline string `json:"baseline,omitempty"`
	// PreflightSettles: found by a preflight, the host needs nothing
	// from the rollout (the compliance policy's preflight_settles).
	PreflightSettles bool `json:"preflight_settles,omitempty"`
}

// CredentialUse is one credential set the hosts of a rollout name: how
// many hosts, and the first few by name.
type CredentialUse struct {
	Set      string   `json:"set"`
	Hosts    int      `json:"hosts"`
	Examples []string `json:"examples,omitempty"`
}

// PreflightCredentialsInput lists the credential sets of a rollout's
// planned hosts, sorted by name.
type PreflightCredentialsInput struct {
	RolloutID string          `json:"rollout_id"`
	Uses      []CredentialUse `json:"uses"`
}

// CredentialProblem is a set the worker cannot resolve, and why (never
// the secret itself).
type CredentialProblem struct {
	CredentialUse
	Reason string `json:"reason"`
}

// PreflightCredentialsResult lists the sets the worker cannot resolve;
// empty when every host can be reached with its credentials.
type PreflightCredentialsResult struct {
	Unknown []CredentialProblem `json:"unknown,omitempty"`
}

// UninstallPatchInput asks for a rollback on one host. Reboot says
// whether the workflow's reboot decision allowed a reboot now, should the
// uninstall need one; BootTimeout bounds the wait for it.
type UninstallPatchInput struct {
	Target      HostTarget    `json:"target"`
	Reboot      bool          `json:"reboot,omitempty"`
	BootTimeout time.Duration `json:"boot_timeout,omitempty"`
}

// UninstallPatchResult is a rollback's outcome: what the uninstaller
// said, the rollback policy's verdict on the host's evidence afterwards
// (rolled_back only on proof), and the steps done ("scan", "uninstall",
// "reboot", "wait_for_boot", "verify").
type UninstallPatchResult struct {
	Uninstall hostscript.UninstallResult `json:"uninstall"`
	Verdict   HostVerdict                `json:"verdict"`
	Steps     []string                   `json:"steps,omitempty"`
}

// PatchHostInput runs the whole per-host sequence. Reboot says whether the
// workflow's reboot decision allowed a reboot now; BootTimeout bounds
// WaitForBoot.
type PatchHostInput struct {
	Target HostTarget `json:"target"`
	// Reboot: the reboot policy allowed the host to reboot in this run;
	// whether it needs to, the policy decides on what the host shows.
	Reboot bool `json:"reboot"`
	// RebootPending: an earlier attempt left the host pending_reboot.
	RebootPending bool          `json:"reboot_pending,omitempty"`
	BootTimeout   time.Duration `json:"boot_timeout"`
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

// Policy actions a person takes on a running rollout; AuthorizeGate asks
// the gates policy whether the person may take them.
const (
	ActionApprove  = "approve"
	ActionReject   = "reject"
	ActionPause    = "pause"
	ActionResume   = "resume"
	ActionAbort    = "abort"
	ActionExcept   = "except"
	ActionSkipHost = "skip_host"
	// ActionThreatUpdate adds risk facts to a running rollout.
	ActionThreatUpdate = "threat_update"
	// ActionSubmit files a rollout: the filer is proven before anything
	// else happens.
	ActionSubmit = "submit"
	// ActionScan starts a compliance scan or creates its schedule.
	ActionScan = "scan"
)

// EvaluateRiskInput asks the sla and plan policies for the rollout's
// deadline, required stages and escalation milestones. Now is the
// workflow's time, passed in (policies never read the clock).
type EvaluateRiskInput struct {
	Rollout rollout.Rollout `json:"rollout"`
	// EmergencyApproval is who approved the rollout's emergency at its
	// gate, as the gates policy proved them (nil: none approved it).
	EmergencyApproval *Person `json:"emergency_approval,omitempty"`
	// HostCount is the number of hosts in the rollout's inventory.
	HostCount int       `json:"host_count"`
	Now       time.Time `json:"now"`
	// CurrentDeadline is the running rollout's deadline when its risk is
	// decided again (a threat update); zero at filing.
	CurrentDeadline time.Time `json:"current_deadline,omitzero"`
	// SoakLeft lists, when a running rollout's risk is decided again, the
	// stages not yet done with the soak each has left; the plan policy
	// may shrink them to fit the new deadline.
	SoakLeft []StageSoak `json:"soak_left,omitempty"`
	// PolicyRevision, when set, is the revision the caller knows of (a
	// KEV import): a worker whose bundle differs reads its policy
	// directory again before deciding.
	PolicyRevision string `json:"policy_revision,omitempty"`
}

// StageSoak is the soak a stage has left.
type StageSoak struct {
	Stage string        `json:"stage"`
	Left  time.Duration `json:"left"`
}

// RiskDecision is the recorded risk evaluation: the SLA deadline, the
// stages the plan policy requires, and the milestones of the SLA clock in
// time order. Allow false means the rollout may not proceed as filed.
type RiskDecision struct {
	rollout.Decision
	SLA            time.Duration `json:"sla"`
	Deadline       time.Time     `json:"deadline"`
	RequiredStages []string      `json:"required_stages,omitempty"`
	// SkippedSteps are the rollout's stages an approved emergency skips.
	SkippedSteps []string            `json:"skipped_steps,omitempty"`
	Milestones   []rollout.Milestone `json:"milestones"`
	// Reasons explain the deadline (severity, exploit, overrides).
	Reasons []string `json:"reasons,omitempty"`
	// Soaks is the soak per stage still to run, as the plan policy
	// decided it (shorter than filed when a tightened deadline shrank it).
	Soaks map[string]time.Duration `json:"soaks,omitempty"`
	// KEV lists the patch's CVEs the KEV catalogue of the policy data
	// lists (sorted).
	KEV []string `json:"kev,omitempty"`
	// Records are the policy decisions behind this one (DecisionRecord);
	// the workflow keeps them in history only.
	Records []DecisionRecord `json:"records,omitempty"`
}

// AuthorizeGateInput asks the gates policy whether User may take Action
// on Gate (a stage or wave name) of the rollout. Group is the approval
// group the rollout names for the gate (empty: the policy's default).
type AuthorizeGateInput struct {
	RolloutID string    `json:"rollout_id"`
	FiledBy   string    `json:"filed_by"`
	Gate      string    `json:"gate"`
	Group     string    `json:"group,omitempty"`
	Action    string    `json:"action"`
	User      string    `json:"user"`
	Reason    string    `json:"reason,omitempty"`
	Severity  string    `json:"severity"`
	Now       time.Time `json:"now"`
	// Halted: the resume lifts a halt (not a pause). Rollback: the abort
	// uninstalls. Each has its own rule in the gates policy.
	Halted   bool `json:"halted,omitempty"`
	Rollback bool `json:"rollback,omitempty"`
	// Token is the action's OpenID Connect token, which the policy
	// verifies (User is then ignored); UsedTokens the SHA-256 (hex) of
	// every token the rollout was shown before, so none is used twice.
	// A local activity's input stays out of history; the decision record
	// keeps the token's hash only.
	Token      string   `json:"token,omitempty"`
	UsedTokens []string `json:"used_tokens,omitempty"`
	// Target is the gate or host the request named ("" when it names
	// none): the token's audience must name it (ActionAudience).
	Target string `json:"target,omitempty"`
	// Emergency: the approval or rejection is of the rollout's emergency
	// break-glass (the gates policy's approve_emergency rule).
	Emergency bool `json:"emergency,omitempty"`
}

// ActionAudience is the audience of a token for one action: the rollout,
// the action (Action*) and the gate or host the request names, if any
// ("urn:patchway:ROLLOUT:ACTION[:TARGET]"). The CLI asks the identity
// provider for a token with it, and the oidc policy accepts a token for
// that action only if its audience is exactly this.
func ActionAudience(rolloutID, action, target string) string {
	if target == "" {
		return "urn:patchway:" + rolloutID + ":" + action
	}
	return "urn:patchway:" + rolloutID + ":" + action + ":" + target
}

// Person is who took an action, as the gates policy proved it: from a
// verified token (Verified, with the issuer, the signing key's id and
// the token's SHA-256), or a name typed on a dev server started with
// --insecure-dev-identity (Verified false).
type Person struct {
	Subject     string   `json:"subject"`
	Name        string   `json:"name"`
	Groups      []string `json:"groups,omitempty"`
	Verified    bool     `json:"verified"`
	Issuer      string   `json:"issuer,omitempty"`
	KeyID       string   `json:"key_id,omitempty"`
	TokenSHA256 string   `json:"token_sha256,omitempty"`
	// Expires is when the token expired (RFC 3339).
	Expires string `json:"expires,omitempty"`
}

// Describe names the person as a sentence does: "alice (verified by
// ISSUER)", or "alice (unverified)".
func (p *Person) Describe() string {
	if !p.Verified {
		return p.Name + " (unverified)"
	}
	return p.Name + " (verified by " + p.Issuer + ")"
}

// GateDecision is the gates policy's answer; the violations say why not.
// Person is who acts (nil when not proven).
type GateDecision struct {
	rollout.Decision
	Person *Person `json:"person,omitempty"`
	// Records are the policy decisions behind this one (DecisionRecord);
	// the workflow keeps them in history only.
	Records []DecisionRecord `json:"records,omitempty"`
}

// DecideRebootInput asks the reboot policy which of the Candidates may
// start now, given the hosts already InFlight (each may reboot): limits on
// concurrent reboots per site, one domain controller per site, one member
// per cluster.
type DecideRebootInput struct {
	Patch      rollout.Patch  `json:"patch"`
	Candidates []rollout.Host `json:"candidates"`
	// RebootPending names the candidates an earlier attempt left
	// pending_reboot.
	RebootPending []string       `json:"reboot_pending,omitempty"`
	InFlight      []rollout.Host `json:"in_flight,omitempty"`
	// Slots bounds how many candidates may be admitted (free parallelism).
	Slots int `json:"slots"`
	// Window is the wave's maintenance window (nil: any time); Sites give
	// each host's time zone.
	Window   *rollout.Window `json:"window,omitempty"`
	Sites    []rollout.Site  `json:"sites,omitempty"`
	Deadline time.Time       `json:"deadline,omitzero"`
	// Accelerations the escalation policy allowed (reboot_outside_window).
	Accelerations []string  `json:"accelerations,omitempty"`
	Now           time.Time `json:"now"`
}

// RebootPlan says a host may start, and whether it reboots after install.
type RebootPlan struct {
	Host   string `json:"host"`
	Reboot bool   `json:"reboot"`
}

// HeldHost is a candidate the reboot policy holds back for now, and why.
type HeldHost struct {
	Host       string              `json:"host"`
	Violations []rollout.Violation `json:"violations,omitempty"`
}

// RebootDecision admits candidates in order while the limits allow.
type RebootDecision struct {
	rollout.Decision
	Start []RebootPlan `json:"start"`
	Held  []HeldHost   `json:"held,omitempty"`
	// RebootRecords are the admissions behind this decision, one per
	// candidate evaluated; the workflow keeps them in history only.
	RebootRecords []RebootRecord `json:"reboot_records,omitempty"`
}

// DecideWaveInput asks the wave policy whether a wave (or a stage, Kind
// "stage") may start now, with which limits, and whether its failures so
// far (States, less those a person acknowledged) must halt it.
type DecideWaveInput struct {
	RolloutID string                 `json:"rollout_id"`
	Kind      string                 `json:"kind,omitempty"`
	Severity  string                 `json:"severity"`
	Wave      rollout.Wave           `json:"wave"`
	Sites     []rollout.Site         `json:"sites,omitempty"`
	Hosts     int                    `json:"hosts"`
	Deadline  time.Time              `json:"deadline"`
	Now       time.Time              `json:"now"`
	Reboot    rollout.RebootBehavior `json:"reboot"`
	// TimeZone is the wave's zone when its window names none.
	TimeZone string `json:"time_zone,omitempty"`
	// Done lists the waves already finished; States counts the wave's
	// hosts by state so far.
	Done   []string                  `json:"done,omitempty"`
	States map[rollout.HostState]int `json:"states,omitempty"`
	// Accelerations the escalation policy allowed (raise_parallelism).
	Accelerations []string `json:"accelerations,omitempty"`
}

// WaveDecision says whether the wave may start now (Allow), and if not,
// when its next window opens; WindowEnd bounds when the last host may
// start (its install and reboot must fit: HostBudget). Halt says the
// failures so far are over the threshold (MaxFailures hosts): the step
// stops for a person. FailureStates are the states that count as
// failures; FailureBudget is how many more the step may take.
type WaveDecision struct {
	rollout.Decision
	NextWindow          time.Time           `json:"next_window,omitzero"`
	WindowEnd           time.Time           `json:"window_end,omitzero"`
	HostBudget          time.Duration       `json:"host_budget"`
	MaxParallel         int                 `json:"max_parallel"`
	DownloadConcurrency int                 `json:"download_concurrency"`
	MaxFailures         int                 `json:"max_failures"`
	Halt                bool                `json:"halt,omitempty"`
	Failures            int                 `json:"failures"`
	FailureStates       []rollout.HostState `json:"failure_states,omitempty"`
	FailureBudget       int                 `json:"failure_budget"`
	// Records are the policy decisions behind this one (DecisionRecord);
	// the workflow keeps them in history only.
	Records []DecisionRecord `json:"records,omitempty"`
}

// DecideEscalationInput asks the escalation policy who hears about the
// rollout at a milestone of its SLA clock, and which accelerations it
// allows.
type DecideEscalationInput struct {
	Rollout    rollout.Rollout   `json:"rollout"`
	Milestone  rollout.Milestone `json:"milestone"`
	Deadline   time.Time         `json:"deadline"`
	Stage      string            `json:"stage,omitempty"`
	Waiting    string            `json:"waiting,omitempty"`
	HostsDone  int               `json:"hosts_done"`
	HostsTotal int               `json:"hosts_total"`
	Now        time.Time         `json:"now"`
}

// EscalationDecision names the contacts and channels to notify and the
// accelerations allowed (for example "skip_soak", "widen_parallel",
// "quarantine_laptops").
type EscalationDecision struct {
	rollout.Decision
	Contacts      []string `json:"contacts"`
	Channels      []string `json:"channels"`
	Accelerations []string `json:"accelerations,omitempty"`
	// Records are the policy decisions behind this one (DecisionRecord);
	// the workflow keeps them in history only.
	Records []DecisionRecord `json:"records,omitempty"`
}

// ForecastInput asks the forecast policy when the rollout will be done:
// the steps still ahead with what each has left, as the workflow sees
// them now. Now is the workflow's time.
type ForecastInput struct {
	RolloutID string         `json:"rollout_id"`
	Severity  string         `json:"severity"`
	Deadline  time.Time      `json:"deadline"`
	Steps     []ForecastStep `json:"steps"`
	Now       time.Time      `json:"now"`
}

// ForecastStep is one stage or wave: its hosts, how many are still to
// prove (Remaining: pending or in progress), when its first batch
// started (zero: not yet) and its last one ended (zero while it runs),
// and how many it has proven (Done); the soak still ahead of it; whether a person's gate is still
// ahead of it (GatePending) or it waits at one now (Waiting); and, for a
// wave waiting for its window, when the window opens.
type ForecastStep struct {
	Name        string        `json:"name"`
	Kind        string        `json:"kind"`
	Status      string        `json:"status"`
	Hosts       int           `json:"hosts"`
	Remaining   int           `json:"remaining"`
	Done        int           `json:"done"`
	StartedAt   time.Time     `json:"started_at,omitzero"`
	EndedAt     time.Time     `json:"ended_at,omitzero"`
	SoakLeft    time.Duration `json:"soak_left,omitempty"`
	GatePending bool          `json:"gate_pending,omitempty"`
	Waiting     bool          `json:"waiting,omitempty"`
	WindowOpens time.Time     `json:"window_opens,omitzero"`
}

// Forecast is the forecast policy's answer: when the rollout completes at
// the rate observed so far, whether that is after the deadline, by how
// much (Margin, negative when late), the rate it used and why.
type Forecast struct {
	rollout.Decision
	At           time.Time     `json:"at"`
	Completion   time.Time     `json:"completion"`
	Breach       bool          `json:"breach"`
	Margin       time.Duration `json:"margin"`
	HostsPerHour float64       `json:"hosts_per_hour"`
	Reasons      []string      `json:"reasons,omitempty"`
	// Records are the policy decisions behind this one; history only.
	Records []DecisionRecord `json:"records,omitempty"`
}
