package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/activities"
)

// slaClock runs beside the main path from the risk decision on: a durable
// timer to each milestone of the SLA (50, 75, 100 % and after the breach),
// and at each the escalation policy decides who hears about it. It fires
// whatever the main path is doing, waiting at a gate or at a halted wave
// included: that is when it matters.
func (r *run) slaClock(ctx workflow.Context) {
	milestones := r.st.Risk.Milestones
	for r.st.Fired < len(milestones) && !r.st.Completed {
		m := milestones[r.st.Fired]
		if wait := m.At.Sub(workflow.Now(ctx)); wait > 0 {
			timer := workflow.NewTimerWithOptions(ctx, wait, workflow.TimerOptions{Summary: milestoneName(m)})
			if err := timer.Get(ctx, nil); err != nil {
				return // the workflow is closing
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
func (r *run) escalate(ctx workflow.Context, m activities.Milestone) {
	if m.Breach && !r.st.Breached {
		r.st.Breached = true
		r.upsert(ctx, AttrSLABreached.ValueSet(true))
	}
	p := r.progress()
	in := activities.DecideEscalationInput{
		Rollout: r.in.Rollout, Milestone: m, Deadline: r.st.Risk.Deadline, Stage: p.Stage, Waiting: p.WaitingGate,
		HostsDone: p.HostsDone, HostsTotal: p.HostsTotal, Now: workflow.Now(ctx),
	}
	var dec activities.EscalationDecision
	if err := workflow.ExecuteLocalActivity(withPolicyOptions(ctx), activities.DecideEscalationName, in).Get(ctx, &dec); err != nil {
		// Fail loud, not silent: tell every channel the rollout declares.
		dec.Allow, dec.Error = false, err.Error()
	}
	for _, a := range dec.Accelerations {
		if !slices.Contains(r.st.Accel, a) {
			r.st.Accel = append(r.st.Accel, a)
		}
	}
	reason := "notify " + orDefault(strings.Join(dec.Contacts, ", "), "nobody")
	if len(dec.Accelerations) > 0 {
		reason += "; allows " + strings.Join(dec.Accelerations, ", ")
	}
	if dec.Error != "" {
		reason += "; policy error: " + dec.Error
	}
	r.record(Record{At: workflow.Now(ctx), Kind: "escalation", Subject: milestoneName(m), Allow: dec.Allow,
		Reason: reason, Violations: dec.Violations, Revision: dec.Revision})

	kind, title := activities.EventSLAMilestone, fmt.Sprintf("%s: %s of its SLA elapsed", r.in.Rollout.Patch.KB, milestoneName(m))
	if m.Breach {
		kind, title = activities.EventSLABreached, fmt.Sprintf("%s: SLA breached (%s)", r.in.Rollout.Patch.KB, milestoneName(m))
	}
	text := fmt.Sprintf("Rollout %s is %s at %s; %d of %d hosts done; deadline %s.",
		r.in.Rollout.ID, p.Status, orDefault(p.Stage, "its start"), p.HostsDone, p.HostsTotal, in.Deadline.UTC().Format(time.RFC3339))
	if p.WaitingGate != "" {
		text += fmt.Sprintf(" Gate %s waits for approval.", p.WaitingGate)
	}
	r.notify(ctx, kind, title, text, dec.Contacts, dec.Channels,
		activities.Field{Name: "milestone_percent", Value: fmt.Sprintf("%g", m.AtPercent)},
		activities.Field{Name: "deadline", Value: in.Deadline.UTC().Format(time.RFC3339)},
		activities.Field{Name: "stage", Value: p.Stage})
	r.refresh(ctx)
}

func milestoneName(m activities.Milestone) string {
	if m.Breach && m.AtPercent > 100 {
		return fmt.Sprintf("SLA %g%% (after breach)", m.AtPercent)
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
	var b strings.Builder
	fmt.Fprintf(&b, "**%s %s** (%s), severity **%s**, CVEs %s.\n\n", ro.Patch.KB, ro.Patch.Title, ro.Patch.Bulletin,
		ro.Patch.Severity, orDefault(strings.Join(ro.Patch.CVEs, ", "), "none listed"))
	fmt.Fprintf(&b, "- Exploit public: %t; worm in the wild: %t; exposure: %s\n", ro.Risk.ExploitPublic, ro.Risk.WormInTheWild, orDefault(ro.Risk.Exposure, "unknown"))
	fmt.Fprintf(&b, "- Scanners: %s\n", orDefault(strings.Join(ro.Risk.Scanners, ", "), "none listed"))
	fmt.Fprintf(&b, "- Workaround: %s\n", orDefault(ro.Risk.Workaround, "none"))
	fmt.Fprintf(&b, "- Known side effects: %s\n", orDefault(strings.Join(ro.Risk.SideEffects, "; "), "none reported"))
	fmt.Fprintf(&b, "- Deadline: %s\n", r.st.Risk.Deadline.UTC().Format(time.RFC3339))
	title := fmt.Sprintf("Advisory: %s %s", ro.Patch.KB, ro.Patch.Title)
	if edition == advisoryAfterLab {
		title = "Updated advisory after the lab: " + ro.Patch.KB
		b.WriteString("\n**What the lab found**\n\n")
		b.WriteString(r.labFindings())
	}
	r.notify(ctx, activities.EventAdvisory, title, b.String(), nil, nil,
		activities.Field{Name: "edition", Value: fmt.Sprint(edition)},
		activities.Field{Name: "severity", Value: string(ro.Patch.Severity)})
	r.st.Advisory = edition
}

// labFindings summarises the first stage's host outcomes and the reasons
// of its non-compliant hosts (the side effects the lab saw).
func (r *run) labFindings() string {
	var lab *stepState
	for _, s := range r.st.Steps {
		if s.Kind == KindStage {
			lab = s
			break
		}
	}
	if lab == nil {
		return "no lab stage ran.\n"
	}
	counts := map[string]int{}
	var lines []string
	for _, i := range lab.Members {
		h := r.st.Hosts[i]
		counts[string(h.State)]++
		if h.State != "compliant" && len(lines) < 10 {
			lines = append(lines, fmt.Sprintf("- %s: %s %s", r.in.Hosts[i].Name, h.State, strings.Join(h.Reasons, "; ")))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d hosts;", lab.Name, len(lab.Members))
	for _, k := range sortedKeys(counts) {
		fmt.Fprintf(&b, " %s %d", k, counts[k])
	}
	b.WriteString("\n")
	for _, l := range lines {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// notify delivers an event through the Notify activity. The idempotency
// key is the rollout id, the kind and a per-kind sequence carried in
// state, so retries and replays never notify twice. A notification that
// cannot be delivered is recorded, never fatal to the rollout.
func (r *run) notify(ctx workflow.Context, kind activities.EventKind, title, text string, contacts, channels []string, fields ...activities.Field) {
	r.st.Sent[string(kind)]++
	ev := activities.Event{
		Key:  fmt.Sprintf("%s/%s/%d", r.in.Rollout.ID, kind, r.st.Sent[string(kind)]),
		Kind: kind, RolloutID: r.in.Rollout.ID, At: workflow.Now(ctx),
		Title: title, Markdown: text, Text: text, Contacts: contacts, Channels: channels, Fields: fields,
	}
	if len(ev.Channels) == 0 {
		for _, c := range r.in.Rollout.Channels {
			ev.Channels = append(ev.Channels, c.Name)
		}
	}
	var res activities.NotifyResult
	err := workflow.ExecuteActivity(withNotifyOptions(ctx, string(kind)+": "+title), activities.NotifyName,
		activities.NotifyInput{Event: ev, Channels: r.in.Rollout.Channels}).Get(ctx, &res)
	if err != nil || len(res.Failed) > 0 {
		reason := "undelivered on " + strings.Join(res.Failed, ", ")
		if err != nil {
			reason = "undelivered: " + err.Error()
		}
		r.record(Record{At: workflow.Now(ctx), Kind: "notify", Subject: ev.Key, Allow: false, Reason: reason})
	}
}
