# METADATA
# title: Exceptions
# description: |
#   What does an exception make of host H's state? While it holds (it
#   expires after now) the host is excepted: never patched, never counted
#   compliant. Once it expired, a host that was left unpatched under it is
#   unknown until evidence says otherwise; a host judged on evidence keeps
#   its state. The compliance policy and the report both ask here.
package patchway.exceptions

now := time.parse_rfc3339_ns(input.now)

exception := object.get(input, "exception", {})

expires := time.parse_rfc3339_ns(exception.expires)

until := time.format([expires, "UTC", "2006-01-02T15:04Z"])

by := sprintf(" by %s", [exception.granted_by]) if {
	object.get(exception, "granted_by", "") != ""
} else := ""

default active := false

active if expires > now

expired if expires <= now

state := "excepted" if {
	active
} else := "unknown" if {
	expired
	input.state == "excepted"
} else := input.state

default reason := ""

reason := sprintf("exception%s until %s: %s", [by, until, object.get(exception, "reason", "")]) if {
	active
} else := sprintf("exception%s expired %s: the host was left unpatched under it and nothing has verified it since", [by, until]) if {
	state == "unknown"
	expired
} else := sprintf("exception%s expired %s; judged on evidence", [by, until]) if {
	expired
}

decision := {
	"allow": state == "excepted",
	"violations": [],
	"active": active,
	"state": state,
	"reason": reason,
}
