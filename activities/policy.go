package activities

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/patchway/patchway/contract"

	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// PolicyActivities are the policy decisions the rollout workflow records:
// it runs them as local activities (in-process, fast), and their results,
// with the policy revision, land in history as markers. The engine is
// prepared once per process and shared; every input carries the
// workflow's `now`.
//
// A policy that fails to evaluate does not fail the activity: the
// decision comes back closed (Allow false, Error set) and the workflow
// records it and acts on it. Only a cancelled context is an error.
//
// Each result carries the records of the decisions behind it
// (contract.DecisionRecord): a local activity's marker keeps its result
// and not its input, so the input travels there.
type PolicyActivities struct {
	Engine *policies.Engine
	// shadows are the compiled shadow policies (ShadowDecide).
	shadows shadowCache
}

// NewPolicyActivities wraps a loaded policy engine.
func NewPolicyActivities(e *policies.Engine) *PolicyActivities { return &PolicyActivities{Engine: e} }

// EvaluateRisk asks the sla policy for the deadline and its milestones
// and the plan policy whether the filed stages are acceptable.
func (p *PolicyActivities) EvaluateRisk(ctx context.Context, in contract.EvaluateRiskInput) (contract.RiskDecision, error) {
	if in.PolicyRevision != "" && in.PolicyRevision != p.Engine.Revision() {
		// An error leaves the bundle in force deciding; the decision
		// carries the revision that decided, for the caller to compare.
		_, _, _ = p.Engine.Reload(ctx)
	}
	ctx, rec := policies.WithRecorder(ctx)
	sla, slaErr := p.Engine.SLA(ctx, policies.SLAInput{Rollout: in.Rollout, Now: in.Now, CurrentDeadline: in.CurrentDeadline})
	plan, planErr := p.Engine.Plan(ctx, policies.PlanInput{Rollout: in.Rollout, Now: in.Now, CurrentDeadline: in.CurrentDeadline, SoakLeft: in.SoakLeft,
		EmergencyApproval: in.EmergencyApproval})
	if err := ctx.Err(); err != nil {
		return contract.RiskDecision{}, fmt.Errorf("evaluate risk: %w", err)
	}
	d := contract.RiskDecision{
		Decision: rollout.Decision{
			Allow:      sla.Allow && plan.Allow,
			Violations: append(slices.Clone(sla.Violations), plan.Violations...),
			Revision:   sla.Revision,
			Error:      joinErrors(slaErr, planErr),
		},
		SLA: sla.SLA, Deadline: sla.Deadline, RequiredStages: plan.RequiredStages, SkippedSteps: plan.SkippedSteps, Milestones: sla.Milestones,
		Reasons: append(slices.Clone(sla.Reasons), plan.Reasons...),
		Soaks:   plan.Soaks, KEV: sla.KEV, Records: rec.Records(),
	}
	return d, nil
}

// AuthorizeGate asks the gates policy whether a person may take an action
// on a rollout: approve or reject a gate, or a control. Every action is
// governed; one the policy does not know is refused.
func (p *PolicyActivities) AuthorizeGate(ctx context.Context, in contract.AuthorizeGateInput) (contract.GateDecision, error) {
	ctx, rec := policies.WithRecorder(ctx)
	d, _ := p.Engine.Gate(ctx, policies.GateInput{ // an evaluation error refuses, with its reason
		RolloutID: in.RolloutID, FiledBy: in.FiledBy, Gate: in.Gate, Group: in.Group, Action: in.Action,
		User: in.User, Reason: in.Reason, Severity: in.Severity, Now: in.Now, Halted: in.Halted, Rollback: in.Rollback,
		Token: in.Token, UsedTokens: in.UsedTokens, Target: in.Target, Emergency: in.Emergency,
	})
	if cerr := ctx.Err(); cerr != nil {
		return contract.GateDecision{}, fmt.Errorf("authorize %s: %w", in.Action, cerr)
	}
	return contract.GateDecision{Decision: d.Decision, Person: d.Person, Records: rec.Records()}, nil
}

