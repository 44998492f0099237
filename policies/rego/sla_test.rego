package patchway.sla_test

import data.patchway.lib
import data.patchway.sla

now := "2008-10-23T12:00:00Z"

rollout(severity, risk) := {
	"id": "r1",
	"filed_at": "2008-10-23T10:00:00Z",
	"patch": {"kb": "KB958644", "severity": severity, "published": "2008-10-23T08:00:00Z"},
	"risk": risk,
}

decide(r) := d if {
	d := sla.decision with input as {"rollout": r, "now": now}
}

test_default_sla_by_severity if {
	every severity, hours in {"critical": 24, "important": 720, "moderate": 2880, "low": 8760} {
		d := decide(rollout(severity, {}))
		d.allow
		d.sla == hours * lib.hour_ns
	}
}

test_counts_from_filing_when_later_than_publication if {
	d := decide(rollout("critical", {}))
	d.start == "2008-10-23T10:00:00Z"
	d.deadline == "2008-10-24T10:00:00Z"
	some r in d.reasons
	contains(r, "counted from filing at 2008-10-23T10:00:00Z, later than publication")
}

test_counts_from_publication_when_later_than_filing if {
	r := object.union(rollout("critical", {}), {"patch": {"published": "2008-10-23T11:00:00Z"}})
	d := decide(r)
	d.start == "2008-10-23T11:00:00Z"
	some reason in d.reasons
	contains(reason, "counted from publication")
}

test_unfiled_rollout_counts_from_now if {
	r := object.remove(rollout("important", {}), ["filed_at"])
	d := decide(r)
	d.start == now
}

test_missing_publication_is_a_violation if {
	r := object.remove(rollout("low", {}), ["patch"])
	d := decide(object.union(r, {"patch": {"severity": "low"}}))
	not d.allow
	d.violations[_].code == "missing_published"
	d.start == "2008-10-23T10:00:00Z"
}

test_worm_tightens_by_the_data_factor if {
	d := decide(rollout("critical", {"worm_in_the_wild": true}))
	d.sla == 12 * lib.hour_ns
	d.reasons[_] == "worm_in_the_wild tightens the SLA by a factor of 0.5"
}

test_public_exploit_tightens if {
	d := decide(rollout("important", {"exploit_public": true}))
	d.sla == (720 * lib.hour_ns) * 0.75
}

test_strongest_tightening_wins_over_exposure if {
	d := decide(rollout("important", {"exploit_public": true, "worm_in_the_wild": true, "exposure": "isolated"}))
	d.sla == 360 * lib.hour_ns
}

test_internal_exposure_never_loosens_a_critical if {
	d := decide(rollout("critical", {"exposure": "internal"}))
	d.sla == 24 * lib.hour_ns
	d.reasons[_] == "internal exposure never loosens a critical SLA (factor 1.5 ignored)"
}

test_internal_exposure_loosens_an_important if {
	d := decide(rollout("important", {"exposure": "internal"}))
	d.sla == 1080 * lib.hour_ns
	d.reasons[_] == "internal exposure loosens the SLA by a factor of 1.5"
}

test_unknown_severity_gets_the_strictest_sla if {
	d := decide(rollout("urgent", {}))
	not d.allow
	d.violations[_].code == "unknown_severity"
	d.sla == 24 * lib.hour_ns
}

test_milestones_at_50_75_100_with_absolute_times if {
	d := decide(rollout("critical", {}))
	d.milestones == [
		{"at_percent": 50, "at": "2008-10-23T22:00:00Z", "breach": false},
		{"at_percent": 75, "at": "2008-10-24T04:00:00Z", "breach": false},
		{"at_percent": 100, "at": "2008-10-24T10:00:00Z", "breach": true},
	]
}

test_after_breach_steps_become_milestones if {
	r := object.union(rollout("critical", {}), {"escalation": [{"after_breach": 6 * lib.hour_ns, "contacts": ["cio"], "channels": ["mail"]}]})
	d := decide(r)
	last := d.milestones[count(d.milestones) - 1]
	last == {"at_percent": 125, "at": "2008-10-24T16:00:00Z", "breach": true}
}

test_step_maximums_by_severity if {
	decide(rollout("critical", {})).step_max.production == 48 * lib.hour_ns
	decide(rollout("moderate", {})).step_max.production == 120 * lib.hour_ns
}

test_sla_table_comes_from_data if {
	d := sla.decision with input as {"rollout": rollout("critical", {}), "now": now}
		with data.sla.hours.critical as 8
	d.sla == 8 * lib.hour_ns
}

test_a_rollout_without_risk_facts_gets_the_base_sla if {
	d := decide({"patch": {"severity": "critical", "published": "2008-10-23T08:00:00Z"}})
	d.sla == 24 * lib.hour_ns
	d.start == now
}
