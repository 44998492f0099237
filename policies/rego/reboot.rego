# METADATA
# title: Reboot
# description: |
#   Does host H need a reboot, and may it reboot now? Before the install
#   the need is the patch's declared behaviour (or a reboot the host was
#   left waiting for); after it, the host's own evidence: the installer's
#   exit code (data.reboot.pending_exit_codes) and the pending-reboot flags
#   the scan found (data.reboot.pending_evidence), none once the host has
#   rebooted. A patch that "may" reboot is admitted as one that might. A
#   required reboot must happen before the host counts compliant; a reboot
#   happens only inside the window unless the SLA breach is near and
#   policy allows it (or escalation granted reboot_outside_window); at
#   most N concurrent reboots per site; one domain controller per site at a
#   time; one member per cluster; laptops at their next check-in.
package patchway.reboot

import data.patchway.lib

now := time.parse_rfc3339_ns(input.now)

host := object.get(input, "host", {})

patch := object.get(input, "patch", {})

name := object.get(host, "name", "")

role := object.get(host, "role", "")

site := object.get(host, "site", "")

# facts are what PatchHost saw on the host after the install; absent at
# admission, before the host starts.
has_facts if is_object(input.facts)

facts := object.get(input, "facts", {})

# need lists why the host needs a reboot.
need contains "the patch declares reboot required" if {
	not has_facts
	patch.reboot == "required"
}

need contains "a reboot is pending from an earlier attempt" if input.reboot_pending == true

need contains "the patch declares reboot required and was installed in this run" if {
	patch.reboot == "required"
	object.get(facts, "installed_this_run", false) == true
}

need contains sprintf("the installer exited %d", [code]) if {
	code := object.get(facts, "installer_exit_code", 0)
	code in data.reboot.pending_exit_codes
}

need contains sprintf("the scan found %s", [flag]) if {
	some flag in data.reboot.pending_evidence
	object.get(facts, flag, false) == true
}

default required := false

required if {
	count(need) > 0
	object.get(facts, "rebooted", false) != true
}

# may_need: admission weighs the reboot rules for a host that might need
# a reboot, so a "may" patch whose installer asks for one can have it.
may_need if required

may_need if {
	not has_facts
	patch.reboot == "may"
}

checkin_host if role in data.reboot.checkin_roles

has_window if is_object(input.window)

tz := lib.zone(input.window, object.get(input, "time_zone", "")) if has_window

in_window if not has_window

in_window if lib.window_open(input.window, tz, now)

deadline := lib.ts(input.deadline)

breach_near if deadline - now <= data.reboot.breach_near_hours * lib.hour_ns

outside_window_allowed if {
	breach_near
	data.reboot.outside_window_when_breach_near == true
}

outside_window_allowed if "reboot_outside_window" in lib.list(input, "accelerations")

# Hosts already rebooting, other than this one.
others := [h | some h in lib.list(input, "in_flight"); h.name != name]

site_limit := data.reboot.site_limits[site] if data.reboot.site_limits[site]

else := data.reboot.max_concurrent_per_site

site_in_flight := count([h | some h in others; h.site == site])

violations contains {"code": "reboot_not_required", "msg": msg} if {
	not may_need
	msg := sprintf("%s declares reboot %q and no reboot is pending on %s", [object.get(patch, "kb", ""), object.get(patch, "reboot", ""), name])
}

violations contains {"code": "laptop_not_checked_in", "msg": sprintf("%s is a %s: it reboots at its next check-in, and has not checked in", [name, role])} if {
	may_need
	checkin_host
	object.get(input, "checked_in", false) != true
}

violations contains {"code": "outside_window", "msg": msg} if {
	may_need
	not checkin_host
	not in_window
	not outside_window_allowed
	msg := sprintf("%s is outside its maintenance window (next opens %s) and the SLA breach is not within %vh", [name, time.format(lib.next_window_open(input.window, tz, now)), data.reboot.breach_near_hours])
}

violations contains {"code": "site_reboot_limit", "msg": msg} if {
	may_need
	site_in_flight >= site_limit
	msg := sprintf("%d hosts of site %s are already rebooting; the limit is %d", [site_in_flight, site, site_limit])
}

violations contains {"code": "one_per_site", "msg": msg} if {
	may_need
	role in data.reboot.one_per_site_roles
	some h in others
	h.site == site
	h.role == role
	msg := sprintf("%s %s of site %s is already rebooting; only one %s per site at a time", [role, h.name, site, role])
}

violations contains {"code": "cluster_member_rebooting", "msg": msg} if {
	may_need
	object.get(host, "cluster", "") != ""
	some h in others
	object.get(h, "cluster", "") == host.cluster
	msg := sprintf("%s of cluster %s is already rebooting; one member per cluster at a time", [h.name, host.cluster])
}

default outside_window := false

outside_window if {
	may_need
	not checkin_host
	not in_window
	outside_window_allowed
}

reasons contains sprintf("reboot outside the window allowed: the deadline %s is within %vh", [time.format(deadline), data.reboot.breach_near_hours]) if {
	outside_window
	breach_near
}

reasons contains sprintf("reboot needed: %s", [concat(", ", sort(need))]) if required

reasons contains "reboot outside the window granted by escalation (reboot_outside_window)" if {
	outside_window
	"reboot_outside_window" in lib.list(input, "accelerations")
}

reasons contains sprintf("%s reboots now, at its check-in", [name]) if {
	may_need
	checkin_host
	input.checked_in == true
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"required": required,
	"outside_window": outside_window,
	"reasons": sort(reasons),
}
