package patchway.applicability_test

import data.patchway.applicability

patch := {
	"kb": "KB958644",
	"packages": [{"os": "windows-xp-sp3", "source": "xp.exe"}, {"os": "Windows-Server-2003-SP2", "source": "2003.exe"}],
	"evidence": {"files": [
		{"os": "windows-xp-sp3", "path": "netapi32.dll"},
		{"os": "", "path": "common.dll"},
		{"os": "windows-server-2003-sp2", "path": "netapi32.dll"},
	]},
}

decide(os) := d if {
	d := applicability.decision with input as {"host": {"os": os}, "patch": patch, "now": "2026-11-23T10:00:00Z"}
}

test_the_package_and_files_of_the_hosts_os_apply if {
	d := decide("windows-xp-sp3")
	d.allow
	d["package"] == 0
	d.evidence_files == [0, 1]
}

test_os_names_compare_without_case if {
	d := decide("WINDOWS-SERVER-2003-sp2")
	d["package"] == 1
	d.evidence_files == [1, 2]
}

test_an_os_without_a_package_is_refused_with_the_packages_named if {
	d := decide("windows-vista-sp1")
	not d.allow
	d["package"] == -1
	d.violations[0].code == "no_package_for_os"
	d.violations[0].msg == `KB958644 has no package for OS "windows-vista-sp1" (packages for: windows-xp-sp3, Windows-Server-2003-SP2)`
	d.evidence_files == [1]
}

test_no_host_os_matches_only_the_files_for_every_os if {
	d := applicability.decision with input as {"patch": patch, "now": "2026-11-23T10:00:00Z"}
	d["package"] == -1
	d.evidence_files == [1]
}

test_an_os_glob_matches_the_hosts_os if {
	p := object.union(patch, {"packages": [{"os": "Windows-10-*", "source": "w10.msu"}], "evidence": {"files": [{"os": "windows-10-*", "path": "a.dll"}]}})
	d := applicability.decision with input as {"host": {"os": "windows-10-22h2"}, "patch": p, "now": "2026-11-23T10:00:00Z"}
	d["package"] == 0
	d.evidence_files == [0]
}
