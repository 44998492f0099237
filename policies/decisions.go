package policies

import (
	"context"
	"slices"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// Exception, ExceptionInput and ExceptionDecision are the exceptions
// policy's terms, input and answer. They live in contract so that a
// caller (the report) can ask the policy through an interface of its own
// without importing this package.
type (
	Exception         = contract.Exception
	ExceptionInput    = contract.ExceptionInput
	ExceptionDecision = contract.ExceptionDecision
)

// ComplianceInput is the evidence the compliance policy judges one host on.
type ComplianceInput struct {
	Host  rollout.Host  `json:"host"`
	Patch rollout.Patch `json:"patch"`
	// Scan is the host's scan; nil means no evidence was gathered.
	Scan      *hostscript.ScanResult `json:"scan"`
	Reachable bool                   `json:"reachable"`
	// InstalledAt is when this rollout installed the patch (zero if it
	// did not): the host must have booted after it.
	InstalledAt time.Time  `json:"installed_at,omitzero"`
	Exception   *Exception `json:"exception,omitempty"`
	// FirstContact is who answered for the host at the first scan of this
	// run; a different machine now is identity_mismatch.
	FirstContact *contract.HostIdentity `json:"first_contact,omitempty"`
	// RebootWait is how the wait for a reboot requested in this run
	// ended, so the reasons can say the host never restarted or never
	// came back.
	RebootWait *RebootWait `json:"reboot_wait,omitempty"`
	Now        time.Time   `json:"now"`
}

// RebootWait and its outcomes are the contract's: the verdict's
// compliance record keeps them.
type RebootWait = contract.RebootWait

const (
	RebootNotRestarted = contract.RebootNotRestarted
	RebootDidNotReturn = contract.RebootDidNotReturn
)

// NewComplianceInput is the compliance (and rollback) policy's input for
// a host: the worker builds it to judge, and the decision record's reader
// builds it again from history, so both are this one function and the
// record's input hash proves the rebuilt input exact. scan is nil when no
// evidence was gathered.
func NewComplianceInput(t contract.HostTarget, scan *hostscript.ScanResult, f contract.ComplianceFacts) ComplianceInput {
	host := t.Host
	if f.CertPin != "" {
		host.TLS.CertSHA256 = f.CertPin
	}
	return ComplianceInput{
		Host: host, Patch: t.Patch, Scan: scan, Reachable: f.Reachable, InstalledAt: f.InstalledAt,
		FirstContact: f.FirstContact, RebootWait: f.RebootWait, Now: f.Now,
	}
}

// IdentityInput asks whether the machine that produced Scan is Host.
type IdentityInput struct {
	Host         rollout.Host           `json:"host"`
	Scan         hostscript.ScanResult  `json:"scan"`
	FirstContact *contract.HostIdentity `json:"first_contact,omitempty"`
	Now          time.Time              `json:"now"`
}

// IdentityDecision: Allow is false when the answer came from another
// machine (Violations say how it differs); Verified is false too when the
// evidence could not be compared (Unverified says why). Observed is the
// identity to pin at first contact.
type IdentityDecision struct {
	rollout.Decision
	Verified   bool                  `json:"verified"`
	Unverified []string              `json:"unverified"`
	Observed   contract.HostIdentity `json:"observed"`
}

// Identity asks the identity policy. On an evaluation error the host is
// refused (nothing is installed on a machine not known to be the host)
// and the error is returned.
func (e *Engine) Identity(ctx context.Context, in IdentityInput) (IdentityDecision, error) {
	var d IdentityDecision
	err := e.evalInto(ctx, DecisionIdentity, in, in.Now, &d)
	if err != nil {
		d = IdentityDecision{}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// ComplianceDecision is the host's state (rollout.HostState) with the reasons
// that led to it. Allow is true exactly when State is compliant.
type ComplianceDecision struct {
	rollout.Decision
	State   rollout.HostState `json:"state"`
	Reasons []string          `json:"reasons"`
	// SupersededBy names the later update whose files satisfy this patch.
	SupersededBy string `json:"superseded_by,omitempty"`
	// Baseline is how a preflight scan before the rollout counts the
	// host (compliant, vulnerable, pending_reboot, unreachable, ...).
	Baseline string `json:"baseline,omitempty"`
	// PreflightSettles: a preflight scan that found this settles the
	// host; the rollout does not patch it.
	PreflightSettles bool `json:"preflight_settles,omitempty"`
	// Install says whether installing the patch could change the host's
	// state: false once anything of it is there or the files already
	// prove the fix (a later update in effect).
	Install bool `json:"install"`
}

// Compliance judges one host's evidence. On an evaluation error the host is
// unknown (never compliant), the error is recorded and returned.
func (e *Engine) Compliance(ctx context.Context, in ComplianceInput) (ComplianceDecision, error) {
	var d ComplianceDecision
	err := e.evalInto(ctx, DecisionCompliance, in, in.Now, &d)
	if err != nil {
		d = ComplianceDecision{State: rollout.StateUnknown, Reasons: []string{"policy evaluation failed"}}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// Rollback judges a host after a rollback: rolled_back only on proof
// (the update gone, the files back below the fixed version). On an
// evaluation error the host is unknown and the error is returned.
func (e *Engine) Rollback(ctx context.Context, in ComplianceInput) (ComplianceDecision, error) {
	var d ComplianceDecision
	err := e.evalInto(ctx, DecisionRollback, in, in.Now, &d)
	if err != nil {
		d = ComplianceDecision{State: rollout.StateUnknown, Reasons: []string{"policy evaluation failed"}}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// Exception asks the exceptions policy. On an evaluation error the host
// is unknown (never compliant) and the error is returned.
func (e *Engine) Exception(ctx context.Context, in ExceptionInput) (ExceptionDecision, error) {
	var d ExceptionDecision
	err := e.evalInto(ctx, DecisionExceptions, in, in.Now, &d)
	if err != nil {
		d = ExceptionDecision{State: rollout.StateUnknown, Reason: "exceptions policy evaluation failed: " + err.Error()}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// ApplicabilityInput asks which of Patch's packages and file evidence
// apply to Host.
type ApplicabilityInput struct {
	Host  rollout.Host  `json:"host"`
	Patch rollout.Patch `json:"patch"`
	Now   time.Time     `json:"now"`
}

// ApplicabilityDecision names the package for the host's OS (Package,
// -1 and a violation when there is none) and the evidence files that
// prove the fix on it (indices into Patch.Evidence.Files).
type ApplicabilityDecision struct {
	rollout.Decision
	Package       int   `json:"package"`
	EvidenceFiles []int `json:"evidence_files"`
	// EvidenceBuilds index Patch.Evidence.Builds.
	EvidenceBuilds []int `json:"evidence_builds,omitempty"`
}

// Applicability asks the applicability policy. On an evaluation error no
// package applies (nothing is installed) and the error is returned.
func (e *Engine) Applicability(ctx context.Context, in ApplicabilityInput) (ApplicabilityDecision, error) {
	var d ApplicabilityDecision
	err := e.evalInto(ctx, DecisionApplicability, in, in.Now, &d)
	if err != nil {
		d = ApplicabilityDecision{Package: -1}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// Evidence returns the file evidence the decision says applies.
func (d ApplicabilityDecision) Evidence(p rollout.Patch) []rollout.FileEvidence {
	var out []rollout.FileEvidence
	for _, i := range d.EvidenceFiles {
		if i >= 0 && i < len(p.Evidence.Files) {
			out = append(out, p.Evidence.Files[i])
		}
	}
	return out
}

// Builds returns the OS build evidence the decision says applies.
func (d ApplicabilityDecision) Builds(p rollout.Patch) []rollout.BuildEvidence {
	var out []rollout.BuildEvidence
	for _, i := range d.EvidenceBuilds {
		if i >= 0 && i < len(p.Evidence.Builds) {
			out = append(out, p.Evidence.Builds[i])
		}
	}
	return out
}

// RebootInput asks whether Host needs a reboot and may reboot now.
type RebootInput struct {
	Host  rollout.Host  `json:"host"`
	Patch rollout.Patch `json:"patch"`
	// RebootPending: an earlier attempt left the host pending_reboot.
	RebootPending bool `json:"reboot_pending"`
	// Facts are what the host showed after the install; nil at admission,
	// before the host starts.
	Facts *RebootFacts `json:"facts,omitempty"`
	// Window is the wave's maintenance window; nil means any time.
	Window *rollout.Window `json:"window,omitempty"`
	// TimeZone is the host's site zone, used when Window has none.
	TimeZone string    `json:"time_zone,omitempty"`
	Deadline time.Time `json:"deadline,omitzero"`
	// InFlight are the hosts rebooting or about to reboot right now.
	InFlight []rollout.Host `json:"in_flight,omitempty"`
	// CheckedIn is true when a laptop has just checked in (is online).
	CheckedIn bool `json:"checked_in,omitempty"`
	// Accelerations granted by the escalation policy (reboot_outside_window).
	Accelerations []string  `json:"accelerations,omitempty"`
	Now           time.Time `json:"now"`
}

// NewRebootInput is the reboot policy's admission input for candidate h
// of a DecideReboot call with the hosts inFlight: the activity builds it
// to decide, and the decision record's reader builds it again from the
// batch child's input, so the record's hash proves the rebuilt input
// exact. The host is being reached now, so a laptop counts as checked in:
// if it does not answer, PatchHost reports it unreachable and the
// rollout retries it at its next check-in.
func NewRebootInput(in contract.DecideRebootInput, h rollout.Host, inFlight []rollout.Host) RebootInput {
	tz := ""
	for _, s := range in.Sites {
		if s.Name == h.Site {
			tz = s.TimeZone
			break
		}
	}
	return RebootInput{
		Host: h, Patch: in.Patch, RebootPending: slices.Contains(in.RebootPending, h.Name),
		Window: in.Window, TimeZone: tz, Deadline: in.Deadline, InFlight: inFlight,
		Accelerations: in.Accelerations, Now: in.Now, CheckedIn: true,
	}
}

// RebootFacts are the host's evidence the reboot policy weighs after the
// install: the installer's exit code, the pending-reboot flags of the
// scan, and whether the host has rebooted since.
type RebootFacts struct {
	InstalledThisRun  bool  `json:"installed_this_run"`
	InstallerExitCode int64 `json:"installer_exit_code"`
	CBSRebootPending  bool  `json:"cbs_reboot_pending"`
	WURebootRequired  bool  `json:"wu_reboot_required"`
	Rebooted          bool  `json:"rebooted"`
}

// RebootDecision says whether the host may reboot now (Allow). Required
// says a reboot is needed before the host can count compliant.
type RebootDecision struct {
	rollout.Decision
	Required      bool     `json:"required"`
	OutsideWindow bool     `json:"outside_window,omitempty"`
	Reasons       []string `json:"reasons,omitempty"`
}

// Reboot decides whether a host may reboot now. On an evaluation error
// the reboot is refused.
func (e *Engine) Reboot(ctx context.Context, in RebootInput) (RebootDecision, error) {
	var d RebootDecision
	err := e.evalInto(ctx, DecisionReboot, in, in.Now, &d)
	if err != nil {
		d = RebootDecision{Required: true}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// SLAInput asks for the rollout's deadline. A rollout not yet filed
// (FiledAt zero) counts from Now.
type SLAInput struct {
	Rollout rollout.Rollout `json:"rollout"`
	Now     time.Time       `json:"now"`
	// CurrentDeadline is a running rollout's deadline, when its risk is
	// decided again: the policy never moves it later.
	CurrentDeadline time.Time `json:"current_deadline,omitzero"`
}

// SLADecision is the deadline of a rollout and its clock.
type SLADecision struct {
	rollout.Decision
	Severity rollout.Severity `json:"severity"`
	// SLA is the time allowed from Start to Deadline, after risk factors.
	SLA      time.Duration `json:"sla"`
	Start    time.Time     `json:"start"`
	Deadline time.Time     `json:"deadline"`
	// Milestones at 50, 75 and 100 % of the SLA, then the rollout's
	// after-breach escalation steps, in time order.
	Milestones []rollout.Milestone `json:"milestones"`
	// StepMax is the maximum duration of each step of the staged path.
	StepMax map[string]time.Duration `json:"step_max"`
	// KEV lists the patch's CVEs in data.kev, the catalogue.
	KEV     []string `json:"kev,omitempty"`
	Reasons []string `json:"reasons"`
}

// SLA computes a rollout's deadline, milestones and step limits. On an
// evaluation error Allow is false and the error is returned.
func (e *Engine) SLA(ctx context.Context, in SLAInput) (SLADecision, error) {
	var d SLADecision
	err := e.evalInto(ctx, DecisionSLA, in, in.Now, &d)
	if err != nil {
		d = SLADecision{Severity: in.Rollout.Patch.Severity}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// PlanInput asks whether a rollout's staged path is acceptable.
type PlanInput struct {
	Rollout rollout.Rollout `json:"rollout"`
	Now     time.Time       `json:"now"`
	// EmergencyApproval is the person who approved the emergency at its
	// gate (the gates policy proved them); EmergencyPending says a plan
	// preview assumes the approval a filed rollout will wait for.
	EmergencyApproval *contract.Person `json:"emergency_approval,omitempty"`
	EmergencyPending  bool             `json:"emergency_pending,omitempty"`
	// CurrentDeadline: as SLAInput's (the plan policy asks the sla policy).
	CurrentDeadline time.Time `json:"current_deadline,omitzero"`
	// SoakLeft: the stages a running rollout has yet to soak, with what
	// each has left (only with CurrentDeadline).
	SoakLeft []contract.StageSoak `json:"soak_left,omitempty"`
}

// PlanDecision lists the stages the severity requires and the soak the
// plan spends, against the SLA.
type PlanDecision struct {
	rollout.Decision
	RequiredStages []string `json:"required_stages"`
	SkippedStages  []string `json:"skipped_stages,omitempty"`
	// SkippedSteps are the rollout's own stages an approved emergency
	// skips: the workflow does not run them.
	SkippedSteps []string      `json:"skipped_steps,omitempty"`
	TotalSoak    time.Duration `json:"total_soak"`
	// Soaks is the soak of each stage still to run: as filed, or shrunk
	// to fit a running rollout's tightened deadline.
	Soaks    map[string]time.Duration `json:"soaks,omitempty"`
	SLA      time.Duration            `json:"sla"`
	Deadline time.Time                `json:"deadline"`
	Reasons  []string                 `json:"reasons,omitempty"`
}

// Plan checks a rollout's stages against policy. On an evaluation error
// the plan is refused.
func (e *Engine) Plan(ctx context.Context, in PlanInput) (PlanDecision, error) {
	var d PlanDecision
	err := e.evalInto(ctx, DecisionPlan, in, in.Now, &d)
	if err != nil {
		d = PlanDecision{}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// GateInput asks whether User may take Action (approve, reject) on Gate of
// a rollout. Group is the approval group the rollout names for the gate;
// empty means the policy's default. Override asks for an emergency
// override of the gate's group.
type GateInput struct {
	RolloutID string    `json:"rollout_id"`
	FiledBy   string    `json:"filed_by"`
	Gate      string    `json:"gate"`
	Group     string    `json:"group,omitempty"`
	Action    string    `json:"action"`
	User      string    `json:"user"`
	Reason    string    `json:"reason,omitempty"`
	Severity  string    `json:"severity,omitempty"`
	Override  bool      `json:"override,omitempty"`
	Now       time.Time `json:"now"`
	Halted    bool      `json:"halted,omitempty"`
	Rollback  bool      `json:"rollback,omitempty"`
	// Token is the action's OpenID Connect token (verified by the oidc
	// policy); UsedTokens the hashes of the tokens the rollout saw.
	Token      string   `json:"token,omitempty"`
	UsedTokens []string `json:"used_tokens,omitempty"`
	Target     string   `json:"target,omitempty"`
	Emergency  bool     `json:"emergency,omitempty"`
}

// GateDecision says whether the person may act on the gate, as which
// group, and who the person is (nil when not proven).
type GateDecision struct {
	rollout.Decision
	Group    string           `json:"group"`
	Override bool             `json:"override,omitempty"`
	Person   *contract.Person `json:"person,omitempty"`
}

// Gate authorises a gate action. On an evaluation error it is refused.
func (e *Engine) Gate(ctx context.Context, in GateInput) (GateDecision, error) {
	var d GateDecision
	err := e.evalInto(ctx, DecisionGates, in, in.Now, &d)
	if err != nil {
		d = GateDecision{}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// WaveInput asks whether a wave may dispatch hosts now and whether it must
// halt.
type WaveInput struct {
	// Kind is "wave", "stage" (judged as a wave without a window, with
	// the stage threshold) or "retry" (never halts).
	Kind string       `json:"kind,omitempty"`
	Wave rollout.Wave `json:"wave"`
	// TimeZone is the wave's zone when its window names none.
	TimeZone string `json:"time_zone,omitempty"`
	// Done lists the waves already finished.
	Done []string `json:"done,omitempty"`
	// Hosts is the number of hosts in the wave.
	Hosts int `json:"hosts"`
	// States counts the wave's hosts by state so far.
	States   map[rollout.HostState]int `json:"states,omitempty"`
	Deadline time.Time                 `json:"deadline,omitzero"`
	// Accelerations granted by the escalation policy (raise_parallelism).
	Accelerations []string  `json:"accelerations,omitempty"`
	Now           time.Time `json:"now"`
}

// WaveDecision: Allow means the wave may dispatch hosts now; Halt means it
// must stop for a person (failures over its threshold). FailureStates are
// the host states that count as failures, FailureBudget how many more the
// step may take before it halts.
type WaveDecision struct {
	rollout.Decision
	Halt          bool                `json:"halt"`
	Failures      int                 `json:"failures"`
	MaxFailures   int                 `json:"max_failures"`
	FailureStates []rollout.HostState `json:"failure_states"`
	FailureBudget int                 `json:"failure_budget"`
	WindowOpen    bool                `json:"window_open"`
	// HostBudget is how long one host's install and reboot is given when
	// deciding whether it still fits in the window.
	HostBudget time.Duration `json:"host_budget"`
	// NextWindow is when the window next opens (if closed now).
	NextWindow time.Time `json:"next_window,omitzero"`
	// WindowEnd is when the current window closes (if open now).
	WindowEnd           time.Time `json:"window_end,omitzero"`
	MaxParallel         int       `json:"max_parallel"`
	DownloadConcurrency int       `json:"download_concurrency"`
}

// Wave decides whether a wave may start or continue, and whether it must
// halt. On an evaluation error it may not start, and halts.
func (e *Engine) Wave(ctx context.Context, in WaveInput) (WaveDecision, error) {
	var d WaveDecision
	err := e.evalInto(ctx, DecisionWaves, in, in.Now, &d)
	if err != nil {
		d = WaveDecision{Halt: true}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// EscalationInput asks who hears about the rollout at a milestone of its
// SLA clock.
type EscalationInput struct {
	Rollout    rollout.Rollout   `json:"rollout"`
	Milestone  rollout.Milestone `json:"milestone"`
	Deadline   time.Time         `json:"deadline,omitzero"`
	Stage      string            `json:"stage,omitempty"`
	HostsDone  int               `json:"hosts_done"`
	HostsTotal int               `json:"hosts_total"`
	Now        time.Time         `json:"now"`
}

// EscalationDecision names who is notified on which channels and the
// accelerations allowed (skip_soak, raise_parallelism,
// reboot_outside_window).
type EscalationDecision struct {
	rollout.Decision
	Contacts      []string `json:"contacts"`
	Channels      []string `json:"channels"`
	Accelerations []string `json:"accelerations,omitempty"`
	Reasons       []string `json:"reasons,omitempty"`
}

// Escalation decides the notification and accelerations at a milestone.
// On an evaluation error nothing is accelerated.
func (e *Engine) Escalation(ctx context.Context, in EscalationInput) (EscalationDecision, error) {
	var d EscalationDecision
	err := e.evalInto(ctx, DecisionEscalation, in, in.Now, &d)
	if err != nil {
		d = EscalationDecision{}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// TransportInput asks whether a host may be reached the way its inventory
// entry says (http, insecure TLS, NTLM over http) and, when Credential is
// set, whether that credential set may be sent to it there.
type TransportInput struct {
	Host rollout.Host `json:"host"`
	Now  time.Time    `json:"now"`
	// Credential is the worker-side binding of the set the host names;
	// nil asks about the transport alone.
	Credential *TransportCredential `json:"credential,omitempty"`
	// Target is where the worker would connect: the inventory's host name
	// and the addresses the worker resolved it to.
	Target *TransportTarget `json:"target,omitempty"`
}

// TransportCredential is a credential set's binding as the worker's own
// configuration gives it, never the submitted inventory. A nil list is
// unset and takes the policy's default (data.transport.credential_defaults).
type TransportCredential struct {
	Name string `json:"name"`
	// Tiers the set may serve.
	Tiers []string `json:"tiers"`
	// Addresses are CIDRs (10.0.0.0/8), IP addresses and host globs
	// (*.corp.example) the set may be sent to.
	Addresses []string `json:"addresses"`
	// Transports are "https", "https_insecure" and "http".
	Transports []string `json:"transports"`
}

// TransportTarget is the host the worker would dial.
type TransportTarget struct {
	Host string   `json:"host"`
	IPs  []string `json:"ips"`
}

// TransportDecision says whether the host's transport is allowed, and the
// transport it resolves to.
type TransportDecision struct {
	rollout.Decision
	Transport string `json:"transport"`
	Insecure  bool   `json:"insecure"`
	Auth      string `json:"auth"`
}

// Transport decides whether a host's WinRM transport is allowed for its
// tier. On an evaluation error it is refused.
func (e *Engine) Transport(ctx context.Context, in TransportInput) (TransportDecision, error) {
	var d TransportDecision
	err := e.evalInto(ctx, DecisionTransport, in, in.Now, &d)
	if err != nil {
		d = TransportDecision{}
	}
	d.Decision = e.finish(d.Decision, err)
	return d, err
}

// finish stamps the revision on a decision and fails it closed on err.
func (e *Engine) finish(d rollout.Decision, err error) rollout.Decision {
	if d.Revision == "" {
		d.Revision = e.Revision()
	}
	if err != nil {
		d.Allow = false
		d.Error = err.Error()
		d.Violations = append(d.Violations, rollout.Violation{Code: "policy_error", Msg: "the policy could not be evaluated: " + err.Error()})
	}
	return d
}

// Forecast asks the forecast policy when the rollout will be done. On an
// evaluation error nothing is forecast (Breach false) and the error is
// in the decision: a forecast only ever adds a warning.
func (e *Engine) Forecast(ctx context.Context, in contract.ForecastInput) (contract.Forecast, error) {
	var d contract.Forecast
	err := e.evalInto(ctx, DecisionForecast, in, in.Now, &d)
	if err != nil {
		d = contract.Forecast{}
	}
	d.Decision = e.finish(d.Decision, err)
	d.At = in.Now
	return d, err
}
