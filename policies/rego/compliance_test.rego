package patchway.compliance_test

import data.patchway.compliance

netapi := `C:\Windows\system32\netapi32.dll`

base := {
	"host": {"name": "dc1", "os": "windows-server-2003"},
	"patch": {
		"kb": "KB958644",
		"packages": [{"os": "windows-server-2003", "source": "x.exe"}],
		"evidence": {"hotfix": "KB958644", "files": [{"path": netapi, "min_version": "5.2.3790.4392"}]},
	},
	"scan": {
		"hostname": "DC1",
		"hotfixes": [{"id": "KB958644"}],
		"packages": [],
		"files": [{"path": "c:\\windows\\system32\\NETAPI32.dll", "exists": true, "version": "5.2.3790.4392"}],
		"reboot": {"cbs_reboot_pending": false, "wu_reboot_required": false, "pending_file_rename": false},
		"last_boot_up_time": "2008-10-23T11:00:00Z",
	},
	"reachable": true,
	"installed_at": "2008-10-23T10:00:00Z",
	"now": "2008-10-23T12:00:00Z",
}

decide(patch) := d if {
	d := compliance.decision with input as object.union(base, patch)
}

with_files(files) := {"scan": {"files": files}}

file(version) := [{"path": netapi, "exists": true, "version": version}]

test_all_evidence_clean_is_compliant if {
	d := decide({})
	d.allow
	d.state == "compliant"
	d.violations == []
	contains(d.reasons[0], "KB958644 present, no reboot pending, booted at 2008-10-23T11:00:00Z after the install")
}

test_newer_file_version_is_compliant if {
	decide(with_files(file("5.2.3790.10000"))).state == "compliant"
}

test_registry_key_without_new_file_is_not_effective if {
	d := decide(with_files(file("5.2.3790.3229")))
	not d.allow
	d.state == "not_effective"
	d.violations[0].code == "not_effective"
	contains(d.reasons[0], `netapi32.dll is 5.2.3790.3229, below 5.2.3790.4392`)
}

test_missing_file_with_hotfix_is_not_effective if {
	d := decide(with_files([{"path": netapi, "exists": false}]))
	d.state == "not_effective"
	contains(d.reasons[0], "is missing")
}

test_file_reported_missing_is_not_ok_whatever_its_version if {
	d := decide(with_files([{"path": netapi, "exists": false, "version": "5.2.3790.4392"}]))
	d.state == "not_effective"
	contains(d.reasons[0], "is missing")
}

test_installed_without_hotfix_nor_file_is_not_effective if {
	d := decide({"scan": {"hotfixes": [], "files": file("5.2.3790.3229")}})
	d.state == "not_effective"
	contains(d.reasons[0], "installed at 2008-10-23T10:00:00Z but neither KB958644 nor the new files are present")
}

test_not_installed_is_pending if {
	d := decide(object.union(
		{"scan": {"hotfixes": [], "files": file("5.2.3790.3229")}},
		{"installed_at": null},
	))
	d.state == "pending"
	contains(d.reasons[0], "KB958644 not installed")
}

test_checksum_mismatch_at_expected_version_is_not_effective if {
	d := decide({
		"patch": {"evidence": {"files": [{"path": netapi, "min_version": "5.2.3790.4392", "sha256": "AA"}]}},
		"scan": {"files": [{"path": netapi, "exists": true, "version": "5.2.3790.4392", "sha256": "bb"}]},
	})
	d.state == "not_effective"
	contains(d.reasons[0], "SHA-256 bb, expected AA")
}

test_checksum_match_is_compliant if {
	d := decide({
		"patch": {"evidence": {"files": [{"path": netapi, "min_version": "5.2.3790.4392", "sha256": "AA"}]}},
		"scan": {"files": [{"path": netapi, "exists": true, "version": "5.2.3790.4392", "sha256": "aa"}]},
	})
	d.state == "compliant"
}

test_cbs_reboot_pending_is_pending_reboot if {
	d := decide({"scan": {"reboot": {"cbs_reboot_pending": true}}})
	d.state == "pending_reboot"
	contains(d.reasons[0], "CBS RebootPending")
}

test_wu_reboot_required_is_pending_reboot if {
	decide({"scan": {"reboot": {"wu_reboot_required": true}}}).state == "pending_reboot"
}

test_install_pending_package_is_pending_reboot if {
	d := decide({"scan": {"hotfixes": [], "packages": [{"name": "Package_for_KB958644~31bf", "state": "InstallPending"}], "files": file("5.2.3790.3229")}})
	d.state == "pending_reboot"
	contains(d.reasons[0], "package state InstallPending")
}

test_installed_package_counts_as_installed if {
	decide({"scan": {"hotfixes": [], "packages": [{"name": "Package_for_KB958644~31bf", "state": "Installed"}]}}).state == "compliant"
}

