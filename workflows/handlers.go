package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// registerHandlers installs the queries and the updates (gates and
// controls). Validators only check arguments and state: they cannot run
// activities. Each handler asks the gates policy, records the decision
// with who and why, and only then changes the rollout.
func (r *run) registerHandlers(ctx workflow.Context) error {
	queries := []struct {
		name, description string
		handler           any
	}{
		{QueryProgress, "where the rollout stands: status, gate, deadline, each stage and wave with its hosts per state, recent decisions", func() (Progress, error) { return r.progress(), nil }},
		{QueryHost, "one host by name: its state, reasons, evidence, stage and attempts", r.hostStatus},
		{QueryReport, "the compliance report's input at this moment (hosts, verdicts, exceptions, preflight), for a provisional report", func() (contract.ReportInput, error) {
			return r.reportInput(workflow.Now(ctx))
		}},
	}
	for _, q := range queries {
		if err := workflow.SetQueryHandlerWithOptions(ctx, q.name, q.handler, workflow.QueryHandlerOptions{Description: q.description}); err != nil {
			return fmt.Errorf("register %s query: %w", q.name, err)
		}
	}
	updates := []struct {
		name, description  string
		handler, validator any
	}{
		{UpdateApprove, "approve the gate the rollout waits at", r.approve, r.validateApprove},
		{UpdateReject, "reject the gate the rollout waits at, with a reason", r.reject, r.validateReject},
		{UpdatePause, "stop starting new hosts", r.pause, r.validatePause},
		{UpdateResume, "lift a pause or a halted wave", r.resume, r.validateResume},
		{UpdateAbort, "stop the rollout, optionally rolling back the current wave", r.abort, r.validateAbort},
		{UpdateExcept, "grant a host exception with an expiry", r.except, r.validateExcept},
		{UpdateSkipHost, "take a failed host out of a halted wave", r.skipHost, r.validateSkipHost},
		{UpdateThreat, "add risk facts (exploited, worm, public exploit): the deadline is decided again, never later", r.threatUpdate, r.validateThreat},
	}
	for _, u := range updates {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{
			Validator: u.validator, Description: u.description,
		}); err != nil {
			return fmt.Errorf("register %s update: %w", u.name, err)
		}
	}
	return nil
}

func (r *run) validateApprove(_ workflow.Context, req GateRequest) error {
	return r.validateGate(req)
}

func (r *run) validateReject(_ workflow.Context, req GateRequest) error {
	if strings.TrimSpace(req.Reason) == "" {
		return errors.New("a rejection needs a reason")
	}
	return r.validateGate(req)
}

func (r *run) validateGate(req GateRequest) error {
	if err := validateWho(req.User, req.Token); err != nil {
		return err
	}
	if r.st.EmergencyWaiting {
		if req.Gate != "" && req.Gate != EmergencyGate {
			return fmt.Errorf("rollout %s waits at gate %q, not %q", r.in.Rollout.ID, EmergencyGate, req.Gate)
		}
		return nil
	}
	s := r.current()
	if s == nil || s.Status != StepWaiting {
		return fmt.Errorf("rollout %s is not waiting at a gate (status %s)", r.in.Rollout.ID, r.status())
	}
	if req.Gate != "" && req.Gate != s.Name {
		return fmt.Errorf("rollout %s waits at gate %q, not %q", r.in.Rollout.ID, s.Name, req.Gate)
	}
	return nil
}

func (r *run) approve(ctx workflow.Context, req GateRequest) (Record, error) {
	return r.decideGate(ctx, contract.ActionApprove, req)
}

func (r *run) reject(ctx workflow.Context, req GateRequest) (Record, error) {
	return r.decideGate(ctx, contract.ActionReject, req)
}

// decideGate asks the gates policy and, if it allows, approves or rejects
// the gate the rollout waits at.
func (r *run) decideGate(ctx workflow.Context, action string, req GateRequest) (Record, error) {
	if r.st.EmergencyWaiting {
		return r.decideEmergency(ctx, action, req)
	}
	s := r.current()
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: action, Gate: s.Name, Group: s.Group, User: req.User, Reason: req.Reason, Token: req.Token, Target: req.Gate})
	if err != nil {
		return rec, err
	}
	if s != r.current() || s.Status != StepWaiting {
		return rec, temporal.NewApplicationError(fmt.Sprintf("gate %s was decided meanwhile", s.Name), contract.Refused)
	}
	if action == contract.ActionApprove {
		s.Approved = true
	} else {
		s.Rejected = true
	}
	decided := &gateDecision{Action: action, User: rec.User, Reason: req.Reason}
	// Rollouts started before version 1 notified inside the update, which
	// made the approver's command wait for every channel's delivery (and
	// its retries); now the rollout announces the decision as it passes
	// the gate.
	if workflow.GetVersion(ctx, changeGateNoticeInMainLoop, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		r.notifyGateDecided(ctx, s, decided)
		return rec, nil
	}
	s.Decided = decided
	return rec, nil
}

