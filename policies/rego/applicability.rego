# METADATA
# title: Applicability
# description: |
#   Which of a patch's packages, and which of its file and OS build
#   evidence, apply to host H? A package applies when its os names the host's OS; a file when
#   it names the host's OS or no OS (every OS ships its own file version).
#   An os may be a glob ("windows-10-*": * and ? match any characters);
#   OS names compare without regard to case. The compliance policy and the
#   host operations (install, scan, proof) all take their answer from here.
package patchway.applicability

host_os := lower(object.get(object.get(input, "host", {}), "os", ""))

packages := object.get(object.get(input, "patch", {}), "packages", [])

files := object.get(object.get(object.get(input, "patch", {}), "evidence", {}), "files", [])

builds := object.get(object.get(object.get(input, "patch", {}), "evidence", {}), "builds", [])

applies(item) if glob.match(lower(object.get(item, "os", "")), null, host_os)

# package_index is the index of the first package for the host's OS; -1
# if none.
matching := [i | some i, p in packages; applies(p)]

package_index := matching[0] if count(matching) > 0

else := -1

# evidence_files are the indices of the files that prove the fix here.
evidence_files := [i | some i, f in files; file_applies(f)]

# evidence_builds are the indices of the OS build evidence for the host's
# OS (or for every OS).
evidence_builds := [i | some i, b in builds; file_applies(b)]

file_applies(f) if object.get(f, "os", "") == ""

file_applies(f) if applies(f)

violations contains {"code": "no_package_for_os", "msg": msg} if {
	package_index < 0
	oses := [p.os | some p in packages]
	msg := sprintf("%s has no package for OS %q (packages for: %s)", [input.patch.kb, input.host.os, concat(", ", oses)])
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"package": package_index,
	"evidence_files": evidence_files,
	"evidence_builds": evidence_builds,
}
