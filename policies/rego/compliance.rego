# METADATA
# title: Compliance
# description: |
#   The state of one host from its evidence. A host is
#   compliant only when every patched file is at or above its expected
#   version (checksum where given), the hotfix or a superseding update is
#   present, no reboot is pending and the host booted after the install.
#   Missing evidence is unknown, never compliant. Evidence from another
#   machine than the inventory's host (identity policy) is
#   identity_mismatch, whatever it shows.
package patchway.compliance

import data.patchway.applicability
import data.patchway.exceptions
import data.patchway.identity

# The rules read like the written policy, one per host state, with the
# order between them in one list. Readability wins over microseconds here:
# evaluating every state's rule costs tens of microseconds per host, a
# WinRM scan milliseconds.

kb := upper(input.patch.kb)

hotfix_id := upper(input.patch.evidence.hotfix) if {
	input.patch.evidence.hotfix != ""
} else := kb

# Exceptions hold only until they expire.
exception_active if exceptions.active

exception_expired if exceptions.expired

not_applicable_os if {
	count(input.patch.packages) > 0
	applicability.package_index < 0
}

scanned := {lower(f.path): f | some f in object.get(input.scan, "files", [])}

# file_checks holds each file that proves the fix on this host (the
# applicability policy's evidence_files) with the scanned file of the same
# path, and whether it proves the fix.
file_only_checks := [{"file": f, "scanned": s, "ok": file_ok(f, s)} |
	some i in applicability.evidence_files
	f := input.patch.evidence.files[i]
	s := object.get(scanned, lower(f.path), null)
]

# build_checks hold the OS build evidence for this host (the
# applicability policy's evidence_builds) in the shape of a file check:
# the host's CurrentBuild.UBR against the entry for its own release
# (CurrentBuild). A host of a release no entry names is not proven, and
# its check says so; one whose scan reports no build is unknown.
host_build := object.get(object.get(input, "scan", {}), "os_build", "")

host_release := split(host_build, ".")[0]

applicable_builds := [short_build(input.patch.evidence.builds[i].min_build) | some i in applicability.evidence_builds]

# short_build is build.ubr of "10.0.20348.707" or "20348.707".
short_build(b) := concat(".", array.slice(parts, count(parts) - 2, count(parts))) if parts := split(b, ".")

same_release := [b | some b in applicable_builds; split(b, ".")[0] == host_release]

build_scanned := {"exists": true, "version": host_build}

build_checks := [{"file": f, "scanned": build_scanned, "ok": false}] if {
	count(applicable_builds) > 0
	count(same_release) == 0
	f := {"path": "OS build", "min_version": concat(" or ", applicable_builds), "kind": "build", "other_release": true}
} else := [{"file": f, "scanned": build_scanned, "ok": file_ok(f, build_scanned)} |
	some b in same_release
	f := {"path": "OS build", "min_version": b, "kind": "build"}
]

