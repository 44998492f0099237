# METADATA
# title: Waves
# description: |
#   May wave W start (its after waves done, its window open), with how many
#   hosts in flight and how long each host is given? Which host states count
#   as failures, how many it may still take, and must it halt? A stage
#   (lab, production-like) is judged as a wave with no window whose
#   threshold is data.waves.stage_max_failures; the retry rounds after the
#   waves never halt (their hosts were judged in their own wave).
package patchway.waves

import data.patchway.lib

now := time.parse_rfc3339_ns(input.now)

wave := input.wave

wave_name := object.get(wave, "name", "")

done := {d | some d in lib.list(input, "done")}

waiting := [a | some a in lib.list(wave, "after"); not a in done]

has_window if is_object(object.get(wave, "window", null))

tz := lib.zone(wave.window, object.get(input, "time_zone", "")) if has_window

default window_open := false

window_open if not has_window

window_open if lib.window_open(wave.window, tz, now)

# kind is "wave", "stage" or "retry"; waves are the default.
kind := object.get(input, "kind", "wave")

accelerations := lib.list(input, "accelerations")

failure_states := data.waves.failure_states

failures := sum([n | some s in failure_states; n := object.get(object.get(input, "states", {}), s, 0)])

threshold := object.get(wave, "max_failures", {})

# The threshold in hosts: a stage's from data; a wave's a count, or a
# percentage of the wave (rounded down); none set means no failure is
# tolerated.
max_failures := data.waves.stage_max_failures if {
	kind == "stage"
} else := threshold.count if {
	object.get(threshold, "count", 0) > 0
} else := floor((object.get(input, "hosts", 0) * threshold.percent) / 100) if {
	object.get(threshold, "percent", 0) > 0
} else := 0

default halt := false

halt if {
	kind != "retry"
	failures > max_failures
}

# How many more failures the step may take before it halts: a batch stops
# starting hosts once its own failures pass it; -1 is no limit.
failure_budget := -1 if {
	kind == "retry"
} else := max([0, max_failures - failures])

base_parallel := data.waves.stage_max_parallel if {
	kind != "wave"
} else := positive_or(object.get(wave, "max_parallel", 0), data.waves.default_max_parallel)

# Escalation's raise_parallelism multiplies the hosts in flight.
max_parallel := base_parallel * data.waves.raise_parallelism_factor if {
	"raise_parallelism" in accelerations
} else := base_parallel

violations contains {"code": "waiting_for_waves", "msg": sprintf("wave %s starts after %s", [wave_name, concat(", ", waiting)])} if {
	count(waiting) > 0
}

violations contains {"code": "window_closed", "msg": msg} if {
	not window_open
	msg := sprintf("wave %s's window is closed; it next opens %s", [wave_name, time.format(lib.next_window_open(wave.window, tz, now))])
}

violations contains {"code": "failures_over_threshold", "msg": msg} if {
	halt
	msg := sprintf("wave %s has %d failures (%v count as failures), over its limit of %d: halt", [wave_name, failures, data.waves.failure_states, max_failures])
}

positive_or(x, d) := x if x > 0

else := d

window_times["next_window"] := time.format(lib.next_window_open(wave.window, tz, now)) if {
	has_window
	not window_open
}

window_times["window_end"] := time.format(lib.window_close(wave.window, tz, now)) if {
	has_window
	window_open
}

decision := object.union(
	{
		"allow": count(violations) == 0,
		"violations": [v | some v in violations],
		"halt": halt,
		"failures": failures,
		"max_failures": max_failures,
		"failure_states": failure_states,
		"failure_budget": failure_budget,
		"window_open": window_open,
		"host_budget": data.waves.host_budget_minutes * lib.minute_ns,
		"max_parallel": max_parallel,
		"download_concurrency": positive_or(object.get(wave, "download_concurrency", 0), data.waves.default_download_concurrency),
	},
	window_times,
)
