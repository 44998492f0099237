package patchway.reboot_test

import data.patchway.reboot

# Monday 2026-11-23, 10:00 UTC.
now := "2026-11-23T10:00:00Z"

night := {"days": [0, 1, 2, 3, 4, 5, 6], "start": 1320, "end": 360}

host(name, site, role, cluster) := {"name": name, "site": site, "role": role, "cluster": cluster}

base := {
	"host": host("web1", "paris", "web", ""),
	"patch": {"kb": "KB958644", "reboot": "required"},
	"deadline": "2026-11-30T10:00:00Z",
	"now": now,
}

decide(over) := d if {
	d := reboot.decision with input as object.union(base, over)
}

codes(d) := {v.code | some v in d.violations}

test_required_reboot_without_limits_is_allowed if {
	d := decide({})
	d.allow
	d.required
	not d.outside_window
}

test_no_reboot_needed_is_refused if {
	d := decide({"patch": {"reboot": "never"}})
	not d.allow
	not d.required
	codes(d) == {"reboot_not_required"}
}

test_pending_reboot_makes_a_may_patch_reboot if {
	d := decide({"patch": {"reboot": "may"}, "reboot_pending": true})
	d.allow
	d.required
}

test_outside_window_is_refused_with_the_next_opening if {
	d := decide({"window": night})
	not d.allow
	codes(d) == {"outside_window"}
	contains(d.violations[0].msg, "next opens 2026-11-23T22:00:00Z")
}

test_inside_window_is_allowed if {
	decide({"window": night, "now": "2026-11-23T23:30:00Z"}).allow
}

test_window_in_the_sites_zone if {
	# 10:00 UTC is 19:00 in Tokyo.
	decide({"window": {"start": 1080, "end": 1200}, "time_zone": "Asia/Tokyo"}).allow
}

test_near_breach_allows_reboot_outside_window if {
	d := decide({"window": night, "deadline": "2026-11-23T14:00:00Z"})
	d.allow
	d.outside_window
	d.reasons == [
		"reboot needed: the patch declares reboot required",
		"reboot outside the window allowed: the deadline 2026-11-23T14:00:00Z is within 6h",
	]
}

test_near_breach_policy_can_be_switched_off if {
	d := reboot.decision with input as object.union(base, {"window": night, "deadline": "2026-11-23T14:00:00Z"})
		with data.reboot.outside_window_when_breach_near as false
	not d.allow
}

test_escalation_grants_reboot_outside_window if {
	d := decide({"window": night, "accelerations": ["reboot_outside_window"]})
	d.allow
	d.reasons == [
		"reboot needed: the patch declares reboot required",
		"reboot outside the window granted by escalation (reboot_outside_window)",
	]
}

test_site_limit_counts_other_hosts_in_flight if {
	busy := [host(sprintf("w%d", [i]), "paris", "web", "") | some i in numbers.range(1, 5)]
	d := decide({"in_flight": busy})
	not d.allow
	codes(d) == {"site_reboot_limit"}
	decide({"in_flight": array.slice(busy, 0, 4)}).allow
}

test_the_host_itself_in_flight_does_not_count if {
	decide({"in_flight": [host("web1", "paris", "web", "")]}).allow
}

test_site_limit_override_in_data if {
	d := reboot.decision with input as object.union(base, {"in_flight": [host("w2", "paris", "web", "")]})
		with data.reboot.site_limits as {"paris": 1}
	codes(d) == {"site_reboot_limit"}
}

test_one_domain_controller_per_site if {
	d := decide({"host": host("dc1", "paris", "domain_controller", ""), "in_flight": [host("dc2", "paris", "domain_controller", "")]})
	codes(d) == {"one_per_site"}
	decide({"host": host("dc1", "paris", "domain_controller", ""), "in_flight": [host("dc3", "lyon", "domain_controller", "")]}).allow
}

test_one_member_per_cluster if {
	d := decide({"host": host("sql1", "paris", "sql", "sqlc"), "in_flight": [host("sql2", "lyon", "sql", "sqlc")]})
	codes(d) == {"cluster_member_rebooting"}
	decide({"host": host("sql1", "paris", "sql", "sqlc"), "in_flight": [host("web9", "paris", "web", "")]}).allow
}

test_laptop_reboots_at_check_in_not_in_window if {
	laptop := host("lt1", "paris", "laptop", "")
	away := decide({"host": laptop, "window": night})
	codes(away) == {"laptop_not_checked_in"}
	back := decide({"host": laptop, "window": night, "checked_in": true})
	back.allow
	back.reasons == ["lt1 reboots now, at its check-in", "reboot needed: the patch declares reboot required"]
}

test_missing_patch_and_host_facts_never_allow_a_reboot if {
	d := reboot.decision with input as {"now": now}
	not d.allow
	codes(d) == {"reboot_not_required"}
}

facts(f) := d if {
	d := reboot.decision with input as object.union(base, {"patch": {"reboot": "may"}, "facts": f})
}

test_a_may_patch_is_admitted_with_the_reboot_rules if {
	d := decide({"patch": {"reboot": "may"}})
	d.allow
	not d.required
	codes(decide({"patch": {"reboot": "may"}, "window": night})) == {"outside_window"}
}

test_installer_exit_codes_make_the_reboot_needed if {
	d := facts({"installer_exit_code": 3010})
	d.required
	d.allow
	"reboot needed: the installer exited 3010" in d.reasons
	facts({"installer_exit_code": 1641}).required
	not facts({"installer_exit_code": 0}).required
}

test_pending_evidence_makes_the_reboot_needed if {
	facts({"cbs_reboot_pending": true}).required
	facts({"wu_reboot_required": true}).required
	d := facts({"cbs_reboot_pending": true}) with data.reboot.pending_evidence as ["wu_reboot_required"]
	not d.required
	codes(d) == {"reboot_not_required"}
}

test_exit_codes_come_from_data if {
	d := facts({"installer_exit_code": 3010}) with data.reboot.pending_exit_codes as [1641]
	not d.required
}

test_a_rebooted_host_needs_no_more_reboot if {
	not facts({"installer_exit_code": 3010, "rebooted": true}).required
}

test_a_required_patch_installed_this_run_needs_its_reboot if {
	d := decide({"facts": {"installed_this_run": true}})
	d.required
	not decide({"facts": {"installed_this_run": false}}).required
}
