# METADATA
# title: Escalation
# description: |
#   At a milestone of the SLA clock or after the breach, or when the
#   forecast policy finds the rollout will finish late (milestone.forecast):
#   who is notified on which channel (the rollout's ladder, else
#   data.escalation.default_ladder; a forecast falls back to the default
#   ladder's forecast step when the rollout's has none) and which
#   accelerations are allowed (skip remaining soak, raise parallelism,
#   reboot outside the window; data.escalation.forecast_accelerations for
#   a forecast).
package patchway.escalation

import data.patchway.lib

milestone := input.milestone

severity := input.rollout.patch.severity

ladder := lib.list(input.rollout, "escalation") if {
	count(lib.list(input.rollout, "escalation")) > 0
} else := data.escalation.default_ladder

deadline := lib.ts(input.deadline)

milestone_at := lib.ts(milestone.at)

is_forecast if milestone.forecast == true

# A step matches its percentage, a breach step matches the breach, an
# after-breach step matches the milestone at deadline + after_breach
# (within a minute), and a forecast step matches a forecast.
matches(step) if {
	is_forecast
	object.get(step, "forecast", false) == true
}

matches(step) if {
	not is_forecast
	object.get(step, "after_breach", 0) == 0
	object.get(step, "at_percent", 0) > 0
	step.at_percent == milestone.at_percent
}

matches(step) if {
	not is_forecast
	object.get(step, "after_breach", 0) == 0
	object.get(step, "at_percent", 0) == 0
	step.breach == true
	milestone.breach == true
	milestone.at_percent == 100
}

matches(step) if {
	not is_forecast
	object.get(step, "after_breach", 0) > 0
	abs((milestone_at - deadline) - step.after_breach) < lib.minute_ns
}

ladder_steps := [s | some s in ladder; matches(s)]

steps := ladder_steps if {
	count(ladder_steps) > 0
} else := forecast_fallback if {
	is_forecast
} else := []

# A rollout whose ladder has no forecast step hears of a breach forecast
# from the default ladder's forecast step, on its own ladder's first
# channels when it declares a ladder (the default ladder's channels may
# be none of the rollout's).
forecast_fallback := [object.union(s, {"channels": lib.list(own[0], "channels")}) |
	some s in data.escalation.default_ladder
	matches(s)
] if {
	own := lib.list(input.rollout, "escalation")
	count(own) > 0
} else := [s | some s in data.escalation.default_ladder; matches(s)]

contacts := sort({c | some s in steps; some c in lib.list(s, "contacts")})

channels := sort({c | some s in steps; some c in lib.list(s, "channels")})

acceleration_table := data.escalation.accelerations[severity] if {
	data.escalation.accelerations[severity]
} else := data.escalation.accelerations["default"]

# The accelerations of the highest threshold the milestone has reached.
reached := [to_number(k) | some k, _ in acceleration_table; to_number(k) <= milestone.at_percent]

accelerations := acceleration_table[format_int(max(reached), 10)] if {
	not is_forecast
	count(reached) > 0
} else := forecast_accelerations if is_forecast

else := []

declared_channels := {c.name | some c in lib.list(input.rollout, "channels")}

violations contains {"code": "unknown_channel", "msg": sprintf("escalation channel %q is not declared by the rollout", [c])} if {
	count(declared_channels) > 0
	some c in channels
	not c in declared_channels
}

reasons contains sprintf("%v%% of the SLA elapsed%s: %d of %d hosts done", [milestone.at_percent, breach_text, object.get(input, "hosts_done", 0), object.get(input, "hosts_total", 0)])

breach_text := " (deadline breached)" if milestone.breach == true

else := ""

reasons contains sprintf("no escalation step matches the %v%% milestone", [milestone.at_percent]) if count(steps) == 0

forecast_accelerations := data.escalation.forecast_accelerations[severity] if {
	data.escalation.forecast_accelerations[severity]
} else := data.escalation.forecast_accelerations["default"]

reasons contains "the forecast finds the rollout completes after its deadline" if is_forecast

reasons contains sprintf("waiting in stage %s", [input.stage]) if object.get(input, "stage", "") != ""

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"contacts": contacts,
	"channels": channels,
	"accelerations": accelerations,
	"reasons": sort(reasons),
}
