// Package policies evaluates Patchway's rules, written in Rego, in process.
//
// The default policy bundle (rego/*.rego and rego/data.json) is embedded in
// the binary. Load assembles the bundle (defaults, optionally replaced or
// extended by a user directory), compiles it once with capabilities that
// exclude every non-deterministic builtin, and prepares one query per
// decision. The prepared queries are shared by all goroutines.
//
// Every decision has one shape: rollout.Decision (allow, violations,
// revision, error) plus the facts of the decision. Time is never read from
// the clock: each input carries Now, which is also passed to OPA as the
// evaluation time. A decision that fails to evaluate fails closed: it
// denies (or, for compliance, reports the host unknown), carries the error,
// and the error is returned as well.
package policies

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed all:rego
var defaultBundle embed.FS

var noMetrics = metrics.NoOp()

// Decision names, as `patchway policy eval` takes them. Each is the rule
// `decision` of package `patchway.<name>`.
const (
	DecisionCompliance = "compliance"
	DecisionReboot     = "reboot"
	DecisionSLA        = "sla"
	DecisionPlan       = "plan"
	DecisionGates      = "gates"
	DecisionWaves      = "waves"
	DecisionEscalation = "escalation"
	DecisionTransport  = "transport"
	// DecisionApplicability: which package and evidence apply to a host.
	DecisionApplicability = "applicability"
	// DecisionExceptions: what an exception makes of a host's state.
	DecisionExceptions = "exceptions"
	// DecisionIdentity: whether the machine that answered is the host the
	// inventory names.
	DecisionIdentity = "identity"
	// DecisionRollback: the state of a host after a rollback.
	DecisionRollback = "rollback"
	// DecisionForecast: when the rollout will be done, and whether that
	// is after its deadline.
	DecisionForecast = "forecast"
)

// Decisions lists every decision the engine prepares; a bundle must define
// the rule `decision` in each package `patchway.<name>`.
var Decisions = []string{
	DecisionCompliance, DecisionReboot, DecisionSLA, DecisionPlan,
	DecisionGates, DecisionWaves, DecisionEscalation, DecisionTransport, DecisionApplicability,
	DecisionExceptions, DecisionIdentity, DecisionRollback, DecisionForecast,
}

// requiredRule is the rule every decision package must define.
const requiredRule = "decision"

// Engine holds a compiled policy bundle and its prepared queries, safe
// for concurrent use. Reload swaps in a new bundle between decisions:
// each decision is evaluated by one bundle and carries its revision.
type Engine struct {
	dir string
	// cur is shared by the engines WithStats derives, so a reload reaches
	// them all.
	cur *atomic.Pointer[bundle]
	// stats, when set (WithStats), records every decision's latency.
	stats *Stats
	// ext is the worker's run-time data (SetData), shared like cur.
	ext *external
}

// bundle is one compiled policy bundle; it is immutable.
type bundle struct {
	revision string
	files    []string
	compiler *ast.Compiler
	store    storage.Store
	queries  map[string]rego.PreparedEvalQuery
}

// bundleFile is one file of the assembled bundle: its name inside the
// bundle, where it came from (for messages) and its content.
type bundleFile struct {
	name    string
	origin  string
	content []byte
	user    bool
}

// Load assembles, compiles and prepares the policy bundle. With dir empty
// the embedded defaults are used. Otherwise every .rego and .json file of
// dir replaces the default file of the same name, and files with new names
// extend the bundle (a new .json is deep-merged over the default data, so a
// small overrides.json can change one number). A bundle with a syntax or
// type error, or without a required decision rule, is refused with
// file:line; callers keep the engine they had, so the defaults stay in
// force. Test files (_test.rego) are not part of the production bundle.
func Load(ctx context.Context, dir string) (*Engine, error) {
	files, err := assemble(dir, false)
	if err != nil {
		return nil, err
	}
	ext := &external{values: map[string]any{}}
	b, err := prepare(ctx, files, ext)
	if err != nil {
		return nil, err
	}
	e := &Engine{dir: dir, cur: new(atomic.Pointer[bundle]), ext: ext}
	e.cur.Store(b)
	return e, nil
}