test_boot_before_install_is_pending_reboot if {
	d := decide({"scan": {"last_boot_up_time": "2006-01-01T00:00:00Z"}})
	d.state == "pending_reboot"
	contains(d.reasons[0], "last boot 2006-01-01T00:00:00Z is before the install at 2008-10-23T10:00:00Z")
}

test_pending_file_rename_alone_is_reported_and_ignored if {
	d := decide({"scan": {"reboot": {"pending_file_rename": true}}})
	d.state == "compliant"
	d.reasons[1] == "PendingFileRenameOperations is set but ignored: every other signal is clean and the host booted after the install (a known false positive from other software)"
}

test_pending_file_rename_with_other_flag_is_noted if {
	d := decide({"scan": {"reboot": {"pending_file_rename": true, "cbs_reboot_pending": true}}})
	d.state == "pending_reboot"
	d.reasons[1] == "PendingFileRenameOperations is also set"
}

test_superseded_update_is_compliant_and_named if {
	d := compliance.decision with input as object.union(base, {"scan": {"hotfixes": [{"id": "KB4012598"}], "files": file("5.2.3790.6000")}})
		with data.supersedence as {"KB958644": ["KB4012598", "KB9999999"]}
	d.state == "compliant"
	d.superseded_by == "KB4012598"
	contains(d.reasons[0], "superseded: KB4012598 (declared in data.supersedence) supersedes KB958644")
}

test_later_update_in_effect_is_compliant_naming_it_and_not_installed if {
	# MS08-067 on 2003: KB958644 absent, netapi32.dll above its fixed
	# version, and the host lists updates installed before and after the
	# patch was published, and the one it supersedes.
	d := decide({
		"installed_at": null,
		"patch": {"published": "2008-10-23T00:00:00Z", "supersedes": ["KB921883"]},
		"scan": {
			"hotfixes": [
				{"id": "KB921883", "installed_on": "2009-06-01T00:00:00Z"},
				{"id": "KB2000001", "installed_on": "2008-01-01T00:00:00Z"},
				{"id": "KB2509553", "installed_on": "2011-05-11T00:00:00Z"},
				{"id": "KB2479628", "installed_on": "2011-03-09T00:00:00Z"},
			],
			"files": file("5.2.3790.4840"),
		},
	})
	d.state == "compliant"
	d.superseded_by == "KB2509553"
	not d.install
	contains(d.reasons[0], "superseded: KB2509553, installed 2011-05-11T00:00:00Z, is the latest update on the host since KB958644 was published")
	contains(d.reasons[0], "5.2.3790.4840")
}

test_fix_in_effect_unlisted_by_get_hotfix_is_compliant_on_file_evidence if {
	d := decide({"installed_at": null, "scan": {"hotfixes": [{"id": "KB1"}], "files": file("5.2.3790.4392")}})
	d.state == "compliant"
	d.superseded_by == ""
	not d.install
	contains(d.reasons[0], "fix in effect by file evidence: 1 file(s) at or above expected versions")
	contains(d.reasons[0], "Get-HotFix lists neither KB958644 nor a later update")
}

test_files_ok_without_hotfix_but_reboot_pending_is_pending_reboot if {
	d := decide({"installed_at": null, "scan": {"hotfixes": [], "reboot": {"cbs_reboot_pending": true}, "files": file("5.2.3790.6000")}})
	d.state == "pending_reboot"
	not d.install
	contains(d.reasons[0], "files at or above expected versions without KB958644, but a reboot is pending: CBS RebootPending")
}

test_install_only_when_nothing_of_the_patch_is_there_and_files_do_not_prove_it if {
	decide({"installed_at": null, "scan": {"hotfixes": [], "files": file("5.2.3790.3229")}}).install
	not decide({"installed_at": null, "scan": {"files": file("5.2.3790.3229")}}).install
	not decide({"installed_at": null, "scan": {
		"hotfixes": [],
		"packages": [{"name": "Package_for_KB958644~31bf", "state": "InstallPending"}], "files": file("5.2.3790.3229"),
	}}).install

	# A package only staged is not installed.
	decide({"installed_at": null, "scan": {
		"hotfixes": [],
		"packages": [{"name": "Package_for_KB958644~31bf", "state": "Staged"}], "files": file("5.2.3790.3229"),
	}}).install
}

test_reboot_that_never_returned_is_named_in_the_reason if {
	d := decide({"reachable": false, "scan": null, "reboot_wait": {
		"outcome": "did_not_return", "requested_at": "2008-10-23T10:05:00Z",
		"waited": "30m0s", "polls": 12, "last_error": "connection refused",
	}})
	d.state == "unreachable"
	d.reasons[0] == "host did not come back within 30m0s of the reboot requested at 2008-10-23T10:05:00Z (12 polls; last error: connection refused): no evidence gathered since"
}