// DecideReboot admits candidates in order while the reboot policy allows
// them to reboot now, counting each admitted host as in flight for the
// next (one domain controller per site, one member per cluster, reboots
// per site, the maintenance window). A host whose reboot is not required
// starts without a reboot; one whose reboot is required but not allowed
// now is held.
func (p *PolicyActivities) DecideReboot(ctx context.Context, in contract.DecideRebootInput) (contract.RebootDecision, error) {
	inFlight := slices.Clone(in.InFlight)
	out := contract.RebootDecision{Decision: rollout.Decision{Allow: true, Revision: p.Engine.Revision()}}
	for _, h := range in.Candidates {
		if len(out.Start) >= in.Slots {
			break
		}
		rctx, rec := policies.WithRecorder(ctx)
		d, err := p.Engine.Reboot(rctx, policies.NewRebootInput(in, h, inFlight))
		if cerr := ctx.Err(); cerr != nil {
			return contract.RebootDecision{}, fmt.Errorf("decide reboot of %s: %w", h.Name, cerr)
		}
		if r, ok := rec.Last(policies.DecisionReboot); ok {
			// By reference: the batch child's input holds the hosts.
			names := make([]string, 0, len(inFlight))
			for _, f := range inFlight {
				names = append(names, f.Name)
			}
			out.RebootRecords = append(out.RebootRecords, contract.RebootRecord{
				Host: h.Name, InFlight: names, Revision: r.Revision, InputHash: r.InputHash, Result: r.Result, Time: r.Time,
			})
		}
		switch {
		case err == nil && d.Allow:
			out.Start = append(out.Start, contract.RebootPlan{Host: h.Name, Reboot: true})
			inFlight = append(inFlight, h)
		case err == nil && !d.Required:
			out.Start = append(out.Start, contract.RebootPlan{Host: h.Name, Reboot: false})
		default:
			out.Held = append(out.Held, contract.HeldHost{Host: h.Name, Violations: d.Violations})
			if err != nil {
				out.Error = err.Error()
			}
		}
	}
	return out, nil
}

// DecideWave asks the waves policy whether a wave may dispatch hosts now,
// within which window and limits.
func (p *PolicyActivities) DecideWave(ctx context.Context, in contract.DecideWaveInput) (contract.WaveDecision, error) {
	// An evaluation error is in d.Error: the engine fails the decision closed.
	ctx, rec := policies.WithRecorder(ctx)
	d, _ := p.Engine.Wave(ctx, policies.WaveInput{
		Kind: in.Kind, Wave: in.Wave, TimeZone: in.TimeZone, Done: in.Done, Hosts: in.Hosts, States: in.States,
		Deadline: in.Deadline, Accelerations: in.Accelerations, Now: in.Now,
	})
	if cerr := ctx.Err(); cerr != nil {
		return contract.WaveDecision{}, fmt.Errorf("decide wave %s: %w", in.Wave.Name, cerr)
	}
	return contract.WaveDecision{
		Decision: d.Decision, NextWindow: d.NextWindow, WindowEnd: d.WindowEnd, HostBudget: d.HostBudget,
		MaxParallel: d.MaxParallel, DownloadConcurrency: d.DownloadConcurrency, MaxFailures: d.MaxFailures,
		Halt: d.Halt, Failures: d.Failures, FailureStates: d.FailureStates, FailureBudget: d.FailureBudget,
		Records: rec.Records(),
	}, nil
}

// DecideEscalation asks the escalation policy who hears about the rollout
// at a milestone of its SLA clock, and which accelerations it allows.
func (p *PolicyActivities) DecideEscalation(ctx context.Context, in contract.DecideEscalationInput) (contract.EscalationDecision, error) {
	// An evaluation error is in d.Error: nothing is accelerated.
	ctx, rec := policies.WithRecorder(ctx)
	d, _ := p.Engine.Escalation(ctx, policies.EscalationInput{
		Rollout: in.Rollout, Milestone: in.Milestone,
		Deadline: in.Deadline, Stage: in.Stage, HostsDone: in.HostsDone, HostsTotal: in.HostsTotal, Now: in.Now,
	})
	if cerr := ctx.Err(); cerr != nil {
		return contract.EscalationDecision{}, fmt.Errorf("decide escalation: %w", cerr)
	}
	return contract.EscalationDecision{Decision: d.Decision, Contacts: d.Contacts, Channels: d.Channels, Accelerations: d.Accelerations,
		Records: rec.Records()}, nil
}

