package patchway.exceptions_test

import data.patchway.exceptions

exc := {"reason": "lab instrument", "granted_by": "carol", "expires": "2026-12-01T00:00:00Z"}

decide(state, now) := d if {
	d := exceptions.decision with input as {"exception": exc, "state": state, "now": now}
}

test_a_holding_exception_makes_the_host_excepted if {
	d := decide("failed", "2026-11-23T10:00:00Z")
	d.active
	d.state == "excepted"
	d.reason == "exception by carol until 2026-12-01T00:00Z: lab instrument"
}

test_an_expired_exception_leaves_an_unpatched_host_unknown if {
	d := decide("excepted", "2026-12-01T00:00:00Z")
	not d.active
	d.state == "unknown"
	contains(d.reason, "left unpatched under it")
}

test_an_expired_exception_keeps_a_host_judged_on_evidence if {
	d := decide("compliant", "2026-12-02T00:00:00Z")
	d.state == "compliant"
	d.reason == "exception by carol expired 2026-12-01T00:00Z; judged on evidence"
}

test_no_exception_changes_nothing if {
	d := exceptions.decision with input as {"state": "pending", "now": "2026-11-23T10:00:00Z"}
	d.state == "pending"
	not d.active
	d.reason == ""
}
