# METADATA
# title: Waves
# description: |
#   May wave W start (its after waves done, its window open)? Must it halt
#   (failures over max_failures, where not_effective and unreachable count
#   as failures)?
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

failures := sum([n | some s in data.waves.failure_states; n := object.get(object.get(input, "states", {}), s, 0)])

threshold := object.get(wave, "max_failures", {})

# The threshold in hosts: a count, or a percentage of the wave (rounded
# down); none set means no failure is tolerated.
max_failures := threshold.count if {
	object.get(threshold, "count", 0) > 0
} else := floor((object.get(input, "hosts", 0) * threshold.percent) / 100) if {
	object.get(threshold, "percent", 0) > 0
} else := 0

default halt := false

halt if failures > max_failures

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
		"window_open": window_open,
		"max_parallel": positive_or(object.get(wave, "max_parallel", 0), data.waves.default_max_parallel),
		"download_concurrency": positive_or(object.get(wave, "download_concurrency", 0), data.waves.default_download_concurrency),
	},
	window_times,
)
