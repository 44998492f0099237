package patchway.waves_test

import data.patchway.waves

base := {
	"wave": {"name": "emea", "hosts": "region:emea", "after": ["pilot"], "max_parallel": 0, "max_failures": {"count": 2}},
	"done": ["pilot"],
	"hosts": 100,
	"now": "2026-11-23T10:00:00Z",
}

decide(over) := d if {
	d := waves.decision with input as object.union(base, over)
}

codes(d) := {v.code | some v in d.violations}

test_wave_after_done_without_window_may_start if {
	d := decide({})
	d.allow
	not d.halt
	d.window_open
	d.max_parallel == 25
	d.download_concurrency == 10
	not d.next_window
}

test_wave_waits_for_its_after_waves if {
	d := decide({"done": []})
	codes(d) == {"waiting_for_waves"}
	d.violations[0].msg == "wave emea starts after pilot"
}

test_closed_window_refuses_with_the_next_opening if {
	d := decide({"wave": {"window": {"days": [1], "start": 1320, "end": 360}}})
	codes(d) == {"window_closed"}
	d.next_window == "2026-11-23T22:00:00Z"
}

test_open_window_reports_its_end if {
	d := decide({"wave": {"window": {"days": [1], "start": 540, "end": 1020, "time_zone": "UTC"}}})
	d.allow
	d.window_end == "2026-11-23T17:00:00Z"
}

test_failures_over_the_count_halt if {
	d := decide({"states": {"failed": 1, "not_effective": 1, "unreachable": 1, "compliant": 50}})
	d.halt
	d.failures == 3
	codes(d) == {"failures_over_threshold"}
}

test_failures_at_the_count_do_not_halt if {
	d := decide({"states": {"failed": 1, "unreachable": 1, "pending_reboot": 9}})
	not d.halt
	d.allow
}

test_percentage_threshold if {
	d := waves.decision with input as json.patch(base, [
		{"op": "replace", "path": "/wave/max_failures", "value": {"percent": 5}},
		{"op": "add", "path": "/states", "value": {"not_effective": 6}},
	])
	d.max_failures == 5
	d.halt
}

test_no_threshold_tolerates_no_failure if {
	d := waves.decision with input as json.patch(base, [{"op": "remove", "path": "/wave/max_failures"}, {"op": "add", "path": "/states", "value": {"failed": 1}}])
	d.max_failures == 0
	d.halt
}

test_wave_limits_override_defaults if {
	d := decide({"wave": {"max_parallel": 7, "download_concurrency": 3}})
	d.max_parallel == 7
	d.download_concurrency == 3
}

test_nameless_wave_still_waits if {
	d := waves.decision with input as {"wave": {"after": ["pilot"]}, "hosts": 1, "now": "2026-11-23T10:00:00Z"}
	codes(d) == {"waiting_for_waves"}
}

test_unknown_counts_as_a_failure if {
	d := decide({"states": {"failed": 1, "unknown": 2}})
	d.failures == 3
	d.halt
	"unknown" in d.failure_states
}

test_failure_states_come_from_data if {
	d := waves.decision with input as object.union(base, {"states": {"failed": 1, "unreachable": 5}})
		with data.waves.failure_states as ["failed"]
	d.failures == 1
	not d.halt
	d.failure_budget == 1
}

test_failure_budget_is_what_is_left_of_the_threshold if {
	decide({}).failure_budget == 2
	decide({"states": {"failed": 1}}).failure_budget == 1
	decide({"states": {"failed": 5}}).failure_budget == 0
}

test_a_stage_halts_on_its_first_failure if {
	d := decide({"kind": "stage", "wave": {"name": "lab"}, "states": {"not_effective": 1}})
	d.max_failures == 0
	d.halt
	d.max_parallel == 10
	d.failure_budget == 0
}

test_a_stage_without_failures_may_start if {
	d := waves.decision with input as {"kind": "stage", "wave": {"name": "lab"}, "hosts": 3, "now": base.now, "states": {"compliant": 3}}
	d.allow
	not d.halt
}

test_retry_rounds_never_halt_and_have_no_budget if {
	d := decide({"kind": "retry", "wave": {"name": "retry"}, "states": {"failed": 40}})
	not d.halt
	d.failure_budget == -1
	d.max_parallel == 10
}

test_raise_parallelism_multiplies_hosts_in_flight if {
	decide({"accelerations": ["raise_parallelism"]}).max_parallel == 50
	decide({"kind": "stage", "wave": {"name": "lab"}, "accelerations": ["raise_parallelism"]}).max_parallel == 20
}

test_host_budget_comes_from_data if {
	decide({}).host_budget == (60 * 60) * 1000000000
	d := waves.decision with input as base with data.waves.host_budget_minutes as 15
	d.host_budget == (15 * 60) * 1000000000
}
