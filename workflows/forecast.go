package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// changeSLAForecast versions the forecast asked after each batch.
const changeSLAForecast = "sla-forecast"

// forecastSLA asks the forecast policy, after a batch, when the rollout
// will be done at the rate observed so far, keeps the answer for status,
// the Web UI and the report, and escalates once (sla_forecast_breach)
// when it finds the rollout finishing after its deadline: before the
// breach, while there is time to act. A forecast that fails to evaluate
// is left out; it only ever warns.
func (r *run) forecastSLA(ctx workflow.Context) {
	if r.st.Risk == nil || r.st.Breached || r.st.Completed ||
		workflow.GetVersion(ctx, changeSLAForecast, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return
	}
	now := workflow.Now(ctx)
	in := contract.ForecastInput{RolloutID: r.in.Rollout.ID, Severity: string(r.in.Rollout.Patch.Severity),
		Deadline: r.st.Risk.Deadline, Steps: r.forecastSteps(now), Now: now}
	var f contract.Forecast
	if err := workflow.ExecuteLocalActivity(WithPolicyOptions(ctx), contract.ForecastSLAName, in).Get(ctx, &f); err != nil || f.Error != "" {
		return
	}
	r.shadow(ctx, f.Records)
	f.Records = nil // in the marker only
	r.st.Forecast = &f
	if r.st.FirstForecast == nil {
		first := f
		r.st.FirstForecast = &first
	}
	if f.Breach && r.st.FirstBreachForecast == nil {
		first := f
		r.st.FirstBreachForecast = &first
		r.escalate(ctx, rollout.Milestone{AtPercent: r.slaElapsed(now), At: now, Forecast: true})
	}
}

// slaElapsed is the share of the SLA elapsed at t, in percent (one
// decimal).
func (r *run) slaElapsed(t time.Time) float64 {
	sla := r.st.Risk.SLA
	if sla <= 0 {
		return 0
	}
	start := r.st.Risk.Deadline.Add(-sla)
	return float64(int(float64(t.Sub(start))/float64(sla)*1000)) / 10
}

// forecastSteps are the facts of every step the forecast policy weighs.
func (r *run) forecastSteps(now time.Time) []contract.ForecastStep {
	var out []contract.ForecastStep
	for _, s := range r.st.Steps {
		fs := contract.ForecastStep{Name: s.Name, Kind: string(s.Kind), Status: string(s.Status), Hosts: len(s.Members),
			StartedAt: s.FirstBatchAt, Waiting: s.Status == StepWaiting}
		if s.Done {
			fs.EndedAt = s.LastBatchAt
		}
		for _, i := range s.Members {
			switch r.st.Hosts[i].State {
			case rollout.StatePending, rollout.StateInProgress:
				fs.Remaining++
			default:
				fs.Done++
			}
		}
		if s.Kind == KindStage && !s.Done && s.Status != StepSkipped {
			fs.SoakLeft = r.stageSoak(s)
			if !s.SoakUntil.IsZero() {
				fs.SoakLeft = max(s.SoakUntil.Sub(now), 0)
			}
		}
		hasGate := s.Kind == KindStage || s.Group != ""
		fs.GatePending = hasGate && !s.Approved && !s.Done && s.Status != StepWaiting
		if s.Status == StepWindow && s.Limits != nil {
			fs.WindowOpens = s.Limits.NextWindow
		}
		out = append(out, fs)
	}
	return out
}

// forecastSummary is what the report says of the forecasts: the first,
// the latest and the first breach forecast; finish adds the end (ended)
// and how far the first was off.
func (r *run) forecastSummary() *contract.ReportForecast {
	if r.st.FirstForecast == nil || r.st.Forecast == nil {
		return nil
	}
	s := &contract.ReportForecast{First: *r.st.FirstForecast, Last: *r.st.Forecast}
	if b := r.st.FirstBreachForecast; b != nil {
		at := b.At
		s.FirstBreach = &at
	}
	return s
}

// ended marks the summary final: the rollout ended at end.
func ended(s *contract.ReportForecast, end time.Time) {
	if s != nil {
		s.Ended = end
		s.OffBy = end.Sub(s.First.Completion)
	}
}
