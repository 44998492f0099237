package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/workflows"
)

// The Validate methods check flags alone: none of these tests needs a
// server, or even a connection attempt.

// checkValidate runs Validate and checks its error against want ("" for
// none, else a part of the message).
func checkValidate(t *testing.T, o commandOptions, want string) {
	t.Helper()
	err := o.Validate()
	switch {
	case want == "" && err != nil:
		t.Errorf("Validate() = %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("Validate() = %v, want an error with %q", err, want)
	}
}

func TestSubmitOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		tuning workflows.Tuning
		want   string
	}{
		{"the defaults", workflows.Tuning{}, ""},
		{"both set", workflows.Tuning{BootTimeout: time.Minute, RetryInterval: time.Hour}, ""},
		{"a negative boot timeout", workflows.Tuning{BootTimeout: -time.Second}, "--boot-timeout and --retry-interval must not be negative"},
		{"a negative retry interval", workflows.Tuning{RetryInterval: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &submitOptions{tuning: tt.tuning}, tt.want)
		})
	}
}

func TestControlOptionsValidate(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		action    controlAction
		expires   string
		want      string
		wantUntil time.Time
	}{
		{"approve has no flag rule", actionApprove, "", "", time.Time{}},
		{"pause ignores an --expires it does not have", actionPause, "garbage", "", time.Time{}},
		{"abort", actionAbort, "", "", time.Time{}},
		{"except for days", actionExcept, "7d", "", now.Add(7 * 24 * time.Hour)},
		{"except for a duration", actionExcept, "72h", "", now.Add(72 * time.Hour)},
		{"except until a time", actionExcept, "2026-04-01T00:00:00Z", "", time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)},
		{"except without an end", actionExcept, "", `--expires "": want a positive duration`, time.Time{}},
		{"except for a negative duration", actionExcept, "-1h", `--expires "-1h"`, time.Time{}},
		{"except for zero days", actionExcept, "0d", `--expires "0d"`, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &controlOptions{action: tt.action, expires: tt.expires, now: now}
			checkValidate(t, o, tt.want)
			if !o.until.Equal(tt.wantUntil) {
				t.Errorf("until = %v, want %v", o.until, tt.wantUntil)
			}
		})
	}
}

func TestControlOptionsRequest(t *testing.T) {
	until := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		o    controlOptions
		want any
		done string
	}{
		{"approve a gate", controlOptions{action: actionApprove, gate: "pilot", who: who{user: "bob"}},
			workflows.GateRequest{Gate: "pilot", User: "bob"}, "approved"},
		{"reject", controlOptions{action: actionReject, who: who{user: "bob"}, reason: "no"},
			workflows.GateRequest{User: "bob", Reason: "no"}, "rejected"},
		{"pause", controlOptions{action: actionPause, who: who{user: "bob"}, reason: "why"},
			workflows.ControlRequest{User: "bob", Reason: "why"}, "paused"},
		{"resume", controlOptions{action: actionResume, who: who{user: "bob"}, reason: "why"},
			workflows.ControlRequest{User: "bob", Reason: "why"}, "resumed"},
		{"abort with rollback", controlOptions{action: actionAbort, who: who{user: "bob"}, reason: "why", rollback: true},
			workflows.AbortRequest{User: "bob", Reason: "why", Rollback: true}, "aborted"},
		{"except", controlOptions{action: actionExcept, host: "ws1", who: who{user: "bob"}, reason: "why", until: until},
			workflows.ExceptRequest{Host: "ws1", User: "bob", Reason: "why", Expires: until}, "excepted ws1 until 2026-04-01T00:00:00Z in"},
		{"skip-host", controlOptions{action: actionSkipHost, host: "ws1", who: who{user: "bob"}, reason: "why"},
			workflows.SkipHostRequest{Host: "ws1", User: "bob", Reason: "why"}, "skipped ws1 in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.o.request(); got != tt.want {
				t.Errorf("request() = %#v, want %#v", got, tt.want)
			}
			if got := tt.o.done(); got != tt.done {
				t.Errorf("done() = %q, want %q", got, tt.done)
			}
		})
	}
}

func TestStatusOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    statusOptions
	}{
		{"plain", statusOptions{}},
		{"watch as JSON", statusOptions{watch: true, asJSON: true, interval: time.Second}},
		{"a host wins over --watch", statusOptions{host: "ws1", watch: true}},
		{"a bounded watch", statusOptions{watch: true, maxWatch: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &tt.o, "")
		})
	}
}

func TestReportOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    reportOptions
		want string
	}{
		{"the default table", reportOptions{format: "table"}, ""},
		{"every format is known", reportOptions{format: "html"}, ""},
		{"an unknown format", reportOptions{format: "pdf"}, `--format "pdf": want `},
		{"an empty format", reportOptions{format: ""}, `--format ""`},
		{"a threshold of 0", reportOptions{format: "csv", failSet: true}, ""},
		{"a threshold of 100", reportOptions{format: "csv", failSet: true, failUnder: 100}, ""},
		{"a threshold above 100", reportOptions{format: "csv", failSet: true, failUnder: 100.5}, "--fail-under 100.5: want a percentage from 0 to 100"},
		{"a negative threshold", reportOptions{format: "csv", failSet: true, failUnder: -1}, "--fail-under -1"},
		{"NaN", reportOptions{format: "csv", failSet: true, failUnder: math.NaN()}, "--fail-under NaN"},
		{"a value not given is not checked", reportOptions{format: "csv", failUnder: -1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &tt.o, tt.want)
		})
	}
}

