# METADATA
# title: Who acts
# description: |
#   The person behind a gate or control action, proven by an OpenID Connect
#   token and nothing else. The token is verified here: its signature
#   against the identity provider's keys (data.oidc_keys, which the worker
#   fetches from the provider and refreshes), its issuer, its audience, and
#   its times against input.now, never the clock. A token is bound to one
#   action: its audience names the rollout, the action and the gate or
#   host the request names (input.target); it lives
#   minutes and is used once (input.used_tokens holds the hashes of the
#   tokens the rollout has seen). The person's subject and groups come only
#   from verified claims. Without a token, a typed name is accepted only
#   when data.oidc.insecure_dev_identity is true (a dev server started with
#   --insecure-dev-identity), and the person is marked unverified.
package patchway.oidc

import data.patchway.lib

cfg := data.oidc

keys := k if {
	k := data.oidc_keys
} else := {}

token := object.get(input, "token", "")

typed_user := object.get(input, "user", "")

now_ns := lib.ts(input.now)

skew_ns := cfg.clock_skew_seconds * 1000000000

# The token's header and claims; undefined for a malformed token (OPA
# treats the decode error as undefined).
decoded := io.jwt.decode(token) if token != ""

header := decoded[0]

claims := decoded[1]

# binding is the audience an action token must name: the rollout, the
# action and what the request names, a gate or a host (input.target),
# in the form contract.ActionAudience writes.
binding := sprintf("urn:patchway:%s:%s:%s", [input.rollout_id, input.action, target]) if {
	target != ""
} else := sprintf("urn:patchway:%s:%s", [input.rollout_id, input.action])

target := object.get(input, "target", "")

audiences := {a | some a in claims.aud} if is_array(claims.aud)

else := {claims.aud}

jwks := json.marshal(keys.jwks)

# signed: the signature verifies against a key of the provider, with the
# algorithm the header names, which must be an accepted one (never none,
# never HMAC: a public key is no secret, so an HS256 token "signed" with
# it proves nothing).
signed if {
	header.alg == "ES256"
	io.jwt.verify_es256(token, jwks)
}

signed if {
	header.alg == "RS256"
	io.jwt.verify_rs256(token, jwks)
}

signed if {
	header.alg == "PS256"
	io.jwt.verify_ps256(token, jwks)
}

keys_usable if {
	cfg.issuer != ""
	keys.issuer == cfg.issuer
	is_object(keys.jwks)
	not keys_stale
}

key_age_ns := now_ns - lib.ts(keys.fetched_at)

keys_stale if key_age_ns > cfg.max_key_age_seconds * 1000000000

last_error := e if {
	e := object.get(keys, "error", "")
	e != ""
} else := "none"

token_violations contains {"code": "token_missing", "msg": msg} if {
	token == ""
	not cfg.insecure_dev_identity
	msg := sprintf("no identity token came with the %s: sign in with `patchway login` (or give --token-file or PATCHWAY_TOKEN); a typed name decides nothing", [input.action])
}

token_violations contains {"code": "user_missing", "msg": "no token and no name: even an insecure dev identity needs --as"} if {
	token == ""
	cfg.insecure_dev_identity
	typed_user == ""
}

token_violations contains {"code": "token_malformed", "msg": "the identity token is not a JSON Web Token (three base64url parts)"} if {
	token != ""
	not decoded
}

token_violations contains {"code": "token_algorithm", "msg": msg} if {
	decoded
	alg := object.get(header, "alg", "")
	not alg in cfg.algorithms
	msg := sprintf("the token is signed with alg %q; only %v are accepted (never none, never an HMAC key)", [alg, cfg.algorithms])
}

token_violations contains {"code": "idp_not_configured", "msg": msg} if {
	token != ""
	cfg.issuer == ""
	msg := "no identity provider is trusted: data.oidc.issuer is empty"
}

token_violations contains {"code": "idp_keys_unavailable", "msg": msg} if {
	token != ""
	cfg.issuer != ""
	not keys.issuer == cfg.issuer
	msg := sprintf("the worker has no keys of identity provider %s yet (last error: %s)", [cfg.issuer, last_error])
}

token_violations contains {"code": "idp_keys_stale", "msg": msg} if {
	token != ""
	keys.issuer == cfg.issuer
	keys_stale
	msg := sprintf("the keys of identity provider %s were last fetched %s ago, more than the %s allowed (last error: %s)", [cfg.issuer, lib.duration(key_age_ns), lib.duration(cfg.max_key_age_seconds * 1000000000), last_error])
}