// decideEmergency asks the gates policy (approve_emergency or
// reject_emergency) and, if it allows, approves the break-glass with the
// proven person, whom the plan policy then reads, or rejects it.
func (r *run) decideEmergency(ctx workflow.Context, action string, req GateRequest) (Record, error) {
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: action, Gate: EmergencyGate, User: req.User, Reason: req.Reason,
		Token: req.Token, Target: req.Gate, Emergency: true})
	if err != nil {
		return rec, err
	}
	if !r.st.EmergencyWaiting {
		return rec, temporal.NewApplicationError("the emergency was decided meanwhile", contract.Refused)
	}
	if action == contract.ActionApprove {
		r.st.EmergencyApproval = rec.Person
	} else {
		r.st.Rejected = true
	}
	return rec, nil
}

// changeGateNoticeInMainLoop versions the move of the gate_decided
// notification out of the approve and reject updates.
const changeGateNoticeInMainLoop = "gate-decided-notice-in-main-loop"

// gateDecision is an approval or rejection waiting to be announced.
type gateDecision struct {
	Action string `json:"action"`
	User   string `json:"user"`
	Reason string `json:"reason,omitempty"`
}

// notifyGateDecided announces a gate decision on the rollout's channels.
func (r *run) notifyGateDecided(ctx workflow.Context, s *stepState, d *gateDecision) {
	r.notify(ctx, contract.EventGateDecided, fmt.Sprintf("Gate %s %sd by %s", s.Name, d.Action, d.User), d.Reason, nil, nil,
		contract.Field{Name: "gate", Value: s.Name}, contract.Field{Name: "decision", Value: d.Action}, contract.Field{Name: "user", Value: d.User})
}

func (r *run) validatePause(_ workflow.Context, req ControlRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	if r.st.Paused {
		return errors.New("rollout is already paused")
	}
	return nil
}

func (r *run) pause(ctx workflow.Context, req ControlRequest) (Record, error) {
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionPause, Gate: r.subject(), User: req.User, Reason: req.Reason, Token: req.Token})
	if err == nil {
		r.st.Paused = true
		r.refresh(ctx)
	}
	return rec, err
}

func (r *run) validateResume(_ workflow.Context, req ControlRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	if s := r.current(); !r.st.Paused && (s == nil || !s.Halted) {
		return errors.New("rollout is neither paused nor halted")
	}
	return nil
}

// resume lifts a pause, or acknowledges a halted wave's failures so far
// (they no longer count against its threshold) and lets it go on.
func (r *run) resume(ctx workflow.Context, req ControlRequest) (Record, error) {
	s := r.current()
	halted := !r.st.Paused && s != nil && s.Halted
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionResume, Gate: r.subject(), User: req.User,
		Reason: req.Reason, Halted: halted, Token: req.Token})
	if err != nil {
		return rec, err
	}
	if r.st.Paused {
		r.st.Paused = false
	} else if halted {
		s.Acked = map[rollout.HostState]int{}
		//workflowcheck:ignore: builds a map: the order makes no difference
		for k, v := range s.Totals {
			if k != rollout.StatePending && k != rollout.StateInProgress && k != rollout.StateCompliant {
				s.Acked[k] = v
			}
		}
		s.Halt, s.Halted = false, false
	}
	r.refresh(ctx)
	return rec, nil
}

func (r *run) validateAbort(_ workflow.Context, req AbortRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	if r.st.Abort != nil {
		return fmt.Errorf("rollout was already aborted by %s", r.st.Abort.User)
	}
	return nil
}

func (r *run) abort(ctx workflow.Context, req AbortRequest) (Record, error) {
	reason := req.Reason
	if req.Rollback {
		reason += " (with rollback)"
	}
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionAbort, Gate: r.subject(), User: req.User, Reason: reason,
		Rollback: req.Rollback, Token: req.Token})
	if err == nil && r.st.Abort == nil {
		// The abort is kept with who was proven to ask, not the token.
		r.st.Abort = &AbortRequest{User: rec.User, Reason: req.Reason, Rollback: req.Rollback}
	}
	return rec, err
}

