package policies

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestResult is the outcome of one Rego test.
type TestResult struct {
	// Name is package.rule of the test.
	Name     string        `json:"name"`
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Pass     bool          `json:"pass"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
	// Output is what the test printed (print statements).
	Output string `json:"output,omitempty"`
}

// FileCoverage is the Rego line coverage of one policy file.
type FileCoverage struct {
	File       string  `json:"file"`
	Covered    int     `json:"covered"`
	NotCovered int     `json:"not_covered"`
	Percent    float64 `json:"percent"`
	// Missed lists the line ranges not covered ("12-14").
	Missed []string `json:"missed,omitempty"`
}

// TestReport is the outcome of running a bundle's Rego tests.
type TestReport struct {
	Results []TestResult `json:"results"`
	// Coverage is the line coverage of the production (non-test) files.
	Coverage float64        `json:"coverage"`
	Files    []FileCoverage `json:"files"`
	// Unformatted lists the files that `opa fmt` would change.
	Unformatted []string `json:"unformatted,omitempty"`
}

// Failed counts the tests that did not pass.
func (r TestReport) Failed() int {
	n := 0
	for _, t := range r.Results {
		if !t.Pass {
			n++
		}
	}
	return n
}

// RunTests runs the Rego tests of the bundle (the embedded defaults with
// dir's files replacing or extending them, as Load assembles them) through
// OPA's tester, compiled with the production capabilities, and measures the
// line coverage of the production files. The embedded X_test.rego runs with
// the embedded data while X.rego is the default (it pins the default
// behaviour; replace it with your own X_test.rego to change that); the
// user's tests run with the bundle's data. A bundle that does not compile is
// an error with file:line.
func RunTests(ctx context.Context, dir string) (TestReport, error) {
	files, err := assemble(dir, true)
	if err != nil {
		return TestReport{}, err
	}
	modules, data, err := parseBundle(files)
	if err != nil {
		return TestReport{}, err
	}
	// Refuse what Load would refuse, with the same file:line messages.
	production := map[string]*ast.Module{}
	for name, m := range modules {
		if !strings.HasSuffix(name, "_test.rego") {
			production[name] = m
		}
	}
	prodCompiler, err := compile(production)
	if err != nil {
		return TestReport{}, err
	}
	if err := checkRequiredRules(prodCompiler, files); err != nil {
		return TestReport{}, err
	}
	var report TestReport
	for _, f := range files {
		if !strings.HasSuffix(f.name, ".rego") {
			continue
		}
		formatted, err := Format(f.origin, f.content)
		if err != nil {
			return TestReport{}, err
		}
		if string(formatted) != string(f.content) {
			report.Unformatted = append(report.Unformatted, f.origin)
		}
	}
	// Default tests check the default logic with the default data; they
	// run only while their policy file is the default one. The user's tests
	// run with the bundle's data, so they see the user's numbers.
	defaultFiles, err := assemble("", false)
	if err != nil {
		return TestReport{}, err
	}
	_, defaultData, err := parseBundle(defaultFiles)
	if err != nil {
		return TestReport{}, err
	}
	replaced := map[string]bool{}
	for _, f := range files {
		if f.user {
			replaced[f.name] = true
		}
	}
	defaultTests, userTests := maps.Clone(production), maps.Clone(production)
	nDefault, nUser := 0, 0
	for _, f := range files {
		if !strings.HasSuffix(f.name, "_test.rego") {
			continue
		}
		switch {
		case f.user:
			userTests[f.origin] = modules[f.origin]
			nUser++
		case !replaced[strings.TrimSuffix(f.name, "_test.rego")+".rego"]:
			defaultTests[f.origin] = modules[f.origin]
			nDefault++
		}
	}
	cov := cover.New()
	var results []*tester.Result
	for _, pass := range []struct {
		modules map[string]*ast.Module
		data    map[string]any
		n       int
	}{{defaultTests, defaultData, nDefault}, {userTests, data, nUser}} {
		if pass.n == 0 {
			continue
		}
		rs, err := runTesterPass(ctx, pass.modules, pass.data, cov)
		if err != nil {
			return TestReport{}, fmt.Errorf("run policy tests: %w", err)
		}
		results = append(results, rs...)
	}
	for _, r := range results {
		tr := TestResult{
			Name:     strings.TrimPrefix(r.Package, "data.") + "." + r.Name,
			Pass:     r.Pass(),
			Duration: r.Duration,
			Output:   string(r.Output),
		}
		if r.Location != nil {
			tr.File, tr.Line = r.Location.File, r.Location.Row
		}
		if r.Error != nil {
			tr.Error = r.Error.Error()
		} else if r.Fail {
			tr.Error = "test evaluated false or undefined"
			if r.FailedAt != nil && r.FailedAt.Location != nil {
				tr.Error = fmt.Sprintf("failed at %s:%d: %s", r.FailedAt.Location.File, r.FailedAt.Location.Row, r.FailedAt.Location.Text)
			}
		}
		report.Results = append(report.Results, tr)
	}
	slices.SortFunc(report.Results, func(a, b TestResult) int {
		return strings.Compare(fmt.Sprintf("%s:%06d", a.File, a.Line), fmt.Sprintf("%s:%06d", b.File, b.Line))
	})
	cr := cov.Report(production)
	covered, total := 0, 0
	for name := range production {
		fr := cr.Files[name]
		fc := FileCoverage{File: name}
		if fr != nil {
			fc.Covered, fc.NotCovered = fr.CoveredLines, fr.NotCoveredLines
			for _, rg := range fr.NotCovered {
				if rg.Start.Row == rg.End.Row {
					fc.Missed = append(fc.Missed, fmt.Sprint(rg.Start.Row))
				} else {
					fc.Missed = append(fc.Missed, fmt.Sprintf("%d-%d", rg.Start.Row, rg.End.Row))
				}
			}
		}
		if n := fc.Covered + fc.NotCovered; n > 0 {
			fc.Percent = 100 * float64(fc.Covered) / float64(n)
		}
		covered += fc.Covered
		total += fc.Covered + fc.NotCovered
		report.Files = append(report.Files, fc)
	}
	slices.SortFunc(report.Files, func(a, b FileCoverage) int { return strings.Compare(a.File, b.File) })
	if total > 0 {
		report.Coverage = 100 * float64(covered) / float64(total)
	}
	return report, nil
}

// Format returns src formatted as `opa fmt` would (Rego v1).
func Format(name string, src []byte) ([]byte, error) {
	out, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("format %s: %w", name, err)
	}
	return out, nil
}

// runTesterPass runs the tests among modules with data, compiled with the
// production capabilities, recording coverage into cov.
func runTesterPass(ctx context.Context, modules map[string]*ast.Module, data map[string]any, cov *cover.Cover) ([]*tester.Result, error) {
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(true))
	compiler := ast.NewCompiler().
		WithCapabilities(Capabilities()).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(true)
	var results []*tester.Result
	err := storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		ch, err := tester.NewRunner().
			SetCompiler(compiler).
			SetStore(store).
			SetDefaultRegoVersion(ast.RegoV1).
			AddCustomBuiltins([]*tester.Builtin{{Decl: versionCompareDecl, Func: versionCompareFunc()}}).
			CapturePrintOutput(true).
			SetCoverageQueryTracer(cov).
			SetTimeout(10*time.Second).
			SetModules(modules).
			RunTests(ctx, txn)
		if err != nil {
			return err
		}
		for r := range ch {
			results = append(results, r)
		}
		return nil
	})
	return results, err
}
