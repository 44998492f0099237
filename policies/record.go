package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// Recorder collects a record of every decision evaluated with its
// context (WithRecorder): path, revision, input, input hash, result and
// time. It is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	records []contract.DecisionRecord
}

type recorderKey struct{}

// WithRecorder returns a context whose decisions are recorded in the
// returned Recorder.
func WithRecorder(ctx context.Context) (context.Context, *Recorder) {
	r := &Recorder{}
	return context.WithValue(ctx, recorderKey{}, r), r
}

// Records returns the records so far, in evaluation order.
func (r *Recorder) Records() []contract.DecisionRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.records)
}

// Last returns the latest record of decision, if any.
func (r *Recorder) Last(decision string) (contract.DecisionRecord, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.records) - 1; i >= 0; i-- {
		if r.records[i].Path == DecisionPath(decision) {
			return r.records[i], true
		}
	}
	return contract.DecisionRecord{}, false
}

// record adds the evaluation of decision on input with result, when ctx
// carries a recorder. A record that cannot be encoded is left out rather
// than failing the decision it describes.
func record(ctx context.Context, decision, revision string, input ast.Value, result any, now time.Time) {
	r, _ := ctx.Value(recorderKey{}).(*Recorder)
	if r == nil {
		return
	}
	in, hash, err := canonicalValue(masked(input))
	if err != nil {
		return
	}
	res, err := canonicalJSON(result)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, contract.DecisionRecord{
		Path: DecisionPath(decision), Revision: revision, Input: in, InputHash: hash, Result: res, Time: now.UTC(),
	})
}

// maskedToken is the input key a record never keeps verbatim: an identity
// token is a credential, and the record lands in workflow history.
const maskedToken = "token"

// masked is the input as a record keeps it: an identity token replaced by
// "sha256:<hex>" of it, as OPA's decision-log masking would erase it, so
// the record names which token decided without holding one.
func masked(input ast.Value) ast.Value {
	obj, ok := input.(ast.Object)
	if !ok {
		return input
	}
	key := ast.StringTerm(maskedToken)
	t := obj.Get(key)
	if t == nil {
		return input
	}
	tok, ok := t.Value.(ast.String)
	if !ok || tok == "" {
		return input
	}
	sum := sha256.Sum256([]byte(tok))
	out := obj.Copy()
	out.Insert(key, ast.StringTerm("sha256:"+hex.EncodeToString(sum[:])))
	return out
}

// DecisionPath is a decision's rule as OPA's decision log names it.
func DecisionPath(decision string) string { return "patchway/" + decision + "/decision" }

// DecisionOfPath is the decision a path names ("" when it names none of
// the engine's).
func DecisionOfPath(path string) string {
	for _, d := range Decisions {
		if DecisionPath(d) == path {
			return d
		}
	}
	return ""
}

// InputRecord is a decision input as a record holds it: canonical JSON
// (object keys sorted, no white space) of exactly what the policy is
// given, and its hash "sha256:<hex>". The engine records with it and a
// reader that rebuilds an input proves it exact with it.
func InputRecord(in any) (json.RawMessage, string, error) {
	v, err := toValue(in)
	if err != nil {
		return nil, "", fmt.Errorf("encode decision input: %w", err)
	}
	return canonicalValue(v)
}

func canonicalValue(v ast.Value) (json.RawMessage, string, error) {
	x, err := ast.JSON(v)
	if err != nil {
		return nil, "", err
	}
	raw, err := canonicalJSON(x)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw)
	return raw, "sha256:" + hex.EncodeToString(sum[:]), nil
}

// canonicalJSON encodes x with sorted keys (encoding/json sorts maps) and
// without HTML escaping, so a reason reads as written.
func canonicalJSON(x any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// RuleLocation is where rule `rule` of a decision's package is defined
// in this engine's bundle ("compliance.rego:277"), or "" when the bundle
// defines no such rule. `patchway explain` names the rule that decided
// with it.
func (e *Engine) RuleLocation(decision, rule string) string {
	ref, err := ast.ParseRef("data.patchway." + decision + "." + rule)
	if err != nil {
		return ""
	}
	rules := e.cur.Load().compiler.GetRulesExact(ref)
	if len(rules) == 0 || rules[0].Location == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d", filepath.Base(rules[0].Location.File), rules[0].Location.Row)
}

// RebuildCompliance rebuilds a host's compliance (or rollback) decision
// from its verdict, which keeps the record compactly (contract.
// ComplianceRecord): the input from the target, the evidence and the
// recorded facts, with NewComplianceInput as the worker built it, and the
// result from the verdict. exact tells whether the rebuilt input hashes
// to the hash the worker recorded. The verdict must carry its record
// (Judged).
func RebuildCompliance(t contract.HostTarget, v contract.HostVerdict) (rec contract.DecisionRecord, exact bool, err error) {
	if v.Judged == nil {
		return rec, false, errors.New("the verdict keeps no compliance record")
	}
	var scan *hostscript.ScanResult
	if v.Judged.Facts.Reachable {
		scan = &v.Evidence
	}
	input, hash, err := InputRecord(NewComplianceInput(t, scan, v.Judged.Facts))
	if err != nil {
		return rec, false, err
	}
	res, err := json.Marshal(complianceResult{
		Allow: v.Decision.Allow, Violations: v.Decision.Violations, Revision: v.Decision.Revision, Error: v.Decision.Error,
		State: string(v.State), Reasons: v.Reasons, SupersededBy: v.Judged.SupersededBy, Baseline: v.Baseline,
		PreflightSettles: v.PreflightSettles, Install: v.Judged.Install,
	})
	if err != nil {
		return rec, false, errors.Join(errors.New("encode compliance result"), err)
	}
	return contract.DecisionRecord{
		Path: v.Judged.Path, Revision: v.Decision.Revision, Input: input, InputHash: v.Judged.InputHash,
		Result: res, Time: v.Judged.Facts.Now,
	}, hash == v.Judged.InputHash, nil
}

// complianceResult is the compliance decision as the policy gave it,
// from the verdict and its record.
type complianceResult struct {
	Allow            bool                `json:"allow"`
	Violations       []rollout.Violation `json:"violations,omitempty"`
	Revision         string              `json:"revision"`
	Error            string              `json:"error,omitempty"`
	State            string              `json:"state"`
	Reasons          []string            `json:"reasons"`
	SupersededBy     string              `json:"superseded_by,omitempty"`
	Baseline         string              `json:"baseline,omitempty"`
	PreflightSettles bool                `json:"preflight_settles,omitempty"`
	Install          bool                `json:"install"`
}
