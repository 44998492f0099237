# METADATA
# title: SLA
# description: |
#   The deadline of a rollout by severity (data.sla.hours), counted from the
#   patch's publication or the rollout's filing, whichever is later; risk
#   factors that tighten it; CISA's catalogue of known exploited
#   vulnerabilities (data.kev, from `patchway threat import`), whose due
#   date caps it and whose ransomware use tightens it; per-step maximum
#   durations; milestones.
package patchway.sla

import data.patchway.lib

now := time.parse_rfc3339_ns(input.now)

severity := input.rollout.patch.severity

known_severity if data.sla.hours[severity]

# An unknown severity gets the strictest SLA (and a violation).
base_hours := data.sla.hours[severity] if known_severity

else := min([h | some h in data.sla.hours])

published := lib.ts(input.rollout.patch.published)

# A rollout not yet filed is counted as filed now.
filed := t if {
	t := lib.ts(input.rollout.filed_at)
} else := now

start_candidates contains filed

start_candidates contains published

start := max(start_candidates)

start_reason := sprintf("counted from publication at %s (filed at %s)", [time.format(start), time.format(filed)]) if {
	start == published
	start != filed
} else := sprintf("counted from filing at %s, later than publication", [time.format(start)]) if {
	published
} else := sprintf("counted from filing at %s (no publication date)", [time.format(start)])

tighten_factors[reason] := f if {
	some reason in ["worm_in_the_wild", "exploited", "exploit_public"]
	input.rollout.risk[reason] == true
	f := data.sla.tighten[reason]
}

exposure := object.get(object.get(input.rollout, "risk", {}), "exposure", "")

raw_exposure_factor := object.get(data.sla.exposure_factor, exposure, 1)

# Exposure may loosen a deadline, except for the severities in never_loosen.
exposure_factor := min([raw_exposure_factor, 1]) if severity in data.sla.never_loosen

else := raw_exposure_factor

# Any tightening risk wins over exposure: the smallest tightening applies.
factor := min([f | some f in tighten_factors]) if count(tighten_factors) > 0

else := exposure_factor

severity_sla_ns := round((base_hours * lib.hour_ns) * factor)

# The patch's CVEs that CISA's KEV catalogue lists, with their entries.
kev_listed[cve] := entry if {
	some c in lib.list(input.rollout.patch, "cves")
	cve := upper(c)
	entry := data.kev.vulnerabilities[cve]
}

# A KEV entry is due by the end of its dueDate (UTC), the date CISA's
# directive sets.
kev_due[cve] := time.parse_rfc3339_ns(sprintf("%sT23:59:59Z", [e.due_date])) if some cve, e in kev_listed

kev_first_due := min([t | some t in kev_due]) if count(kev_due) > 0

# A due date at or before the SLA's start: the fleet is already overdue,
# and the rollout gets data.sla.kev.overdue_hours (never more than its
# severity's SLA).
kev_overdue if kev_first_due <= start

kev_cap_ns := kev_first_due - start if {
	not kev_overdue
} else := round(data.sla.kev.overdue_hours * lib.hour_ns) if kev_overdue

kev_ransomware contains cve if {
	some cve, e in kev_listed
	e.ransomware == "Known"
}

ransomware_factor := data.sla.kev.ransomware_factor if count(kev_ransomware) > 0

else := 1

capped_sla_ns := min([severity_sla_ns, kev_cap_ns]) if kev_cap_ns

else := severity_sla_ns

tightened_sla_ns := round(capped_sla_ns * ransomware_factor)

# A running rollout decided again (a threat update) keeps its deadline
# when the new facts would give a later one: new facts only tighten.
current_deadline := lib.ts(input.current_deadline)

sla_ns := min([tightened_sla_ns, current_deadline - start]) if current_deadline

else := tightened_sla_ns

deadline := start + sla_ns

milestone(p, breach) := {
	"at_percent": p,
	"at": time.format(round(start + ((sla_ns * p) / 100))),
	"breach": breach,
}

# After-breach steps of the rollout's own escalation ladder become
# milestones above 100 %.
after_breach_percents contains p if {
	some step in lib.list(input.rollout, "escalation")
	object.get(step, "after_breach", 0) > 0
	p := 100 + ((step.after_breach * 100) / sla_ns)
}

milestones := [milestone(p, p >= 100) | some p in sort({p | some p in data.sla.milestones} | after_breach_percents)]

step_hours := data.sla.step_max_hours[severity] if data.sla.step_max_hours[severity]

else := data.sla.step_max_hours["default"]

step_max := {step: round(h * lib.hour_ns) | some step, h in step_hours}

reasons contains sprintf("%s SLA %s %s", [severity, lib.duration(sla_ns), start_reason]) if known_severity

reasons contains sprintf("%s tightens the SLA by a factor of %v", [reason, f]) if {
	some reason, f in tighten_factors
	f == factor
}

reasons contains sprintf("%s exposure loosens the SLA by a factor of %v", [exposure, factor]) if {
	count(tighten_factors) == 0
	factor > 1
}

reasons contains sprintf("%s exposure never loosens a %s SLA (factor %v ignored)", [exposure, severity, raw_exposure_factor]) if {
	raw_exposure_factor > 1
	exposure_factor == 1
}

reasons contains sprintf("%s is in CISA's KEV catalogue %s (%s, added %s): due %s, so the deadline is at the latest %s", [
	cve, data.kev.catalog_version, e.name, e.date_added, e.due_date, time.format(kev_due[cve]),
]) if {
	some cve, e in kev_listed
	not kev_overdue
	kev_due[cve] == kev_first_due
}

reasons contains sprintf("%s is in CISA's KEV catalogue %s (%s, added %s): due %s, already past at the SLA start; overdue, the SLA is at most %s", [
	cve, data.kev.catalog_version, e.name, e.date_added, e.due_date, lib.duration(kev_cap_ns),
]) if {
	some cve, e in kev_listed
	kev_overdue
	kev_due[cve] == kev_first_due
}

reasons contains sprintf("the deadline stays at %s: a decision on new facts never moves it later (they would give %s)", [time.format(current_deadline), time.format(start + tightened_sla_ns)]) if {
	current_deadline
	current_deadline - start < tightened_sla_ns
}

reasons contains sprintf("%s is used in ransomware campaigns (KEV knownRansomwareCampaignUse Known): the SLA tightens by a factor of %v", [cve, ransomware_factor]) if {
	some cve in kev_ransomware
}

violations contains {"code": "unknown_severity", "msg": msg} if {
	not known_severity
	msg := sprintf("severity %q is not one of %v; the strictest SLA (%dh) applies", [severity, object.keys(data.sla.hours), base_hours])
}

violations contains {"code": "missing_published", "msg": "the patch has no publication time; the SLA counts from filing"} if {
	not published
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"severity": severity,
	"sla": sla_ns,
	"start": time.format(start),
	"deadline": time.format(deadline),
	"milestones": milestones,
	"step_max": step_max,
	"kev": sort(object.keys(kev_listed)),
	"kev_ransomware": sort(kev_ransomware),
	"reasons": sort(reasons),
}
