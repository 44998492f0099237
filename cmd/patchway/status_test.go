package main

import (
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

func TestRenderProgress(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	base := workflows.Progress{
		RolloutID: "ms08-067", KB: "KB958644", Severity: rollout.SeverityCritical,
		Status: workflows.StatusRunning, HostsDone: 12, HostsTotal: 40,
		Deadline: now.Add(20 * time.Hour),
		Steps: []workflows.StepProgress{
			{Name: "lab", Kind: workflows.KindStage, Status: workflows.StepDone, Hosts: 4,
				Totals: map[rollout.HostState]int{rollout.StateCompliant: 4}},
			{Name: "wave:emea", Kind: workflows.KindWave, Status: workflows.StepRunning, Hosts: 20, Threshold: 2, Failures: 1,
				Totals: map[rollout.HostState]int{rollout.StateCompliant: 8, rollout.StateFailed: 1, rollout.StateInProgress: 3, rollout.StatePending: 8}},
			{Name: "wave:amer", Kind: workflows.KindWave, Status: workflows.StepPending, Hosts: 16,
				Totals: map[rollout.HostState]int{rollout.StatePending: 16}},
		},
	}
	waiting := base
	waiting.Status, waiting.WaitingGate = workflows.StatusWaiting, "wave:amer"
	breached := base
	breached.Breached = true
	decided := base
	decided.Decisions = []workflows.Record{{At: now, Kind: "approve", Subject: "production-like", User: "alice", Allow: true, Reason: "lab clean"}}

	tests := []struct {
		name string
		p    workflows.Progress
		want []string
		not  []string
	}{
		{"a finished stage has a full bar and its count", base,
			[]string{"lab       [==============================]   4/4   done", "compliant 4"}, nil},
		{"a running wave shows done, failed, in progress and pending cells with its failure threshold", base,
			[]string{"[============x>>>>.............]   9/20", "failures 1/2", "compliant 8, pending 8, in_progress 3, failed 1"}, nil},
		{"the header gives status, hosts and time left to the deadline", base,
			[]string{"Rollout ms08-067  KB958644 (critical)  RUNNING", "hosts 12/40 done", "(in 20h0m0s)"}, []string{"BREACHED", "waiting for approval"}},
		{"a waiting gate says how to approve it", waiting,
			[]string{`waiting for approval at "wave:amer": patchway approve ms08-067 wave:amer`}, nil},
		{"a breached deadline says so instead of the time left", breached,
			[]string{"BREACHED"}, []string{"(in "}},
		{"decisions are listed with who and why", decided,
			[]string{"approve    allow production-like by alice: lab clean"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderProgress(tt.p, now)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q in:\n%s", n, got)
				}
			}
		})
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Time
		wantErr  bool
	}{
		{"whole days as in HCL", "7d", now.Add(7 * 24 * time.Hour), false},
		{"a Go duration", "36h", now.Add(36 * time.Hour), false},
		{"an RFC 3339 time", "2026-12-01T00:00:00Z", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false},
		{"zero is refused", "0s", time.Time{}, true},
		{"a negative duration is refused", "-2h", time.Time{}, true},
		{"words are refused", "next week", time.Time{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workflows.ParseExpiry(tt.in, now)
			if (err != nil) != tt.wantErr {
				t.Fatalf("workflows.ParseExpiry(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("workflows.ParseExpiry(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestFitWidth(t *testing.T) {
	tests := []struct {
		name, in string
		width    int
		want     string
	}{
		{"lines longer than the terminal are cut one short of its width", "abcdef\nxy\n", 5, "abcd\nxy\n"},
		{"an unknown width leaves the text alone", "abcdef\n", 0, "abcdef\n"},
		{"runes, not bytes, are counted", "ééééé\n", 4, "ééé\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fitWidth(tt.in, tt.width); got != tt.want {
				t.Errorf("fitWidth(%q, %d) = %q, want %q", tt.in, tt.width, got, tt.want)
			}
		})
	}
}
