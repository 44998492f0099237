package scan

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

func TestDriftOfOneHostAndPatch(t *testing.T) {
	boot := time.Date(2026, 11, 20, 6, 0, 0, 0, time.UTC)
	since := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	check := func(st rollout.HostState, boot time.Time, reasons ...string) HostCheck {
		return HostCheck{Host: "WS-0001", KB: "KB958644", State: st, BootTime: boot, Since: since, Reasons: reasons}
	}
	tests := []struct {
		name       string
		prev, cur  HostCheck
		want       DriftKind // "" is no drift
		regression bool
		reason     string
	}{
		{"compliant to not_effective is a regression", check(rollout.StateCompliant, boot), check(rollout.StateNotEffective, boot, "netapi32.dll below 6.1.7600.16385"),
			DriftRegression, true, "netapi32.dll below 6.1.7600.16385"},
		{"compliant to unreachable is a regression", check(rollout.StateCompliant, boot), check(rollout.StateUnreachable, time.Time{}),
			DriftRegression, true, "unreachable"},
		{"pending_reboot to compliant is improved", check(rollout.StatePendingReboot, boot), check(rollout.StateCompliant, boot.Add(time.Hour)),
			DriftImproved, false, "compliant"},
		{"pending to not_effective is changed", check(rollout.StatePending, boot), check(rollout.StateNotEffective, boot, "old file", "no reboot"),
			DriftChanged, false, "old file; no reboot"},
		{"pending_reboot at the same boot time is reboot_overdue", check(rollout.StatePendingReboot, boot), check(rollout.StatePendingReboot, boot),
			DriftRebootOverdue, false, "reboot pending since 2026-11-22T09:00:00Z; the host has not rebooted since (last boot 2026-11-20T06:00:00Z)"},
		{"pending_reboot after a reboot is no drift", check(rollout.StatePendingReboot, boot), check(rollout.StatePendingReboot, boot.Add(time.Hour)), "", false, ""},
		{"pending_reboot with no boot time is no drift", check(rollout.StatePendingReboot, time.Time{}), check(rollout.StatePendingReboot, time.Time{}), "", false, ""},
		{"the same state is no drift", check(rollout.StateCompliant, boot), check(rollout.StateCompliant, boot), "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := drift(tt.prev, tt.cur)
			if ok != (tt.want != "") || d.Kind != tt.want || d.Regression != tt.regression || d.Reason != tt.reason {
				t.Fatalf("drift = %+v, %t; want kind %q, regression %t, reason %q", d, ok, tt.want, tt.regression, tt.reason)
			}
			if ok && (d.Host != "WS-0001" || d.KB != "KB958644" || d.Previous != tt.prev.State || d.Current != tt.cur.State) {
				t.Errorf("drift = %+v, want WS-0001 KB958644 %s -> %s", d, tt.prev.State, tt.cur.State)
			}
		})
	}
}

func TestCompareWithThePreviousScan(t *testing.T) {
	first := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	start := first.Add(24 * time.Hour)
	at := func(host string, st rollout.HostState, since time.Time) HostCheck {
		return HostCheck{Host: host, KB: "KB958644", State: st, Since: since}
	}
	previous := &Result{StartedAt: first, Checks: []HostCheck{
		at("A", rollout.StateCompliant, first.Add(-48*time.Hour)),
		at("B", rollout.StatePending, first),
		at("C", rollout.StateCompliant, first),
		at("D", rollout.StateCompliant, time.Time{}),
		at("E", rollout.StateCompliant, first),
	}}
	checks := []HostCheck{
		at("A", rollout.StateCompliant, time.Time{}),
		at("B", rollout.StateCompliant, time.Time{}),
		at("C", rollout.StateNotEffective, time.Time{}),
		at("D", rollout.StateCompliant, time.Time{}),
		at("NEW", rollout.StatePending, time.Time{}),
		at("E", rollout.StateUnreachable, time.Time{}),
	}
	orig := slices.Clone(checks)

	out, ds, regressions := compare(previous, checks, start)
	if !slices.EqualFunc(checks, orig, func(a, b HostCheck) bool { return fmt.Sprint(a) == fmt.Sprint(b) }) {
		t.Errorf("compare modified its input: %v", checks)
	}
	wantSince := map[string]time.Time{
		"A":   first.Add(-48 * time.Hour), // compliant at both: since the earlier scan saw it so
		"B":   start,                      // moved
		"C":   start,                      // moved
		"D":   start,                      // the previous scan had no Since
		"NEW": start,                      // new since
		"E":   start,
	}
	for _, c := range out {
		if !c.Since.Equal(wantSince[c.Host]) {
			t.Errorf("%s since %s, want %s", c.Host, c.Since, wantSince[c.Host])
		}
	}
	var got []string
	for _, d := range ds {
		got = append(got, fmt.Sprintf("%s %s %t", d.Host, d.Kind, d.Regression))
	}
	if want := "C regression true, E regression true, B improved false"; strings.Join(got, ", ") != want {
		t.Errorf("drift = %s; want regressions first, each in inventory order: %s", strings.Join(got, ", "), want)
	}
	if regressions != 2 {
		t.Errorf("regressions = %d, want 2", regressions)
	}

	out, ds, regressions = compare(nil, checks, start)
	if len(ds) != 0 || regressions != 0 {
		t.Errorf("a first scan has drift %v", ds)
	}
	for _, c := range out {
		if !c.Since.Equal(start) {
			t.Errorf("first scan: %s since %s, want the scan's start", c.Host, c.Since)
		}
	}
}

func TestReasonOfACheck(t *testing.T) {
	if got := reasonOf(HostCheck{State: rollout.StateUnreachable}); got != "unreachable" {
		t.Errorf("no reasons: %q, want the state", got)
	}
	if got := reasonOf(HostCheck{State: rollout.StateNotEffective, Reasons: []string{"a", "b"}}); got != "a; b" {
		t.Errorf("two reasons: %q, want them joined", got)
	}
}
