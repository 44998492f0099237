package decisionlog

import (
	"context"
	"fmt"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
)

// Change is one recorded decision the candidate policy decides otherwise:
// the difference, with the rollout and the decision it is of.
type Change struct {
	contract.PolicyDifference
	Rollout    string `json:"rollout"`
	DecisionID string `json:"decision_id"`
}

// WhatIf evaluates a recorded decision's input under the candidate
// policy (prepared with policies.PrepareCandidate) and returns what
// would differ (policies.Compare).
func WhatIf(ctx context.Context, candidate *policies.Engine, e Entry) ([]Change, error) {
	diffs, err := policies.Compare(ctx, candidate, e.Path, e.Input, e.Result, e.Labels["host"])
	if err != nil {
		return nil, fmt.Errorf("decision %s: %w", e.DecisionID, err)
	}
	out := make([]Change, 0, len(diffs))
	for _, d := range diffs {
		out = append(out, Change{PolicyDifference: d, Rollout: e.Labels["rollout_id"], DecisionID: e.DecisionID})
	}
	return out, nil
}

// Facts reads the entry's input facts.
func (e Entry) Facts() policies.InputFacts { return policies.FactsOf(e.Input) }
