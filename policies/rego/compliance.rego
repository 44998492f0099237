# METADATA
# title: Compliance
# description: |
#   The state of one host (DESIGN.md §4) from its evidence. A host is
#   compliant only when every patched file is at or above its expected
#   version (checksum where given), the hotfix or a superseding update is
#   present, no reboot is pending and the host booted after the install.
#   Missing evidence is unknown, never compliant.
package patchway.compliance

import data.patchway.lib

now := time.parse_rfc3339_ns(input.now)

patch := input.patch

scan := input.scan

kb := upper(patch.kb)

hotfix_id := upper(patch.evidence.hotfix) if {
	patch.evidence.hotfix != ""
} else := kb

# Exceptions hold only until they expire.
exception_active if lib.ts(input.exception.expires) > now

exception_expired if lib.ts(input.exception.expires) <= now

packages := object.get(patch, "packages", [])

package_for_os if {
	some p in packages
	lower(p.os) == lower(input.host.os)
}

not_applicable if {
	count(packages) > 0
	not package_for_os
}

scan_present if is_object(scan)

scan_files := {lower(f.path): f | some f in object.get(scan, "files", [])}

# The files that prove the fix on this host: those for its OS or for every
# OS (each OS ships its own file version).
expected_files := [f |
	some f in object.get(patch.evidence, "files", [])
	host_oses[object.get(f, "os", "")]
]

host_oses := {"", input.host.os}

# file_checks judges each expected file against the scan, once.
file_checks := [{"file": f, "scanned": scanned, "state": file_state(f, scanned)} |
	some f in expected_files
	scanned := object.get(scan_files, lower(f.path), null)
]

# file_state: the common case (file present with a comparable version) is
# decided first; the else branches name what is missing.
file_state(f, scanned) := version_state(f, scanned, lib.version_compare(scanned.version, f.min_version)) if {
	scanned.exists == true
} else := "no_evidence" if {
	scanned == null
} else := "missing" if {
	scanned.exists == false
} else := "no_version" if {
	object.get(scanned, "version", "") == ""
} else := "bad_version"

version_state(f, scanned, c) := "ok" if {
	c > 0
} else := "below" if {
	c < 0
} else := "ok" if {
	object.get(f, "sha256", "") == ""
} else := "ok" if {
	lower(f.sha256) == lower(object.get(scanned, "sha256", ""))
} else := "checksum_mismatch"

files_ok if {
	count(expected_files) > 0
	every fs in file_checks {
		fs.state == "ok"
	}
}

hotfix_present if {
	some h in object.get(scan, "hotfixes", [])
	upper(h.id) == hotfix_id
}

package_installed if {
	some p in object.get(scan, "packages", [])
	contains(upper(p.name), kb)
	p.state == "Installed"
}

package_pending if {
	some p in object.get(scan, "packages", [])
	contains(upper(p.name), kb)
	p.state == "InstallPending"
}

installed if hotfix_present

installed if package_installed

installed_at := lib.ts(input.installed_at)

# Something of this patch is on the host (or this rollout installed it).
touched if installed

touched if package_pending

touched if installed_at

# Updates that supersede this one: data.supersedence maps a KB to the later
# updates whose files contain its fix.
superseders := {upper(s) | some s in object.get(data.supersedence, kb, [])}

superseders_present := sort({id |
	some h in object.get(scan, "hotfixes", [])
	id := upper(h.id)
	id in superseders
})

superseded_by := superseders_present[0] if count(superseders_present) > 0

boot := lib.ts(scan.last_boot_up_time)

reboot_flags contains "CBS RebootPending" if scan.reboot.cbs_reboot_pending == true

reboot_flags contains "WindowsUpdate RebootRequired" if scan.reboot.wu_reboot_required == true

reboot_flags contains "package state InstallPending" if package_pending

reboot_flags contains sprintf("last boot %s is before the install at %s", [time.format(boot), time.format(installed_at)]) if {
	boot < installed_at
}

pending_rename if scan.reboot.pending_file_rename == true

# Reasons the evidence cannot decide.
unknown_reasons contains "the patch declares no file evidence; a hotfix or registry key alone never proves compliance" if {
	count(expected_files) == 0
}

