package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

func newPolicyCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, evaluate and format the Rego policies (the embedded defaults, or --policy-dir)",
	}
	cmd.AddCommand(newPolicyTestCmd(g), newPolicyEvalCmd(g), newPolicyWhatIfCmd(g), newPolicyFmtCmd(), newPolicyCapabilitiesCmd())
	return cmd
}

// policyTestOptions are the flags and argument of patchway policy test.
type policyTestOptions struct {
	ioStreams
	global      *globalFlags
	verbose     bool
	minCoverage float64

	// Set by Complete: the bundle's directory ("" = the defaults alone).
	dir string
}

func newPolicyTestCmd(g *globalFlags) *cobra.Command {
	o := &policyTestOptions{global: g}
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego tests of the policy bundle, with line coverage",
		Long: "Run every _test.rego of the bundle (the embedded defaults, with DIR's or --policy-dir's\n" +
			"files replacing same-named defaults and extending the rest) through OPA's tester, with\n" +
			"the production capabilities (no clock, network or randomness builtins). Prints failures,\n" +
			"the line coverage of each policy file, and files `opa fmt` would change. Exits 1 on a\n" +
			"failing test, an unformatted file, or coverage under --min-coverage.",
		Args: cobra.MaximumNArgs(1),
		RunE: runOptions(o),
	}
	cmd.Flags().BoolVarP(&o.verbose, "verbose", "v", false, "list passing tests too")
	cmd.Flags().Float64Var(&o.minCoverage, "min-coverage", 0, "fail when Rego line coverage is under this percentage")
	return cmd
}

// Complete takes the bundle: DIR, else --policy-dir.
func (o *policyTestOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.dir = o.global.policyDir
	if len(args) == 1 {
		o.dir = args[0]
	}
	return nil
}

// Validate accepts any threshold: one of 0 or less never fails, one
// over 100 always does.
func (o *policyTestOptions) Validate() error { return nil }

// Run runs the bundle's tests and prints failures, coverage and the
// files to format; it exits 1 on any of them or coverage under the
// threshold.
func (o *policyTestOptions) Run(ctx context.Context) error {
	report, err := policies.RunTests(ctx, o.dir)
	if err != nil {
		return err
	}
	out := o.Out
	for _, r := range report.Results {
		if r.Pass && !o.verbose {
			continue
		}
		status := "PASS"
		if !r.Pass {
			status = "FAIL"
		}
		fmt.Fprintf(out, "%s %s (%s:%d) %s\n", status, r.Name, r.File, r.Line, r.Duration.Round(time.Microsecond))
		if r.Error != "" {
			fmt.Fprintf(out, "     %s\n", r.Error)
		}
		if r.Output != "" {
			fmt.Fprintf(out, "     %s\n", strings.ReplaceAll(strings.TrimSpace(r.Output), "\n", "\n     "))
		}
	}
	for _, f := range report.Files {
		missed := ""
		if len(f.Missed) > 0 {
			missed = "  not covered: lines " + strings.Join(f.Missed, ", ")
		}
		fmt.Fprintf(out, "coverage %-36s %5.1f%%%s\n", f.File, f.Percent, missed)
	}
	for _, f := range report.Unformatted {
		fmt.Fprintf(out, "unformatted %s (run: patchway policy fmt %s)\n", f, filepath.Dir(f))
	}
	failed := report.Failed()
	fmt.Fprintf(out, "%d passed, %d failed; line coverage %.1f%%\n", len(report.Results)-failed, failed, report.Coverage)
	if failed > 0 || len(report.Unformatted) > 0 || report.Coverage < o.minCoverage {
		if report.Coverage < o.minCoverage {
			fmt.Fprintf(out, "coverage %.1f%% is under --min-coverage %.1f%%\n", report.Coverage, o.minCoverage)
		}
		return exitError{code: 1}
	}
	return nil
}

// policyEvalOptions are the flags and argument of patchway policy eval.
type policyEvalOptions struct {
	ioStreams
	global    *globalFlags
	inputPath string
	now       string

	// Set by Complete.
	decision  string
	policyDir string
	raw       json.RawMessage
	// Set by Validate: raw with "now" from --now when it had none.
	input json.RawMessage
}

