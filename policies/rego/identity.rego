# METADATA
# title: Identity
# description: |
#   Is the machine that answered the host the inventory means? The scan
#   reports who answered (computer name, DNS host name, machine GUID, OS
#   caption and build) and the worker adds the TLS certificate the
#   listener presented. They are compared with what the inventory says of
#   the host (name or computer_name, machine_guid, tls.cert_sha256, os,
#   build) and with what the same host said at first contact in this run.
#   Any difference is a violation: the evidence is another machine's, so
#   the host is never compliant on it and nothing is installed on it.
#   Evidence that cannot be compared (no computer name reported) leaves the
#   host unverified, which the compliance policy calls unknown.
package patchway.identity

host := input.host

scan := input.scan

first := object.get(input, "first_contact", {})

# The computer name the inventory expects: computer_name when given (an
# inventory that names hosts by asset tag), else the first DNS label of
# the host's name. Windows compares computer names without case.
expected_name := lower(host.computer_name) if {
	object.get(host, "computer_name", "") != ""
} else := lower(split(host.name, ".")[0])

# The name that answered: the DNS host name (Win32_ComputerSystem), or the
# NetBIOS name (CSName), which Windows cuts to 15 characters.
observed_dns := lower(object.get(scan, "dns_host_name", ""))

observed_netbios := lower(object.get(scan, "hostname", ""))

name_matches if {
	observed_dns != ""
	observed_dns == expected_name
}

name_matches if {
	observed_dns == ""
	observed_netbios == substring(expected_name, 0, 15)
}

answered_as := object.get(scan, "dns_host_name", "") if {
	object.get(scan, "dns_host_name", "") != ""
} else := object.get(scan, "hostname", "")

unverified contains "the scan reported no computer name; the host's identity cannot be checked" if {
	data.identity.check_name
	answered_as == ""
}

violations contains {"code": "name_mismatch", "msg": msg} if {
	data.identity.check_name
	answered_as != ""
	not name_matches
	msg := sprintf("%s answered as %q, not %q as the inventory names it (%s): the evidence is another machine's", [
		host.name, answered_as, expected_name, object.get(host, "address", ""),
	])
}

# Pins: the inventory's, then first contact in this run.
violations contains {"code": "machine_guid_mismatch", "msg": msg} if {
	pinned := lower(object.get(host, "machine_guid", ""))
	pinned != ""
	got := lower(object.get(scan, "machine_guid", ""))
	got != pinned
	msg := sprintf("%s reported machine GUID %q; the inventory pins %q", [host.name, got, pinned])
}

violations contains {"code": "cert_mismatch", "msg": msg} if {
	pinned := fingerprint(object.get(object.get(host, "tls", {}), "cert_sha256", ""))
	pinned != ""
	got := fingerprint(object.get(scan, "tls_cert_sha256", ""))
	got != pinned
	msg := sprintf("%s presented a TLS certificate with SHA-256 %q; the inventory pins %q", [host.name, got, pinned])
}

violations contains {"code": "machine_changed", "msg": msg} if {
	some field in ["machine_guid", "tls_cert_sha256"]
	was := lower(object.get(first, field, ""))
	was != ""
	now := lower(object.get(scan, field, ""))
	now != was
	msg := sprintf("the machine at %s changed during the run: %s was %q (answering as %q) at first contact, now %q (answering as %q)", [
		object.get(host, "address", host.name), field, was, object.get(first, "hostname", ""), now, answered_as,
	])
}

# fingerprint is a certificate fingerprint as lower-case hex, without the
# colons certutil and openssl print.
fingerprint(s) := replace(lower(s), ":", "")

# The OS family the inventory names must be the one the caption shows,
# where data.identity.os_captions knows the family.
violations contains {"code": "os_mismatch", "msg": msg} if {
	caption := object.get(scan, "os_caption", "")
	caption != ""
	some family in data.identity.os_captions
	startswith(lower(host.os), family.os_prefix)
	not contains(lower(caption), family.caption)
	msg := sprintf("%s is %q in the inventory, but the host reports %q", [host.name, host.os, caption])
}

# The build number (the third part of a dotted Windows version, or the
# first part of a build with its update revision) may rise with updates
# only through an upgrade, which the inventory must know of.
violations contains {"code": "build_mismatch", "msg": msg} if {
	want := build_number(object.get(host, "build", ""))
	got := build_number(object.get(scan, "os_build", ""))
	want != got
	msg := sprintf("%s has build %s in the inventory, but the host reports build %s (%q)", [host.name, want, got, scan.os_build])
}

# build_number("5.1.2600") = "2600"; build_number("17763.5329") = "17763";
# build_number("10.0.17763.5329") = "17763". Undefined for "".
build_number(s) := parts[2] if {
	parts := split(s, ".")
	count(parts) >= 3
} else := parts[0] if {
	parts := split(s, ".")
	count(parts) < 3
	parts[0] != ""
}

# The identity this host showed, to pin at first contact.
observed := {
	"hostname": answered_as,
	"machine_guid": object.get(scan, "machine_guid", ""),
	"tls_cert_sha256": object.get(scan, "tls_cert_sha256", ""),
}

decision := {
	"allow": count(violations) == 0,
	"verified": (count(violations) + count(unverified)) == 0,
	"violations": [v | some v in violations],
	"unverified": sort(unverified),
	"observed": observed,
}
