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
#   is reserved to data.gates.emergency_group. Who acts is the person the
#   oidc policy proves from the action's token: the subject and groups of
#   verified claims, never a typed name (four-eyes compares subjects).
package patchway.gates

import data.patchway.oidc

override := object.get(input, "override", false) == true

# person is who acts (oidc.person); undefined when not proven, and then
# the oidc policy's violations say why.
person := oidc.person

user := person.subject

action := object.get(input, "action", "")

gate := object.get(input, "gate", "")

# rule_name is the entry of data.gates.actions that governs the action.
rule_name := concat("_", [action, "emergency"]) if {
	action in {"approve", "reject"}
	object.get(input, "emergency", false) == true
} else := "resume_after_halt" if {
	action == "resume"
	object.get(input, "halted", false) == true
} else := "abort_with_rollback" if {
	action == "abort"
	object.get(input, "rollback", false) == true
} else := action

rule := data.gates.actions[rule_name]

group := rule.group if {
	object.get(rule, "group", "") != ""
} else := data.gates.emergency_group if {
	object.get(input, "emergency", false) == true
} else := input.group if {
	object.get(input, "group", "") != ""
} else := data.gates.default_group

member(g) if g in person.groups

violations contains v if some v in oidc.violations

violations contains {"code": "unknown_action", "msg": msg} if {
	not rule
	msg := sprintf("%q is not an action the gates policy governs (actions: %v)", [rule_name, object.keys(data.gates.actions)])
}

violations contains {"code": "four_eyes", "msg": msg} if {
	object.get(rule, "four_eyes", true) == true
	user == object.get(input, "filed_by", "")
	id := object.get(input, "rollout_id", "")
	msg := sprintf("%s filed rollout %s and may not %s %s: another person must (four-eyes)", [person.name, id, verb, gate])
}

violations contains {"code": "unknown_group", "msg": sprintf("group %q is not defined in data.groups", [group])} if {
	rule
	not data.groups[group]
}

violations contains {"code": "not_in_group", "msg": msg} if {
	rule
	person
	not override
	not member(group)
	msg := sprintf("%s is not a member of %s, the group that may %s %s", [person.name, group, verb, gate])
}

violations contains {"code": "override_not_allowed", "msg": msg} if {
	override
	person
	not member(data.gates.emergency_group)
	msg := sprintf("%s may not override %s: emergency overrides are reserved to %s", [person.name, gate, data.gates.emergency_group])
}

verb := replace(rule_name, "_", " ")

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"group": group_used,
	"override": override,
	"rule": rule_name,
	"person": person_or_null,
}

group_used := data.gates.emergency_group if override

else := group

person_or_null := person if person

else := null