file_checks := array.concat(file_only_checks, build_checks)

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
} else := "no_version" if {
	object.get(f, "kind", "") == "build"
	object.get(s, "version", "") == ""
} else := "other_release" if {
	object.get(f, "other_release", false)
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

# When the files prove the fix and this KB is absent, a later update put
# them there. It is named from the evidence: an update data.supersedence
# declares to supersede this one, if the host lists one; else the update
# the host installed last since this patch was published, leaving out the
# older updates this patch itself supersedes (patch.supersedes). With
# neither, the fix came from an installer Get-HotFix cannot see.
declared_superseders := {upper(s) | some s in object.get(data.supersedence, kb, [])} & hotfixes

older_updates := {upper(s) | some s in object.get(input.patch, "supersedes", [])}

published := time.parse_rfc3339_ns(input.patch.published)

later_updates := [{"id": id, "at": at} |
	some h in object.get(input.scan, "hotfixes", [])
	id := upper(h.id)
	not id in older_updates
	not id in {kb, hotfix_id}
	at := time.parse_rfc3339_ns(h.installed_on)
	at > published
]

latest_update := sort([u.id | some u in later_updates; u.at == max({v.at | some v in later_updates})])[0]

superseded_by := s if {
	s := sort(declared_superseders)[0]
} else := latest_update

superseder_clause := sprintf("%s (declared in data.supersedence) supersedes %s", [superseded_by, kb]) if {
	count(declared_superseders) > 0
} else := sprintf("%s, installed %s, is the latest update on the host since %s was published on %s", [
	latest_update,
	time.format([u.at | some u in later_updates; u.id == latest_update][0]),
	kb, time.format(published),
]) if {
	latest_update
}

boot := time.parse_rfc3339_ns(input.scan.last_boot_up_time)

boot_missing if {
	installed_at
	not boot
}

reboot_flags contains "CBS RebootPending" if input.scan.reboot.cbs_reboot_pending == true

reboot_flags contains "WindowsUpdate RebootRequired" if input.scan.reboot.wu_reboot_required == true

reboot_flags contains "package state InstallPending" if package_pending

reboot_flags contains msg if {
	msg := sprintf("last boot %s is before the install at %s", [time.format(boot), time.format(installed_at)])
	boot < installed_at
}

pending_rename if input.scan.reboot.pending_file_rename == true

# Reasons the evidence cannot decide.
unknown_reasons contains msg if {
	is_object(input.scan)
	some msg in identity.unverified
}

unknown_reasons contains msg if {
	msg := "the patch declares no file evidence; a hotfix or registry key alone never proves compliance"
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

unknown_reasons contains msg if {
	msg := sprintf("no boot time reported; cannot prove a boot after the install at %s", [time.format(installed_at)])
	boot_missing
}

# The host states. Each rule below holds when the host is in that state,
# with the reason it does; precedence decides between states that hold at
# once (an excepted host may also be pending, an unreachable one has no
# evidence to judge), and the first state that holds is the host's.
precedence := [
	"identity_mismatch",
	"excepted",
	"not_applicable",
	"unreachable",
	"unknown",
	"pending_reboot",
	"compliant",
	"not_effective",
	"pending",
]

# identity_mismatch: the machine that answered is not the inventory's
# host (identity policy); its evidence proves nothing about the host, and
# an exception granted for the host does not cover another machine.
identity_mismatch := concat("; ", [v.msg | some v in identity.violations]) if {
	is_object(input.scan)
	count(identity.violations) > 0
}

# excepted: an exception granted for the host holds (exceptions policy).
excepted := exceptions.reason if exception_active

# not_applicable: the patch has no package for the host's OS.
not_applicable := sprintf("no package of %s for OS %q", [kb, input.host.os]) if not_applicable_os

# unreachable: the host could not be reached to gather evidence; the
# reason says so when it went down for a reboot and never came back.
unreachable := sprintf("host did not come back within %s of the reboot requested at %s (%d polls; last error: %s): no evidence gathered since", [
	reboot_wait.waited,
	reboot_wait.requested_at, reboot_wait.polls, object.get(reboot_wait, "last_error", "none"),
]) if {
	not input.reachable
	reboot_wait.outcome == "did_not_return"
} else := "host unreachable: no evidence gathered" if not input.reachable

# reboot_wait is how the wait for the host's reboot ended, when one was
# requested in this run.
reboot_wait := object.get(input, "reboot_wait", {})

# unknown: the evidence cannot decide; never compliant.
unknown := "no scan evidence: the host's state is unknown" if {
	not is_object(input.scan)
} else := concat("; ", sort(unknown_reasons)) if {
	count(unknown_reasons) > 0
}

# pending_reboot: something of the patch is on the host, and a reboot is
# pending or the host has not booted since the install; or the files
# already prove the fix (a later update) but a reboot is pending, so the
# running system may not be what is on disk.
pending_reboot := sprintf("%s installed but a reboot is pending: %s", [kb, concat(", ", sort(reboot_flags))]) if {
	touched
	count(reboot_flags) > 0
} else := sprintf("files at or above expected versions without %s, but a reboot is pending: %s", [
	kb,
	concat(", ", sort(reboot_flags)),
]) if {
	files_ok
	count(reboot_flags) > 0
}

# compliant: every file proves the fix, no reboot is pending and the host
# booted after any install. The files decide: the hotfix list
# corroborates (Get-HotFix sees only CBS updates, so a fix put in place by
# a later cumulative update or a non-CBS installer is absent from it), and
# the reason says which evidence proved the host.
compliant := sprintf("%s, %s present, no reboot pending%s", [
	evidence_clause,
	hotfix_id, boot_clause,
]) if {
	proven
} else := sprintf("superseded: %s; %s (%s), no reboot pending", [
	superseder_clause,
	evidence_clause, concat(", ", file_versions),
]) if {
	in_effect_unlisted
	superseded_by
} else := sprintf("fix in effect by %s evidence: %s (%s), no reboot pending%s; %s", [
	evidence_kind,
	evidence_clause, concat(", ", file_versions), boot_clause,
	sprintf("Get-HotFix lists neither %s nor a later update, so a non-CBS installer put the files in place", [hotfix_id]),
]) if {
	in_effect_unlisted
}

# in_effect_unlisted: the files prove the fix, nothing is pending, but the
# host does not list this update as installed.
in_effect_unlisted if {
	files_ok
	not installed
	not boot_missing
	count(reboot_flags) == 0
}

file_versions := [sprintf("%s %s", [c.file.path, c.scanned.version]) | some c in file_checks]

# evidence_clause says what proved the fix: the files, the OS build, or
# both.
evidence_clause := concat(", ", array.concat(
	[sprintf("%d file(s) at or above expected versions", [count(file_only_checks)]) |
		count(file_only_checks) + count(build_checks) == 0
	],
	array.concat(
		[sprintf("%d file(s) at or above expected versions", [count(file_only_checks)]) | count(file_only_checks) > 0],
		[sprintf("OS build %s at or above %s", [c.scanned.version, c.file.min_version]) | some c in build_checks],
	),
))

evidence_kind := "file" if count(build_checks) == 0

else := "build" if count(file_only_checks) == 0

else := "file and build"

proven if {
	files_ok
	installed
	not boot_missing
	count(reboot_flags) == 0
}

# not_effective: the patch is on the host, or this run installed it, but
# the files do not prove the fix.
not_effective := sprintf("%s is present but the fix is not in effect: %s", [
	hotfix_id,
	concat("; ", file_problems),
]) if {
	not files_ok
	installed
} else := sprintf("installed at %s but neither %s nor the new files are present: %s", [
	input.installed_at,
	hotfix_id, concat("; ", file_problems),
]) if {
	not files_ok
	touched
}

# pending: nothing of the patch is on the host yet.
pending := sprintf("%s not installed: %s", [kb, concat("; ", file_problems)]) if {
	not files_ok
	not touched
}

reasons["identity_mismatch"] := identity_mismatch

reasons["excepted"] := excepted

reasons["not_applicable"] := not_applicable

reasons["unreachable"] := unreachable

reasons["unknown"] := unknown

reasons["pending_reboot"] := pending_reboot

reasons["compliant"] := compliant

reasons["not_effective"] := not_effective

reasons["pending"] := pending

# state is the first state in precedence that holds. Should none hold (a
# gap in the rules above), the host is unknown: never compliant by default.
default state := "unknown"

state := [s | some s in precedence; reasons[s]][0]

reason := object.get(reasons, state, "no rule of the compliance policy decided this host")

# superseded_by_decided names the superseding update that made the host
# compliant, if that is why it is.
default superseded_by_decided := ""

superseded_by_decided := superseded_by if {
	state == "compliant"
	not proven
}

# install: whether installing the patch could change this host's state.
# Not when anything of the patch is on the host (installed, or pending a
# reboot) and not when the files already prove the fix: a later update in
# effect is never overwritten by this older one, nor the host rebooted
# for it.
default install := false

install if {
	not installed
	not package_pending
	not files_ok
}

file_problems := [sprintf("%s is %s", [fs.file.path, file_problem(fs)]) | some fs in failed_checks]

file_problem(fs) := "missing" if {
	fs.state == "missing"
} else := sprintf("%s, a release no build evidence names (evidence for %s)", [fs.scanned.version, fs.file.min_version]) if {
	fs.state == "other_release"
} else := sprintf("%s with SHA-256 %s, expected %s", [
	fs.scanned.version,
	object.get(fs.scanned, "sha256", "unknown"), fs.file.sha256,
]) if {
	fs.state == "checksum_mismatch"
} else := sprintf("%s, below %s", [fs.scanned.version, fs.file.min_version])

boot_clause := sprintf(", booted at %s after the install", [time.format(boot)]) if installed_at

else := ""

notes contains concat(" ", [
	"PendingFileRenameOperations is set but ignored: every other signal is clean and the host booted after",
	"the install (a known false positive from other software)",
]) if {
	state == "compliant"
	pending_rename
}

notes contains "PendingFileRenameOperations is also set" if {
	state == "pending_reboot"
	pending_rename
}

notes contains exceptions.reason if exception_expired

notes contains reboot_not_taken

# reboot_not_taken says a reboot requested in this run was accepted but
# never happened.
reboot_not_taken := sprintf("the host accepted the reboot requested at %s but had not restarted %s later (%d polls): its boot time stayed %s", [
	reboot_wait.requested_at,
	reboot_wait.waited, reboot_wait.polls, reboot_wait.previous_boot_time,
]) if {
	reboot_wait.outcome == "not_restarted"
}

# baseline is how the preflight scan, before the rollout touches any
# host, counts this one: already compliant (skipped), vulnerable, pending
# a reboot (this patch's, or an earlier update's that must happen before
# this one installs), unreachable, not applicable, identity mismatch or
# unknown.
default baseline := "unknown"

baseline := "compliant" if state == "compliant"

baseline := "pending_reboot" if state == "pending_reboot"

baseline := "pending_reboot" if {
	state == "pending"
	count(reboot_flags) > 0
}

baseline := "vulnerable" if {
	state in {"pending", "not_effective"}
	count(reboot_flags) == 0
}

baseline := state if state in {"unreachable", "not_applicable", "identity_mismatch", "excepted"}

# preflight_settles: the preflight proved the host needs nothing from
# this rollout; it is not patched again.
preflight_settles := state in {"compliant", "not_applicable"}

decision := {
	"allow": state == "compliant",
	"baseline": baseline,
	"preflight_settles": preflight_settles,
	"violations": [{"code": state, "msg": reason} | state != "compliant"],
	"state": state,
	"reasons": array.concat([reason], sort(notes)),
	"superseded_by": superseded_by_decided,
	"install": install,
}
