package workflows

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// slaClock runs beside the main path from the risk decision on: a durable
// timer to each milestone of the SLA (50, 75, 100 % and after the breach),
// and at each the escalation policy decides who hears about it. It fires
// whatever the main path is doing, waiting at a gate or at a halted wave
// included: that is when it matters.
//
// A threat update decides the deadline again: the clock wakes, drops the
// timer and waits for the next milestone of the new clock (at once if it
// has passed); the milestones already escalated are not escalated again.
func (r *run) slaClock(ctx workflow.Context) {
	for r.st.Fired < len(r.st.Risk.Milestones) && !r.st.Completed {
		m := r.st.Risk.Milestones[r.st.Fired]
		if wait := m.At.Sub(workflow.Now(ctx)); wait > 0 {
			seen := r.st.RiskRevisions
			decidedAgain, err := workflow.AwaitWithOptions(ctx, workflow.AwaitOptions{
				Timeout: wait, TimerOptions: workflow.TimerOptions{Summary: milestoneName(m, r.st.Risk.Deadline)},
			}, func() bool { return r.st.RiskRevisions != seen })
			if err != nil {
				return // the workflow is closing
			}
			if decidedAgain {
				continue
			}
		}
		if r.st.Completed {
			return
		}
		r.slaBusy = true
		r.escalate(ctx, m)
		r.st.Fired++
		r.slaBusy = false
	}
}

// escalate marks a breach, asks the escalation policy who to tell and
// which accelerations it allows, records the decision and notifies.
func (r *run) escalate(ctx workflow.Context, m rollout.Milestone) {
	if m.Breach && !r.st.Breached {
		r.st.Breached = true
		r.upsert(ctx, AttrSLABreached.ValueSet(true))
	}
	p := r.progress()
	in := contract.DecideEscalationInput{
		Rollout: r.in.Rollout, Milestone: m, Deadline: r.st.Risk.Deadline, Stage: p.Stage, Waiting: p.WaitingGate,
		HostsDone: p.HostsDone, HostsTotal: p.HostsTotal, Now: workflow.Now(ctx),
	}
	var dec contract.EscalationDecision
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.DecideEscalationName, in).Get(ctx, &dec); err != nil {
		// Fail loud, not silent: tell every channel the rollout declares.
		dec.Allow, dec.Error = false, err.Error()
	}
	r.shadow(ctx, dec.Records)
	for _, a := range dec.Accelerations {
		if !slices.Contains(r.st.Accel, a) {
			r.st.Accel = append(r.st.Accel, a)
		}
	}
	reason := "notify " + cmp.Or(strings.Join(dec.Contacts, ", "), "nobody")
	if len(dec.Accelerations) > 0 {
		reason += "; allows " + strings.Join(dec.Accelerations, ", ")
	}
	if dec.Error != "" {
		reason += "; policy error: " + dec.Error
	}
	r.record(Record{At: workflow.Now(ctx), Kind: "escalation", Subject: milestoneName(m, r.st.Risk.Deadline), Allow: dec.Allow,
		Reason: reason, Violations: dec.Violations, Revision: dec.Revision})

	kind, title := contract.EventSLAMilestone, fmt.Sprintf("%s: %g%% of the SLA elapsed", r.in.Rollout.Patch.KB, m.AtPercent)
	if f := r.st.Forecast; m.Forecast && f != nil {
		kind = contract.EventSLAForecastBreach
		title = fmt.Sprintf("%s: SLA breach forecast: completes about %s, %s after the deadline", r.in.Rollout.Patch.KB,
			f.Completion.UTC().Format("2006-01-02 15:04Z"), roughDuration(-f.Margin))
	}
	if m.Breach {
		kind, title = contract.EventSLABreached, fmt.Sprintf("%s: SLA breached (%s)", r.in.Rollout.Patch.KB, milestoneName(m, r.st.Risk.Deadline))
		if late := m.At.Sub(r.st.Risk.Deadline); late > 0 {
			title = fmt.Sprintf("%s: SLA breached %s ago", r.in.Rollout.Patch.KB, roughDuration(late))
		}
	}
	text := fmt.Sprintf("Rollout %s is %s at %s; %d of %d hosts done; deadline %s.",
		r.in.Rollout.ID, p.Status, cmp.Or(p.Stage, "its start"), p.HostsDone, p.HostsTotal, in.Deadline.UTC().Format(time.RFC3339))
	if p.WaitingGate != "" {
		text += fmt.Sprintf(" Gate %s waits for approval.", p.WaitingGate)
	}
	if f := r.st.Forecast; m.Forecast && f != nil {
		text += " Forecast: " + strings.Join(f.Reasons, "; ") + "."
	}
	r.notify(ctx, kind, title, text, dec.Contacts, dec.Channels,
		contract.Field{Name: "milestone_percent", Value: fmt.Sprintf("%g", m.AtPercent)},
		contract.Field{Name: "deadline", Value: in.Deadline.UTC().Format(time.RFC3339)},
		contract.Field{Name: "stage", Value: p.Stage})
	r.refresh(ctx)
}