func (r *run) validateExcept(ctx workflow.Context, req ExceptRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	if _, ok := r.byName[req.Host]; !ok {
		return fmt.Errorf("host %q is not in rollout %s", req.Host, r.in.Rollout.ID)
	}
	if !req.Expires.After(workflow.Now(ctx)) {
		return fmt.Errorf("exception expiry %s is not in the future", req.Expires.UTC().Format("2006-01-02T15:04Z"))
	}
	return nil
}

// except grants an exception: the host is no longer patched and is
// reported excepted (never compliant) until the expiry.
func (r *run) except(ctx workflow.Context, req ExceptRequest) (Record, error) {
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionExcept, Gate: req.Host, User: req.User, Reason: req.Reason, Token: req.Token, Target: req.Host})
	if err != nil {
		return rec, err
	}
	i := r.byName[req.Host]
	r.setHost(i, rollout.StateExcepted, []string{fmt.Sprintf("exception by %s until %s: %s", rec.User, req.Expires.UTC().Format("2006-01-02T15:04Z"), req.Reason)})
	r.st.Excepted = append(r.st.Excepted, Exception{Host: req.Host, Reason: req.Reason, GrantedBy: rec.User, Expires: req.Expires})
	if s := r.stepOf(i); s != nil {
		s.Acks++ // a halted step is judged again without the host
	}
	r.refresh(ctx)
	return rec, nil
}

func (r *run) validateSkipHost(_ workflow.Context, req SkipHostRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	i, ok := r.byName[req.Host]
	if !ok {
		return fmt.Errorf("host %q is not in rollout %s", req.Host, r.in.Rollout.ID)
	}
	s := r.current()
	if s == nil || !s.Halted {
		return errors.New("skip_host applies to a halted wave; none is halted")
	}
	if r.stepOf(i) != s {
		return fmt.Errorf("host %s is not in halted %s", req.Host, s.Name)
	}
	if s.Limits == nil || !slices.Contains(s.Limits.FailureStates, r.st.Hosts[i].State) || slices.Contains(s.Skipped, i) {
		return fmt.Errorf("host %s is %s, not a counted failure", req.Host, r.st.Hosts[i].State)
	}
	return nil
}

// skipHost takes a failed host out of what the wave policy counts; the
// halted step is judged again and goes on if the policy lets it.
func (r *run) skipHost(ctx workflow.Context, req SkipHostRequest) (Record, error) {
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionSkipHost, Gate: req.Host, User: req.User, Reason: req.Reason, Token: req.Token, Target: req.Host})
	if err != nil {
		return rec, err
	}
	i := r.byName[req.Host]
	if s := r.stepOf(i); s != nil && !slices.Contains(s.Skipped, i) {
		s.Skipped = append(s.Skipped, i)
		if s.Acked == nil {
			s.Acked = map[rollout.HostState]int{}
		}
		s.Acked[r.st.Hosts[i].State]++
		s.Acks++
	}
	r.refresh(ctx)
	return rec, nil
}

// maxTokenBytes bounds an identity token: real ones are a few kilobytes,
// and a larger one is refused before it reaches history or the policy.
const maxTokenBytes = 16 << 10

// validateWho refuses a request that names nobody: neither a token (the
// policy verifies it) nor a typed name (which only a dev server's
// insecure identity accepts), and a token too large to be one.
func validateWho(user, token string) error {
	if token == "" && strings.TrimSpace(user) == "" {
		return errors.New("an identity token is required (patchway login)")
	}
	if len(token) > maxTokenBytes {
		return fmt.Errorf("the identity token is %d bytes, over the %d an identity token may be", len(token), maxTokenBytes)
	}
	return nil
}

func (r *run) validateControl(user, token, reason string) error {
	if err := validateWho(user, token); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return errors.New("a reason is required")
	}
	if r.st.Completed {
		return fmt.Errorf("rollout %s has completed", r.in.Rollout.ID)
	}
	return nil
}

// subject names what a control applies to: the current step, or the
// rollout before the first one.
func (r *run) subject() string {
	if s := r.current(); s != nil {
		return s.Name
	}
	return r.in.Rollout.ID
}

