package policies

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
)

// PrepareCandidate readies a candidate engine for Compare: its oidc
// policy is told it replays records (data.oidc.replay), so that a gate
// decision taken on a verified token is asked about the person the
// record proved, since no record keeps a token to verify again. Only a
// candidate engine (what-if, shadow) is prepared so; a worker's live
// engine never is.
func PrepareCandidate(ctx context.Context, candidate *Engine) error {
	return candidate.SetData(ctx, "oidc/replay", true)
}

// Compare evaluates a recorded decision's input under the candidate
// policy and returns what would differ (none when the candidate decides
// the same in every respect the product acts on: the deadline, a host's
// state, allow, halt, who hears). host names the host of a compliance
// decision, for the subject.
func Compare(ctx context.Context, candidate *Engine, path string, input, result json.RawMessage, host string) ([]contract.PolicyDifference, error) {
	decision := DecisionOfPath(path)
	if decision == "" {
		return nil, nil
	}
	base := contract.PolicyDifference{Path: path, Subject: subject(decision, input, host)}
	input, err := replayInput(decision, input, result)
	if err != nil {
		return nil, err
	}
	got, err := candidate.Eval(ctx, decision, input)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		d := base
		d.Kind, d.Was, d.Would, d.Why = contract.DifferenceError, "decided", "no decision", err.Error()
		return []contract.PolicyDifference{d}, nil
	}
	var was, would outcome
	if err := json.Unmarshal(result, &was); err != nil {
		return nil, fmt.Errorf("recorded result: %w", err)
	}
	if err := json.Unmarshal(got, &would); err != nil {
		return nil, fmt.Errorf("candidate result: %w", err)
	}
	var out []contract.PolicyDifference
	add := func(kind, w, n, why string) {
		d := base
		d.Kind, d.Was, d.Would, d.Why = kind, w, n, why
		out = append(out, d)
	}
	switch decision {
	case DecisionSLA:
		if !was.Deadline.Equal(would.Deadline) {
			add(contract.DifferenceDeadline, stamp(was.Deadline), stamp(would.Deadline), moved(was.Deadline, would.Deadline))
		}
	case DecisionCompliance, DecisionRollback:
		if was.State != would.State {
			add(contract.DifferenceVerdict, was.State, would.State, first(would.Reasons))
		}
	case DecisionWaves:
		if was.Halt != would.Halt {
			add(contract.DifferenceHalt, halts(was.Halt), halts(would.Halt), violations(would))
		}
	case DecisionEscalation:
		if !slices.Equal(was.Contacts, would.Contacts) || !slices.Equal(was.Channels, would.Channels) || !slices.Equal(was.Accelerations, would.Accelerations) {
			add(contract.DifferenceEscalation, escalation(was), escalation(would), "")
		}
	}
	// Allow is what gates, controls and the plan act on; for a wave it is
	// whether it may dispatch now.
	if decision != DecisionCompliance && decision != DecisionRollback && was.Allow != would.Allow {
		add(contract.DifferenceRefusal, Allows(was.Allow), Allows(would.Allow), violations(would))
	}
	return out, nil
}

// replayInput is the input the candidate is asked with: the recorded one,
// plus, for a gate decision whose token the record keeps as its hash
// only, the person the recorded decision proved (recorded_person).
func replayInput(decision string, input, result json.RawMessage) (json.RawMessage, error) {
	if decision != DecisionGates {
		return input, nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(input, &in); err != nil {
		return nil, fmt.Errorf("recorded input: %w", err)
	}
	var tok string
	_ = json.Unmarshal(in["token"], &tok) // absent or not a string: no token to stand in for
	var res struct {
		Person json.RawMessage `json:"person"`
	}
	if !strings.HasPrefix(tok, "sha256:") || json.Unmarshal(result, &res) != nil || len(res.Person) == 0 || string(res.Person) == "null" {
		return input, nil
	}
	in["recorded_person"] = res.Person
	return json.Marshal(in)
}

// outcome holds the fields of every decision that Compare compares.
type outcome struct {
	Allow      bool `json:"allow"`
	Violations []struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
	} `json:"violations"`
	Deadline      time.Time `json:"deadline"`
	State         string    `json:"state"`
	Reasons       []string  `json:"reasons"`
	Halt          bool      `json:"halt"`
	Contacts      []string  `json:"contacts"`
	Channels      []string  `json:"channels"`
	Accelerations []string  `json:"accelerations"`
}

// InputFacts are the fields of a decision's input that name what was
// decided: the action, gate and person of a gate decision, the wave of a
// wave decision, the milestone of an escalation, the patch of a risk
// decision. A field the decision's input lacks stays zero.
type InputFacts struct {
	Action string `json:"action"`
	Gate   string `json:"gate"`
	User   string `json:"user"`
	Reason string `json:"reason"`
	Kind   string `json:"kind"`
	Wave   struct {
		Name string `json:"name"`
	} `json:"wave"`
	Hosts     int `json:"hosts"`
	Milestone struct {
		AtPercent float64 `json:"at_percent"`
	} `json:"milestone"`
	Rollout struct {
		Patch struct {
			KB string `json:"kb"`
		} `json:"patch"`
	} `json:"rollout"`
}

// FactsOf reads a decision input's facts.
func FactsOf(input json.RawMessage) InputFacts {
	var in InputFacts
	_ = json.Unmarshal(input, &in) // facts are labels; what is absent stays zero
	return in
}

// subject names what a decision decided, from its input.
func subject(decision string, input json.RawMessage, host string) string {
	in := FactsOf(input)
	switch decision {
	case DecisionCompliance, DecisionRollback:
		return "host " + host
	case DecisionGates:
		return fmt.Sprintf("%s %s by %s", in.Action, in.Gate, in.User)
	case DecisionWaves:
		return cmp.Or(in.Kind, "wave") + " " + in.Wave.Name
	case DecisionEscalation:
		return fmt.Sprintf("escalation at SLA %g%%", in.Milestone.AtPercent)
	}
	return decision + " " + in.Rollout.Patch.KB
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return t.UTC().Format(time.RFC3339)
}

func moved(was, would time.Time) string {
	switch d := would.Sub(was); {
	case was.IsZero() || would.IsZero():
		return ""
	case d < 0:
		return "earlier by " + (-d).String()
	default:
		return "later by " + d.String()
	}
}

func first(reasons []string) string {
	if len(reasons) == 0 {
		return ""
	}
	return reasons[0]
}

func halts(h bool) string {
	if h {
		return "halts"
	}
	return "goes on"
}

// Allows is an allow as a word: "allowed" or "refused".
func Allows(a bool) string {
	if a {
		return "allowed"
	}
	return "refused"
}

func violations(o outcome) string {
	var parts []string
	for _, v := range o.Violations {
		parts = append(parts, v.Code+": "+v.Msg)
	}
	return strings.Join(parts, "; ")
}

func escalation(o outcome) string {
	s := "notify " + cmp.Or(strings.Join(o.Contacts, ", "), "nobody") + " on " + cmp.Or(strings.Join(o.Channels, ", "), "no channel")
	if len(o.Accelerations) > 0 {
		s += "; allows " + strings.Join(o.Accelerations, ", ")
	}
	return s
}