// milestoneName labels a milestone in timers, decisions and notices: "SLA
// 75%" before the deadline, "SLA breach + 4h" after it (a percent of a
// six-minute SLA four hours on would read 4100 %).
func milestoneName(m rollout.Milestone, deadline time.Time) string {
	if m.Forecast {
		return fmt.Sprintf("SLA breach forecast at %g%%", m.AtPercent)
	}
	if m.Breach && m.At.After(deadline) {
		return fmt.Sprintf("SLA breach + %s", roughDuration(m.At.Sub(deadline)))
	}
	return fmt.Sprintf("SLA %g%%", m.AtPercent)
}

// accelerated says whether the escalation policy allowed an acceleration.
func (r *run) accelerated(name string) bool { return slices.Contains(r.st.Accel, name) }

// Advisory editions.
const (
	advisoryInitial  = 1
	advisoryAfterLab = 2
)

// sendAdvisory sends the internal advisory to all IT managers: the
// vulnerability, exploit availability, scanners, workarounds and known
// side effects; the second edition adds what the lab stage found.
func (r *run) sendAdvisory(ctx workflow.Context, edition int) {
	if r.st.Advisory >= edition {
		return
	}
	ro := r.in.Rollout
	adv := contract.Advisory{
		RolloutID: ro.ID, Patch: ro.Patch, Risk: ro.Risk, Edition: edition,
		Deadline: r.st.Risk.Deadline, SLA: r.st.Risk.SLA.String(), Baseline: r.st.Baseline.summary(),
	}
	if edition == advisoryAfterLab {
		adv.Lab = r.labFindings()
	}
	r.notifyRendered(ctx, contract.EventAdvisory, adv.Title(), adv.Markdown(), adv.Text(), nil, nil,
		contract.Field{Name: "edition", Value: fmt.Sprint(edition)},
		contract.Field{Name: "severity", Value: string(ro.Patch.Severity)})
	r.st.Advisory = edition
}

// labFindings summarises the first stage's host outcomes and the reasons
// of its non-compliant hosts (the side effects the lab saw).
func (r *run) labFindings() *contract.LabFindings {
	i := slices.IndexFunc(r.st.Steps, func(s *stepState) bool { return s.Kind == KindStage })
	if i < 0 {
		return &contract.LabFindings{Stage: "lab"}
	}
	lab := r.st.Steps[i]
	f := &contract.LabFindings{Stage: lab.Name, Hosts: len(lab.Members)}
	counts := map[rollout.HostState]int{}
	for _, m := range lab.Members {
		h := r.st.Hosts[m]
		counts[h.State]++
		if h.State != rollout.StateCompliant && len(f.Problems) < 10 {
			f.Problems = append(f.Problems, fmt.Sprintf("%s: %s: %s", r.in.Hosts[m].Name, h.State, strings.Join(h.Reasons, "; ")))
		}
	}
	for _, st := range rollout.HostStates {
		if counts[st] > 0 {
			f.States = append(f.States, contract.StateCount{State: st, Count: counts[st]})
		}
	}
	return f
}

// notify delivers an event through the Notify activity. The idempotency
// key is the rollout id, the kind and a per-kind sequence carried in
// state, so retries and replays never notify twice. A notification that
// cannot be delivered is recorded, never fatal to the rollout.
func (r *run) notify(ctx workflow.Context, kind contract.EventKind, title, text string, contacts, channels []string, fields ...contract.Field) {
	r.notifyRendered(ctx, kind, title, text, text, contacts, channels, fields...)
}

// notifyRendered is notify with separate Markdown and plain-text bodies.
func (r *run) notifyRendered(ctx workflow.Context, kind contract.EventKind, title, markdown, text string, contacts, channels []string, fields ...contract.Field) {
	r.st.Sent[string(kind)]++
	ev := contract.Event{
		Key:  fmt.Sprintf("%s/%s/%s/%d", r.in.Rollout.ID, firstRunID(ctx), kind, r.st.Sent[string(kind)]),
		Kind: kind, RolloutID: r.in.Rollout.ID, At: workflow.Now(ctx),
		Title: title, Markdown: markdown, Text: text, Contacts: contacts, Channels: channels, Fields: fields,
	}
	if len(ev.Channels) == 0 {
		for _, c := range r.in.Rollout.Channels {
			ev.Channels = append(ev.Channels, c.Name)
		}
	}
	var res contract.NotifyResult
	err := workflow.ExecuteActivity(WithNotifyOptions(ctx, string(kind)+": "+title), contract.NotifyName,
		contract.NotifyInput{Event: ev, Channels: r.in.Rollout.Channels}).Get(ctx, &res)
	if err != nil || len(res.Failed) > 0 {
		reason := "undelivered on " + strings.Join(res.Failed, ", ")
		if len(res.Errors) > 0 {
			reason = "undelivered: " + strings.Join(res.Errors, "; ")
		}
		if err != nil {
			reason = "undelivered: " + err.Error()
		}
		r.record(Record{At: workflow.Now(ctx), Kind: "notify", Subject: ev.Key, Allow: false, Reason: reason})
	}
}

// firstRunID tells this rollout from an earlier one filed under the same
// id, and stays the same across continue-as-new, so event keys are unique
// per rollout yet stable for a receiver that deduplicates by them. (The
// SDK's test environment leaves FirstRunID empty; its run id stands in.)
func firstRunID(ctx workflow.Context) string {
	info := workflow.GetInfo(ctx)
	return cmp.Or(info.FirstRunID, info.WorkflowExecution.RunID)
}
