package decisionlog

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/patchway/patchway/policies"
)

// Change kinds: what a candidate policy would have decided differently.
const (
	ChangeDeadline   = "deadline"   // the SLA deadline moves
	ChangeVerdict    = "verdict"    // a host's state flips
	ChangeRefusal    = "refusal"    // a gate, control or plan allowed becomes refused, or the reverse
	ChangeHalt       = "halt"       // a wave halts that did not, or the reverse
	ChangeEscalation = "escalation" // other contacts, channels or accelerations
	ChangeError      = "error"      // the candidate cannot evaluate the recorded input
)

// Change is one recorded decision the candidate policy decides otherwise.
type Change struct {
	Kind       string `json:"kind"`
	Rollout    string `json:"rollout"`
	Path       string `json:"path"`
	DecisionID string `json:"decision_id"`
	// Subject names what was decided: a host, "approve lab by bob", a
	// wave.
	Subject string `json:"subject"`
	Was     string `json:"was"`
	Would   string `json:"would"`
	// Why is the candidate's reason, where it gives one.
	Why string `json:"why,omitempty"`
}

// WhatIf evaluates a recorded decision's input under the candidate
// policy and returns what would differ (none when the candidate decides
// the same in every respect the product acts on: the deadline, a host's
// state, allow, halt, who hears).
func WhatIf(ctx context.Context, candidate *policies.Engine, e Entry) ([]Change, error) {
	decision := policies.DecisionOfPath(e.Path)
	if decision == "" {
		return nil, nil
	}
	base := Change{Rollout: e.Labels["rollout_id"], Path: e.Path, DecisionID: e.DecisionID, Subject: subject(decision, e)}
	input, err := replayInput(decision, e)
	if err != nil {
		return nil, err
	}
	got, err := candidate.Eval(ctx, decision, input)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c := base
		c.Kind, c.Was, c.Would, c.Why = ChangeError, "decided", "no decision", err.Error()
		return []Change{c}, nil
	}
	var was, would outcome
	if err := json.Unmarshal(e.Result, &was); err != nil {
		return nil, fmt.Errorf("decision %s: recorded result: %w", e.DecisionID, err)
	}
	if err := json.Unmarshal(got, &would); err != nil {
		return nil, fmt.Errorf("decision %s: candidate result: %w", e.DecisionID, err)
	}
	var out []Change
	add := func(kind, w, n, why string) {
		c := base
		c.Kind, c.Was, c.Would, c.Why = kind, w, n, why
		out = append(out, c)
	}
	switch decision {
	case policies.DecisionSLA:
		if !was.Deadline.Equal(would.Deadline) {
			add(ChangeDeadline, stamp(was.Deadline), stamp(would.Deadline), moved(was.Deadline, would.Deadline))
		}
	case policies.DecisionCompliance, policies.DecisionRollback:
		if was.State != would.State {
			add(ChangeVerdict, was.State, would.State, first(would.Reasons))
		}
	case policies.DecisionWaves:
		if was.Halt != would.Halt {
			add(ChangeHalt, halts(was.Halt), halts(would.Halt), violations(would))
		}
	case policies.DecisionEscalation:
		if !slices.Equal(was.Contacts, would.Contacts) || !slices.Equal(was.Channels, would.Channels) || !slices.Equal(was.Accelerations, would.Accelerations) {
			add(ChangeEscalation, escalation(was), escalation(would), "")
		}
	}
	// Allow is what gates, controls and the plan act on; for a wave it is
	// whether it may dispatch now.
	if decision != policies.DecisionCompliance && decision != policies.DecisionRollback && was.Allow != would.Allow {
		add(ChangeRefusal, Allows(was.Allow), Allows(would.Allow), violations(would))
	}
	return out, nil
}

// PrepareCandidate readies a candidate engine for WhatIf: its oidc
// policy is told it replays records (data.oidc.replay), so that a gate
// decision taken on a verified token is asked about the person the
// record proved, since no record keeps a token to verify again. Only a
// what-if engine is prepared so; a worker's never is.
func PrepareCandidate(ctx context.Context, candidate *policies.Engine) error {
	return candidate.SetData(ctx, "oidc/replay", true)
}

// replayInput is the input the candidate is asked with: the recorded one,
// plus, for a gate decision whose token the record keeps as its hash
// only, the person the recorded decision proved (recorded_person).
func replayInput(decision string, e Entry) (json.RawMessage, error) {
	if decision != policies.DecisionGates {
		return e.Input, nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(e.Input, &in); err != nil {
		return nil, fmt.Errorf("decision %s: recorded input: %w", e.DecisionID, err)
	}
	var tok string
	_ = json.Unmarshal(in["token"], &tok) // absent or not a string: no token to stand in for
	var res struct {
		Person json.RawMessage `json:"person"`
	}
	if !strings.HasPrefix(tok, "sha256:") || json.Unmarshal(e.Result, &res) != nil || len(res.Person) == 0 || string(res.Person) == "null" {
		return e.Input, nil
	}
	in["recorded_person"] = res.Person
	return json.Marshal(in)
}

// outcome holds the fields of every decision that WhatIf compares.
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

// Facts reads the entry's input facts.
func (e Entry) Facts() InputFacts {
	var in InputFacts
	_ = json.Unmarshal(e.Input, &in) // facts are labels; what is absent stays zero
	return in
}

// subject names what a decision decided, from its input.
func subject(decision string, e Entry) string {
	in := e.Facts()
	switch decision {
	case policies.DecisionCompliance, policies.DecisionRollback:
		return "host " + e.Labels["host"]
	case policies.DecisionGates:
		return fmt.Sprintf("%s %s by %s", in.Action, in.Gate, in.User)
	case policies.DecisionWaves:
		return cmp.Or(in.Kind, "wave") + " " + in.Wave.Name
	case policies.DecisionEscalation:
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
