package patchway.forecast_test

import data.patchway.escalation
import data.patchway.forecast

now := "2026-12-07T12:00:00Z"

# lab done (10 hosts in 1h), prodlike running, two waves ahead.
steps := [
	{"name": "lab", "kind": "stage", "status": "done", "hosts": 10, "remaining": 0, "done": 10, "started_at": "2026-12-07T08:00:00Z", "ended_at": "2026-12-07T09:00:00Z"},
	{"name": "prodlike", "kind": "stage", "status": "running", "hosts": 20, "remaining": 10, "done": 10, "started_at": "2026-12-07T11:30:00Z", "soak_left": 7200000000000, "gate_pending": true},
	{"name": "emea", "kind": "wave", "status": "pending", "hosts": 100, "remaining": 100, "done": 0, "gate_pending": true},
	{"name": "na", "kind": "wave", "status": "pending", "hosts": 50, "remaining": 50, "done": 0},
]

decide(deadline, s) := d if {
	d := forecast.decision with input as {"now": now, "deadline": deadline, "steps": s}
}

test_the_latest_observed_rate_times_the_hosts_left_plus_soaks_and_gates if {
	d := decide("2026-12-08T12:00:00Z", steps)

	# prodlike: 10 hosts in 30 min = 20/h; 160 hosts left = 8h; soak 2h;
	# 2 gates ahead at 4h = 8h: 18h from now.
	d.hosts_per_hour == 20
	d.completion == "2026-12-08T06:00:00Z"
	not d.breach
	d.margin == 6 * 3600000000000
	"160 hosts still to prove at 20 hosts/h proven in prodlike: 8h" in d.reasons
	"2 gates for a person still ahead, 4 h each (data.forecast.gate_hours)" in d.reasons
}

test_a_deadline_before_the_completion_is_a_breach_forecast if {
	d := decide("2026-12-08T00:00:00Z", steps)
	d.breach
	d.margin == -6 * 3600000000000
	"completes 6h after the deadline 2026-12-08T00:00:00Z" in d.reasons
}

test_without_enough_observed_hosts_the_default_rate_is_assumed if {
	d := decide("2026-12-08T00:00:00Z", [{"name": "emea", "kind": "wave", "status": "running", "hosts": 120, "remaining": 119, "done": 1, "started_at": "2026-12-07T11:00:00Z"}])
	d.hosts_per_hour == 60
	d.completion == "2026-12-07T13:59:00Z"
}

test_a_closed_window_adds_its_wait if {
	d := decide("2026-12-09T00:00:00Z", [{"name": "apac", "kind": "wave", "status": "waiting_window", "hosts": 60, "remaining": 60, "done": 0, "window_opens": "2026-12-07T22:00:00Z"}])
	d.completion == "2026-12-07T23:00:00Z"
	"windows to wait for: 10h" in d.reasons
}

test_finished_steps_add_nothing if {
	d := decide("2026-12-08T00:00:00Z", [steps[0]])
	d.completion == now
	not d.breach
}

forecast_milestone := {"forecast": true, "at_percent": 31.5, "at": now}

test_a_breach_forecast_is_escalated_to_the_default_ladders_forecast_step if {
	d := escalation.decision with input as {
		"rollout": {
			"patch": {"severity": "critical"},
			"escalation": [{"at_percent": 50, "contacts": ["x@corp"], "channels": ["chat"]}],
			"channels": [{"name": "chat", "type": "slack"}],
		},
		"milestone": forecast_milestone, "deadline": "2026-12-08T00:00:00Z", "now": now,
	}
	d.allow
	d.contacts == ["security-team", "site-owners"]
	d.channels == ["chat"]
	d.accelerations == ["raise_parallelism"]
	"the forecast finds the rollout completes after its deadline" in d.reasons
}

test_a_rollouts_own_forecast_step_wins if {
	d := escalation.decision with input as {
		"rollout": {"patch": {"severity": "important"}, "escalation": [{"forecast": true, "contacts": ["cab@corp"]}]},
		"milestone": forecast_milestone, "deadline": "2026-12-08T00:00:00Z", "now": now,
	}
	d.contacts == ["cab@corp"]
}

test_a_forecast_step_never_matches_a_clock_milestone if {
	d := escalation.decision with input as {
		"rollout": {"patch": {"severity": "important"}, "escalation": [{"forecast": true, "contacts": ["cab@corp"]}]},
		"milestone": {"at_percent": 50, "at": now}, "deadline": "2026-12-08T00:00:00Z", "now": now,
	}
	d.contacts == []
}
