package patchway.escalation_test

import data.patchway.escalation
import data.patchway.lib

ladder := [
	{"at_percent": 50, "contacts": ["it-managers"], "channels": ["ops"]},
	{"at_percent": 75, "contacts": ["site-owners"], "channels": ["ops", "mail"]},
	{"breach": true, "contacts": ["ciso"], "channels": ["mail"]},
	{"after_breach": 6 * lib.hour_ns, "contacts": ["cio"], "channels": ["mail"]},
]

rollout(severity, steps) := {
	"id": "r1",
	"patch": {"kb": "KB958644", "severity": severity},
	"escalation": steps,
	"channels": [{"name": "ops", "type": "webhook"}, {"name": "mail", "type": "email"}],
}

decide(r, milestone) := d if {
	d := escalation.decision with input as {
		"rollout": r,
		"milestone": milestone,
		"deadline": "2008-10-24T10:00:00Z",
		"stage": "prodlike",
		"hosts_done": 10,
		"hosts_total": 40,
		"now": milestone.at,
	}
}

test_half_way_notifies_the_first_rung if {
	d := decide(rollout("critical", ladder), {"at_percent": 50, "at": "2008-10-23T22:00:00Z"})
	d.allow
	d.contacts == ["it-managers"]
	d.channels == ["ops"]
	d.accelerations == ["raise_parallelism"]
	d.reasons == ["50% of the SLA elapsed: 10 of 40 hosts done", "waiting in stage prodlike"]
}

test_three_quarters_allows_skipping_soak_for_critical if {
	d := decide(rollout("critical", ladder), {"at_percent": 75, "at": "2008-10-24T04:00:00Z"})
	d.contacts == ["site-owners"]
	d.channels == ["mail", "ops"]
	d.accelerations == ["raise_parallelism", "skip_soak"]
}

test_breach_notifies_and_allows_reboot_outside_window if {
	d := decide(rollout("critical", ladder), {"at_percent": 100, "at": "2008-10-24T10:00:00Z", "breach": true})
	d.contacts == ["ciso"]
	d.accelerations == ["raise_parallelism", "skip_soak", "reboot_outside_window"]
	d.reasons[0] == "100% of the SLA elapsed (deadline breached): 10 of 40 hosts done"
}

test_after_breach_step if {
	d := decide(rollout("critical", ladder), {"at_percent": 125, "at": "2008-10-24T16:00:00Z", "breach": true})
	d.contacts == ["cio"]
	d.accelerations == ["raise_parallelism", "skip_soak", "reboot_outside_window"]
}

test_other_severities_accelerate_less if {
	d := decide(rollout("important", ladder), {"at_percent": 50, "at": "2008-10-23T22:00:00Z"})
	d.accelerations == []
}

test_default_ladder_when_the_rollout_has_none if {
	d := escalation.decision with input as {
		"rollout": {"patch": {"severity": "moderate"}},
		"milestone": {"at_percent": 75, "at": "2008-10-24T04:00:00Z"},
		"now": "2008-10-24T04:00:00Z",
	}
	d.contacts == ["security-team", "site-owners"]
	d.channels == ["security"]
	d.accelerations == ["raise_parallelism"]
}

test_no_matching_step_notifies_nobody if {
	d := decide(rollout("critical", ladder), {"at_percent": 10, "at": "2008-10-23T12:24:00Z"})
	d.contacts == []
	d.accelerations == []
	d.reasons[1] == "no escalation step matches the 10% milestone"
}

test_undeclared_channel_is_a_violation if {
	steps := [{"at_percent": 50, "contacts": ["x"], "channels": ["pager"]}]
	d := decide(rollout("critical", steps), {"at_percent": 50, "at": "2008-10-23T22:00:00Z"})
	not d.allow
	d.violations[0].code == "unknown_channel"
}
