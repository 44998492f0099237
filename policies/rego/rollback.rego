# METADATA
# title: Rollback
# description: |
#   The state of one host after a rollback (uninstall, then a reboot where
#   the reboot policy requires one, then a scan). A host is rolled_back
#   only on proof: the update no longer listed nor installed, and every
#   file that proved the fix back below its fixed version. An uninstall
#   waiting for its reboot is pending_reboot; an update still listed, or a
#   file still at the fixed version after the reboot, is failed; evidence
#   that cannot decide is unknown.
package patchway.rollback

import data.patchway.compliance

kb := compliance.kb

# The packages that name the KB and still hold it in place.
held_by_package contains st if {
	some st in compliance.package_states
	st in {"Installed", "InstallPending", "UninstallPending"}
}

uninstall_pending if "UninstallPending" in compliance.package_states

reboot_flags contains "CBS RebootPending" if input.scan.reboot.cbs_reboot_pending == true

reboot_flags contains "WindowsUpdate RebootRequired" if input.scan.reboot.wu_reboot_required == true

reboot_flags contains "package state UninstallPending" if uninstall_pending

# files_below: every evidence file is reported, exists and is below the
# version that proves the fix.
files_below if {
	count(compliance.file_checks) > 0
	every c in compliance.file_checks {
		c.scanned.exists == true
		patchway.version_compare(c.scanned.version, c.file.min_version) < 0
	}
}

still_fixed := [sprintf("%s is %s, at or above the fixed %s", [c.file.path, c.scanned.version, c.file.min_version]) |
	some c in compliance.file_checks
	c.ok
]

file_versions := [sprintf("%s %s", [c.file.path, c.scanned.version]) | some c in compliance.file_checks]

precedence := ["identity_mismatch", "unreachable", "unknown", "pending_reboot", "rolled_back", "failed"]

reasons["identity_mismatch"] := compliance.identity_mismatch

reasons["unreachable"] := compliance.unreachable

reasons["unknown"] := "no scan evidence: whether the rollback took effect is unknown" if {
	not is_object(input.scan)
} else := concat("; ", sort(compliance.unknown_reasons)) if {
	count(compliance.unknown_reasons) > 0
}

reasons["pending_reboot"] := sprintf("uninstall of %s waits for a reboot: %s", [kb, concat(", ", sort(reboot_flags))]) if {
	count(reboot_flags) > 0
}

reasons["rolled_back"] := sprintf("rolled back: %s no longer listed nor installed, %d file(s) back below the fixed version (%s)", [
	kb,
	count(compliance.file_checks), concat(", ", file_versions),
]) if {
	count(held_by_package) == 0
	not compliance.hotfix_id in compliance.hotfixes
	files_below
}

reasons["failed"] := sprintf("the rollback did not take effect: %s", [concat("; ", problems)]) if {
	problems := array.concat(
		[sprintf("%s is still listed by Get-HotFix", [compliance.hotfix_id]) | compliance.hotfix_id in compliance.hotfixes],
		array.concat(still_fixed, [sprintf("a servicing package of %s is %s", [kb, st]) | some st in held_by_package]),
	)
	count(problems) > 0
}

default state := "unknown"

state := [s | some s in precedence; reasons[s]][0]

reason := object.get(reasons, state, "no rule of the rollback policy decided this host")

decision := {
	"allow": state == "rolled_back",
	"violations": [{"code": state, "msg": reason} | state != "rolled_back"],
	"state": state,
	"reasons": array.concat([reason], [n | some n in {compliance.reboot_not_taken}]),
}
