# METADATA
# title: Plan
# description: |
#   Which stages a severity requires (lab and production-like for every
#   severity unless an emergency break-glass was approved at the rollout's
#   emergency gate: who may approve it is the gates policy's
#   approve_emergency rule, and input.emergency_approval is the person it
#   proved), soak minimums, per-step maximums, and soak times that must fit
#   the SLA. A plan preview (input.emergency_pending) assumes the approval
#   the filed rollout will wait for.
package patchway.plan

import data.patchway.lib
import data.patchway.sla

severity := input.rollout.patch.severity

required_stages := data.plan.required_stages[severity] if {
	data.plan.required_stages[severity]
} else := {s | some stages in data.plan.required_stages; some s in stages}

stages := lib.list(input.rollout, "stages")

aliases(req) := object.get(data.plan.stage_aliases, req, [req])

# stage_for maps a required stage to the rollout's stage that fulfils it.
stage_for[req] := s if {
	some req in required_stages
	some s in stages
	lower(s.name) in aliases(req)
}

emergency := object.get(input.rollout, "emergency", null)

emergency_group := data.gates.emergency_group

emergency_approved if {
	is_object(emergency)
	is_object(input.emergency_approval)
}

emergency_approved if {
	is_object(emergency)
	input.emergency_pending == true
}

# approved_by says who approved the break-glass, or that a preview
# assumes the approval.
approved_by := sprintf("%s (%s)", [input.emergency_approval.name, emergency_group]) if {
	is_object(input.emergency_approval)
} else := sprintf("a member of %s at the emergency gate, once approved", [emergency_group])

# skip_stages names a stage of the rollout, or a required stage by its
# name or one of its aliases, whether the rollout files it or not.
skip_requested := {lower(s) | some s in lib.list(emergency, "skip_stages")}

skip_names(req) := {lower(req), lower(object.get(stage_for, req, {"name": req}).name)} | {lower(a) | some a in aliases(req)}

# skipped: the required stages an approved emergency skips.
skipped contains req if {
	some req in required_stages
	count(skip_names(req) & skip_requested) > 0
	emergency_approved
}

# skipped_steps: the rollout's own stages the workflow does not run, the
# required ones skipped and any other the emergency names.
skipped_steps contains s.name if {
	emergency_approved
	some s in stages
	lower(s.name) in skip_requested
}

skipped_steps contains stage_for[req].name if some req in skipped

violations contains {"code": "unknown_skip_stage", "msg": msg} if {
	some name in skip_requested
	not name in {lower(s.name) | some s in stages}
	not name in {n | some req in required_stages; some n in skip_names(req)}
	msg := sprintf("skip_stages names %q, which is neither a stage of the rollout (%v) nor a required stage (%v)", [
		name,
		[s.name | some s in stages], sort(required_stages),
	])
}

violations contains {"code": "missing_stage", "msg": msg} if {
	some req in required_stages
	not stage_for[req]
	not skipped[req]
	msg := sprintf("a %s patch requires the %s stage (names: %v); only an emergency approved by %s may skip it", [severity, req, aliases(req), emergency_group])
}

violations contains {"code": "emergency_not_approved", "msg": msg} if {
	is_object(emergency)
	not emergency_approved
	msg := sprintf("emergency break-glass %q is not approved: a member of %s other than the filer approves it at the rollout's emergency gate (patchway approve ROLLOUT emergency)", [object.get(emergency, "reason", ""), emergency_group])
}

min_soak(req) := round(data.plan.min_soak_hours[severity][req] * lib.hour_ns) if {
	data.plan.min_soak_hours[severity][req]
} else := 0

soak(s) := object.get(s, "soak", 0)

# A patch for a CVE used in ransomware campaigns (KEV) may soak less than
# the minimum, down to none, where data.plan says so.
min_soak_waived if {
	count(sla.kev_ransomware) > 0
	data.plan.kev_ransomware_waives_min_soak == true
}

violations contains {"code": "soak_too_short", "msg": msg} if {
	not min_soak_waived
	some req, s in stage_for
	not req in skipped
	soak(s) < min_soak(req)
	msg := sprintf("stage %s soaks %s; a %s patch needs at least %s", [s.name, lib.duration(soak(s)), severity, lib.duration(min_soak(req))])
}

