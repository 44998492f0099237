package patchway.gates_test

import data.patchway.gates

base := {"rollout_id": "r1", "filed_by": "alice", "gate": "lab", "action": "approve", "user": "bob", "now": "2026-11-23T10:00:00Z"}

decide(over) := d if {
	d := gates.decision with input as object.union(base, over)
		with data.oidc.insecure_dev_identity as true
}

codes(d) := {v.code | some v in d.violations}

test_member_of_the_default_group_may_approve if {
	d := decide({})
	d.allow
	d.group == "security-team"
}

test_member_may_reject if {
	decide({"action": "reject"}).allow
}

test_filer_may_never_approve_four_eyes if {
	d := decide({"user": "alice"})
	codes(d) == {"four_eyes"}
	d.violations[0].msg == "alice filed rollout r1 and may not approve lab: another person must (four-eyes)"
}

test_non_member_is_refused if {
	d := decide({"user": "mallory"})
	codes(d) == {"not_in_group"}
}

test_gate_group_from_the_rollout if {
	decide({"group": "change-board", "user": "erin"}).allow
	codes(decide({"group": "change-board", "user": "carol"})) == {"not_in_group"}
}

test_unknown_group_is_refused if {
	codes(decide({"group": "nobody"})) == {"unknown_group", "not_in_group"}
}

test_unknown_action_is_refused if {
	codes(decide({"action": "delete"})) == {"unknown_action"}
}

test_emergency_override_by_the_named_group if {
	d := decide({"group": "change-board", "user": "dave", "override": true})
	d.allow
	d.override
	d.group == "security-leads"
}

test_emergency_override_by_others_is_refused if {
	codes(decide({"group": "change-board", "user": "carol", "override": true})) == {"override_not_allowed"}
}

test_override_does_not_lift_four_eyes if {
	codes(decide({"user": "alice", "override": true})) == {"four_eyes"}
}

test_empty_user_is_refused_even_without_filer if {
	d := gates.decision with input as {"gate": "lab", "action": "approve", "now": "2026-11-23T10:00:00Z"}
		with data.oidc.insecure_dev_identity as true
	not d.allow
	{v.code | some v in d.violations} == {"user_missing"}
	d.person == null
}

test_a_typed_name_decides_nothing_without_the_insecure_dev_identity if {
	d := gates.decision with input as object.union(base, {"user": "bob"})
	not d.allow
	codes(d) == {"token_missing"}
	d.person == null
}

test_an_insecure_dev_identity_is_marked_unverified if {
	d := decide({})
	d.allow
	d.person == {"subject": "bob", "name": "bob", "groups": ["change-board", "security-team"], "verified": false}
}

control(action, user, over) := d if {
	ctl := {"rollout_id": "r1", "filed_by": "alice", "gate": "r1", "action": action, "user": user, "now": "2026-11-23T10:00:00Z"}
	d := gates.decision with input as object.union(ctl, over)
		with data.oidc.insecure_dev_identity as true
}

test_the_filer_may_pull_the_pause_brake if {
	d := control("pause", "alice", {})
	d.allow
	d.rule == "pause"
}

test_pause_is_for_the_security_team_only if {
	codes(control("pause", "mallory", {})) == {"not_in_group"}
}

# A scan names no filer: whoever of the security team asks may scan.
test_a_scan_is_for_the_security_team_only if {
	scan := {"rollout_id": "scan/nightly", "filed_by": "", "gate": "nightly"}
	d := control("scan", "carol", scan)
	d.allow
	d.rule == "scan"
	codes(control("scan", "eve", scan)) == {"not_in_group"}
}

test_the_filer_may_resume_her_own_pause_but_not_lift_a_halt if {
	control("resume", "alice", {}).allow
	d := control("resume", "alice", {"halted": true})
	codes(d) == {"four_eyes"}
	d.rule == "resume_after_halt"
	control("resume", "bob", {"halted": true}).allow
}

test_abort_is_a_brake_abort_with_rollback_needs_another_person if {
	control("abort", "alice", {}).allow
	codes(control("abort", "alice", {"rollback": true})) == {"four_eyes"}
	control("abort", "carol", {"rollback": true}).allow
}

test_skip_host_and_except_need_another_person_in_the_group if {
	d := control("skip_host", "alice", {"gate": "WS-1"})
	codes(d) == {"four_eyes"}
	d.violations[0].msg == "alice filed rollout r1 and may not skip host WS-1: another person must (four-eyes)"
	codes(control("except", "alice", {})) == {"four_eyes"}
	control("skip_host", "bob", {}).allow
	codes(control("except", "erin", {})) == {"not_in_group"}
}

test_an_action_takes_its_group_from_data if {
	d := control("skip_host", "erin", {}) with data.gates.actions.skip_host as {"group": "change-board", "four_eyes": true}
	d.allow
	d.group == "change-board"
}

test_four_eyes_can_be_lifted_per_action_in_data if {
	d := control("skip_host", "alice", {}) with data.gates.actions.skip_host.four_eyes as false
	d.allow
}

test_an_action_missing_from_data_is_refused if {
	d := control("skip_host", "bob", {}) with data.gates.actions as {"approve": {}, "reject": {}}
	codes(d) == {"unknown_action"}
}

test_an_emergency_is_approved_by_the_emergency_group_never_the_filer if {
	d := decide({"user": "dave", "gate": "emergency", "emergency": true})
	d.allow
	d.rule == "approve_emergency"
	d.group == "security-leads"
	codes(decide({"user": "carol", "gate": "emergency", "emergency": true})) == {"not_in_group"}
	codes(decide({"user": "alice", "gate": "emergency", "emergency": true})) == {"four_eyes"}
	decide({"user": "dave", "gate": "emergency", "emergency": true, "action": "reject"}).rule == "reject_emergency"
}