func newPolicyEvalCmd(g *globalFlags) *cobra.Command {
	o := &policyEvalOptions{global: g}
	cmd := &cobra.Command{
		Use:   "eval DECISION --input FILE",
		Short: "Evaluate one decision on a JSON input and print the decision",
		Long: "Evaluate a decision (" + strings.Join(policies.Decisions, ", ") + ") on the JSON\n" +
			"input in FILE (- for stdin) and print the decision as JSON: allow, violations, revision\n" +
			"and the decision's facts. Policies never read the clock: the input's \"now\" is the\n" +
			"evaluation time; --now sets it when the input has none. Exits 1 when the decision denies.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	cmd.Flags().StringVar(&o.inputPath, "input", "", "JSON input file (- for stdin)")
	cmd.Flags().StringVar(&o.now, "now", "", `evaluation time (RFC 3339) when the input has no "now"`)
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

// Complete takes the decision and the policies, and reads the input
// (--input, - for stdin).
func (o *policyEvalOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.decision = args[0]
	o.policyDir = o.global.policyDir
	raw, err := readInput(o.In, o.inputPath)
	if err != nil {
		return err
	}
	o.raw = raw
	return nil
}

// Validate checks that the input is a JSON object and, when it has no
// "now", that --now is an RFC 3339 time, which it then becomes.
func (o *policyEvalOptions) Validate() error {
	input, err := withNow(o.raw, o.now)
	if err != nil {
		return err
	}
	o.input = input
	return nil
}

// Run evaluates the decision and prints it; a denial exits 1.
func (o *policyEvalOptions) Run(ctx context.Context) error {
	engine, err := policies.Load(ctx, o.policyDir)
	if err != nil {
		return err
	}
	out, err := engine.Eval(ctx, o.decision, o.input)
	if err != nil {
		return err
	}
	var d rollout.Decision
	if err := json.Unmarshal(out, &d); err != nil {
		return fmt.Errorf("decode decision: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		return fmt.Errorf("write decision: %w", err)
	}
	buf.WriteByte('\n')
	if _, err := o.Out.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write decision: %w", err)
	}
	if !d.Allow {
		return exitError{code: 1}
	}
	return nil
}

// policyFmtOptions are the flags and argument of patchway policy fmt.
type policyFmtOptions struct {
	ioStreams
	check bool

	// Set by Complete.
	dir string
}

func newPolicyFmtCmd() *cobra.Command {
	o := &policyFmtOptions{}
	cmd := &cobra.Command{
		Use:   "fmt DIR",
		Short: "Format the .rego files of a policy directory as opa fmt does (Rego v1)",
		Args:  cobra.ExactArgs(1),
		RunE:  runOptions(o),
	}
	cmd.Flags().BoolVar(&o.check, "check", false, "only list the files that need formatting; exit 1 if any")
	return cmd
}

// Complete takes the directory.
func (o *policyFmtOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.dir = args[0]
	return nil
}

// Validate has nothing to check.
func (o *policyFmtOptions) Validate() error { return nil }

// Run formats (or with --check lists) the directory's .rego files that
// policies.Format changes; --check exits 1 if there is any.
func (o *policyFmtOptions) Run(context.Context) error {
	paths, err := filepath.Glob(filepath.Join(o.dir, "*.rego"))
	if err != nil {
		return fmt.Errorf("list policies: %w", err)
	}
	changed := 0
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read policy: %w", err)
		}
		out, err := policies.Format(p, src)
		if err != nil {
			return err
		}
		if bytes.Equal(out, src) {
			continue
		}
		changed++
		fmt.Fprintln(o.Out, p)
		if !o.check {
			if err := os.WriteFile(p, out, 0o644); err != nil {
				return fmt.Errorf("write policy: %w", err)
			}
		}
	}
	if o.check && changed > 0 {
		return exitError{code: 1}
	}
	return nil
}

// readInput reads a JSON document from path, or stdin for "-".
func readInput(stdin io.Reader, path string) (json.RawMessage, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("read input %s: not valid JSON", path)
	}
	return b, nil
}

// withNow sets the input's "now" from the flag when the input has none.
func withNow(raw json.RawMessage, now string) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("input must be a JSON object: %w", err)
	}
	if _, ok := obj["now"]; ok || now == "" {
		return raw, nil
	}
	t, err := time.Parse(time.RFC3339, now)
	if err != nil {
		return nil, fmt.Errorf("--now: %w", err)
	}
	obj["now"], _ = json.Marshal(t)
	return json.Marshal(obj)
}

// policyCapabilitiesOptions are the streams of patchway policy
// capabilities, which has no flag.
type policyCapabilitiesOptions struct {
	ioStreams
}

func newPolicyCapabilitiesCmd() *cobra.Command {
	o := &policyCapabilitiesOptions{}
	return &cobra.Command{
		Use:   "capabilities",
		Short: "Print the OPA capabilities the policies compile with, as JSON (for opa check --capabilities)",
		Long: "Print the builtins production policies may use: this OPA version's deterministic builtins\n" +
			"and patchway.version_compare. `opa check --strict --capabilities FILE` then checks a bundle\n" +
			"against exactly what the worker will accept (make lint does this).",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
}

// Complete takes the streams.
func (o *policyCapabilitiesOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	return nil
}

// Validate has nothing to check.
func (o *policyCapabilitiesOptions) Validate() error { return nil }

// Run prints policies.Capabilities as indented JSON.
func (o *policyCapabilitiesOptions) Run(context.Context) error {
	enc := json.NewEncoder(o.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(policies.Capabilities())
}