violations contains {"code": "step_exceeds_max", "msg": msg} if {
	some req, s in stage_for
	not req in skipped
	limit := sla.step_max[req]
	soak(s) > limit
	msg := sprintf("stage %s soaks %s, over the %s maximum of %s for a %s patch", [s.name, lib.duration(soak(s)), req, lib.duration(limit), severity])
}

run_stages := [s | some s in stages; not s.name in skipped_steps]

# A running rollout decided again (a threat update) sends the soaks still
# ahead: input.soak_left names each stage not yet done with the soak it
# has left. At filing every stage that runs soaks in full.
redecided if input.current_deadline

soak_left[s.name] := soak(s) if {
	not redecided
	some s in run_stages
}

soak_left[e.stage] := e.left if {
	redecided
	some e in lib.list(input, "soak_left")
}

remaining_soak := sum([t | some t in soak_left])

# Time left for the soaks: from now (or the SLA start, if later) to the
# deadline.
available := sla.deadline - max([sla.now, sla.start])

# When a running rollout's deadline tightens so that the soaks still ahead
# take more than data.plan.shrink_soaks.share of the time left, each
# shrinks in proportion to fit that share, never below its stage's
# minimum (none where the minimums are waived) and never longer than it
# was. The waves keep the rest of the time.
soak_budget := round(available * object.get(data.plan, ["shrink_soaks", "share"], 0))

shrink if {
	redecided
	soak_budget > 0
	remaining_soak > soak_budget
}

soak_floor(name) := 0 if {
	min_soak_waived
} else := min_soak(req) if {
	some req, s in stage_for
	s.name == name
} else := 0

soaks[name] := min([t, max([soak_floor(name), round((t * soak_budget) / remaining_soak)])]) if {
	shrink
	some name, t in soak_left
}

soaks[name] := t if {
	not shrink
	some name, t in soak_left
}

total_soak := sum([t | some t in soaks])

soak_terms(soak_of) := [sprintf("%s %s", [s.name, lib.duration(soak_of[s.name])]) |
	some s in run_stages
	soak_of[s.name]
]

violations contains {"code": "soak_exceeds_sla", "msg": msg} if {
	total_soak > available
	terms := soak_terms(soaks)
	msg := sprintf("stage soaks %s = %s exceed the %s left before the %s deadline %s (SLA %s); shorten the soaks or file an emergency", [concat(" + ", terms), lib.duration(total_soak), lib.duration(available), severity, time.format(sla.deadline), lib.duration(sla.sla_ns)])
}

reasons contains sprintf("%s stage skipped by emergency break-glass approved by %s", [req, approved_by]) if {
	some req in skipped
}

reasons contains sprintf("stage %s skipped by emergency break-glass approved by %s", [name, approved_by]) if {
	some name in skipped_steps
	not lower(name) in {lower(req) | some req in skipped}
}

reasons contains sprintf("soak minimums waived: %s is used in ransomware campaigns (KEV)", [concat(", ", sort(sla.kev_ransomware))]) if min_soak_waived

reasons contains sprintf("stage soaks total %s of the %s left before the deadline", [lib.duration(total_soak), lib.duration(available)]) if {
	not redecided
	total_soak <= available
}

reasons contains sprintf("the soaks still ahead total %s of the %s left before the deadline", [lib.duration(total_soak), lib.duration(available)]) if {
	redecided
	not shrink
	total_soak <= available
}

reasons contains sprintf("the soaks still ahead (%s = %s) shrink to fit %v%% of the %s left before the deadline: %s", [
	concat(" + ", soak_terms(soak_left)), lib.duration(remaining_soak),
	data.plan.shrink_soaks.share * 100, lib.duration(available),
	concat(", ", [sprintf("%s %s -> %s", [s.name, lib.duration(soak_left[s.name]), lib.duration(soaks[s.name])]) |
		some s in run_stages
		soaks[s.name] < soak_left[s.name]
	]),
]) if shrink

reasons contains sprintf("stage %s soaks at least its minimum %s", [name, lib.duration(t)]) if {
	shrink
	some name, t in soaks
	t == soak_floor(name)
	t > 0
	t < soak_left[name]
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"required_stages": [r | some r in required_stages],
	"skipped_stages": sort(skipped),
	"skipped_steps": sort(skipped_steps),
	"total_soak": total_soak,
	"soaks": soaks,
	"sla": sla.sla_ns,
	"deadline": time.format(sla.deadline),
	"reasons": sort(reasons),
}
