# METADATA
# title: Transport
# description: |
#   May host H be reached over plain http, with TLS verification off, or
#   with NTLM over http? Allowed per tier in data.transport.tiers (by
#   default only the lab may; production-like and production hosts need
#   https with verification). An unknown tier gets production's rules.
#   When the question carries the credential set the worker would send
#   (input.credential, bound on the worker, never in the submitted
#   inventory) and the host's resolved addresses (input.target), the set's
#   binding must also allow the host's tier, address and transport: an
#   inventory cannot name a tier or an address that the worker's own
#   configuration does not allow for that set. Basic authentication never
#   travels over plain http, whatever data.transport says.
package patchway.transport

host := input.host

name := object.get(host, "name", "")

tier := object.get(host, "tier", "")

tls := object.get(host, "tls", {})

transport := lower(t) if {
	t := object.get(tls, "transport", "")
	t != ""
} else := "https"

auth := lower(a) if {
	a := object.get(tls, "auth", "")
	a != ""
} else := "basic"

insecure := object.get(tls, "insecure", false) == true

rules := data.transport.tiers[tier] if data.transport.tiers[tier]

else := data.transport.tiers.production

# The tier whose rules apply: an unknown tier is production, for the
# credential binding too.
rules_tier := tier if data.transport.tiers[tier]

else := "production"

violations contains {"code": "unknown_transport", "msg": sprintf("%s names transport %q; use https or http", [name, transport])} if {
	not transport in {"http", "https"}
}

violations contains {"code": "unknown_auth", "msg": sprintf("%s names auth %q; use basic or ntlm", [name, auth])} if {
	not auth in {"basic", "ntlm"}
}

violations contains {"code": "http_not_allowed", "msg": msg} if {
	transport == "http"
	rules.http != true
	msg := sprintf("%s is a %s host: plain http is not allowed; use https with certificate verification", [name, tier])
}

violations contains {"code": "insecure_not_allowed", "msg": msg} if {
	insecure
	rules.insecure != true
	msg := sprintf("%s is a %s host: TLS verification may not be skipped; give it a ca_file instead", [name, tier])
}

violations contains {"code": "ntlm_over_http_not_allowed", "msg": msg} if {
	transport == "http"
	auth == "ntlm"
	rules.ntlm_over_http != true
	msg := sprintf("%s is a %s host: NTLM over http is not allowed (message encryption is not verified)", [name, tier])
}

# The credential set's worker-side binding: a key the worker left unset
# takes data.transport.credential_defaults; addresses have no default, so a
# set with no address binding is sent nowhere.
cred := input.credential

credential_defaults := object.get(data.transport, "credential_defaults", {})

bound(key) := cred[key] if {
	is_array(cred[key])
	count(cred[key]) > 0
} else := object.get(credential_defaults, key, [])

set_name := object.get(cred, "name", "")

# The transport the set would travel on, as a binding names it.
kind := "http" if transport == "http"

else := "https_insecure" if insecure

else := "https"

target := object.get(input, "target", {})

target_host := lower(object.get(target, "host", ""))

target_ips := object.get(target, "ips", [])

cidr_patterns := {p | some p in bound("addresses"); contains(p, "/")}

host_patterns := {lower(p) | some p in bound("addresses"); not contains(p, "/")}

ip_bound(ip) if {
	some c in cidr_patterns
	net.cidr_contains(c, ip)
}

ip_bound(ip) if ip in host_patterns

# A host glob (*.corp.example, one label per *) matches the name the
# inventory gives; otherwise every address the name resolves to must be in
# the binding, so a name cannot smuggle an address the binding refuses.
address_bound if {
	some p in host_patterns
	glob.match(p, ["."], target_host)
}

address_bound if {
	count(target_ips) > 0
	every ip in target_ips {
		ip_bound(ip)
	}
}

violations contains {"code": "basic_over_http", "msg": msg} if {
	transport == "http"
	auth == "basic"
	msg := sprintf("%s: Basic authentication over plain http would send the password in clear; use https, or ntlm on a lab host", [name])
}

violations contains {"code": "credential_tier_not_bound", "msg": msg} if {
	cred
	not rules_tier in bound("tiers")
	msg := sprintf("credential set %q may not serve %s, a %s host: its tiers binding is %v", [set_name, name, rules_tier, bound("tiers")])
}

violations contains {"code": "credential_addresses_unbound", "msg": msg} if {
	cred
	count(bound("addresses")) == 0
	msg := sprintf("credential set %q has no addresses binding on the worker, so it is sent to no host (%s refused); bind it with its ADDRESSES key", [set_name, name])
}

violations contains {"code": "credential_address_not_bound", "msg": msg} if {
	cred
	count(bound("addresses")) > 0
	not address_bound
	msg := sprintf("credential set %q may not be sent to %s at %s %v: its addresses binding is %v", [set_name, name, target_host, target_ips, bound("addresses")])
}

violations contains {"code": "credential_transport_not_bound", "msg": msg} if {
	cred
	not kind in bound("transports")
	msg := sprintf("credential set %q may not travel over %s to %s: its transports binding is %v", [set_name, kind, name, bound("transports")])
}

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"transport": transport,
	"insecure": insecure,
	"auth": auth,
}