// ForecastSLA asks the forecast policy when the rollout will be done at
// the rate observed so far. An evaluation error forecasts nothing.
func (p *PolicyActivities) ForecastSLA(ctx context.Context, in contract.ForecastInput) (contract.Forecast, error) {
	ctx, rec := policies.WithRecorder(ctx)
	d, _ := p.Engine.Forecast(ctx, in)
	if cerr := ctx.Err(); cerr != nil {
		return contract.Forecast{}, fmt.Errorf("forecast: %w", cerr)
	}
	d.Records = rec.Records()
	return d, nil
}

func joinErrors(errs ...error) string {
	var s string
	for _, err := range errs {
		if err != nil {
			if s != "" {
				s += "; "
			}
			s += err.Error()
		}
	}
	return s
}

// ShadowDecide asks a rollout's shadow policy about decisions the live
// policy just took and returns where the two disagree; nothing acts on
// its answer. A shadow that does not load on this worker is one
// difference of kind error (the rollout goes on under the live policy,
// which is all that decides). Shadow engines are compiled once per
// revision and kept (a few at a time).
func (p *PolicyActivities) ShadowDecide(ctx context.Context, in contract.ShadowInput) (contract.ShadowResult, error) {
	out := contract.ShadowResult{Revision: in.Policy.Revision, Compared: len(in.Records) + len(in.Verdicts)}
	s, err := p.shadows.get(ctx, p.Engine, in.Policy)
	if err != nil {
		out.Differences = []contract.PolicyDifference{{Kind: contract.DifferenceError, Subject: "shadow policy " + in.Policy.Dir,
			Was: "loaded when submitted", Would: "not loaded here", Why: err.Error()}}
		return out, nil
	}
	compare := func(rec contract.DecisionRecord, host string) error {
		diffs, err := policies.Compare(ctx, s, rec.Path, rec.Input, rec.Result, host)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			diffs = []contract.PolicyDifference{{Kind: contract.DifferenceError, Path: rec.Path, Subject: rec.Path, Was: "decided", Would: "not compared", Why: err.Error()}}
		}
		out.Differences = append(out.Differences, diffs...)
		return nil
	}
	for _, rec := range in.Records {
		if err := compare(rec, ""); err != nil {
			return out, fmt.Errorf("shadow decide: %w", err)
		}
	}
	for _, v := range in.Verdicts {
		rec, _, err := policies.RebuildCompliance(v.Target, v.Verdict)
		if err != nil {
			out.Compared-- // a verdict without its record (a failed host operation) has no decision to compare
			continue
		}
		if err := compare(rec, v.Verdict.Host); err != nil {
			return out, fmt.Errorf("shadow decide: %w", err)
		}
	}
	return out, nil
}

// shadowCache keeps the shadow engines of the rollouts this worker
// serves, by revision, the most recent few.
type shadowCache struct {
	mu      sync.Mutex
	engines map[string]*policies.Engine
	order   []string
}

// maxShadowEngines bounds the compiled shadow policies a worker keeps.
const maxShadowEngines = 4

func (c *shadowCache) get(ctx context.Context, live *policies.Engine, sp contract.ShadowPolicy) (*policies.Engine, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.engines[sp.Revision]; ok && sp.Revision != "" {
		return e, nil
	}
	e, err := live.Shadow(ctx, sp)
	if err != nil {
		return nil, err
	}
	if c.engines == nil {
		c.engines = map[string]*policies.Engine{}
	}
	if len(c.order) >= maxShadowEngines {
		delete(c.engines, c.order[0])
		c.order = c.order[1:]
	}
	c.engines[sp.Revision] = e
	c.order = append(c.order, sp.Revision)
	return e, nil
}
