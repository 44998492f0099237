package main

import (
	"bytes"
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
	cmd.AddCommand(newPolicyTestCmd(g), newPolicyEvalCmd(g), newPolicyFmtCmd(), newPolicyCapabilitiesCmd())
	return cmd
}

func newPolicyTestCmd(g *globalFlags) *cobra.Command {
	var (
		verbose     bool
		minCoverage float64
	)
	cmd := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego tests of the policy bundle, with line coverage",
		Long: "Run every _test.rego of the bundle (the embedded defaults, with DIR's or --policy-dir's\n" +
			"files replacing same-named defaults and extending the rest) through OPA's tester, with\n" +
			"the production capabilities (no clock, network or randomness builtins). Prints failures,\n" +
			"the line coverage of each policy file, and files `opa fmt` would change. Exits 1 on a\n" +
			"failing test, an unformatted file, or coverage under --min-coverage.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := g.policyDir
			if len(args) == 1 {
				dir = args[0]
			}
			report, err := policies.RunTests(cmd.Context(), dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, r := range report.Results {
				if r.Pass && !verbose {
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
			if failed > 0 || len(report.Unformatted) > 0 || report.Coverage < minCoverage {
				if report.Coverage < minCoverage {
					fmt.Fprintf(out, "coverage %.1f%% is under --min-coverage %.1f%%\n", report.Coverage, minCoverage)
				}
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing tests too")
	cmd.Flags().Float64Var(&minCoverage, "min-coverage", 0, "fail when Rego line coverage is under this percentage")
	return cmd
}

func newPolicyEvalCmd(g *globalFlags) *cobra.Command {
	var (
		inputPath string
		now       string
	)
	cmd := &cobra.Command{
		Use:   "eval DECISION --input FILE",
		Short: "Evaluate one decision on a JSON input and print the decision",
		Long: "Evaluate a decision (" + strings.Join(policies.Decisions, ", ") + ") on the JSON\n" +
			"input in FILE (- for stdin) and print the decision as JSON: allow, violations, revision\n" +
			"and the decision's facts. Policies never read the clock: the input's \"now\" is the\n" +
			"evaluation time; --now sets it when the input has none. Exits 1 when the decision denies.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := readInput(cmd.InOrStdin(), inputPath)
			if err != nil {
				return err
			}
			input, err := withNow(raw, now)
			if err != nil {
				return err
			}
			engine, err := policies.Load(cmd.Context(), g.policyDir)
			if err != nil {
				return err
			}
			out, err := engine.Eval(cmd.Context(), args[0], input)
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
			if _, err := cmd.OutOrStdout().Write(buf.Bytes()); err != nil {
				return fmt.Errorf("write decision: %w", err)
			}
			if !d.Allow {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&inputPath, "input", "", "JSON input file (- for stdin)")
	cmd.Flags().StringVar(&now, "now", "", `evaluation time (RFC 3339) when the input has no "now"`)
	_ = cmd.MarkFlagRequired("input")
	return cmd
}

func newPolicyFmtCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "fmt DIR",
		Short: "Format the .rego files of a policy directory as opa fmt does (Rego v1)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := filepath.Glob(filepath.Join(args[0], "*.rego"))
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
				fmt.Fprintln(cmd.OutOrStdout(), p)
				if !check {
					if err := os.WriteFile(p, out, 0o644); err != nil {
						return fmt.Errorf("write policy: %w", err)
					}
				}
			}
			if check && changed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only list the files that need formatting; exit 1 if any")
	return cmd
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

func newPolicyCapabilitiesCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "capabilities",
		Short: "Print the OPA capabilities the policies compile with, as JSON (for opa check --capabilities)",
		Long: "Print the builtins production policies may use: this OPA version's deterministic builtins\n" +
			"and patchway.version_compare. `opa check --strict --capabilities FILE` then checks a bundle\n" +
			"against exactly what the worker will accept (make lint does this).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(policies.Capabilities())
		},
	}
}
