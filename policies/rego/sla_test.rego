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

# KEV entries as `patchway threat import` writes them, from CISA's
# catalogue 2025.08.25 (the two May 2022 CVEs), on a May 2022 timeline.
kev := {
	"catalog_version": "2025.08.25",
	"vulnerabilities": {
		"CVE-2022-26925": {
			"name": "Microsoft Windows LSA Spoofing Vulnerability", "date_added": "2022-07-01",
			"due_date": "2022-07-22", "ransomware": "Unknown",
		},
		"CVE-2022-30190": {
			"name": "Microsoft Windows Support Diagnostic Tool (MSDT) Remote Code Execution Vulnerability",
			"date_added": "2022-06-14", "due_date": "2022-07-05", "ransomware": "Known",
		},
	},
}

may2022(severity, cves, filed) := {
	"id": "kb5013944",
	"filed_at": filed,
	"patch": {"kb": "KB5013944", "severity": severity, "published": "2022-05-10T17:00:00Z", "cves": cves},
	"risk": {},
}

decide_kev(r, at) := d if {
	d := sla.decision with input as {"rollout": r, "now": at} with data.kev as kev
}

test_kev_due_date_caps_a_longer_sla if {
	# An important patch gets 30 days from 2022-07-02: KEV says 2022-07-22.
	d := decide_kev(may2022("important", ["cve-2022-26925"], "2022-07-02T09:00:00Z"), "2022-07-02T09:00:00Z")
	d.deadline == "2022-07-22T23:59:59Z"
	d.kev == ["CVE-2022-26925"]
	some r in d.reasons
	contains(r, "CVE-2022-26925 is in CISA's KEV catalogue 2025.08.25 (Microsoft Windows LSA Spoofing Vulnerability, added 2022-07-01): due 2022-07-22")
}

test_kev_never_loosens_a_shorter_sla if {
	d := decide_kev(may2022("critical", ["CVE-2022-26925"], "2022-07-02T09:00:00Z"), "2022-07-02T09:00:00Z")
	d.deadline == "2022-07-03T09:00:00Z"
}

test_kev_due_date_already_past_gives_the_overdue_sla if {
	d := decide_kev(may2022("important", ["CVE-2022-26925"], "2026-12-06T09:00:00Z"), "2026-12-06T09:00:00Z")
	d.sla == 24 * lib.hour_ns
	d.deadline == "2026-12-07T09:00:00Z"
	some r in d.reasons
	contains(r, "due 2022-07-22, already past at the SLA start; overdue, the SLA is at most 24h")
}

test_known_ransomware_use_tightens_after_the_cap if {
	# Due 2022-07-05T23:59:59Z from 2022-06-15T00:00:00Z, halved.
	d := decide_kev(may2022("important", ["CVE-2022-30190"], "2022-06-15T00:00:00Z"), "2022-06-15T00:00:00Z")
	d.kev_ransomware == ["CVE-2022-30190"]
	d.deadline == "2022-06-25T11:59:59.5Z"
	some r in d.reasons
	r == "CVE-2022-30190 is used in ransomware campaigns (KEV knownRansomwareCampaignUse Known): the SLA tightens by a factor of 0.5"
}

test_a_cve_kev_does_not_list_changes_nothing if {
	d := decide_kev(may2022("important", ["CVE-2022-26937"], "2022-07-02T09:00:00Z"), "2022-07-02T09:00:00Z")
	d.sla == 720 * lib.hour_ns
	d.kev == []
}

test_exploited_in_the_wild_tightens_by_the_data_factor if {
	d := decide(rollout("important", {"exploited": true}))
	d.sla == 360 * lib.hour_ns
	d.reasons[_] == "exploited tightens the SLA by a factor of 0.5"
}

test_a_decision_again_never_moves_the_deadline_later if {
	# Filed 10:00 critical (24h); decided again with the deadline already
	# at 20:00 the same day: it stays there.
	d := sla.decision with input as {"rollout": rollout("critical", {}), "now": now, "current_deadline": "2008-10-23T20:00:00Z"}
	d.deadline == "2008-10-23T20:00:00Z"
	d.sla == 10 * lib.hour_ns
	some r in d.reasons
	startswith(r, "the deadline stays at 2008-10-23T20:00:00Z")
}

test_a_decision_again_tightens_when_the_facts_say_so if {
	r := rollout("critical", {"worm_in_the_wild": true})
	d := sla.decision with input as {"rollout": r, "now": now, "current_deadline": "2008-10-24T10:00:00Z"}
	d.deadline == "2008-10-23T22:00:00Z"
}
