# METADATA
# title: Gates
# description: |
#   May user U approve (or reject) gate G of rollout R? Only a member of the
#   gate's group (data.groups), never the person who filed the rollout
#   (four-eyes); an emergency override only by the named group.
package patchway.gates

group := input.group if {
	object.get(input, "group", "") != ""
} else := data.gates.default_group

override := object.get(input, "override", false) == true

user := object.get(input, "user", "")

action := object.get(input, "action", "")

gate := object.get(input, "gate", "")

member(user, g) if user in data.groups[g]

violations contains {"code": "unknown_action", "msg": msg} if {
	not action in data.gates.actions
	msg := sprintf("%q is not a gate action (actions: %v)", [action, data.gates.actions])
}

violations contains {"code": "four_eyes", "msg": msg} if {
	user == object.get(input, "filed_by", "")
	msg := sprintf("%s filed rollout %s and may not %s its gates (four-eyes)", [user, object.get(input, "rollout_id", ""), action])
}

violations contains {"code": "unknown_group", "msg": sprintf("approval group %q is not defined in data.groups", [group])} if {
	not data.groups[group]
}

violations contains {"code": "not_in_group", "msg": msg} if {
	not override
	not member(user, group)
	msg := sprintf("%s is not a member of %s, the approval group of gate %s", [user, group, gate])
}

violations contains {"code": "override_not_allowed", "msg": msg} if {
	override
	not member(user, data.gates.emergency_group)
	msg := sprintf("%s may not override gate %s: emergency overrides are reserved to %s", [user, gate, data.gates.emergency_group])
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"group": group_used,
	"override": override,
}

group_used := data.gates.emergency_group if override

else := group