// Reload reads the policy directory again and, when its revision differs
// from the bundle in force, compiles it and swaps it in for the decisions
// that follow. A bundle that does not load leaves the one in force
// deciding (the last good policy, never none) and returns its error with
// file:line. It returns the revisions before and after.
func (e *Engine) Reload(ctx context.Context) (from, to string, err error) {
	from = e.Revision()
	files, err := assemble(e.dir, false)
	if err != nil {
		return from, from, err
	}
	if revisionOf(files) == from {
		return from, from, nil
	}
	e.ext.mu.Lock()
	defer e.ext.mu.Unlock()
	b, err := prepare(ctx, files, e.ext)
	if err != nil {
		return from, from, err
	}
	e.cur.Store(b)
	return from, b.revision, nil
}

// prepare parses, compiles and checks an assembled bundle and prepares
// one query per decision.
func prepare(ctx context.Context, files []bundleFile, ext *external) (*bundle, error) {
	modules, data, err := parseBundle(files)
	if err != nil {
		return nil, err
	}
	compiler, err := compile(modules)
	if err != nil {
		return nil, err
	}
	if err := checkRequiredRules(compiler, files); err != nil {
		return nil, err
	}
	e := &bundle{
		revision: revisionOf(files),
		compiler: compiler,
		store:    inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true)),
		queries:  make(map[string]rego.PreparedEvalQuery, len(Decisions)),
	}
	for _, f := range files {
		e.files = append(e.files, f.origin)
	}
	if err := ext.writeAll(ctx, e.store); err != nil {
		return nil, err
	}
	for _, name := range Decisions {
		pq, err := rego.New(
			rego.Query(decisionQuery(name)),
			rego.Compiler(compiler),
			rego.Store(e.store),
			rego.Capabilities(Capabilities()),
			versionCompareFunc(),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("prepare decision %s: %w", name, err)
		}
		e.queries[name] = pq
	}
	return e, nil
}

// Revision is the content hash of the production bundle: SHA-256 over the
// sorted file names and contents, as 12 hex digits. It is recorded with
// every decision.
func (e *Engine) Revision() string { return e.cur.Load().revision }

// Files lists the origin of every file in the production bundle.
func (e *Engine) Files() []string { return slices.Clone(e.cur.Load().files) }

func decisionQuery(name string) string { return "data.patchway." + name + "." + requiredRule }

