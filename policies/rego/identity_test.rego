package patchway.identity_test

import data.patchway.compliance
import data.patchway.identity

base := {
	"host": {"name": "web01.corp.example", "address": "10.0.0.7:5986", "os": "windows-server-2019", "build": "10.0.17763"},
	"scan": {
		"hostname": "WEB01",
		"dns_host_name": "web01",
		"machine_guid": "5c1e2a77-0e8b-4c3f-9d0a-3b9e2f1c4d5e",
		"tls_cert_sha256": "aa11",
		"os_caption": "Microsoft Windows Server 2019 Datacenter",
		"os_build": "17763.5329",
	},
}

decide(patch) := d if {
	d := identity.decision with input as object.union(base, patch)
}

codes(d) := {v.code | some v in d.violations}

test_the_host_the_inventory_names_is_verified if {
	d := decide({})
	d.allow
	d.verified
	d.observed == {"hostname": "web01", "machine_guid": "5c1e2a77-0e8b-4c3f-9d0a-3b9e2f1c4d5e", "tls_cert_sha256": "aa11"}
}

test_another_machine_answering_is_a_name_mismatch if {
	d := decide({"scan": {"hostname": "WEB02", "dns_host_name": "web02"}})
	not d.allow
	codes(d) == {"name_mismatch"}
	contains(d.violations[0].msg, `web01.corp.example answered as "web02", not "web01"`)
}

test_names_compare_without_case if {
	decide({"scan": {"dns_host_name": "WEB01"}}).allow
}

test_computer_name_overrides_the_inventory_name if {
	d := decide({"host": {"name": "asset-4471", "computer_name": "WEB01"}})
	d.allow
	not decide({"host": {"name": "asset-4471"}}).allow
}

test_netbios_name_is_cut_to_15_characters if {
	d := identity.decision with input as {
		"host": {"name": "accounting-server-01", "os": "windows-xp-sp3"},
		"scan": {"hostname": "ACCOUNTING-SERV"},
	}
	d.allow
}

test_no_computer_name_is_unverified_not_allowed_to_pass_silently if {
	d := decide({"scan": {"hostname": "", "dns_host_name": ""}})
	d.allow
	not d.verified
	count(d.unverified) == 1
}

test_name_check_can_be_turned_off_in_data if {
	d := decide({"scan": {"hostname": "OTHER", "dns_host_name": "other"}}) with data.identity.check_name as false
	d.allow
}

test_inventory_pins_the_machine_guid if {
	d := decide({"host": {"machine_guid": "5C1E2A77-0E8B-4C3F-9D0A-3B9E2F1C4D5E"}})
	d.allow
	codes(decide({"host": {"machine_guid": "00000000-0000-0000-0000-000000000001"}})) == {"machine_guid_mismatch"}
}

test_inventory_pins_the_certificate if {
	decide({"host": {"tls": {"cert_sha256": "AA:11"}}}).allow
	codes(decide({"host": {"tls": {"cert_sha256": "bb22"}}})) == {"cert_mismatch"}
}

test_a_machine_that_changed_since_first_contact_is_refused if {
	d := decide({"first_contact": {"hostname": "web01", "machine_guid": "11111111-2222-3333-4444-555555555555"}})
	codes(d) == {"machine_changed"}
	contains(d.violations[0].msg, "the machine at 10.0.0.7:5986 changed during the run")
	decide({"first_contact": base.scan}).allow
}

test_os_family_comes_from_the_caption if {
	codes(decide({"scan": {"os_caption": "Microsoft Windows Server 2008 Standard"}})) == {"os_mismatch"}
	decide({"host": {"os": "unlisted-os"}}).allow
}

test_build_number_must_agree if {
	codes(decide({"scan": {"os_build": "20348.2227"}})) == {"build_mismatch"}
	decide({"host": {"build": "17763"}}).allow
	decide({"host": {"build": ""}}).allow
}

test_build_number_forms if {
	identity.build_number("5.1.2600") == "2600"
	identity.build_number("17763.5329") == "17763"
	identity.build_number("10.0.17763.5329") == "17763"
	not identity.build_number("")
}

# The compliance policy: another machine's evidence is never compliant,
# even when it shows the fix, and an exception does not cover it.
test_compliance_calls_another_machine_identity_mismatch if {
	d := compliance.decision with input as {
		"host": {"name": "dc1", "os": "windows-server-2003"},
		"patch": {"kb": "KB1", "packages": [], "evidence": {"files": [{"path": "a.dll", "min_version": "1.0"}]}},
		"scan": {"hostname": "DC2", "hotfixes": [{"id": "KB1"}], "files": [{"path": "a.dll", "exists": true, "version": "2.0"}], "reboot": {}},
		"reachable": true,
		"now": "2008-10-23T12:00:00Z",
	}
	d.state == "identity_mismatch"
	not d.allow
	d.violations[0].code == "identity_mismatch"
	contains(d.reasons[0], `dc1 answered as "DC2", not "dc1"`)
}

test_compliance_without_a_computer_name_is_unknown if {
	d := compliance.decision with input as {
		"host": {"name": "dc1", "os": "windows-server-2003"},
		"patch": {"kb": "KB1", "packages": [], "evidence": {"files": [{"path": "a.dll", "min_version": "1.0"}]}},
		"scan": {"hotfixes": [{"id": "KB1"}], "files": [{"path": "a.dll", "exists": true, "version": "2.0"}], "reboot": {}},
		"reachable": true,
		"now": "2008-10-23T12:00:00Z",
	}
	d.state == "unknown"
	contains(d.reasons[0], "no computer name")
}
