package decisionlog

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

var testNow = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// entryOf records an input as the engine would, with a given recorded
// result.
func entryOf(t *testing.T, decision string, in any, result string, labels map[string]string) Entry {
	t.Helper()
	raw, hash, err := policies.InputRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	l := map[string]string{"rollout_id": "ms08-067", "input_sha256": hash}
	for k, v := range labels {
		l[k] = v
	}
	return Entry{DecisionID: "d-" + decision, Labels: l, Path: policies.DecisionPath(decision), Input: raw, Result: json.RawMessage(result)}
}

// TestWhatIfFindsWhatTheCandidateDecidesOtherwise evaluates recorded
// inputs under the real engine: a host recorded compliant that the
// policy finds unreachable is a flipped verdict; a gate recorded allowed
// for a filer is refused (four-eyes); the same results give no change;
// a candidate bundle that cannot decide is an error change, not a crash.
func TestWhatIfFindsWhatTheCandidateDecidesOtherwise(t *testing.T) {
	ctx := context.Background()
	engine, err := policies.Load(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	hosts, _ := fixture.Inventory(1)
	ro := fixture.Rollout(testNow.Add(-time.Hour))
	target := contract.HostTarget{RolloutID: ro.ID, Host: hosts[0], Patch: ro.Patch}
	host := entryOf(t, policies.DecisionCompliance,
		policies.NewComplianceInput(target, nil, contract.ComplianceFacts{Now: testNow}),
		`{"allow":true,"state":"compliant","reasons":["recorded"]}`, map[string]string{"host": hosts[0].Name})
	gate := entryOf(t, policies.DecisionGates, policies.GateInput{
		RolloutID: ro.ID, FiledBy: "alice", Gate: "lab", Action: "approve", User: "alice", Severity: "critical", Now: testNow,
	}, `{"allow":true}`, nil)

	changes, err := WhatIf(ctx, engine, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Kind != contract.DifferenceVerdict || changes[0].Was != "compliant" || changes[0].Would != string(rollout.StateUnreachable) ||
		changes[0].Subject != "host "+hosts[0].Name {
		t.Errorf("host recorded compliant, judged unreachable now: %+v", changes)
	}
	changes, err = WhatIf(ctx, engine, gate)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || changes[0].Kind != contract.DifferenceRefusal || changes[0].Would != "refused" || changes[0].Subject != "approve lab by alice" {
		t.Errorf("the filer's own approval recorded allowed: %+v", changes)
	}

	// The engine's own results, recorded, give no change.
	for _, e := range []Entry{host, gate} {
		got, err := engine.Eval(ctx, policies.DecisionOfPath(e.Path), e.Input)
		if err != nil {
			t.Fatal(err)
		}
		e.Result = got
		if changes, err := WhatIf(ctx, engine, e); err != nil || len(changes) != 0 {
			t.Errorf("%s under the policy that decided it: %+v, %v; want no change", e.Path, changes, err)
		}
	}

	// A candidate whose rule is undefined for the input decides nothing:
	// an error change, with the reason.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gates.rego"), []byte("package patchway.gates\n\ndecision := d if {\n\tinput.never\n\td := {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	undecided, err := policies.Load(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	changes, err = WhatIf(ctx, undecided, gate)
	if err != nil || len(changes) != 1 || changes[0].Kind != contract.DifferenceError || changes[0].Why == "" {
		t.Errorf("a candidate that cannot decide: %+v, %v; want one error change with its reason", changes, err)
	}
}
