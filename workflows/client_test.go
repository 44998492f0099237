package workflows

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

func TestAsRefusal(t *testing.T) {
	violations := []rollout.Violation{{Code: "four_eyes", Msg: "the filer cannot approve"}}
	tests := []struct {
		name   string
		err    error
		want   Refusal
		wantOK bool
	}{
		{"a refusal by the gates policy, with its violations",
			temporal.NewNonRetryableApplicationError("approve refused", contract.Refused, nil, violations),
			Refusal{ByPolicy: true, Message: "approve refused", Violations: violations}, true},
		{"a refusal by policy without details",
			temporal.NewApplicationError("gate lab was decided meanwhile", contract.Refused),
			Refusal{ByPolicy: true, Message: "gate lab was decided meanwhile"}, true},
		{"a refusal by the workflow's own checks",
			fmt.Errorf("wrapped: %w", temporal.NewApplicationError("not waiting at a gate", "NotWaiting")),
			Refusal{Message: "not waiting at a gate"}, true},
		{"any other error", errors.New("connection refused"), Refusal{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := AsRefusal(tt.err)
			if ok != tt.wantOK || got.ByPolicy != tt.want.ByPolicy || got.Message != tt.want.Message || len(got.Violations) != len(tt.want.Violations) {
				t.Fatalf("AsRefusal = %+v, %t; want %+v, %t", got, ok, tt.want, tt.wantOK)
			}
			for i := range got.Violations {
				if got.Violations[i] != tt.want.Violations[i] {
					t.Errorf("violation %d = %+v, want %+v", i, got.Violations[i], tt.want.Violations[i])
				}
			}
		})
	}
}

func TestStatusEnded(t *testing.T) {
	for _, s := range []Status{StatusCompleted, StatusAborted, StatusRejected} {
		if !s.Ended() {
			t.Errorf("%s has not ended", s)
		}
	}
	for _, s := range []Status{StatusPaused, ""} {
		if s.Ended() {
			t.Errorf("%q has ended", s)
		}
	}
}

func TestNewRolloutInputRecordsTheFiler(t *testing.T) {
	src, diags := rollout.LoadSource(filepath.Join("..", "examples", "ms08-067.hcl"), rollout.LoadOptions{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	at := time.Date(2026, 3, 1, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	in := NewRolloutInput(src, "alice", at, Tuning{BootTimeout: time.Minute})
	if in.Rollout.FiledBy != "alice" || !in.Rollout.FiledAt.Equal(at) || in.Rollout.FiledAt.Location() != time.UTC {
		t.Errorf("filed by %q at %v, want alice at %v in UTC", in.Rollout.FiledBy, in.Rollout.FiledAt, at)
	}
	if len(in.Hosts) != len(src.Inventory.Hosts) || len(in.Sites) != len(src.Inventory.Sites) || in.Tuning.BootTimeout != time.Minute {
		t.Errorf("input has %d hosts, %d sites, tuning %+v", len(in.Hosts), len(in.Sites), in.Tuning)
	}
	if src.Rollout.FiledBy == "alice" {
		t.Error("the loaded rollout was changed")
	}
}