token_violations contains {"code": "token_signature", "msg": msg} if {
	header.alg in cfg.algorithms
	keys_usable
	not signed
	msg := sprintf("the token's signature does not verify against the keys of %s (key id %q): it was not signed by the identity provider", [cfg.issuer, object.get(header, "kid", "")])
}

# The claims are read only once the signature is proven.
token_violations contains v if {
	signed
	keys_usable
	some v in claim_violations
}

claim_violations contains {"code": "token_issuer", "msg": msg} if {
	claims.iss != cfg.issuer
	msg := sprintf("the token was issued by %q, not by the trusted identity provider %s", [claims.iss, cfg.issuer])
}

claim_violations contains {"code": "token_audience", "msg": msg} if {
	not binding in audiences
	msg := sprintf("the token is for %v, not for %s: it is bound to another rollout or action (patchway gets one token per action)", [sort(audiences), binding])
}

claim_violations contains {"code": "token_expired", "msg": msg} if {
	now_ns > (claims.exp * 1000000000) + skew_ns
	msg := sprintf("the token expired at %s (now %s, allowance %ds)", [time.format(claims.exp * 1000000000), input.now, cfg.clock_skew_seconds])
}

claim_violations contains {"code": "token_not_yet_valid", "msg": msg} if {
	claims.nbf * 1000000000 > now_ns + skew_ns
	msg := sprintf("the token is not valid before %s (now %s, allowance %ds)", [time.format(claims.nbf * 1000000000), input.now, cfg.clock_skew_seconds])
}

claim_violations contains {"code": "token_clock_skew", "msg": msg} if {
	claims.iat * 1000000000 > now_ns + skew_ns
	msg := sprintf("the token was issued at %s, after now (%s) by more than the %ds allowance: a clock is wrong", [time.format(claims.iat * 1000000000), input.now, cfg.clock_skew_seconds])
}

claim_violations contains {"code": "token_lifetime", "msg": msg} if {
	not is_number(object.get(claims, "exp", null))
	msg := "the token has no expiry (exp)"
}

claim_violations contains {"code": "token_lifetime", "msg": msg} if {
	claims.exp - object.get(claims, "iat", 0) > cfg.action_token_max_seconds
	msg := sprintf("the token lives %ds, more than the %ds an action token may (a login token is exchanged for a short one per action)", [claims.exp - object.get(claims, "iat", 0), cfg.action_token_max_seconds])
}

claim_violations contains {"code": "token_subject_missing", "msg": msg} if {
	not is_string(object.get(claims, cfg.subject_claim, null))
	msg := sprintf("the token has no %s claim naming the person", [cfg.subject_claim])
}

claim_violations contains {"code": "token_groups_missing", "msg": msg} if {
	cfg.groups_from == "claim"
	not is_array(object.get(claims, cfg.groups_claim, null))
	msg := sprintf("the token has no %s claim: the identity provider must send the person's groups", [cfg.groups_claim])
}

claim_violations contains {"code": "token_replayed", "msg": "this token was already presented to the rollout: a token is used once"} if {
	crypto.sha256(token) in object.get(input, "used_tokens", [])
}

# verified_groups come from the claim, or from data.groups keyed by the
# verified subject.
verified_groups := claims[cfg.groups_claim] if cfg.groups_from == "claim"

else := groups_of(claims[cfg.subject_claim])

groups_of(subject) := sort([g | some g, members in data.groups; subject in members])

display_name := [n | some c in cfg.name_claims; n := claims[c]; is_string(n)][0]

# person is who acts; undefined while anything above is violated.
person := {
	"subject": claims[cfg.subject_claim],
	"name": display_name,
	"groups": verified_groups,
	"verified": true,
	"issuer": claims.iss,
	"key_id": object.get(header, "kid", ""),
	"token_sha256": crypto.sha256(token),
	"expires": time.format(claims.exp * 1000000000),
} if {
	token != ""
	signed
	keys_usable
	count(token_violations) == 0
}

# violations are the token's, except when `patchway policy whatif`
# replays a recorded decision: a record keeps the person it proved, never
# the token, and data.oidc.replay is set by the what-if engine alone
# (never in a worker's data), so the candidate policy is asked about the
# person proven then.
violations := set() if replaying

else := token_violations

replaying if {
	cfg.replay == true
	is_object(input.recorded_person)
}

person := input.recorded_person if replaying

person := {
	"subject": typed_user,
	"name": typed_user,
	"groups": groups_of(typed_user),
	"verified": false,
} if {
	token == ""
	cfg.insecure_dev_identity
	typed_user != ""
}
