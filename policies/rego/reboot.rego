# METADATA
# title: Reboot
# description: |
#   May host H reboot now? A required reboot must happen before the host
#   counts compliant; only inside its window unless the SLA breach is near
#   and policy allows it (or escalation granted reboot_outside_window); at
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

default required := false

required if patch.reboot == "required"

required if input.reboot_pending == true

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

violations contains {"code": "reboot_not_required", "msg": sprintf("%s declares reboot %q and no reboot is pending on %s", [object.get(patch, "kb", ""), object.get(patch, "reboot", ""), name])} if {
	not required
}

violations contains {"code": "laptop_not_checked_in", "msg": sprintf("%s is a %s: it reboots at its next check-in, and has not checked in", [name, role])} if {
	required
	checkin_host
	object.get(input, "checked_in", false) != true
}

violations contains {"code": "outside_window", "msg": msg} if {
	required
	not checkin_host
	not in_window
	not outside_window_allowed
	msg := sprintf("%s is outside its maintenance window (next opens %s) and the SLA breach is not within %vh", [name, time.format(lib.next_window_open(input.window, tz, now)), data.reboot.breach_near_hours])
}

violations contains {"code": "site_reboot_limit", "msg": msg} if {
	required
	site_in_flight >= site_limit
	msg := sprintf("%d hosts of site %s are already rebooting; the limit is %d", [site_in_flight, site, site_limit])
}

violations contains {"code": "one_per_site", "msg": msg} if {
	required
	role in data.reboot.one_per_site_roles
	some h in others
	h.site == site
	h.role == role
	msg := sprintf("%s %s of site %s is already rebooting; only one %s per site at a time", [role, h.name, site, role])
}

violations contains {"code": "cluster_member_rebooting", "msg": msg} if {
	required
	object.get(host, "cluster", "") != ""
	some h in others
	object.get(h, "cluster", "") == host.cluster
	msg := sprintf("%s of cluster %s is already rebooting; one member per cluster at a time", [h.name, host.cluster])
}

default outside_window := false

outside_window if {
	required
	not checkin_host
	not in_window
	outside_window_allowed
}

reasons contains sprintf("reboot outside the window allowed: the deadline %s is within %vh", [time.format(deadline), data.reboot.breach_near_hours]) if {
	outside_window
	breach_near
}

reasons contains "reboot outside the window granted by escalation (reboot_outside_window)" if {
	outside_window
	"reboot_outside_window" in lib.list(input, "accelerations")
}

reasons contains sprintf("%s reboots now, at its check-in", [name]) if {
	required
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
