package patchway.rollback_test

import data.patchway.rollback

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
		"hotfixes": [],
		"packages": [],
		"files": [{"path": netapi, "exists": true, "version": "5.2.3790.3229"}],
		"reboot": {"cbs_reboot_pending": false, "wu_reboot_required": false, "pending_file_rename": false},
		"last_boot_up_time": "2008-10-23T11:00:00Z",
	},
	"reachable": true,
	"now": "2008-10-23T12:00:00Z",
}

decide(patch) := d if {
	d := rollback.decision with input as object.union(base, patch)
}

test_gone_and_files_below_is_rolled_back if {
	d := decide({})
	d.allow
	d.state == "rolled_back"
	d.reasons[0] == `rolled back: KB958644 no longer listed nor installed, 1 file(s) back below the fixed version (C:\Windows\system32\netapi32.dll 5.2.3790.3229)`
}

test_uninstall_waiting_for_its_reboot_is_pending_reboot if {
	d := decide({"scan": {
		"packages": [{"name": "Package_for_KB958644~31bf", "state": "UninstallPending"}],
		"reboot": {"cbs_reboot_pending": true},
		"files": [{"path": netapi, "exists": true, "version": "5.2.3790.4392"}],
	}})
	d.state == "pending_reboot"
	d.reasons[0] == "uninstall of KB958644 waits for a reboot: CBS RebootPending, package state UninstallPending"
}

test_hotfix_still_listed_is_failed if {
	d := decide({"scan": {"hotfixes": [{"id": "KB958644"}]}})
	d.state == "failed"
	d.reasons[0] == "the rollback did not take effect: KB958644 is still listed by Get-HotFix"
}

test_file_still_fixed_after_the_reboot_is_failed if {
	d := decide({"scan": {"files": [{"path": netapi, "exists": true, "version": "5.2.3790.4392"}]}})
	d.state == "failed"
	contains(d.reasons[0], "netapi32.dll is 5.2.3790.4392, at or above the fixed 5.2.3790.4392")
}

test_installed_package_is_failed if {
	d := decide({"scan": {"packages": [{"name": "Package_for_KB958644~31bf", "state": "Installed"}]}})
	d.state == "failed"
	contains(d.reasons[0], "a servicing package of KB958644 is Installed")
}

test_missing_file_is_not_proof if {
	d := decide({"scan": {"files": [{"path": netapi, "exists": false}]}})
	not d.allow
	d.state == "unknown"
}

test_no_scan_is_unknown if {
	d := decide({"scan": null})
	d.state == "unknown"
	d.reasons[0] == "no scan evidence: whether the rollback took effect is unknown"
}

test_unreachable_after_the_reboot_says_so if {
	d := decide({"reachable": false, "scan": null, "reboot_wait": {
		"outcome": "did_not_return", "requested_at": "2008-10-23T10:05:00Z",
		"waited": "30m0s", "polls": 12, "last_error": "connection refused",
	}})
	d.state == "unreachable"
	startswith(d.reasons[0], "host did not come back within 30m0s")
}

test_reboot_not_taken_is_named if {
	d := decide({
		"scan": {"packages": [{"name": "Package_for_KB958644~31bf", "state": "UninstallPending"}]},
		"reboot_wait": {"outcome": "not_restarted", "requested_at": "2008-10-23T10:05:00Z", "waited": "30m0s", "polls": 3, "previous_boot_time": "2008-10-23T11:00:00Z"},
	})
	d.state == "pending_reboot"
	"the host accepted the reboot requested at 2008-10-23T10:05:00Z but had not restarted 30m0s later (3 polls): its boot time stayed 2008-10-23T11:00:00Z" in d.reasons
}

test_another_machine_is_identity_mismatch if {
	d := decide({"scan": {"hostname": "WS-LYO-0042"}})
	d.state == "identity_mismatch"
}
