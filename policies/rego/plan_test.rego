package patchway.plan_test

import data.patchway.lib
import data.patchway.plan

now := "2008-10-23T10:00:00Z"

h := lib.hour_ns

rollout(severity, stages) := {
	"id": "r1",
	"filed_by": "bob",
	"filed_at": "2008-10-23T10:00:00Z",
	"patch": {"kb": "KB958644", "severity": severity, "published": "2008-10-23T08:00:00Z"},
	"risk": {},
	"stages": stages,
}

lab(soak) := {"name": "lab", "hosts": "tier:lab", "soak": soak}

prodlike(soak) := {"name": "production-like", "hosts": "tier:prodlike", "soak": soak}

decide(r) := d if {
	d := plan.decision with input as {"rollout": r, "now": now}
}

# dave, of security-leads, approved the emergency at its gate (the gates
# policy proved him).
dave := {"subject": "dave", "name": "dave", "groups": ["security-leads"], "verified": true}

approved(r) := d if {
	d := plan.decision with input as {"rollout": r, "now": now, "emergency_approval": dave}
}

codes(d) := {v.code | some v in d.violations}

test_lab_and_prodlike_with_enough_soak_is_allowed if {
	d := decide(rollout("critical", [lab(2 * h), prodlike(4 * h)]))
	d.allow
	d.required_stages == ["lab", "prodlike"]
	d.total_soak == 6 * h
	d.reasons == ["stage soaks total 6h of the 24h left before the deadline"]
}

test_every_severity_requires_lab_and_prodlike if {
	every severity in ["critical", "important", "moderate", "low"] {
		d := decide(rollout(severity, [lab(200 * h)]))
		codes(d).missing_stage
		some v in d.violations
		contains(v.msg, "requires the prodlike stage")
	}
}

test_soak_below_minimum_is_refused if {
	d := decide(rollout("important", [lab(2 * h), prodlike(48 * h)]))
	codes(d) == {"soak_too_short"}
	d.violations[0].msg == "stage lab soaks 2h; a important patch needs at least 24h"
}

test_soaks_that_cannot_fit_the_sla_are_refused_with_the_arithmetic if {
	d := decide(rollout("critical", [lab(10 * h), prodlike(12 * h), {"name": "pilot", "soak": 6 * h}]))
	codes(d) == {"soak_exceeds_sla"}
	d.violations[0].msg == "stage soaks lab 10h + production-like 12h + pilot 6h = 28h exceed the 24h left before the critical deadline 2008-10-24T10:00:00Z (SLA 24h); shorten the soaks or file an emergency"
}

test_time_already_spent_counts_against_the_soaks if {
	d := plan.decision with input as {"rollout": rollout("critical", [lab(4 * h), prodlike(8 * h)]), "now": "2008-10-24T00:00:00Z"}
	codes(d) == {"soak_exceeds_sla"}
	contains(d.violations[0].msg, "= 12h exceed the 10h left")
}

test_step_maximum_is_enforced if {
	d := decide(rollout("critical", [lab(13 * h), prodlike(2 * h)]))
	codes(d) == {"step_exceeds_max"}
	d.violations[0].msg == "stage lab soaks 13h, over the lab maximum of 12h for a critical patch"
}

