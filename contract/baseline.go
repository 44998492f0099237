package contract

import (
	"fmt"
	"strings"
)

// Baseline is what the preflight scan found before the rollout touched
// any host: every planned host verified against the patch, counted by the
// compliance policy's baseline category (compliant, vulnerable,
// pending_reboot, unreachable, not_applicable, identity_mismatch,
// excepted, unknown). Hosts the scan proved compliant or not applicable
// are settled: the rollout does not patch them again.
type Baseline struct {
	// Hosts is the number of planned hosts; Scanned those scanned so far.
	Hosts   int `json:"hosts"`
	Scanned int `json:"scanned"`
	// Settled counts the hosts the scan settled (not patched again).
	Settled int `json:"settled"`
	// Counts are the hosts per category, sorted by category.
	Counts []BaselineCount `json:"counts,omitempty"`
	// Done: the scan is over; before, the counts are partial.
	Done bool `json:"done,omitempty"`
	// Stopped says why the scan ended before every host was scanned
	// ("the rollout was aborted").
	Stopped string `json:"stopped,omitempty"`
}

// BaselineCount is the number of hosts in one baseline category.
type BaselineCount struct {
	Category string `json:"category"`
	Hosts    int    `json:"hosts"`
}

// Count returns the hosts counted in category.
func (b *Baseline) Count(category string) int {
	if b == nil {
		return 0
	}
	for _, c := range b.Counts {
		if c.Category == category {
			return c.Hosts
		}
	}
	return 0
}

// Summary is the baseline in one line: "12 of 12 hosts scanned: 3
// compliant, 8 vulnerable, 1 pending_reboot; 3 settled, not patched
// again".
func (b *Baseline) Summary() string {
	if b == nil {
		return "no preflight scan"
	}
	var parts []string
	for _, c := range b.Counts {
		parts = append(parts, fmt.Sprintf("%d %s", c.Hosts, c.Category))
	}
	s := fmt.Sprintf("%d of %d hosts scanned", b.Scanned, b.Hosts)
	switch {
	case b.Stopped != "":
		s += " (scan stopped: " + b.Stopped + ")"
	case !b.Done:
		s += " (scan running)"
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if b.Settled > 0 {
		s += fmt.Sprintf("; %d settled, not patched again", b.Settled)
	}
	return s
}