unknown_reasons contains sprintf("%s: %s", [fs.file.path, text]) if {
	some fs in file_checks
	fs.state != "ok"
	text := unknown_texts[fs.state]
}

unknown_reasons contains sprintf("%s: version %q is not numeric dotted", [fs.file.path, fs.scanned.version]) if {
	some fs in file_checks
	fs.state == "bad_version"
}

unknown_texts := {"no_evidence": "not reported by the scan", "no_version": "no file version reported"}

unknown_reasons contains sprintf("no boot time reported; cannot prove a boot after the install at %s", [time.format(installed_at)]) if {
	installed_at
	not boot
}

# verdict is the host's state with the reason that decided it, checked in
# order of precedence.
verdict := {"state": "excepted", "reason": sprintf("excepted until %s: %s", [input.exception.expires, object.get(input.exception, "reason", "")])} if {
	exception_active
} else := {"state": "not_applicable", "reason": sprintf("no package of %s for OS %q", [kb, input.host.os])} if {
	not_applicable
} else := {"state": "unreachable", "reason": "host unreachable: no evidence gathered"} if {
	not input.reachable
} else := {"state": "unknown", "reason": "no scan evidence: the host's state is unknown"} if {
	not scan_present
} else := {"state": "unknown", "reason": concat("; ", sort(unknown_reasons))} if {
	count(unknown_reasons) > 0
} else := {"state": "pending_reboot", "reason": sprintf("%s installed but a reboot is pending: %s", [kb, concat(", ", sort(reboot_flags))])} if {
	touched
	count(reboot_flags) > 0
} else := {"state": "compliant", "reason": sprintf("%d file(s) at or above expected versions, %s present, no reboot pending%s", [count(expected_files), hotfix_id, boot_clause])} if {
	files_ok
	installed
} else := {
	"state": "compliant",
	"reason": sprintf("superseded by %s: files at or above expected versions because %s, a later update that supersedes %s, is installed", [superseded_by, superseded_by, kb]),
	"superseded_by": superseded_by,
} if {
	files_ok
	superseded_by
} else := {"state": "unknown", "reason": sprintf("files at or above expected versions but neither %s nor a known superseding update is installed (declare it in data.supersedence)", [kb])} if {
	files_ok
} else := {"state": "not_effective", "reason": sprintf("%s is present but the fix is not in effect: %s", [hotfix_id, concat("; ", file_problems)])} if {
	installed
} else := {"state": "not_effective", "reason": sprintf("installed at %s but neither %s nor the new files are present: %s", [input.installed_at, hotfix_id, concat("; ", file_problems)])} if {
	touched
} else := {"state": "pending", "reason": sprintf("%s not installed: %s", [kb, concat("; ", file_problems)])}

state := verdict.state

file_problems := [sprintf("%s is %s", [fs.file.path, file_problem(fs)]) | some fs in file_checks; fs.state != "ok"]

file_problem(fs) := "missing" if {
	fs.state == "missing"
} else := sprintf("%s with SHA-256 %s, expected %s", [
	fs.scanned.version,
	object.get(fs.scanned, "sha256", "unknown"), fs.file.sha256,
]) if {
	fs.state == "checksum_mismatch"
} else := sprintf("%s, below %s", [fs.scanned.version, fs.file.min_version])

boot_clause := sprintf(", booted at %s after the install", [time.format(boot)]) if installed_at

else := ""

notes contains "PendingFileRenameOperations is set but ignored: every other signal is clean and the host booted after the install (a known false positive from other software)" if {
	state == "compliant"
	pending_rename
}

notes contains "PendingFileRenameOperations is also set" if {
	state == "pending_reboot"
	pending_rename
}

notes contains sprintf("exception expired at %s; judged on evidence", [input.exception.expires]) if exception_expired

decision := {
	"allow": state == "compliant",
	"violations": [{"code": state, "msg": verdict.reason} | state != "compliant"],
	"state": state,
	"reasons": array.concat([verdict.reason], sort(notes)),
	"superseded_by": object.get(verdict, "superseded_by", ""),
}