// Eval evaluates one decision by name on an arbitrary input and returns the
// decision object as JSON, with the bundle's revision. The input's "now" (RFC 3339) is the evaluation
// time; without it evaluation is refused, because policies never read the
// clock.
func (e *Engine) Eval(ctx context.Context, decision string, input any) (json.RawMessage, error) {
	if e.stats != nil {
		defer e.stats.observe(decision, time.Now())
	}
	raw, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("encode %s input: %w", decision, err)
	}
	var probe struct {
		Now time.Time `json:"now"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil || probe.Now.IsZero() {
		return nil, fmt.Errorf("evaluate %s: input needs \"now\" as an RFC 3339 time (policies never read the clock)", decision)
	}
	value, err := ast.ValueFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: parse input: %w", decision, err)
	}
	b := e.cur.Load()
	v, err := b.evalValue(ctx, decision, value, probe.Now)
	if err != nil {
		return nil, err
	}
	if obj, ok := v.(map[string]any); ok {
		obj["revision"] = b.revision
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s decision: %w", decision, err)
	}
	return out, nil
}

// evalValue runs the prepared query of decision on an input value.
func (e *bundle) evalValue(ctx context.Context, decision string, input ast.Value, now time.Time) (any, error) {
	pq, ok := e.queries[decision]
	if !ok {
		return nil, fmt.Errorf("evaluate %s: unknown decision (known: %s)", decision, strings.Join(Decisions, ", "))
	}
	// OPA's per-evaluation metrics are not read; the no-op set saves
	// their allocation on every decision.
	rs, err := pq.Eval(ctx, rego.EvalParsedInput(input), rego.EvalTime(now), rego.EvalMetrics(noMetrics))
	if err != nil {
		return nil, fmt.Errorf("evaluate %s: %w", decision, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("evaluate %s: %s is undefined for this input", decision, decisionQuery(decision))
	}
	return rs[0].Expressions[0].Value, nil
}

// evalInto evaluates decision on input and decodes the result into out,
// with the revision of the bundle that decided (the "revision" of
// rollout.Decision). A context with a Recorder records it.
func (e *Engine) evalInto(ctx context.Context, decision string, input any, now time.Time, out any) error {
	if e.stats != nil {
		defer e.stats.observe(decision, time.Now())
	}
	value, err := toValue(input)
	if err != nil {
		return fmt.Errorf("encode %s input: %w", decision, err)
	}
	b := e.cur.Load()
	v, err := b.evalValue(ctx, decision, value, now)
	if err != nil {
		return err
	}
	if obj, ok := v.(map[string]any); ok {
		obj["revision"] = b.revision
	}
	record(ctx, decision, b.revision, value, v, now)
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s decision: %w", decision, err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decode %s decision: %w", decision, err)
	}
	return nil
}

// Capabilities are the builtins policies may use: this OPA version's,
// without any non-deterministic builtin (clock, network, randomness, UUIDs,
// runtime), plus patchway.version_compare. The same set compiles production bundles and runs Rego tests,
// so a test cannot pass on a builtin production refuses.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	// Most are flagged Nondeterministic by OPA; the list names them anyway
	// so that a change of flag upstream cannot let one back in.
	denied := map[string]bool{
		"time.now_ns": true, "http.send": true, "rand.intn": true,
		"uuid.rfc4122": true, "net.lookup_ip_addr": true, "opa.runtime": true,
	}
	kept := caps.Builtins[:0:0]
	for _, b := range caps.Builtins {
		if b.Nondeterministic || denied[b.Name] {
			continue
		}
		kept = append(kept, b)
	}
	caps.Builtins = append(kept, versionCompareDecl)
	caps.AllowNet = []string{}
	return caps
}

// compile compiles modules with the production capabilities.
func compile(modules map[string]*ast.Module) (*ast.Compiler, error) {
	c := ast.NewCompiler().
		WithCapabilities(Capabilities()).
		WithDefaultRegoVersion(ast.RegoV1)
	c.Compile(modules)
	if c.Failed() {
		return nil, fmt.Errorf("compile policies: %w", c.Errors)
	}
	return c, nil
}

// checkRequiredRules refuses a bundle in which a decision package lacks its
// decision rule, naming the file that declares the package.
func checkRequiredRules(c *ast.Compiler, files []bundleFile) error {
	var errs []error
	for _, name := range Decisions {
		ref := ast.MustParseRef(decisionQuery(name))
		if len(c.GetRulesExact(ref)) > 0 {
			continue
		}
		where := "policies"
		for _, m := range c.Modules {
			if m.Package.Path.Equal(ref[:len(ref)-1]) && m.Package.Location != nil {
				where = fmt.Sprintf("%s:%d", m.Package.Location.File, m.Package.Location.Row)
				break
			}
		}
		errs = append(errs, fmt.Errorf("%s: package patchway.%s does not define the required rule %q", where, name, requiredRule))
	}
	if len(errs) > 0 {
		return fmt.Errorf("policy bundle refused: %w", errors.Join(errs...))
	}
	return nil
}

// parseBundle parses the Rego files and merges the data files of a bundle.
// Data files are merged in bundle order; a later file's values replace
// earlier ones key by key (objects merge deeply).
func parseBundle(files []bundleFile) (map[string]*ast.Module, map[string]any, error) {
	modules := map[string]*ast.Module{}
	data := map[string]any{}
	var errs []error
	for _, f := range files {
		switch {
		case strings.HasSuffix(f.name, ".rego"):
			m, err := ast.ParseModuleWithOpts(f.origin, string(f.content), ast.ParserOptions{
				RegoVersion:       ast.RegoV1,
				ProcessAnnotation: true,
			})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			modules[f.origin] = m
		case strings.HasSuffix(f.name, ".json"):
			var doc map[string]any
			dec := json.NewDecoder(bytes.NewReader(f.content))
			dec.UseNumber()
			if err := dec.Decode(&doc); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: data is not a JSON object: %w", f.origin, jsonErrorLine(f.content, err), err))
				continue
			}
			mergeData(data, doc)
		}
	}
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("parse policies: %w", errors.Join(errs...))
	}
	return modules, data, nil
}

// jsonErrorLine finds the line of a JSON syntax error (1 when unknown).
func jsonErrorLine(content []byte, err error) int {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 && int(se.Offset) <= len(content) {
		return 1 + bytes.Count(content[:se.Offset], []byte("\n"))
	}
	return 1
}

// mergeData merges src into dst: objects merge key by key, anything else
// replaces.
func mergeData(dst, src map[string]any) {
	for k, v := range src {
		sv, srcObj := v.(map[string]any)
		dv, dstObj := dst[k].(map[string]any)
		if srcObj && dstObj {
			mergeData(dv, sv)
			continue
		}
		dst[k] = v
	}
}

// assemble lists the bundle's files: the embedded defaults, with dir's
// files replacing same-named ones and extending the rest. withTests keeps
// _test.rego files (for the tester); otherwise they are left out. Files are
// ordered defaults first, then the user's additions, each sorted by name.
// overlay files (a shadow policy's, already read) come last and win.
func assemble(dir string, withTests bool, overlay ...bundleFile) ([]bundleFile, error) {
	keep := func(name string) bool {
		return isBundleFile(name) || withTests && strings.HasSuffix(name, "_test.rego")
	}
	byName := map[string]bundleFile{}
	var defaults, extra []string
	entries, err := fs.ReadDir(defaultBundle, "rego")
	if err != nil {
		return nil, fmt.Errorf("read embedded policies: %w", err)
	}
	for _, ent := range entries {
		if ent.IsDir() || !keep(ent.Name()) {
			continue
		}
		b, err := defaultBundle.ReadFile("rego/" + ent.Name())
		if err != nil {
			return nil, fmt.Errorf("read embedded policy %s: %w", ent.Name(), err)
		}
		byName[ent.Name()] = bundleFile{name: ent.Name(), origin: "policies/rego/" + ent.Name(), content: b}
		defaults = append(defaults, ent.Name())
	}
	user, err := dirFiles(dir, keep)
	if err != nil {
		return nil, err
	}
	for _, f := range append(user, overlay...) {
		if _, replaced := byName[f.name]; !replaced {
			extra = append(extra, f.name)
		}
		byName[f.name] = f
	}
	sort.Strings(defaults)
	sort.Strings(extra)
	files := make([]bundleFile, 0, len(byName))
	for _, n := range append(defaults, extra...) {
		files = append(files, byName[n])
	}
	return files, nil
}

// dirFiles reads the files of a policy directory that keep accepts ("":
// none).
func dirFiles(dir string, keep func(string) bool) ([]bundleFile, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read policy directory: %w", err)
	}
	var files []bundleFile
	for _, ent := range entries {
		if ent.IsDir() || !keep(ent.Name()) {
			continue
		}
		path := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read policy file: %w", err)
		}
		files = append(files, bundleFile{name: ent.Name(), origin: path, content: b, user: true})
	}
	return files, nil
}

// revisionOf hashes the sorted file names and contents of a bundle.
func revisionOf(files []bundleFile) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b bundleFile) int { return strings.Compare(a.name, b.name) })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.content))
		h.Write(f.content)
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}