// authorize asks the gates policy (a local activity) whether user may take
// action, records the decision, and returns a Refused application error
// carrying the policy's reason when it does not allow. A policy that fails
// to evaluate refuses (fail closed).
func (r *run) authorize(ctx workflow.Context, in contract.AuthorizeGateInput) (Record, error) {
	in.RolloutID, in.FiledBy, in.Severity, in.Now = r.in.Rollout.ID, r.in.Rollout.FiledBy, string(r.in.Rollout.Patch.Severity), workflow.Now(ctx)
	in.UsedTokens = slices.Clone(r.st.UsedTokens)
	action, subject, user, reason := in.Action, in.Gate, in.User, in.Reason
	if in.Token != "" {
		// Whatever the policy says, this token is spent: it is now in
		// history, and a copy of it must prove nothing twice.
		r.st.UsedTokens = append(r.st.UsedTokens, TokenHash(in.Token))
		user = ""
	}
	var dec contract.GateDecision
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.AuthorizeGateName, in).Get(ctx, &dec); err != nil {
		dec.Allow, dec.Error = false, err.Error()
	}
	r.shadow(ctx, dec.Records)
	if dec.Person != nil {
		user = dec.Person.Name
	} else if !dec.Allow && user == "" {
		user = "(unproven)"
	}
	rec := r.record(Record{
		At: workflow.Now(ctx), Kind: action, Subject: subject, User: user, Allow: dec.Allow,
		Reason: reason, Violations: dec.Violations, Revision: dec.Revision, Person: dec.Person,
	})
	if dec.Allow && dec.Person != nil && !dec.Person.Verified {
		r.st.Unverified = append(r.st.Unverified, fmt.Sprintf("%s %s %s by %s, unverified", rec.At.UTC().Format(time.RFC3339), action, subject, user))
	}
	if !dec.Allow {
		return rec, temporal.NewNonRetryableApplicationError(RefusalMessage(action, subject, dec.Decision), contract.Refused, nil, dec.Violations)
	}
	return rec, nil
}

// TokenHash is the SHA-256 (hex) of a token, as the oidc policy writes
// it (crypto.sha256) and as UsedTokens keeps it.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// RefusalMessage is the sentence a refused person reads: the policy's reasons.
func RefusalMessage(action, subject string, d rollout.Decision) string {
	var msgs []string
	for _, v := range d.Violations {
		msgs = append(msgs, fmt.Sprintf("%s (%s)", v.Msg, v.Code))
	}
	if d.Error != "" {
		msgs = append(msgs, "policy evaluation failed: "+d.Error)
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "the gates policy did not allow it")
	}
	return fmt.Sprintf("%s %s refused: %s", action, subject, strings.Join(msgs, "; "))
}

func (r *run) validateThreat(_ workflow.Context, req ThreatRequest) error {
	if err := r.validateControl(req.User, req.Token, req.Reason); err != nil {
		return err
	}
	if r.st.Risk == nil {
		return errors.New("the rollout's risk is not decided yet; send the update once it is (patchway status shows the deadline)")
	}
	for _, cve := range req.KEV {
		if !slices.ContainsFunc(r.in.Rollout.Patch.CVEs, func(c string) bool { return strings.EqualFold(c, cve) }) {
			return fmt.Errorf("%s is not a CVE of the rollout's patch (%s)", cve, strings.Join(r.in.Rollout.Patch.CVEs, ", "))
		}
	}
	if len(r.newThreatFacts(req)) == 0 {
		return errors.New("no new risk fact: name one the rollout does not have yet (--exploited, --worm, --exploit-public, or a CVE the KEV catalogue newly lists)")
	}
	return nil
}

// newThreatFacts names the facts req adds to the rollout's risk, in a
// fixed order: the risk block's, then the CVEs a KEV import lists that
// the last risk decision did not find in the catalogue.
func (r *run) newThreatFacts(req ThreatRequest) []string {
	risk := r.in.Rollout.Risk
	var facts []string
	for _, f := range []struct {
		name      string
		have, add bool
	}{
		{"exploited", risk.Exploited, req.Exploited},
		{"worm_in_the_wild", risk.WormInTheWild, req.WormInTheWild},
		{"exploit_public", risk.ExploitPublic, req.ExploitPublic},
	} {
		if f.add && !f.have {
			facts = append(facts, f.name)
		}
	}
	for _, cve := range r.newlyListed(req.KEV) {
		facts = append(facts, "kev "+cve)
	}
	return facts
}

