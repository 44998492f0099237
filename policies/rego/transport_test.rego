package patchway.transport_test

import data.patchway.transport

host(tier, tls) := {"name": "h1", "tier": tier, "tls": tls}

decide(h) := d if {
	d := transport.decision with input as {"host": h, "now": "2026-11-23T10:00:00Z"}
}

codes(d) := {v.code | some v in d.violations}

test_default_is_https_basic_verified if {
	d := decide(host("production", {}))
	d.allow
	d.transport == "https"
	d.auth == "basic"
	not d.insecure
}

test_lab_may_use_http_insecure_and_ntlm_over_http if {
	decide(host("lab", {"transport": "http", "auth": "ntlm"})).allow
	decide(host("lab", {"insecure": true})).allow
}

test_production_and_prodlike_refuse_http if {
	every tier in ["production", "prodlike"] {
		codes(decide(host(tier, {"transport": "HTTP"}))) == {"http_not_allowed"}
	}
}

test_production_refuses_insecure_tls if {
	codes(decide(host("production", {"insecure": true}))) == {"insecure_not_allowed"}
}

test_ntlm_over_http_refused_outside_the_lab if {
	codes(decide(host("prodlike", {"transport": "http", "auth": "ntlm"}))) == {"http_not_allowed", "ntlm_over_http_not_allowed"}
}

test_unknown_tier_gets_production_rules if {
	codes(decide(host("", {"transport": "http"}))) == {"http_not_allowed"}
}

test_unknown_transport_and_auth_are_refused if {
	codes(decide(host("lab", {"transport": "ftp", "auth": "kerberos"}))) == {"unknown_transport", "unknown_auth"}
}

test_nameless_http_host_is_still_refused if {
	d := transport.decision with input as {"host": {"tls": {"transport": "http"}}, "now": "2026-11-23T10:00:00Z"}
	codes(d) == {"http_not_allowed"}
}