func TestScanOptionsValidate(t *testing.T) {
	scan := func(every string) scanOptions {
		return scanOptions{inventory: "inv.hcl", patches: []string{"KB1"}, rollouts: []string{"r.hcl"}, every: every}
	}
	tests := []struct {
		name         string
		o            scanOptions
		want         string
		wantInterval time.Duration
	}{
		{"a one-off scan", scan(""), "", 0},
		{"a schedule in days", scan("7d"), "", 7 * 24 * time.Hour},
		{"a schedule in hours", scan("24h"), "", 24 * time.Hour},
		{"an interval under a minute", scan("10s"), `--every "10s": want a duration of at least 1m0s`, 0},
		{"an interval that is no duration", scan("daily"), `--every "daily"`, 0},
		{"no inventory", scanOptions{patches: []string{"KB1"}, rollouts: []string{"r.hcl"}}, "--inventory is required", 0},
		{"no patch", scanOptions{inventory: "inv.hcl", rollouts: []string{"r.hcl"}}, "--patch is required", 0},
		{"no rollout files", scanOptions{inventory: "inv.hcl", patches: []string{"KB1"}}, "--rollouts is required", 0},
		{"--every is read before the required flags", scanOptions{every: "10s"}, `--every "10s"`, 0},
		{"--last with --id needs nothing else", scanOptions{last: true, id: "weekly"}, "", 0},
		{"--delete with --id ignores --every", scanOptions{delete: true, id: "weekly", every: "10s"}, "", 0},
		{"--last without --id", scanOptions{last: true}, "--delete and --last need --id", 0},
		{"--delete without --id", scanOptions{delete: true, inventory: "inv.hcl"}, "--delete and --last need --id", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &tt.o, tt.want)
			if tt.o.interval != tt.wantInterval {
				t.Errorf("interval = %s, want %s", tt.o.interval, tt.wantInterval)
			}
		})
	}
}

func TestPolicyEvalOptionsValidate(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		now       string
		want      string
		wantInput string
	}{
		{"an input with its own now", `{"now":"2008-10-23T18:00:00Z"}`, "", "", `{"now":"2008-10-23T18:00:00Z"}`},
		{"the input's now wins over --now", `{"now":"2008-10-23T18:00:00Z"}`, "2020-01-01T00:00:00Z", "", `{"now":"2008-10-23T18:00:00Z"}`},
		{"--now fills a missing now", `{"user":"bob"}`, "2008-10-23T18:00:00Z", "", `{"now":"2008-10-23T18:00:00Z","user":"bob"}`},
		{"no now at all is left to the policy", `{"user":"bob"}`, "", "", `{"user":"bob"}`},
		{"--now that is no RFC 3339 time", `{"user":"bob"}`, "yesterday", `--now: parsing time "yesterday"`, ""},
		{"an unused bad --now is not read", `{"now":"2008-10-23T18:00:00Z"}`, "yesterday", "", `{"now":"2008-10-23T18:00:00Z"}`},
		{"an input that is no object", `[1, 2]`, "", "input must be a JSON object", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &policyEvalOptions{raw: []byte(tt.raw), now: tt.now}
			checkValidate(t, o, tt.want)
			if string(o.input) != tt.wantInput {
				t.Errorf("input = %s, want %s", o.input, tt.wantInput)
			}
		})
	}
}

func TestPolicyTestOptionsComplete(t *testing.T) {
	for _, tt := range []struct {
		name      string
		policyDir string
		args      []string
		want      string
	}{
		{"the defaults", "", nil, ""},
		{"--policy-dir", "/etc/patchway/policy", nil, "/etc/patchway/policy"},
		{"DIR wins over --policy-dir", "/etc/patchway/policy", []string{"mine"}, "mine"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := &policyTestOptions{global: &globalFlags{policyDir: tt.policyDir}}
			if err := o.Complete(newPolicyTestCmd(o.global), tt.args); err != nil {
				t.Fatal(err)
			}
			checkValidate(t, o, "")
			if o.dir != tt.want {
				t.Errorf("dir = %q, want %q", o.dir, tt.want)
			}
		})
	}
}

func TestFleetOptionsValidate(t *testing.T) {
	checkValidate(t, &fleetOptions{}, "set PATCHWAY_FLEET_PASSWORD to the password the simulated hosts accept")
	checkValidate(t, &fleetOptions{cfg: fleetConfig{password: "secret"}}, "")
}

func TestWorkerOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		o    workerOptions
		want string
	}{
		{"the defaults", workerOptions{stopTimeout: defaultStopTimeout}, ""},
		{"a bounded worker", workerOptions{maxActs: 50, stopTimeout: time.Minute}, ""},
		{"negative concurrency", workerOptions{maxActs: -1}, "--max-concurrent-activities -1"},
		{"a negative stop timeout", workerOptions{stopTimeout: -time.Second}, "--stop-timeout -1s: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &tt.o, tt.want)
		})
	}
}

// TestWorkerOptionsCompleteRefusesAnUnknownLogLevel: the level is parsed
// before anything dials.
func TestWorkerOptionsCompleteRefusesAnUnknownLogLevel(t *testing.T) {
	o := &workerOptions{logLevel: "chatty"}
	if err := o.Complete(newWorkerCmd(&globalFlags{}), nil); err == nil || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("Complete() = %v, want a --log-level error", err)
	}
}