test_reboot_accepted_but_not_restarted_is_named_in_the_reasons if {
	d := decide({"scan": {"reboot": {"cbs_reboot_pending": true}}, "reboot_wait": {
		"outcome": "not_restarted", "requested_at": "2008-10-23T10:05:00Z",
		"waited": "30m0s", "polls": 12, "previous_boot_time": "2008-10-23T11:00:00Z",
	}})
	d.state == "pending_reboot"
	"the host accepted the reboot requested at 2008-10-23T10:05:00Z but had not restarted 30m0s later (12 polls): its boot time stayed 2008-10-23T11:00:00Z" in d.reasons
}

test_missing_scan_is_unknown_never_compliant if {
	d := decide({"scan": null})
	d.state == "unknown"
	not d.allow
	d.reasons[0] == "no scan evidence: the host's state is unknown"
}

test_file_not_reported_by_scan_is_unknown if {
	d := decide(with_files([]))
	d.state == "unknown"
	contains(d.reasons[0], "not reported by the scan")
}

test_file_without_version_is_unknown if {
	decide(with_files([{"path": netapi, "exists": true}])).state == "unknown"
}

test_non_numeric_version_is_unknown if {
	d := decide(with_files(file("5.2.beta")))
	d.state == "unknown"
	contains(d.reasons[0], "is not numeric dotted")
}

test_no_file_evidence_declared_is_unknown if {
	d := compliance.decision with input as json.patch(base, [{"op": "replace", "path": "/patch/evidence/files", "value": []}])
	d.state == "unknown"
	contains(d.reasons[0], "a hotfix or registry key alone never proves compliance")
}

test_no_boot_time_after_install_is_unknown if {
	d := decide({"scan": {"last_boot_up_time": "0001-01-01T00:00:00Z"}})
	d.state == "unknown"
	contains(d.reasons[0], "no boot time reported")
}

test_unreachable_host if {
	d := decide({"reachable": false})
	d.state == "unreachable"
	d.violations[0].code == "unreachable"
}

test_no_package_for_the_os_is_not_applicable if {
	d := decide({"host": {"os": "windows-7"}})
	d.state == "not_applicable"
	d.reasons[0] == `no package of KB958644 for OS "windows-7"`
}

test_unexpired_exception_is_excepted if {
	d := decide({"exception": {"reason": "vendor certification", "expires": "2008-11-01T00:00:00Z"}, "reachable": false})
	d.state == "excepted"
	not d.allow
	d.reasons[0] == "exception until 2008-11-01T00:00Z: vendor certification"
}

test_expired_exception_is_judged_on_evidence if {
	d := decide({"exception": {"reason": "old", "expires": "2008-10-01T00:00:00Z"}})
	d.state == "compliant"
	d.reasons[1] == "exception expired 2008-10-01T00:00Z; judged on evidence"
}

test_host_patched_before_this_rollout_needs_no_boot_comparison if {
	d := decide({"installed_at": null, "scan": {"last_boot_up_time": "2001-01-01T00:00:00Z"}})
	d.state == "compliant"
	not contains(d.reasons[0], "booted at")
}

test_hotfix_id_defaults_to_the_kb if {
	decide({"patch": {"evidence": {"hotfix": ""}}}).state == "compliant"
}

test_only_the_evidence_for_the_hosts_os_applies if {
	files := [
		{"os": "windows-xp", "path": netapi, "min_version": "5.1.2600.3462"},
		{"os": "windows-server-2003", "path": netapi, "min_version": "5.2.3790.4392"},
	]
	decide({"patch": {"evidence": {"files": files}}}).state == "compliant"
	d := decide({"patch": {"evidence": {"files": files}}, "scan": {"files": file("5.1.2600.3462")}})
	d.state == "not_effective"
	contains(d.reasons[0], "5.1.2600.3462, below 5.2.3790.4392")
}

# Applicability is one rule (the applicability policy): the installer took
# the glob package, so compliance judges the host on its evidence too.
test_a_host_matched_by_an_os_glob_is_judged_on_its_evidence if {
	d := compliance.decision with input as json.patch(base, [
		{"op": "replace", "path": "/patch/packages/0/os", "value": "Windows-Server-2003*"},
		{"op": "replace", "path": "/host/os", "value": "windows-server-2003-sp2"},
	])
	d.state == "compliant"
}

# The preflight baseline counts a host before the rollout touches it.
untouched := {"installed_at": null, "scan": {"hotfixes": [], "files": file("5.2.3790.3229")}}

test_baseline_compliant_host_is_counted_compliant_and_settled if {
	d := decide({})
	d.baseline == "compliant"
	d.preflight_settles
}

