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
		codes(decide(host(tier, {"transport": "HTTP"}))) == {"http_not_allowed", "basic_over_http"}
	}
}

test_production_refuses_insecure_tls if {
	codes(decide(host("production", {"insecure": true}))) == {"insecure_not_allowed"}
}

test_ntlm_over_http_refused_outside_the_lab if {
	codes(decide(host("prodlike", {"transport": "http", "auth": "ntlm"}))) == {"http_not_allowed", "ntlm_over_http_not_allowed"}
}

test_unknown_tier_gets_production_rules if {
	codes(decide(host("", {"transport": "http"}))) == {"http_not_allowed", "basic_over_http"}
}

test_unknown_transport_and_auth_are_refused if {
	codes(decide(host("lab", {"transport": "ftp", "auth": "kerberos"}))) == {"unknown_transport", "unknown_auth"}
}

test_nameless_http_host_is_still_refused if {
	d := transport.decision with input as {"host": {"tls": {"transport": "http"}}, "now": "2026-11-23T10:00:00Z"}
	codes(d) == {"http_not_allowed", "basic_over_http"}
}

# A credential set's worker-side binding and the host's resolved target.
fleet(binding) := object.union({"name": "fleet"}, binding)

decide_with(h, cred, host_name, ips) := d if {
	d := transport.decision with input as {
		"host": h, "now": "2026-11-23T10:00:00Z",
		"credential": cred, "target": {"host": host_name, "ips": ips},
	}
}

loopback := fleet({"addresses": ["127.0.0.0/8"]})

test_bound_set_reaches_a_bound_address_over_https if {
	decide_with(host("production", {}), loopback, "127.0.0.1", ["127.0.0.1"]).allow
}

test_basic_over_http_is_refused_even_in_the_lab if {
	lab_http := fleet({"addresses": ["127.0.0.0/8"], "transports": ["http"]})
	codes(decide_with(host("lab", {"transport": "http"}), lab_http, "127.0.0.1", ["127.0.0.1"])) == {"basic_over_http"}
	codes(decide(host("lab", {"transport": "http"}))) == {"basic_over_http"}
	decide_with(host("lab", {"transport": "http", "auth": "ntlm"}), lab_http, "127.0.0.1", ["127.0.0.1"]).allow
}

test_the_replayed_attack_is_refused if {
	# lab tier, plain http, the fleet set, an address the attacker chose.
	d := decide_with(host("lab", {"transport": "http"}), loopback, "127.0.0.2", ["127.0.0.2"])
	not d.allow
	codes(d) == {"basic_over_http", "credential_transport_not_bound"}
	attacker := decide_with(host("lab", {"transport": "http", "auth": "ntlm"}), fleet({"addresses": ["10.0.0.0/8"], "transports": ["http"]}), "127.0.0.2", ["127.0.0.2"])
	codes(attacker) == {"credential_address_not_bound"}
}

test_unbound_set_is_sent_nowhere if {
	codes(decide_with(host("production", {}), fleet({}), "dc01.corp.example", ["10.1.2.3"])) == {"credential_addresses_unbound"}
}

test_tier_binding if {
	prod_only := fleet({"addresses": ["127.0.0.0/8"], "tiers": ["production"]})
	codes(decide_with(host("lab", {}), prod_only, "127.0.0.1", ["127.0.0.1"])) == {"credential_tier_not_bound"}
	decide_with(host("production", {}), prod_only, "127.0.0.1", ["127.0.0.1"]).allow
}

test_transport_binding_defaults_to_verified_https if {
	codes(decide_with(host("lab", {"insecure": true}), loopback, "127.0.0.1", ["127.0.0.1"])) == {"credential_transport_not_bound"}
	insecure_ok := fleet({"addresses": ["127.0.0.0/8"], "transports": ["https", "https_insecure"]})
	decide_with(host("lab", {"insecure": true}), insecure_ok, "127.0.0.1", ["127.0.0.1"]).allow
}

test_host_globs_and_exact_addresses if {
	corp := fleet({"addresses": ["*.corp.example", "192.0.2.7"]})
	decide_with(host("production", {}), corp, "DC01.corp.example", ["10.9.9.9"]).allow
	decide_with(host("production", {}), corp, "192.0.2.7", ["192.0.2.7"]).allow
	decide_with(host("production", {}), corp, "exact.example", ["192.0.2.7"]).allow
	codes(decide_with(host("production", {}), corp, "dc01.corp.example.evil.example", ["203.0.113.5"])) == {"credential_address_not_bound"}
	codes(decide_with(host("production", {}), corp, "a.b.corp.example", ["10.9.9.9"])) == {"credential_address_not_bound"}
}

test_every_resolved_address_must_be_bound if {
	codes(decide_with(host("production", {}), loopback, "two.example", ["127.0.0.1", "203.0.113.5"])) == {"credential_address_not_bound"}
	codes(decide_with(host("production", {}), loopback, "none.example", [])) == {"credential_address_not_bound"}
}
