# METADATA
# title: Gates and controls
# description: |
#   May user U take action A on rollout R: approve or reject a gate, or one
#   of the controls (pause, resume, abort, except, skip_host)? Each action's
#   rule is in data.gates.actions: the group whose members may take it
#   (none named: the gate's group, else data.gates.default_group) and
#   whether four-eyes applies (the person who filed the rollout may not).
#   A resume that lifts a halt and an abort with rollback have their own
#   rules (resume_after_halt, abort_with_rollback). An emergency override
#   is reserved to data.gates.emergency_group.
package patchway.gates

override := object.get(input, "override", false) == true

user := object.get(input, "user", "")

action := object.get(input, "action", "")

gate := object.get(input, "gate", "")

# rule_name is the entry of data.gates.actions that governs the action.
rule_name := "resume_after_halt" if {
	action == "resume"
	object.get(input, "halted", false) == true
} else := "abort_with_rollback" if {
	action == "abort"
	object.get(input, "rollback", false) == true
} else := action

rule := data.gates.actions[rule_name]

group := rule.group if {
	object.get(rule, "group", "") != ""
} else := input.group if {
	object.get(input, "group", "") != ""
} else := data.gates.default_group

member(user, g) if user in data.groups[g]

violations contains {"code": "unknown_action", "msg": msg} if {
	not rule
	msg := sprintf("%q is not an action the gates policy governs (actions: %v)", [rule_name, object.keys(data.gates.actions)])
}

violations contains {"code": "four_eyes", "msg": msg} if {
	object.get(rule, "four_eyes", true) == true
	user == object.get(input, "filed_by", "")
	id := object.get(input, "rollout_id", "")
	msg := sprintf("%s filed rollout %s and may not %s %s: another person must (four-eyes)", [user, id, verb, gate])
}

violations contains {"code": "unknown_group", "msg": sprintf("group %q is not defined in data.groups", [group])} if {
	rule
	not data.groups[group]
}

violations contains {"code": "not_in_group", "msg": msg} if {
	rule
	not override
	not member(user, group)
	msg := sprintf("%s is not a member of %s, the group that may %s %s", [user, group, verb, gate])
}

violations contains {"code": "override_not_allowed", "msg": msg} if {
	override
	not member(user, data.gates.emergency_group)
	msg := sprintf("%s may not override %s: emergency overrides are reserved to %s", [user, gate, data.gates.emergency_group])
}

verb := replace(rule_name, "_", " ")

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"group": group_used,
	"override": override,
	"rule": rule_name,
}

group_used := data.gates.emergency_group if override

else := group
