package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/patchway/patchway/contract"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

func hostErr(typ, host, msg string, err error) error {
	return &contract.HostError{Type: typ, Host: host, Msg: msg, Err: err}
}

// activityError converts err at an activity's boundary: a HostError
// becomes an ApplicationError of its type, retryable or not; cancellation
// passes through.
func activityError(step string, err error) error {
	if err == nil {
		return nil
	}
	var he *contract.HostError
	if errors.As(err, &he) {
		return temporal.NewApplicationErrorWithOptions(step+": "+he.Error(), he.Type, temporal.ApplicationErrorOptions{
			NonRetryable: !he.Retryable(),
			Details:      []any{contract.HostErrorDetails{Host: he.Host, ExitCode: he.ExitCode}},
		})
	}
	var de *didNotReturnError
	if errors.As(err, &de) {
		return temporal.NewNonRetryableApplicationError(step+": "+de.Error(), contract.HostDidNotReturn, nil,
			contract.HostErrorDetails{Host: de.host, Reachable: de.reachable, BootTime: de.bootTime})
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pe *policyError
	if errors.As(err, &pe) {
		return temporal.NewApplicationError(step+": "+err.Error(), contract.PolicyEvaluationFailed)
	}
	return temporal.NewApplicationError(step+": "+err.Error(), contract.ScriptFailed)
}

// HostPolicy decides for the host operations: which package and evidence
// apply, whether a reboot is needed, and the host's compliance;
// *policies.Engine is the
// implementation (a one-method interface keeps activities testable).
type HostPolicy interface {
	Applicability(ctx context.Context, in policies.ApplicabilityInput) (policies.ApplicabilityDecision, error)
	Compliance(ctx context.Context, in policies.ComplianceInput) (policies.ComplianceDecision, error)
	Identity(ctx context.Context, in policies.IdentityInput) (policies.IdentityDecision, error)
	Rollback(ctx context.Context, in policies.ComplianceInput) (policies.ComplianceDecision, error)
	Reboot(ctx context.Context, in policies.RebootInput) (policies.RebootDecision, error)
}

// HostActivities are the WinRM host operations, registered with the
// worker by Register under the contract's activity names.
// A zero duration below takes its default.
type HostActivities struct {
	Runner HostRunner
	Policy HostPolicy
	// PollInitial and PollMax shape WaitForBoot's capped exponential
	// backoff (jittered); defaults 2s and 30s.
	PollInitial time.Duration
	PollMax     time.Duration
	// PollTimeout bounds each boot poll; default 30s.
	PollTimeout time.Duration
	// HeartbeatEvery is the heartbeat period during long scripts; default 10s.
	HeartbeatEvery time.Duration
	// DefaultBootTimeout applies when an input carries none; default 30m.
	DefaultBootTimeout time.Duration
	// RebootDelay is PatchHost's shutdown /t delay, so the reboot script
	// returns its result before WinRM goes down; default 5s, negative for 0.
	RebootDelay time.Duration
	// Now is the clock of every time policy reads: the policies' now and
	// the install stamp judged against the boot time (InstalledAt when the
	// installer reports none); nil means time.Now. The boot wait measures
	// its timeout on the real clock, because it sleeps in real time.
	Now func() time.Time
}

func (a *HostActivities) now() time.Time {
	if a.Now != nil {
		return a.Now().UTC()
	}
	return time.Now().UTC()
}

// ScanHost reads the host's evidence for the target's patch.
func (a *HostActivities) ScanHost(ctx context.Context, in contract.ScanHostInput) (hostscript.ScanResult, error) {
	scan, err := a.scan(ctx, in.Target)
	return scan, activityError("scan", err)
}

// InstallPatch scans first and installs only when the patch is absent, so
// a retried or replayed activity never installs twice; it heartbeats while
// the installer runs.
func (a *HostActivities) InstallPatch(ctx context.Context, in contract.InstallPatchInput) (contract.InstallPatchResult, error) {
	scan, err := a.scan(ctx, in.Target)
	if err != nil {
		return contract.InstallPatchResult{}, activityError("install: scan first", err)
	}
	if err := a.requireIdentity(ctx, in.Target, scan); err != nil {
		return contract.InstallPatchResult{Scan: scan}, activityError("install", err)
	}
	v, install, err := a.judge(ctx, in.Target, evidence{scan: &scan})
	if err != nil {
		return contract.InstallPatchResult{Scan: scan}, activityError("install", err)
	}
	if !install {
		logger(ctx).Info("install skipped: the compliance policy says it cannot change the host", "host", in.Target.Host.Name, "kb", in.Target.Patch.KB, "state", string(v.State))
		return contract.InstallPatchResult{Skipped: true, Scan: scan}, nil
	}
	res, err := a.install(ctx, in.Target, func() any { return nil })
	if err != nil {
		return contract.InstallPatchResult{Scan: scan}, activityError("install", err)
	}
	return contract.InstallPatchResult{Scan: scan, Install: &res}, nil
}

// RebootHost schedules a restart; the result carries the boot time to wait
// past.
func (a *HostActivities) RebootHost(ctx context.Context, in contract.RebootHostInput) (hostscript.RebootResult, error) {
	res, err := a.reboot(ctx, in.Target, in.DelaySeconds)
	return res, activityError("reboot", err)
}

// WaitForBoot polls the host until its boot time differs from
// PreviousBootTime, with capped, jittered exponential backoff and a
// heartbeat per poll. After Timeout it fails with the non-retryable
// HostDidNotReturn, whose details say whether the host answered with an
// unchanged boot time (it did not reboot) or never answered. A retried
// attempt resumes the same deadline from its heartbeat details.
func (a *HostActivities) WaitForBoot(ctx context.Context, in contract.WaitForBootInput) (contract.WaitForBootResult, error) {
	var st waitState
	lastHeartbeat(ctx, &st)
	if st.StartedAt.IsZero() {
		st.StartedAt = time.Now()
	}
	res, err := a.waitForBoot(ctx, in.Target.Host, in.PreviousBootTime, in.Timeout, &st, func() any { return st })
	return res, activityError("wait for boot", err)
}

// VerifyPatch scans the host and has the compliance policy judge the
// evidence.
func (a *HostActivities) VerifyPatch(ctx context.Context, in contract.VerifyPatchInput) (contract.HostVerdict, error) {
	scan, err := a.scan(ctx, in.Target)
	if err != nil {
		return contract.HostVerdict{}, activityError("verify: scan", err)
	}
	v, _, err := a.judge(ctx, in.Target, evidence{scan: &scan, installedAt: in.InstalledAt})
	return v, activityError("verify", err)
}

// CredentialChecker is a HostRunner that can say, without reaching any
// host, whether it resolves a credential set.
type CredentialChecker interface {
	CheckCredential(ctx context.Context, set string) error
}

// PreflightCredentials resolves every credential set the rollout's hosts
// name, touching no host, and lists those the worker cannot resolve.
func (a *HostActivities) PreflightCredentials(ctx context.Context, in contract.PreflightCredentialsInput) (contract.PreflightCredentialsResult, error) {
	var res contract.PreflightCredentialsResult
	checker, ok := a.Runner.(CredentialChecker)
	for _, u := range in.Uses {
		var err error
		switch {
		case !ok:
			err = errors.New("this worker's host runner resolves no credentials")
		case u.Set == "":
			err = errors.New("the hosts name no credential set")
		default:
			err = checker.CheckCredential(ctx, u.Set)
		}
		if err != nil {
			res.Unknown = append(res.Unknown, contract.CredentialProblem{CredentialUse: u, Reason: err.Error()})
		}
	}
	if len(res.Unknown) > 0 {
		logger(ctx).Warn("preflight: credential sets the worker cannot resolve", "rollout", in.RolloutID, "sets", len(res.Unknown))
	}
	return res, nil
}

// UninstallPatch rolls the patch back on one host: uninstall, a reboot
// where the reboot policy requires one (and the workflow's reboot
// decision allows it now), then a scan the rollback policy judges. The
// host is rolled_back only on that proof. An absent patch uninstalls as
// not_installed, so retries are harmless; a retried attempt resumes from
// its heartbeat and never reboots twice.
func (a *HostActivities) UninstallPatch(ctx context.Context, in contract.UninstallPatchInput) (contract.UninstallPatchResult, error) {
	res, err := a.rollbackHost(ctx, in)
	return res, activityError("rollback", err)
}

// rollbackProgress is UninstallPatch's heartbeat detail.
type rollbackProgress struct {
	Steps            []string                   `json:"steps"`
	UninstallDone    bool                       `json:"uninstall_done,omitempty"`
	Uninstall        hostscript.UninstallResult `json:"uninstall"`
	PreviousBootTime time.Time                  `json:"previous_boot_time,omitzero"`
	RebootIssued     bool                       `json:"reboot_issued,omitempty"`
	Wait             waitState                  `json:"wait"`
	Booted           bool                       `json:"booted,omitempty"`
	FirstContact     *contract.HostIdentity     `json:"first_contact,omitempty"`
}

func (a *HostActivities) rollbackHost(ctx context.Context, in contract.UninstallPatchInput) (contract.UninstallPatchResult, error) {
	t := in.Target
	var p rollbackProgress
	lastHeartbeat(ctx, &p)
	progress := func() any { return p }
	beat := func() { heartbeat(ctx, p) }
	step := func(s string) { p.Steps = append(p.Steps, s) }
	result := func(v contract.HostVerdict) contract.UninstallPatchResult {
		return contract.UninstallPatchResult{Uninstall: p.Uninstall, Verdict: v, Steps: p.Steps}
	}
	if p.FirstContact != nil {
		t.Host.TLS.CertSHA256 = cmp.Or(t.Host.TLS.CertSHA256, p.FirstContact.TLSCertSHA256)
	}
	if !p.RebootIssued {
		scan, err := a.scan(ctx, t)
		if err != nil {
			return contract.UninstallPatchResult{}, err
		}
		step("scan")
		id, err := a.identity(ctx, t, scan, p.FirstContact)
		if err != nil {
			return contract.UninstallPatchResult{}, err
		}
		if !id.Allow {
			v, _, jerr := a.judge(ctx, t, evidence{scan: &scan, first: p.FirstContact, rollback: true})
			return result(v), jerr
		}
		if p.FirstContact == nil {
			p.FirstContact = &id.Observed
			t.Host.TLS.CertSHA256 = cmp.Or(t.Host.TLS.CertSHA256, id.Observed.TLSCertSHA256)
		}
		if !p.UninstallDone {
			var res hostscript.UninstallResult
			err := a.runScript(ctx, t.Host, hostscript.OpUninstall, hostscript.UninstallParams{RolloutID: t.RolloutID, KB: t.Patch.KB}, &res, progress)
			if err == nil && res.Outcome == hostscript.UninstallFailed {
				err = &contract.HostError{Type: contract.UninstallFailed, Host: t.Host.Name, ExitCode: res.ExitCode,
					Msg: fmt.Sprintf("wusa /uninstall of %s exited %d: %s", t.Patch.KB, res.ExitCode, res.Message)}
			}
			if err != nil {
				return contract.UninstallPatchResult{}, err
			}
			logger(ctx).Info("uninstall finished", "host", t.Host.Name, "kb", t.Patch.KB, "outcome", res.Outcome)
			p.Uninstall, p.UninstallDone = res, true
			step("uninstall")
			beat()
		}
		need, err := a.rebootRequired(ctx, t, policies.RebootFacts{
			InstallerExitCode: p.Uninstall.ExitCode,
			CBSRebootPending:  scan.Reboot.CBSRebootPending, WURebootRequired: scan.Reboot.WURebootRequired,
		}, false)
		if err != nil {
			return contract.UninstallPatchResult{}, err
		}
		if need && in.Reboot {
			p.PreviousBootTime = scan.LastBootUpTime
			beat()
			if _, err := a.reboot(ctx, t, a.rebootDelaySeconds()); err != nil {
				return contract.UninstallPatchResult{}, err
			}
			step("reboot")
			p.RebootIssued, p.Wait = true, waitState{StartedAt: time.Now()}
			beat()
		}
	}
	var wait *policies.RebootWait
	if p.RebootIssued && !p.Booted {
		w, gone, err := a.awaitBoot(ctx, t, p.PreviousBootTime, in.BootTimeout, &p.Wait, progress)
		step("wait_for_boot")
		if err != nil {
			return contract.UninstallPatchResult{}, err
		}
		if gone {
			v, _, jerr := a.judge(ctx, t, evidence{first: p.FirstContact, wait: w, rollback: true})
			return result(v), jerr
		}
		wait, p.Booted = w, w == nil
		beat()
	}
	scan, err := a.scan(ctx, t)
	if err != nil {
		return contract.UninstallPatchResult{}, err
	}
	step("verify")
	v, _, err := a.judge(ctx, t, evidence{scan: &scan, first: p.FirstContact, wait: wait, rollback: true})
	if err != nil {
		return contract.UninstallPatchResult{}, err
	}
	logger(ctx).Info("rollback finished", "host", t.Host.Name, "state", string(v.State), "steps", strings.Join(p.Steps, ","))
	return result(v), nil
}

// patchProgress is PatchHost's heartbeat detail: enough to resume after a
// worker crash without repeating a completed step.
type patchProgress struct {
	Steps            []string  `json:"steps"`
	InstallStarted   bool      `json:"install_started,omitempty"`
	InstallStartedAt time.Time `json:"install_started_at,omitzero"`
	InstallDone      bool      `json:"install_done,omitempty"`
	InstalledAt      time.Time `json:"installed_at,omitzero"`
	ExitCode         int64     `json:"exit_code,omitempty"`
	PreviousBootTime time.Time `json:"previous_boot_time,omitzero"`
	RebootIssued     bool      `json:"reboot_issued,omitempty"`
	Wait             waitState `json:"wait"`
	Booted           bool      `json:"booted,omitempty"`
	// FirstContact is who answered the first scan; every later answer of
	// the sequence must come from the same machine.
	FirstContact *contract.HostIdentity `json:"first_contact,omitempty"`
}

func (p *patchProgress) step(s string) {
	for _, have := range p.Steps {
		if have == s {
			return
		}
	}
	p.Steps = append(p.Steps, s)
}

// PatchHost runs the whole per-host sequence in one activity: scan,
// install if the patch is absent, reboot if one is needed and in.Reboot
// allows it, wait for the boot time to change, verify. Progress is
// recorded in heartbeat details, and a retried attempt resumes from them
// (never installing twice: it also scans before installing).
//
// Host outcomes are results, not errors: an installer failure gives
// verdict failed with the exit code, a not-applicable update
// not_applicable, a host that never came back from its reboot
// unreachable, one that answered without rebooting is verified as it is
// (pending_reboot), a host without a package for its OS is judged by the
// policy (not_applicable). Errors are left for what the workflow must see:
// Unreachable before any result (retryable), AuthFailed, TransportRefused,
// HostConfigInvalid and ChecksumMismatch (non-retryable).
func (a *HostActivities) PatchHost(ctx context.Context, in contract.PatchHostInput) (contract.PatchHostResult, error) {
	res, err := a.patchHost(ctx, in)
	return res, activityError("patch host", err)
}

func (a *HostActivities) patchHost(ctx context.Context, in contract.PatchHostInput) (contract.PatchHostResult, error) {
	t := in.Target
	log := logger(ctx)
	var p patchProgress
	if lastHeartbeat(ctx, &p) {
		log.Info("resuming host sequence", "host", t.Host.Name, "steps", strings.Join(p.Steps, ","))
	}
	progress := func() any { return p }
	beat := func() { heartbeat(ctx, p) }
	result := func(v contract.HostVerdict) contract.PatchHostResult {
		return contract.PatchHostResult{Verdict: v, Steps: p.Steps, InstalledAt: p.InstalledAt, ExitCode: p.ExitCode}
	}

	if p.FirstContact != nil {
		t.Host.TLS.CertSHA256 = cmp.Or(t.Host.TLS.CertSHA256, p.FirstContact.TLSCertSHA256)
	}
	if !p.RebootIssued {
		scan, err := a.scan(ctx, t)
		if err != nil {
			return contract.PatchHostResult{}, err
		}
		p.step("scan")
		// Nothing is installed on a machine the identity policy does not
		// accept as the host; the first answer it accepts is pinned.
		id, err := a.identity(ctx, t, scan, p.FirstContact)
		if err != nil {
			return contract.PatchHostResult{}, err
		}
		if !id.Allow {
			v, _, jerr := a.judge(ctx, t, evidence{scan: &scan, installedAt: p.InstalledAt, first: p.FirstContact})
			return result(v), jerr
		}
		if p.FirstContact == nil {
			p.FirstContact = &id.Observed
			// Later runs of the sequence (install, reboot, boot polls,
			// verify) refuse in the TLS handshake a listener presenting
			// another certificate, before any credential is sent.
			t.Host.TLS.CertSHA256 = cmp.Or(t.Host.TLS.CertSHA256, id.Observed.TLSCertSHA256)
		}
		beat()
		if !p.InstallDone {
			before, install, err := a.judge(ctx, t, evidence{scan: &scan, first: p.FirstContact})
			if err != nil {
				return contract.PatchHostResult{}, err
			}
			if !install {
				// Already patched, superseded by a later update in
				// effect, or installed by an attempt whose reply was
				// lost: the compliance policy says an install cannot
				// change the host, so it never runs (again).
				log.Info("install skipped", "host", t.Host.Name, "state", string(before.State))
				p.InstallDone = true
				if p.InstallStarted {
					p.InstalledAt = p.InstallStartedAt
					p.step("install")
				} else {
					p.InstalledAt = hotfixInstalledOn(scan, t.Patch)
				}
			} else {
				if _, err := a.packageFor(ctx, t); err != nil {
					// No package for this OS: the compliance policy calls
					// the host not_applicable, with its reason.
					return result(before), nil
				}
				p.InstallStarted, p.InstallStartedAt = true, a.now()
				beat()
				ir, err := a.install(ctx, t, progress)
				var he *contract.HostError
				if errors.As(err, &he) && (he.Type == contract.InstallFailed || he.Type == contract.NotApplicable) {
					p.step("install")
					p.ExitCode = he.ExitCode
					return result(outcomeVerdict(t, scan, he)), nil
				}
				if err != nil {
					return contract.PatchHostResult{}, err
				}
				p.step("install")
				p.InstallDone, p.ExitCode = true, ir.ExitCode
				p.InstalledAt = ir.InstalledAt
				if p.InstalledAt.IsZero() {
					p.InstalledAt = p.InstallStartedAt
				}
			}
			beat()
		}
		if !p.PreviousBootTime.IsZero() && bootChanged(p.PreviousBootTime, scan.LastBootUpTime) {
			// An earlier attempt asked for the reboot and lost the reply;
			// the host has rebooted since.
			p.step("reboot")
			p.step("wait_for_boot")
			p.RebootIssued, p.Booted = true, true
		}
		needReboot, err := a.rebootNeeded(ctx, in, scan, &p)
		if err != nil {
			return contract.PatchHostResult{}, err
		}
		if needReboot && in.Reboot {
			// Record the boot time to wait past before asking, so a lost
			// reply still lets the next attempt recognise the reboot.
			p.PreviousBootTime = scan.LastBootUpTime
			beat()
			if _, err := a.reboot(ctx, t, a.rebootDelaySeconds()); err != nil {
				return contract.PatchHostResult{}, err
			}
			p.step("reboot")
			p.RebootIssued = true
			p.Wait = waitState{StartedAt: time.Now()}
			beat()
		}
	}

	var wait *policies.RebootWait
	if p.RebootIssued && !p.Booted {
		w, gone, err := a.awaitBoot(ctx, t, p.PreviousBootTime, in.BootTimeout, &p.Wait, progress)
		p.step("wait_for_boot")
		if err != nil {
			return contract.PatchHostResult{}, err
		}
		if gone {
			v, _, jerr := a.judge(ctx, t, evidence{installedAt: p.InstalledAt, first: p.FirstContact, wait: w})
			return result(v), jerr
		}
		// Reachable but never rebooted: verify what is there; the
		// pending-reboot evidence speaks for itself, and the reasons
		// say the reboot was asked for.
		wait, p.Booted = w, w == nil
		beat()
	}

	scan, err := a.scan(ctx, t)
	if err != nil {
		return contract.PatchHostResult{}, err
	}
	p.step("verify")
	v, _, err := a.judge(ctx, t, evidence{scan: &scan, installedAt: p.InstalledAt, first: p.FirstContact, wait: wait})
	if err != nil {
		return contract.PatchHostResult{}, err
	}
	log.Info("host sequence finished", "host", t.Host.Name, "state", string(v.State), "steps", strings.Join(p.Steps, ","))
	return result(v), nil
}

func (a *HostActivities) rebootDelaySeconds() int {
	switch {
	case a.RebootDelay < 0:
		return 0
	case a.RebootDelay == 0:
		return 5
	}
	return int((a.RebootDelay + time.Second - 1) / time.Second)
}

// bootChanged says whether two LastBootUpTime readings are different boots.
func bootChanged(previous, now time.Time) bool {
	d := now.Sub(previous)
	return d > bootTolerance || d < -bootTolerance
}

// outcomeVerdict is the verdict for an installer outcome that ends the
// host's sequence without a compliance judgement.
func outcomeVerdict(t contract.HostTarget, scan hostscript.ScanResult, he *contract.HostError) contract.HostVerdict {
	state, code := rollout.StateFailed, "install_failed"
	if he.Type == contract.NotApplicable {
		state, code = rollout.StateNotApplicable, "not_applicable"
	}
	return contract.HostVerdict{
		Host:     t.Host.Name,
		State:    state,
		Reasons:  []string{he.Msg},
		Evidence: scan,
		Decision: rollout.Decision{Allow: false, Violations: []rollout.Violation{{Code: code, Msg: he.Msg}}},
	}
}

// scan runs the scan script for the target's patch evidence.
func (a *HostActivities) scan(ctx context.Context, t contract.HostTarget) (hostscript.ScanResult, error) {
	params := hostscript.ScanParams{KB: evidenceKB(t.Patch), Files: []hostscript.FileCheck{}}
	files, err := a.evidenceFor(ctx, t)
	if err != nil {
		return hostscript.ScanResult{}, err
	}
	for _, f := range files {
		params.Files = append(params.Files, hostscript.FileCheck{Path: f.Path})
	}
	// The scan only reads, so a connection lost mid-scan is simply
	// scanned again, a few times, before the attempt gives up.
	for attempt := 1; ; attempt++ {
		var res hostscript.ScanResult
		err := a.runScript(ctx, t.Host, hostscript.OpScan, params, &res, func() any { return nil })
		var he *contract.HostError
		if err == nil || attempt >= scanAttempts || ctx.Err() != nil || !errors.As(err, &he) || he.Type != contract.Unreachable {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, err
		case <-time.After(time.Duration(attempt) * scanBackoff):
		}
	}
}

// Retries of a scan whose connection was lost.
const (
	scanAttempts = 3
	scanBackoff  = 500 * time.Millisecond
)

// install fetches and installs the package for the host's OS and maps the
// outcome to a result or a classified error.
func (a *HostActivities) install(ctx context.Context, t contract.HostTarget, progress func() any) (hostscript.InstallResult, error) {
	pkg, err := a.packageFor(ctx, t)
	if err != nil {
		return hostscript.InstallResult{}, err
	}
	if err := a.installPrerequisites(ctx, t, pkg, progress); err != nil {
		return hostscript.InstallResult{}, err
	}
	source, err := packageSource(t, pkg)
	if err != nil {
		return hostscript.InstallResult{}, err
	}
	params := hostscript.InstallParams{RolloutID: t.RolloutID, KB: t.Patch.KB, Source: source, SHA256: pkg.SHA256, Type: pkg.Type, Installer: pkg.Installer}
	var res hostscript.InstallResult
	if err := a.runScript(ctx, t.Host, hostscript.OpInstall, params, &res, progress); err != nil {
		return res, err
	}
	logger(ctx).Info("install finished", "host", t.Host.Name, "kb", t.Patch.KB, "outcome", res.Outcome, "exit_code", res.ExitCode)
	name := t.Host.Name
	switch res.Outcome {
	case hostscript.InstallOK, hostscript.InstallOKRebootRequired, hostscript.InstallAlreadyInstalled:
		return res, nil
	case hostscript.InstallNotApplicable:
		return res, &contract.HostError{Type: contract.NotApplicable, Host: name, ExitCode: res.ExitCode,
			Msg: fmt.Sprintf("%s does not apply to this host (exit code 0x%08X)", t.Patch.KB, uint32(res.ExitCode))}
	case hostscript.InstallChecksumMismatch:
		return res, &contract.HostError{Type: contract.ChecksumMismatch, Host: name, Msg: fmt.Sprintf("package %s: %s", source, res.Message)}
	case hostscript.InstallDownloadFailed:
		return res, &contract.HostError{Type: contract.DownloadFailed, Host: name, Msg: fmt.Sprintf("package %s: %s", source, res.Message)}
	default:
		return res, &contract.HostError{Type: contract.InstallFailed, Host: name, ExitCode: res.ExitCode,
			Msg: fmt.Sprintf("installing %s exited %d (0x%08X) %s", t.Patch.KB, res.ExitCode, uint32(res.ExitCode), res.Message)}
	}
}

// installPrerequisites installs the package's prerequisites in order (a
// servicing-stack update, a checkpoint cumulative update) before it. One
// already there, or superseded on the host (not applicable), is passed;
// the installer says so, which makes a retried sequence safe too. Any
// other outcome fails the host, naming the prerequisite.
func (a *HostActivities) installPrerequisites(ctx context.Context, t contract.HostTarget, pkg rollout.Package, progress func() any) error {
	for _, pr := range pkg.Prerequisites {
		source, err := packageSource(t, rollout.Package{Source: pr.Source})
		if err != nil {
			return err
		}
		params := hostscript.InstallParams{RolloutID: t.RolloutID, KB: pr.KB, Source: source, SHA256: pr.SHA256, Type: pr.Type, Installer: pr.Installer}
		var res hostscript.InstallResult
		if err := a.runScript(ctx, t.Host, hostscript.OpInstall, params, &res, progress); err != nil {
			return err
		}
		logger(ctx).Info("prerequisite installed", "host", t.Host.Name, "kb", t.Patch.KB, "prerequisite", pr.KB, "outcome", res.Outcome, "exit_code", res.ExitCode)
		switch res.Outcome {
		case hostscript.InstallOK, hostscript.InstallOKRebootRequired, hostscript.InstallAlreadyInstalled, hostscript.InstallNotApplicable:
			continue
		case hostscript.InstallChecksumMismatch:
			return &contract.HostError{Type: contract.ChecksumMismatch, Host: t.Host.Name, Msg: fmt.Sprintf("prerequisite %s of %s, package %s: %s", pr.KB, t.Patch.KB, source, res.Message)}
		case hostscript.InstallDownloadFailed:
			return &contract.HostError{Type: contract.DownloadFailed, Host: t.Host.Name, Msg: fmt.Sprintf("prerequisite %s of %s, package %s: %s", pr.KB, t.Patch.KB, source, res.Message)}
		}
		return &contract.HostError{Type: contract.InstallFailed, Host: t.Host.Name, ExitCode: res.ExitCode,
			Msg: fmt.Sprintf("prerequisite %s of %s exited %d (0x%08X) %s; %s was not installed", pr.KB, t.Patch.KB, res.ExitCode, uint32(res.ExitCode), res.Message, t.Patch.KB)}
	}
	return nil
}

// reboot schedules a restart and classifies shutdown.exe's answer; 1190
// and 1115 mean a restart is coming anyway.
func (a *HostActivities) reboot(ctx context.Context, t contract.HostTarget, delay int) (hostscript.RebootResult, error) {
	var res hostscript.RebootResult
	if err := a.runScript(ctx, t.Host, hostscript.OpReboot, hostscript.RebootParams{RolloutID: t.RolloutID, DelaySeconds: delay}, &res, func() any { return nil }); err != nil {
		return res, err
	}
	logger(ctx).Info("reboot requested", "host", t.Host.Name, "outcome", res.Outcome, "previous_boot_time", res.PreviousBootTime)
	switch res.Outcome {
	case hostscript.RebootScheduled, hostscript.RebootAlreadyScheduled, hostscript.RebootInProgress:
		return res, nil
	}
	return res, &contract.HostError{Type: contract.RebootFailed, Host: t.Host.Name, ExitCode: res.ExitCode,
		Msg: fmt.Sprintf("shutdown /r exited %d: %s", res.ExitCode, res.Message)}
}

// waitState is WaitForBoot's heartbeat detail.
type waitState struct {
	StartedAt time.Time `json:"started_at,omitzero"`
	Polls     int       `json:"polls"`
	// Reachable: the last poll got an answer (with an unchanged boot time).
	Reachable bool      `json:"reachable"`
	BootTime  time.Time `json:"boot_time,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

// didNotReturnError is a wait that timed out.
type didNotReturnError struct {
	host        string
	requestedAt time.Time
	reachable   bool
	bootTime    time.Time
	polls       int
	waited      time.Duration
	lastErr     string
}

// wait is the timed-out wait as the compliance policy reads it.
func (e *didNotReturnError) wait(outcome string) *policies.RebootWait {
	return &policies.RebootWait{
		Outcome: outcome, RequestedAt: e.requestedAt.Truncate(time.Second), PreviousBootTime: e.bootTime,
		Waited: e.waited.Round(time.Second).String(), Polls: e.polls, LastError: e.lastErr,
	}
}

func (e *didNotReturnError) Error() string {
	if e.reachable {
		return fmt.Sprintf("host %s answered %d polls over %s but its boot time stayed %s: it did not reboot",
			e.host, e.polls, e.waited.Round(time.Millisecond), e.bootTime.Format(time.RFC3339))
	}
	return fmt.Sprintf("host %s did not answer within %s of its reboot (%d polls; last error: %s)",
		e.host, e.waited.Round(time.Millisecond), e.polls, e.lastErr)
}

// bootTolerance absorbs LastBootUpTime's sub-second jitter between queries;
// a real reboot moves it by far more.
const bootTolerance = time.Second

func (a *HostActivities) waitForBoot(ctx context.Context, host rollout.Host, previous time.Time, timeout time.Duration, st *waitState, progress func() any) (contract.WaitForBootResult, error) {
	if timeout <= 0 {
		timeout = cmp.Or(a.DefaultBootTimeout, 30*time.Minute)
	}
	deadline := st.StartedAt.Add(timeout)
	initial := cmp.Or(a.PollInitial, 2*time.Second)
	maxDelay := cmp.Or(a.PollMax, 30*time.Second)
	pollTimeout := cmp.Or(a.PollTimeout, 30*time.Second)
	t := contract.HostTarget{Host: host}
	// Bounded: every iteration sleeps at least initial/2 and the loop ends
	// at the deadline.
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithDeadline(ctx, minTime(time.Now().Add(pollTimeout), deadline.Add(time.Second)))
		scan, err := a.scan(pctx, t)
		cancel()
		st.Polls++
		if ctx.Err() != nil {
			return contract.WaitForBootResult{}, ctx.Err()
		}
		if err == nil {
			st.Reachable, st.BootTime, st.LastError = true, scan.LastBootUpTime, ""
			if bootChanged(previous, scan.LastBootUpTime) {
				heartbeat(ctx, progress())
				return contract.WaitForBootResult{BootTime: scan.LastBootUpTime, Polls: st.Polls}, nil
			}
		} else {
			var he *contract.HostError
			if errors.As(err, &he) && !he.Retryable() {
				return contract.WaitForBootResult{}, err
			}
			st.Reachable, st.LastError = false, err.Error()
		}
		heartbeat(ctx, progress())
		now := time.Now()
		if !now.Before(deadline) {
			return contract.WaitForBootResult{}, &didNotReturnError{host: host.Name, requestedAt: st.StartedAt, reachable: st.Reachable, bootTime: st.BootTime,
				polls: st.Polls, waited: now.Sub(st.StartedAt), lastErr: st.LastError}
		}
		delay := min(initial<<min(attempt, 16), maxDelay)
		delay = delay/2 + rand.N(delay/2+1) // jitter in [delay/2, delay]
		if rest := deadline.Sub(now); delay > rest {
			delay = rest
		}
		if err := a.sleepWithHeartbeat(ctx, delay, progress); err != nil {
			return contract.WaitForBootResult{}, err
		}
	}
}

// sleepWithHeartbeat waits d, heartbeating every HeartbeatEvery so a long
// backoff never outlives the activity's heartbeat timeout.
func (a *HostActivities) sleepWithHeartbeat(ctx context.Context, d time.Duration, progress func() any) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	tick := time.NewTicker(cmp.Or(a.HeartbeatEvery, 10*time.Second))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			return nil
		case <-tick.C:
			heartbeat(ctx, progress())
		}
	}
}

// awaitBoot waits for the host to boot past prev. When it did not, wait
// says how the wait ended and gone whether the host never answered again;
// both are zero when it booted.
func (a *HostActivities) awaitBoot(ctx context.Context, t contract.HostTarget, prev time.Time, timeout time.Duration, st *waitState, progress func() any) (wait *policies.RebootWait, gone bool, err error) {
	_, err = a.waitForBoot(ctx, t.Host, prev, timeout, st, progress)
	var dnr *didNotReturnError
	switch {
	case errors.As(err, &dnr) && !dnr.reachable:
		logger(ctx).Info("host did not come back from its reboot", "host", t.Host.Name, "polls", st.Polls)
		return dnr.wait(policies.RebootDidNotReturn), true, nil
	case errors.As(err, &dnr):
		logger(ctx).Info("host answered but did not reboot", "host", t.Host.Name, "boot_time", dnr.bootTime)
		return dnr.wait(policies.RebootNotRestarted), false, nil
	}
	return nil, false, err
}

// identity asks the identity policy whether the machine that produced
// scan is the target's host (first: who answered earlier in the run).
func (a *HostActivities) identity(ctx context.Context, t contract.HostTarget, scan hostscript.ScanResult, first *contract.HostIdentity) (policies.IdentityDecision, error) {
	if a.Policy == nil {
		return policies.IdentityDecision{}, errors.New("no identity policy configured")
	}
	d, err := a.Policy.Identity(ctx, policies.IdentityInput{Host: t.Host, Scan: scan, FirstContact: first, Now: a.now()})
	if err != nil {
		return d, &policyError{fmt.Errorf("identity policy for host %s: %w", t.Host.Name, err)}
	}
	return d, nil
}

// requireIdentity refuses, as IdentityMismatch, to act on a machine the
// identity policy does not accept as the target's host.
func (a *HostActivities) requireIdentity(ctx context.Context, t contract.HostTarget, scan hostscript.ScanResult) error {
	id, err := a.identity(ctx, t, scan, nil)
	if err != nil {
		return err
	}
	if id.Allow {
		return nil
	}
	msgs := make([]string, 0, len(id.Violations))
	for _, v := range id.Violations {
		msgs = append(msgs, v.Msg)
	}
	return hostErr(contract.IdentityMismatch, t.Host.Name, strings.Join(msgs, "; "), nil)
}

// evidence is what the compliance policy judges a host on, beyond the
// target: the scan (nil: the host did not answer), when this run
// installed the patch, who answered at first contact in the run, and how
// a wait for a requested reboot ended.
type evidence struct {
	scan        *hostscript.ScanResult
	installedAt time.Time
	first       *contract.HostIdentity
	wait        *policies.RebootWait
	// rollback: judge by the rollback policy (rolled_back only on proof).
	rollback bool
}

// judge has the compliance policy judge the evidence. install is the
// policy's answer to whether installing the patch could change the host.
func (a *HostActivities) judge(ctx context.Context, t contract.HostTarget, e evidence) (v contract.HostVerdict, install bool, err error) {
	if a.Policy == nil {
		return contract.HostVerdict{}, false, errors.New("no compliance policy configured")
	}
	facts := contract.ComplianceFacts{
		Reachable: e.scan != nil, InstalledAt: e.installedAt, FirstContact: e.first, RebootWait: e.wait, Now: a.now(),
		CertPin: t.Host.TLS.CertSHA256,
	}
	decide, decision := a.Policy.Compliance, policies.DecisionCompliance
	if e.rollback {
		decide, decision = a.Policy.Rollback, policies.DecisionRollback
	}
	rctx, rec := policies.WithRecorder(ctx)
	d, err := decide(rctx, policies.NewComplianceInput(t, e.scan, facts))
	if err != nil {
		return contract.HostVerdict{}, false, &policyError{fmt.Errorf("compliance policy for host %s: %w", t.Host.Name, err)}
	}
	app, err := a.applicability(ctx, t)
	if err != nil {
		return contract.HostVerdict{}, false, err
	}
	proof := proofLines(t.Patch.Evidence.Hotfix, app.Evidence(t.Patch), e.scan, e.installedAt)
	if builds := app.Builds(t.Patch); len(builds) > 0 && e.scan != nil {
		mins := make([]string, 0, len(builds))
		for _, b := range builds {
			mins = append(mins, b.MinBuild)
		}
		proof = append([]string{fmt.Sprintf("OS build %s (build evidence: %s)", cmp.Or(e.scan.OSBuild, "not reported"), strings.Join(mins, ", "))}, proof...)
	}
	hv := contract.HostVerdict{Host: t.Host.Name, State: d.State, Reasons: d.Reasons, Decision: d.Decision, Baseline: d.Baseline, PreflightSettles: d.PreflightSettles, Proof: proof}
	if r, ok := rec.Last(decision); ok {
		// The input is not kept: the reader rebuilds it from the
		// activity's input, the evidence and these facts.
		hv.Judged = &contract.ComplianceRecord{Path: r.Path, InputHash: r.InputHash, Facts: facts, Install: d.Install, SupersededBy: d.SupersededBy}
	}
	if e.scan != nil {
		hv.Evidence = *e.scan
	}
	return hv, d.Install, nil
}

// rebootNeeded asks the reboot policy whether the host needs a reboot
// now, on what it showed after the install. Whether it may reboot was
// decided at admission (in.Reboot).
func (a *HostActivities) rebootNeeded(ctx context.Context, in contract.PatchHostInput, scan hostscript.ScanResult, p *patchProgress) (bool, error) {
	return a.rebootRequired(ctx, in.Target, policies.RebootFacts{
		InstalledThisRun: p.InstallStarted, InstallerExitCode: p.ExitCode, Rebooted: p.Booted,
		CBSRebootPending: scan.Reboot.CBSRebootPending, WURebootRequired: scan.Reboot.WURebootRequired,
	}, in.RebootPending)
}

// rebootRequired asks the reboot policy whether the target needs a reboot
// on facts seen on the host.
func (a *HostActivities) rebootRequired(ctx context.Context, t contract.HostTarget, facts policies.RebootFacts, pending bool) (bool, error) {
	if a.Policy == nil {
		return false, errors.New("no reboot policy configured")
	}
	d, err := a.Policy.Reboot(ctx, policies.RebootInput{
		Host: t.Host, Patch: t.Patch, RebootPending: pending, Now: a.now(), CheckedIn: true, Facts: &facts,
	})
	if err != nil {
		return false, &policyError{fmt.Errorf("reboot policy for host %s: %w", t.Host.Name, err)}
	}
	return d.Required, nil
}

// policyError marks a failed policy evaluation.
type policyError struct{ err error }

func (e *policyError) Error() string { return e.err.Error() }
func (e *policyError) Unwrap() error { return e.err }

// runScript renders op with params, runs it, heartbeats every
// HeartbeatEvery while it runs, and decodes the one JSON object it prints
// into out.
func (a *HostActivities) runScript(ctx context.Context, host rollout.Host, op hostscript.Op, params, out any, progress func() any) error {
	if a.Runner == nil {
		return hostErr(contract.HostConfigInvalid, host.Name, "no host runner configured", nil)
	}
	script, err := hostscript.Script(op, params)
	if err != nil {
		return hostErr(contract.HostConfigInvalid, host.Name, "render "+string(op)+" script", err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	// The heartbeat goroutine reads progress; it is gone before the caller
	// mutates progress again.
	defer func() { close(done); wg.Wait() }()
	if activity.IsActivity(ctx) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(cmp.Or(a.HeartbeatEvery, 10*time.Second))
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-ctx.Done():
					return
				case <-tick.C:
					heartbeat(ctx, progress())
				}
			}
		}()
	}
	res, err := a.Runner.Run(ctx, host, script)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return &contract.HostError{Type: contract.ScriptFailed, Host: host.Name, ExitCode: int64(res.ExitCode),
			Msg: fmt.Sprintf("%s script exited %d: %s", op, res.ExitCode, hostscript.Truncate(strings.TrimSpace(res.Stderr), 300))}
	}
	if err := decodeOne(res.Stdout, out); err != nil {
		return hostErr(contract.ScriptFailed, host.Name, fmt.Sprintf("%s script output", op), err)
	}
	if scan, ok := out.(*hostscript.ScanResult); ok {
		// The certificate is the worker's observation, never the host's
		// word: whatever the script printed for it is overwritten.
		scan.TLSCertSHA256 = res.TLSCertSHA256
	}
	return nil
}

// decodeOne decodes exactly one JSON object from a script's stdout.
func decodeOne(stdout string, out any) error {
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("want one JSON object: %w", err)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err == nil {
		return errors.New("more than one JSON value printed")
	}
	return nil
}

// evidenceKB is the hotfix id the scan looks for.
func evidenceKB(p rollout.Patch) string {
	if p.Evidence.Hotfix != "" {
		return p.Evidence.Hotfix
	}
	return p.KB
}

func hotfixInstalledOn(scan hostscript.ScanResult, p rollout.Patch) time.Time {
	for _, h := range scan.Hotfixes {
		if strings.EqualFold(h.ID, evidenceKB(p)) || strings.EqualFold(h.ID, p.KB) {
			return h.InstalledOn
		}
	}
	return time.Time{}
}

// applicability asks the applicability policy which package and file
// evidence of the patch apply to the host.
func (a *HostActivities) applicability(ctx context.Context, t contract.HostTarget) (policies.ApplicabilityDecision, error) {
	if a.Policy == nil {
		return policies.ApplicabilityDecision{}, errors.New("no applicability policy configured")
	}
	d, err := a.Policy.Applicability(ctx, policies.ApplicabilityInput{Host: t.Host, Patch: t.Patch, Now: a.now()})
	if err != nil {
		return d, &policyError{fmt.Errorf("applicability policy for host %s: %w", t.Host.Name, err)}
	}
	return d, nil
}

// packageFor is the patch's package for the host's OS, as the
// applicability policy names it; none is an UnsupportedOS error with the
// policy's reason.
func (a *HostActivities) packageFor(ctx context.Context, t contract.HostTarget) (rollout.Package, error) {
	d, err := a.applicability(ctx, t)
	if err != nil {
		return rollout.Package{}, err
	}
	if d.Package < 0 || d.Package >= len(t.Patch.Packages) {
		msg := fmt.Sprintf("%s has no package for OS %q", t.Patch.KB, t.Host.OS)
		if len(d.Violations) > 0 {
			msg = d.Violations[0].Msg
		}
		return rollout.Package{}, &contract.HostError{Type: contract.UnsupportedOS, Host: t.Host.Name, Msg: msg}
	}
	return t.Patch.Packages[d.Package], nil
}

// evidenceFor is the file evidence that proves the fix on the host.
func (a *HostActivities) evidenceFor(ctx context.Context, t contract.HostTarget) ([]rollout.FileEvidence, error) {
	d, err := a.applicability(ctx, t)
	if err != nil {
		return nil, err
	}
	return d.Evidence(t.Patch), nil
}

// packageSource joins a relative package source with the site's
// distribution point; UNC paths, drive paths and URLs are used as they are.
func packageSource(t contract.HostTarget, pkg rollout.Package) (string, error) {
	src := pkg.Source
	if strings.HasPrefix(src, `\\`) || strings.Contains(src, "://") || (len(src) > 2 && src[1] == ':') {
		return src, nil
	}
	dp := t.DistributionPoint
	if dp == "" {
		return "", &contract.HostError{Type: contract.HostConfigInvalid, Host: t.Host.Name,
			Msg: fmt.Sprintf("package source %q is relative and site %q has no distribution point", src, t.Host.Site)}
	}
	if strings.Contains(dp, "://") {
		return strings.TrimRight(dp, "/") + "/" + strings.TrimLeft(strings.ReplaceAll(src, `\`, "/"), "/"), nil
	}
	return strings.TrimRight(dp, `\/`) + `\` + strings.TrimLeft(strings.ReplaceAll(src, "/", `\`), `\`), nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// proofLines are the compact evidence behind a verdict, for the report
// and the host query: each verification file's version found against the
// one expected, the hotfix, the pending-reboot signals, and the boot time
// against the install time. They quote what the host said, not the
// policy's conclusion.
func proofLines(hotfix string, files []rollout.FileEvidence, scan *hostscript.ScanResult, installedAt time.Time) []string {
	if scan == nil {
		return []string{"no scan: the host did not answer"}
	}
	var out []string
	for _, want := range files {
		i := slices.IndexFunc(scan.Files, func(f hostscript.File) bool { return strings.EqualFold(f.Path, want.Path) })
		switch {
		case i < 0 || !scan.Files[i].Exists:
			out = append(out, fmt.Sprintf("%s missing (expected >= %s)", want.Path, want.MinVersion))
		default:
			f := scan.Files[i]
			line := fmt.Sprintf("%s %s (expected >= %s)", f.Path, cmp.Or(f.Version, "no version"), want.MinVersion)
			if want.SHA256 != "" {
				if strings.EqualFold(f.SHA256, want.SHA256) {
					line += ", SHA-256 matches"
				} else {
					line += ", SHA-256 differs"
				}
			}
			out = append(out, line)
		}
	}
	if hotfix != "" {
		listed := "not listed"
		if slices.ContainsFunc(scan.Hotfixes, func(h hostscript.Hotfix) bool { return strings.EqualFold(h.ID, hotfix) }) {
			listed = "listed"
		}
		out = append(out, fmt.Sprintf("hotfix %s %s by Get-HotFix", hotfix, listed))
	}
	var flags []string
	if scan.Reboot.CBSRebootPending {
		flags = append(flags, "CBS RebootPending")
	}
	if scan.Reboot.WURebootRequired {
		flags = append(flags, "WU RebootRequired")
	}
	if scan.Reboot.PendingFileRename {
		flags = append(flags, "PendingFileRenameOperations")
	}
	if len(flags) == 0 {
		flags = []string{"none"}
	}
	out = append(out, "reboot pending: "+strings.Join(flags, ", "))
	boot := "boot time unknown"
	if !scan.LastBootUpTime.IsZero() {
		boot = "booted " + scan.LastBootUpTime.UTC().Format(time.RFC3339)
	}
	if !installedAt.IsZero() {
		boot += ", installed " + installedAt.UTC().Format(time.RFC3339)
	}
	return append(out, boot)
}
