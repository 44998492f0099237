package policies

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/patchway/patchway/rollout"
)

// TestToValueMatchesJSON: the direct conversion gives exactly what the
// JSON round trip gives, for every input type.
func TestToValueMatchesJSON(t *testing.T) {
	inputs := map[string]any{
		"compliance":               benchComplianceInput(),
		"compliance without scan":  ComplianceInput{Reachable: false, Now: t0, Exception: &Exception{Reason: "r", Expires: t0.Add(time.Hour)}},
		"reboot":                   benchRebootInput(),
		"sla":                      SLAInput{Now: t0},
		"wave with states":         WaveInput{States: map[rollout.HostState]int{rollout.StateFailed: 2}, Now: t0},
		"escalation with fraction": EscalationInput{Milestone: rollout.Milestone{AtPercent: 62.5, At: t0}, Now: t0},
		"generic map":              map[string]any{"now": t0, "x": []int{1, 2}},
		"raw message":              json.RawMessage(`{"now":"2026-11-23T10:00:00Z","n":1.5}`),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			got, err := toValue(in)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(strings.NewReader(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Compare(want) != 0 {
				t.Errorf("toValue = %v\nJSON    = %v", got, want)
			}
		})
	}
}
