package policies

import (
	"context"
	"time"

	"github.com/patchway/patchway/rollout"
)

// FillPlan asks the SLA and plan policies about a rollout and puts the
// deadline and milestones into its plan; it returns the plan policy's
// decision (soaks that cannot fit the SLA, missing stages...). now is the
// filing time of a rollout not yet filed.
func (e *Engine) FillPlan(ctx context.Context, r *rollout.Rollout, p *rollout.Plan, now time.Time) (PlanDecision, error) {
	sla, err := e.SLA(ctx, SLAInput{Rollout: *r, Now: now})
	if err != nil {
		return PlanDecision{}, err
	}
	deadline := sla.Deadline
	p.Deadline = &deadline
	p.Milestones = sla.Milestones
	p.DeadlineReasons = sla.Reasons
	return e.Plan(ctx, PlanInput{Rollout: *r, Now: now, EmergencyPending: r.Emergency != nil})
}
