# METADATA
# title: Transport
# description: |
#   May host H be reached over plain http, with TLS verification off, or
#   with NTLM over http? Allowed per tier in data.transport.tiers (by
#   default only the lab may; production-like and production hosts need
#   https with verification). An unknown tier gets production's rules.
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

decision := {
	"allow": count(violations) == 0,
	"violations": [v | some v in violations],
	"transport": transport,
	"insecure": insecure,
	"auth": auth,
}