test_emergency_approved_at_its_gate_skips_stages if {
	r := object.union(rollout("critical", [prodlike(2 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["lab"]}})
	d := approved(r)
	d.allow
	d.skipped_stages == ["lab"]
	d.reasons[0] == "lab stage skipped by emergency break-glass approved by dave (security-leads)"
}

test_emergency_nobody_approved_is_refused if {
	r := object.union(rollout("critical", [prodlike(2 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["lab"]}})
	d := decide(r)
	codes(d) == {"missing_stage", "emergency_not_approved"}
}

test_a_preview_assumes_the_approval_the_rollout_will_wait_for if {
	r := object.union(rollout("critical", [prodlike(2 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["lab"]}})
	d := plan.decision with input as {"rollout": r, "now": now, "emergency_pending": true}
	d.allow
	d.reasons[0] == "lab stage skipped by emergency break-glass approved by a member of security-leads at the emergency gate, once approved"
}

test_an_approval_without_an_emergency_skips_nothing if {
	d := approved(rollout("critical", [prodlike(2 * h)]))
	codes(d) == {"missing_stage"}
}

test_unknown_severity_requires_every_stage if {
	d := decide(rollout("urgent", []))
	codes(d) == {"missing_stage"}
	count(d.violations) == 2
}

test_stage_without_a_minimum_in_data_needs_no_soak if {
	d := plan.decision with input as {"rollout": rollout("critical", [lab(0), prodlike(0)]), "now": now}
		with data.plan.min_soak_hours as {}
	d.allow
}

test_emergency_skips_a_stage_the_rollout_files if {
	# The README's example: a worm, prodlike skipped though filed; its
	# soak no longer counts against the SLA nor its minimum.
	r := object.union(rollout("critical", [lab(2 * h), prodlike(30 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["prodlike"]}})
	d := approved(r)
	d.allow
	d.skipped_stages == ["prodlike"]
	d.skipped_steps == ["production-like"]
	d.total_soak == 2 * h
	"prodlike stage skipped by emergency break-glass approved by dave (security-leads)" in d.reasons
}

test_emergency_skips_a_stage_by_its_own_name if {
	r := object.union(rollout("critical", [lab(2 * h), prodlike(4 * h), {"name": "Pilot", "soak": 0}]), {"emergency": {"reason": "worm", "skip_stages": ["production-like", "pilot"]}})
	d := approved(r)
	d.allow
	d.skipped_stages == ["prodlike"]
	d.skipped_steps == ["Pilot", "production-like"]
	"stage Pilot skipped by emergency break-glass approved by dave (security-leads)" in d.reasons
}

test_skip_of_a_filed_stage_without_approval_runs_it_and_is_refused if {
	r := object.union(rollout("critical", [lab(2 * h), prodlike(4 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["lab"]}})
	d := decide(r)
	codes(d) == {"emergency_not_approved"}
	d.skipped_steps == []
}

test_skip_of_an_unknown_stage_is_refused_naming_the_stages if {
	r := object.union(rollout("critical", [lab(2 * h), prodlike(4 * h)]), {"emergency": {"reason": "worm", "skip_stages": ["canary"]}})
	d := approved(r)
	codes(d) == {"unknown_skip_stage"}
	d.violations[0].msg == `skip_stages names "canary", which is neither a stage of the rollout (["lab", "production-like"]) nor a required stage (["lab", "prodlike"])`
}

# A CVE used in ransomware campaigns (CISA KEV) waives the soak minimums;
# the stages themselves stay required.
ransomware_kev := {"catalog_version": "2025.08.25", "vulnerabilities": {"CVE-2022-30190": {
	"name": "Microsoft Windows Support Diagnostic Tool (MSDT) Remote Code Execution Vulnerability",
	"date_added": "2022-06-14", "due_date": "2022-07-05", "ransomware": "Known",
}}}

test_known_ransomware_use_waives_the_soak_minimums if {
	r := object.union(rollout("important", [lab(0), prodlike(0)]), {"patch": {"cves": ["CVE-2022-30190"]}})
	d := plan.decision with input as {"rollout": r, "now": now} with data.kev as ransomware_kev
	d.allow
	d.reasons[_] == "soak minimums waived: CVE-2022-30190 is used in ransomware campaigns (KEV)"
	without := plan.decision with input as {"rollout": r, "now": now}
	codes(without) == {"soak_too_short"}
}

test_known_ransomware_use_keeps_the_stages_required if {
	r := object.union(rollout("important", [lab(0)]), {"patch": {"cves": ["CVE-2022-30190"]}})
	d := plan.decision with input as {"rollout": r, "now": now} with data.kev as ransomware_kev
	codes(d) == {"missing_stage"}
}

# A running rollout decided again: the soaks still ahead (soak_left)
# shrink to fit half of the time left, each at least its minimum.
redecide(r, deadline, left) := d if {
	d := plan.decision with input as {
		"rollout": r, "now": now,
		"current_deadline": deadline,
		"soak_left": left,
	}
}

test_a_tightened_deadline_shrinks_the_soaks_ahead_to_their_minimums if {
	d := redecide(rollout("critical", [lab(2 * h), prodlike(4 * h)]), "2008-10-23T14:00:00Z", [
		{"stage": "lab", "left": 2 * h},
		{"stage": "production-like", "left": 4 * h},
	])
	d.allow
	d.soaks == {"lab": 1 * h, "production-like": 2 * h}
	d.total_soak == 3 * h
	d.reasons[_] == "the soaks still ahead (lab 2h + production-like 4h = 6h) shrink to fit 50% of the 4h left before the deadline: lab 2h -> 1h, production-like 4h -> 2h"
	d.reasons[_] == "stage lab soaks at least its minimum 1h"
}

test_a_stage_already_done_is_not_counted_and_a_soak_under_way_shrinks_from_what_it_has_left if {
	d := redecide(rollout("critical", [lab(2 * h), prodlike(8 * h)]), "2008-10-23T18:00:00Z", [{"stage": "production-like", "left": 6 * h}])
	d.soaks == {"production-like": 4 * h}
	d.total_soak == 4 * h
}

test_known_ransomware_use_lets_the_soaks_shrink_below_their_minimums if {
	r := object.union(rollout("critical", [lab(2 * h), prodlike(4 * h)]), {"patch": {"kb": "KB5014699", "severity": "critical", "published": "2008-10-23T08:00:00Z", "cves": ["CVE-2022-30190"]}})
	d := redecide(r, "2008-10-23T14:00:00Z", [
		{"stage": "lab", "left": 2 * h},
		{"stage": "production-like", "left": 4 * h},
	]) with data.kev as ransomware_kev
	d.soaks.lab < 1 * h
	d.soaks["production-like"] < 2 * h
	d.total_soak <= 2 * h
}

test_soaks_that_fit_stay_as_they_are if {
	d := redecide(rollout("critical", [lab(2 * h), prodlike(4 * h)]), "2008-10-24T10:00:00Z", [
		{"stage": "lab", "left": 2 * h},
		{"stage": "production-like", "left": 4 * h},
	])
	d.soaks == {"lab": 2 * h, "production-like": 4 * h}
	d.reasons[_] == "the soaks still ahead total 6h of the 24h left before the deadline"
}

test_a_share_of_zero_never_shrinks_a_soak if {
	d := redecide(rollout("critical", [lab(2 * h), prodlike(4 * h)]), "2008-10-23T14:00:00Z", [
		{"stage": "lab", "left": 2 * h},
		{"stage": "production-like", "left": 4 * h},
	]) with data.plan.shrink_soaks.share as 0
	d.soaks == {"lab": 2 * h, "production-like": 4 * h}
	codes(d) == {"soak_exceeds_sla"}
}

test_filing_never_shrinks_a_soak if {
	d := decide(rollout("critical", [lab(20 * h), prodlike(20 * h)]))
	d.soaks == {"lab": 20 * h, "production-like": 20 * h}
	codes(d).soak_exceeds_sla
}
