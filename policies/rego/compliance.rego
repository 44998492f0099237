# METADATA
# title: Compliance
# description: |
#   The state of one host (DESIGN.md §4) from its evidence. A host is
#   compliant only when every patched file is at or above its expected
#   version (checksum where given), the hotfix or a superseding update is
#   present, no reboot is pending and the host booted after the install.
#   Missing evidence is unknown, never compliant.
package patchway.compliance

import data.patchway.applicability
import data.patchway.exceptions

# This decision runs for every host of every scan, so its common case
# (every signal clean) is decided early and cheaply. With OPA's evaluator a
# rule or function evaluation costs about 8 µs and 20 allocations on the
# 2-core CI machine, a local variable or a builtin call about 1 µs: the
# evidence is read with few rules, and only a host that is not compliant
# pays for the classification that names what is wrong.

kb := upper(input.patch.kb)

hotfix_id := upper(input.patch.evidence.hotfix) if {
	input.patch.evidence.hotfix != ""
} else := kb

now := time.parse_rfc3339_ns(input.now)

# Exceptions hold only until they expire.
exception_active if exceptions.active

exception_expired if exceptions.expired

not_applicable if {
	count(input.patch.packages) > 0
	applicability.package_index < 0
}

scanned := {lower(f.path): f | some f in object.get(input.scan, "files", [])}

# file_checks holds each file that proves the fix on this host (the
# applicability policy's evidence_files) with the scanned file of the same
# path, and whether it proves the fix.
file_checks := [{"file": f, "scanned": s, "ok": file_ok(f, s)} |
	some i in applicability.evidence_files
	f := input.patch.evidence.files[i]
	s := object.get(scanned, lower(f.path), null)
]

# file_ok: the file exists above the expected version, or exactly at it
# with the pinned checksum if one is given.
default file_ok(_, _) := false

file_ok(f, s) if {
	s.exists == true
	patchway.version_compare(s.version, f.min_version) > 0
}

file_ok(f, s) if {
	s.exists == true
	patchway.version_compare(s.version, f.min_version) == 0
	lower(object.get(f, "sha256", "")) in {"", lower(object.get(s, "sha256", ""))}
}

files_ok if {c.ok | some c in file_checks} == {true}

# file_state names what is wrong with a file that is not ok.
file_state(f, s) := "no_evidence" if {
	s == null
} else := "missing" if {
	s.exists == false
} else := "below" if {
	s.exists == true
	patchway.version_compare(s.version, f.min_version) < 0
} else := "checksum_mismatch" if {
	s.exists == true
	patchway.version_compare(s.version, f.min_version) == 0
} else := "no_version" if {
	object.get(s, "version", "") == ""
} else := "bad_version"

failed_checks := [object.union(c, {"state": file_state(c.file, c.scanned)}) | some c in file_checks; not c.ok]

hotfixes := {upper(h.id) | some h in object.get(input.scan, "hotfixes", [])}

# The states of the packages that name the KB.
package_states := {p.state | some p in object.get(input.scan, "packages", []); contains(upper(p.name), kb)}

installed if hotfix_id in hotfixes

installed if "Installed" in package_states

package_pending if "InstallPending" in package_states

installed_at := time.parse_rfc3339_ns(input.installed_at)

# Something of this patch is on the host (or this rollout installed it).
touched if installed

touched if package_pending

touched if installed_at

# Updates that supersede this one: data.supersedence maps a KB to the later
# updates whose files contain its fix.
superseded_by := sort({upper(s) | some s in object.get(data.supersedence, kb, [])} & hotfixes)[0]

boot := time.parse_rfc3339_ns(input.scan.last_boot_up_time)

boot_missing if {
	installed_at
	not boot
}

reboot_flags contains "CBS RebootPending" if input.scan.reboot.cbs_reboot_pending == true

reboot_flags contains "WindowsUpdate RebootRequired" if input.scan.reboot.wu_reboot_required == true

reboot_flags contains "package state InstallPending" if package_pending

reboot_flags contains sprintf("last boot %s is before the install at %s", [time.format(boot), time.format(installed_at)]) if {
	boot < installed_at
}

pending_rename if input.scan.reboot.pending_file_rename == true

# Reasons the evidence cannot decide.
unknown_reasons contains "the patch declares no file evidence; a hotfix or registry key alone never proves compliance" if {
	count(file_checks) == 0
}

unknown_reasons contains sprintf("%s: %s", [fs.file.path, text]) if {
	some fs in failed_checks
	text := unknown_texts[fs.state]
}

unknown_reasons contains sprintf("%s: version %q is not numeric dotted", [fs.file.path, fs.scanned.version]) if {
	some fs in failed_checks
	fs.state == "bad_version"
}

unknown_texts := {"no_evidence": "not reported by the scan", "no_version": "no file version reported"}

unknown_reasons contains sprintf("no boot time reported; cannot prove a boot after the install at %s", [time.format(installed_at)]) if {
	boot_missing
}

# verdict is the host's state with the reason that decided it, checked in
# order of precedence. The clean case comes before the unknown and
# pending-reboot ones, which it excludes: all files ok means no file is
# unknown, and the boot is known.
verdict := {"state": "excepted", "reason": exceptions.reason} if {
	exception_active
} else := {"state": "not_applicable", "reason": sprintf("no package of %s for OS %q", [kb, input.host.os])} if {
	not_applicable
} else := {"state": "unreachable", "reason": "host unreachable: no evidence gathered"} if {
	not input.reachable
} else := {"state": "unknown", "reason": "no scan evidence: the host's state is unknown"} if {
	not is_object(input.scan)
} else := {"state": "compliant", "reason": sprintf("%d file(s) at or above expected versions, %s present, no reboot pending%s", [count(file_checks), hotfix_id, boot_clause])} if {
	files_ok
	installed
	not boot_missing
	count(reboot_flags) == 0
} else := {"state": "unknown", "reason": concat("; ", sort(unknown_reasons))} if {
	count(unknown_reasons) > 0
} else := {"state": "pending_reboot", "reason": sprintf("%s installed but a reboot is pending: %s", [kb, concat(", ", sort(reboot_flags))])} if {
	touched
	count(reboot_flags) > 0
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

file_problems := [sprintf("%s is %s", [fs.file.path, file_problem(fs)]) | some fs in failed_checks]

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

notes contains exceptions.reason if exception_expired

decision := {
	"allow": state == "compliant",
	"violations": [{"code": state, "msg": verdict.reason} | state != "compliant"],
	"state": state,
	"reasons": array.concat([verdict.reason], sort(notes)),
	"superseded_by": object.get(verdict, "superseded_by", ""),
}
