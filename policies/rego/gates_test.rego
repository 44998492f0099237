package patchway.gates_test

import data.patchway.gates

base := {"rollout_id": "r1", "filed_by": "alice", "gate": "lab", "action": "approve", "user": "bob", "now": "2026-11-23T10:00:00Z"}

decide(over) := d if {
	d := gates.decision with input as object.union(base, over)
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
	d.violations[0].msg == "alice filed rollout r1 and may not approve its gates (four-eyes)"
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
	not d.allow
	{v.code | some v in d.violations} == {"four_eyes", "not_in_group"}
}