// newlyListed returns the CVEs of cves the last risk decision did not
// find in the KEV catalogue, upper case and sorted.
func (r *run) newlyListed(cves []string) []string {
	var out []string
	for _, cve := range cves {
		cve = strings.ToUpper(cve)
		if !slices.Contains(r.st.Risk.KEV, cve) && !slices.Contains(out, cve) {
			out = append(out, cve)
		}
	}
	slices.Sort(out)
	return out
}

// threatUpdate adds risk facts under the gates policy, has the sla and
// plan policies decide the deadline again (given the current one, which
// the sla policy never moves later), records the decision, and wakes the
// SLA clock. The plan policy sees the soaks still ahead and may shrink
// them to fit the new deadline (shrinkSoaks applies it; a soak is never
// lengthened). The new deadline applies even when the plan policy still
// finds the soaks too long: the facts are true either way, and the
// violation is recorded for the people steering the rollout.
func (r *run) threatUpdate(ctx workflow.Context, req ThreatRequest) (Record, error) {
	facts := r.newThreatFacts(req)
	kev := r.newlyListed(req.KEV)
	rec, err := r.authorize(ctx, contract.AuthorizeGateInput{Action: contract.ActionThreatUpdate, Gate: r.in.Rollout.ID,
		User: req.User, Reason: fmt.Sprintf("%s: %s", strings.Join(facts, ", "), req.Reason), Token: req.Token})
	if err != nil {
		return rec, err
	}
	ro := r.in.Rollout
	ro.Risk.Exploited = ro.Risk.Exploited || req.Exploited
	ro.Risk.WormInTheWild = ro.Risk.WormInTheWild || req.WormInTheWild
	ro.Risk.ExploitPublic = ro.Risk.ExploitPublic || req.ExploitPublic
	previous := r.st.Risk.Deadline
	now := workflow.Now(ctx)
	in := contract.EvaluateRiskInput{Rollout: ro, HostCount: len(r.in.Hosts), Now: now, CurrentDeadline: previous, PolicyRevision: req.PolicyRevision,
		EmergencyApproval: r.st.EmergencyApproval}
	// Version 1 lets the plan policy shrink the soaks still ahead.
	soaks := workflow.GetVersion(ctx, "threat-update-soaks", workflow.DefaultVersion, 1) >= 1
	if soaks {
		in.SoakLeft = r.soakLeft(now)
	}
	var risk contract.RiskDecision
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.EvaluateRiskName, in).Get(ctx, &risk); err != nil {
		return rec, fmt.Errorf("decide the risk of rollout %s again: %w; its deadline stays %s", ro.ID, err, previous.UTC().Format(time.RFC3339))
	}
	r.shadow(ctx, risk.Records)
	r.in.Rollout.Risk = ro.Risk
	r.st.Risk.SLA, r.st.Risk.Deadline, r.st.Risk.Milestones = risk.SLA, risk.Deadline, risk.Milestones
	r.st.Risk.Reasons, r.st.Risk.Revision = risk.Reasons, risk.Revision
	r.st.RiskRevisions++
	reason := fmt.Sprintf("threat update (%s): deadline %s -> %s (%s)", strings.Join(facts, ", "),
		previous.UTC().Format(time.RFC3339), risk.Deadline.UTC().Format(time.RFC3339), risk.SLA)
	if soaks {
		r.st.Risk.Soaks, r.st.Risk.KEV = risk.Soaks, risk.KEV
		if shrunk := r.shrinkSoaks(now, risk.Soaks); len(shrunk) > 0 {
			reason += fmt.Sprintf("; soaks shortened: %s", strings.Join(shrunk, ", "))
		}
	}
	if unseen := slices.DeleteFunc(kev, func(cve string) bool { return slices.Contains(risk.KEV, cve) }); len(unseen) > 0 {
		reason += fmt.Sprintf("; the policy bundle that decided (revision %s) does not list %s in its KEV catalogue: the worker's policy directory lacks the import of revision %s",
			risk.Revision, strings.Join(unseen, ", "), req.PolicyRevision)
	}
	rec = r.record(Record{
		At: workflow.Now(ctx), Kind: "risk", Subject: ro.Patch.KB, User: rec.User, Person: rec.Person, Allow: risk.Allow,
		Reason:     reason + ": " + strings.Join(risk.Reasons, "; "),
		Violations: risk.Violations, Revision: risk.Revision,
	})
	r.upsert(ctx, AttrSLADeadline.ValueSet(risk.Deadline))
	r.refresh(ctx)
	return rec, nil
}