test_baseline_untouched_old_files_are_vulnerable if {
	d := decide(untouched)
	d.state == "pending"
	d.baseline == "vulnerable"
	not d.preflight_settles
}

test_baseline_reboot_pending_from_an_earlier_update if {
	d := decide(object.union(untouched, {"scan": {"reboot": {"cbs_reboot_pending": true}}}))
	d.state == "pending"
	d.baseline == "pending_reboot"
	not d.preflight_settles
}

test_baseline_not_applicable_host_is_settled if {
	d := decide({"host": {"os": "windows-nt4"}})
	d.state == "not_applicable"
	d.preflight_settles
}

test_baseline_unreachable_host if {
	decide({"reachable": false, "scan": null}).baseline == "unreachable"
}

# KB5013944, May 2022's cumulative update for Windows Server 2022, brings
# build 10.0.20348.707 and supersedes KB5012604; June's KB5014678 brings
# 20348.768. The evidence is the build, as for every cumulative update.
lcu := {
	"host": {"name": "srv22", "os": "windows-server-2022"},
	"patch": {
		"kb": "KB5013944",
		"published": "2022-05-10T17:00:00Z",
		"supersedes": ["KB5012604"],
		"packages": [{"os": "windows-server-2022", "source": "x.msu", "type": "msu"}],
		"evidence": {"hotfix": "KB5013944", "builds": [
			{"os": "windows-server-2022", "min_build": "10.0.20348.707"},
			{"os": "windows-server-2019", "min_build": "10.0.17763.2928"},
		]},
	},
	"scan": {
		"hostname": "SRV22", "os_build": "20348.707",
		"hotfixes": [{"id": "KB5013944", "installed_on": "2022-05-11T00:00:00Z"}],
		"packages": [], "files": [],
		"reboot": {"cbs_reboot_pending": false, "wu_reboot_required": false, "pending_file_rename": false},
		"last_boot_up_time": "2022-05-11T02:00:00Z",
	},
	"reachable": true,
	"now": "2022-05-11T03:00:00Z",
}

decide_lcu(patch) := d if {
	d := compliance.decision with input as object.union(lcu, patch)
}

test_build_at_the_fixed_build_is_compliant_on_build_evidence if {
	d := decide_lcu({})
	d.state == "compliant"
	contains(d.reasons[0], "OS build 20348.707 at or above 20348.707, KB5013944 present")
}

test_build_below_the_fixed_build_is_pending_and_installs if {
	d := decide_lcu({"scan": {"os_build": "20348.643", "hotfixes": [{"id": "KB5012604", "installed_on": "2022-04-12T00:00:00Z"}]}})
	d.state == "pending"
	d.install
	d.baseline == "vulnerable"
	contains(d.reasons[0], "OS build is 20348.643, below 20348.707")
}

test_later_build_is_compliant_naming_the_update_that_brought_it if {
	d := decide_lcu({"scan": {"os_build": "20348.768", "hotfixes": [
		{"id": "KB5012604", "installed_on": "2022-04-12T00:00:00Z"},
		{"id": "KB5014678", "installed_on": "2022-06-15T00:00:00Z"},
	]}})
	d.state == "compliant"
	not d.install
	d.superseded_by == "KB5014678"
	contains(d.reasons[0], "superseded: KB5014678, installed 2022-06-15T00:00:00Z, is the latest update on the host since KB5013944 was published")
	contains(d.reasons[0], "OS build 20348.768 at or above 20348.707")
}

test_hotfix_listed_but_build_unchanged_is_not_effective if {
	# The update is listed but the build did not move: reverted at boot.
	d := decide_lcu({"scan": {"os_build": "20348.643"}})
	d.state == "not_effective"
}

test_another_release_of_the_os_is_not_proven_by_a_build_number if {
	# A 2022 host of another CurrentBuild: 25398.1 is numerically above
	# 20348.707, and proves nothing.
	d := decide_lcu({"scan": {"os_build": "25398.1", "hotfixes": []}})
	d.state != "compliant"
	contains(d.reasons[0], "a release no build evidence names (evidence for 20348.707)")
}

test_no_build_in_the_scan_is_unknown if {
	d := decide_lcu({"scan": {"os_build": ""}})
	d.state == "unknown"
}

test_pending_reboot_after_the_install_waits_for_the_build if {
	d := decide_lcu({
		"installed_at": "2022-05-11T01:00:00Z",
		"scan": {"os_build": "20348.643", "reboot": {"cbs_reboot_pending": true}, "packages": [{"name": "Package_for_RollupFix~31bf3856ad364e35~amd64~~20348.707.1.5", "state": "InstallPending"}]},
	})
	d.state == "pending_reboot"
}
