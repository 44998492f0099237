package workflows

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
)

// shadowOf reads a shadow policy directory holding data alone.
func shadowOf(t *testing.T, data string) *contract.ShadowPolicy {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "candidate.json"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := policies.ReadShadow(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return &sp
}

// A shadow policy that halves the SLA of important patches is asked
// about every decision and disagrees on the deadline alone; the rollout
// keeps the live deadline and finishes as the live policy decides.
func TestShadowPolicyRecordsDisagreementsAndDecidesNothing(t *testing.T) {
	live := newHarness(t, standardInput(2))
	live.approveGates("bob")
	want, err := live.run()
	if err != nil {
		t.Fatal(err)
	}

	in := standardInput(2)
	in.Shadow = shadowOf(t, `{"sla": {"hours": {"important": 360}}}`)
	h := newHarness(t, in)
	h.approveGates("bob")
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout with a shadow policy: %v", err)
	}
	liveDeadline, deadline := live.progressAtEnd().Deadline, h.progressAtEnd().Deadline
	if !deadline.Equal(liveDeadline) || rep.CompliancePercent != want.CompliancePercent {
		t.Errorf("with a shadow: deadline %s, %.1f %% compliant; want the live policy's %s, %.1f %%", deadline, rep.CompliancePercent, liveDeadline, want.CompliancePercent)
	}
	if p := h.progressAtEnd(); p.Shadow == nil || p.Shadow.Differing != 1 {
		t.Errorf("progress shadow %+v; want the summary status shows", p.Shadow)
	}
	s := rep.Shadow
	if s == nil || s.Revision != in.Shadow.Revision {
		t.Fatalf("report shadow %+v; want the summary of revision %s", s, in.Shadow.Revision)
	}
	if s.Differing != 1 || s.ByKind[contract.DifferenceDeadline] != 1 || s.Compared < 5 {
		t.Fatalf("shadow: %s; want one deadline difference among the rollout's decisions", s)
	}
	d := s.Differences[0]
	if d.Path != "patchway/sla/decision" || d.Was != liveDeadline.UTC().Format("2006-01-02T15:04:05Z") || !strings.Contains(d.Why, "earlier by 270h") {
		t.Errorf("difference %s; want the deadline 270 h earlier (half of the 540 h the risk facts leave of 720)", d)
	}
	if want.Shadow != nil {
		t.Errorf("a rollout without a shadow reports one: %+v", want.Shadow)
	}
	t.Logf("shadow policy %s\n  %s", s, d)
}

// A shadow that cannot load on the worker (its revision is not the one
// submitted) is a difference of kind error; the rollout goes on.
func TestShadowPolicyThatFailsIsADifferenceNotAFailure(t *testing.T) {
	in := standardInput(1)
	in.Shadow = shadowOf(t, `{"sla": {"hours": {"important": 360}}}`)
	in.Shadow.Revision = "sha256:another-release"
	h := newHarness(t, in)
	h.approveGates("bob")
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout: %v", err)
	}
	if s := rep.Shadow; s == nil || s.ByKind[contract.DifferenceError] == 0 || !strings.Contains(s.Differences[0].Why, "another release") {
		t.Fatalf("shadow %+v; want errors naming the revision mismatch", rep.Shadow)
	}
	if rep.CompliancePercent != 100 {
		t.Errorf("rollout %.1f %% compliant; want it finished as the live policy decides", rep.CompliancePercent)
	}
}
