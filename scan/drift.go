package scan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchway/patchway/rollout"
)

// DriftKind says how a host's state moved between two scans.
type DriftKind string

// Drift kinds.
const (
	// DriftRegression: compliant at the previous scan, anything else now
	// (a later update overwrote a patched file, the host went away...).
	DriftRegression DriftKind = "regression"
	// DriftImproved: not compliant before, compliant now.
	DriftImproved DriftKind = "improved"
	// DriftChanged: another change between non-compliant states.
	DriftChanged DriftKind = "changed"
	// DriftRebootOverdue: pending_reboot at both scans with the same boot
	// time: the reboot the patch needs never happened.
	DriftRebootOverdue DriftKind = "reboot_overdue"
)

// Drift is one host and patch whose state moved (or whose pending reboot
// stayed pending) since the previous scan of the same scan id.
type Drift struct {
	Host     string            `json:"host"`
	KB       string            `json:"kb"`
	Kind     DriftKind         `json:"kind"`
	Previous rollout.HostState `json:"previous"`
	Current  rollout.HostState `json:"current"`
	// Regression is true for a host that was compliant and no longer is.
	Regression bool   `json:"regression"`
	Reason     string `json:"reason"`
}

// compare relates a scan's checks (host-major, started at startedAt) to
// the previous scan's, nil when there is none. It returns the checks with
// their Since (the previous Since when the state did not move, else
// startedAt), the drift (regressions first, then the other drift, each in
// inventory order) and the number of regressions; checks is not modified.
// A host or patch the previous scan did not check has no drift.
func compare(previous *Result, checks []HostCheck, startedAt time.Time) ([]HostCheck, []Drift, int) {
	prev := map[string]HostCheck{}
	if previous != nil {
		for _, c := range previous.Checks {
			prev[c.Host+"\x00"+c.KB] = c
		}
	}
	var regressions, other []Drift
	out := slices.Clone(checks)
	for i := range out {
		c := &out[i]
		c.Since = startedAt
		p, ok := prev[c.Host+"\x00"+c.KB]
		if !ok {
			continue // first scan, or a host or patch new since
		}
		if p.State == c.State && !p.Since.IsZero() {
			c.Since = p.Since
		}
		if d, ok := drift(p, *c); ok {
			if d.Regression {
				regressions = append(regressions, d)
			} else {
				other = append(other, d)
			}
		}
	}
	return out, append(regressions, other...), len(regressions)
}

// drift compares one host and patch across two scans.
func drift(prev, cur HostCheck) (Drift, bool) {
	d := Drift{Host: cur.Host, KB: cur.KB, Previous: prev.State, Current: cur.State, Reason: reasonOf(cur)}
	switch {
	case prev.State == rollout.StateCompliant && cur.State != rollout.StateCompliant:
		d.Kind, d.Regression = DriftRegression, true
	case prev.State != rollout.StateCompliant && cur.State == rollout.StateCompliant:
		d.Kind = DriftImproved
	case prev.State != cur.State:
		d.Kind = DriftChanged
	case cur.State == rollout.StatePendingReboot && !cur.BootTime.IsZero() && cur.BootTime.Equal(prev.BootTime):
		d.Kind = DriftRebootOverdue
		d.Reason = fmt.Sprintf("reboot pending since %s; the host has not rebooted since (last boot %s)",
			cur.Since.UTC().Format(time.RFC3339), cur.BootTime.UTC().Format(time.RFC3339))
	default:
		return Drift{}, false
	}
	return d, true
}

func reasonOf(c HostCheck) string {
	if len(c.Reasons) == 0 {
		return string(c.State)
	}
	return strings.Join(c.Reasons, "; ")
}
