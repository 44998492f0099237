# METADATA
# title: SLA forecast
# description: |
#   When will the rollout be done, at the rate of proven hosts observed so
#   far? Every step still ahead adds its hosts still to prove at that
#   rate, its soak left, the wait for its window when it waits for one
#   now, and a person's gate (data.forecast.gate_hours each: nobody can
#   time a person). The rate is that of the latest step that proved at
#   least data.forecast.min_observed_hosts hosts (proven over the time its
#   batches ran), else data.forecast.default_hosts_per_hour. breach: the
#   completion is after the deadline; the escalation policy decides who
#   hears of it (milestone.forecast).
package patchway.forecast

import data.patchway.lib

cfg := data.forecast

now := lib.ts(input.now)

deadline := lib.ts(input.deadline)

ahead := [s | some s in input.steps; not s.status in cfg.done_statuses]

# A step's rate over the time its batches ran: until now while it runs,
# until its last batch ended once it is done.
rate_of(s) := s.done / (span / lib.hour_ns) if {
	span := until(s) - lib.ts(s.started_at)
	span > 0
}

until(s) := lib.ts(s.ended_at) if {
	object.get(s, "ended_at", "") != ""
} else := now

observed := [{"step": s.name, "at": lib.ts(s.started_at), "rate": rate_of(s)} |
	some s in input.steps
	object.get(s, "done", 0) >= cfg.min_observed_hosts
	rate_of(s) > 0
]

latest := [o | some o in observed; o.at == max({p.at | some p in observed})][0]

rate := latest.rate if latest

else := cfg.default_hosts_per_hour

rate_source := sprintf("%v hosts/h proven in %s", [round(rate * 10) / 10, latest.step]) if latest

else := sprintf("%v hosts/h assumed (data.forecast.default_hosts_per_hour): no step has proven %d hosts yet", [rate, cfg.min_observed_hosts])

remaining := sum([object.get(s, "remaining", 0) | some s in ahead])

hosts_ns := round((remaining / rate) * lib.hour_ns)

soak_ns := sum([object.get(s, "soak_left", 0) | some s in ahead])

gates := count([s | some s in ahead; gate_ahead(s)])

gate_ahead(s) if s.gate_pending == true

gate_ahead(s) if s.waiting == true

gate_ns := round((gates * cfg.gate_hours) * lib.hour_ns)

window_ns := sum([w |
	some s in ahead
	opens := lib.ts(object.get(s, "window_opens", ""))
	w := max({0, opens - now})
])

completion := (((now + hosts_ns) + soak_ns) + gate_ns) + window_ns

breach := completion > deadline

reasons contains sprintf("%d hosts still to prove at %s: %s", [remaining, rate_source, lib.duration(hosts_ns)]) if remaining > 0

reasons contains sprintf("soaks still ahead: %s", [lib.duration(soak_ns)]) if soak_ns > 0

reasons contains sprintf("%d gates for a person still ahead, %v h each (data.forecast.gate_hours)", [gates, cfg.gate_hours]) if gates > 0

reasons contains sprintf("windows to wait for: %s", [lib.duration(window_ns)]) if window_ns > 0

reasons contains sprintf("completes %s after the deadline %s", [lib.duration(completion - deadline), input.deadline]) if breach

reasons contains sprintf("completes %s before the deadline %s", [lib.duration(deadline - completion), input.deadline]) if not breach

decision := {
	"allow": true,
	"violations": [],
	"completion": time.format(completion),
	"breach": breach,
	"margin": deadline - completion,
	"hosts_per_hour": rate,
	"reasons": sort(reasons),
}
