package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/workflows"
)

// exitBelowThreshold is the exit code of `report --fail-under` when
// compliance is below the threshold: 1 stays "the command failed", so a
// pipeline can tell "not compliant enough" from "could not tell".
const exitBelowThreshold = 2

// reportOptions are the report command's flags.
type reportOptions struct {
	format string
	all    bool
	output string
	// failUnder is the threshold in percent; failSet says it was given.
	failUnder float64
	failSet   bool
}

func (o reportOptions) validate() error {
	if !report.Known(o.format) {
		return fmt.Errorf("--format %q: want %s", o.format, report.FormatList())
	}
	if o.failSet && (o.failUnder < 0 || o.failUnder > 100 || math.IsNaN(o.failUnder)) {
		return fmt.Errorf("--fail-under %g: want a percentage from 0 to 100", o.failUnder)
	}
	return nil
}

func newReportCmd(g *globalFlags) *cobra.Command {
	var (
		conn clientFlags
		opts reportOptions
	)
	cmd := &cobra.Command{
		Use:   "report ROLLOUT",
		Short: "Print a rollout's compliance report as a table, JSON, CSV, Markdown or one HTML file",
		Long: "Print a rollout's compliance report: the share of applicable hosts proven patched (only\n" +
			"compliant counts; not_applicable hosts are left out of the denominator), hosts per state,\n" +
			"breakdowns by region, site, tier and role, the hosts of unknown owner or purpose, and the\n" +
			"hosts that are not compliant with the reasons and evidence. A completed rollout's report is\n" +
			"its workflow result; a running rollout gets a provisional report built from its current state.\n" +
			"table, md and html list the hosts that are not compliant (--all: every host); json and csv\n" +
			"always hold every host. --fail-under PCT exits 2 when compliance is below PCT.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.failSet = cmd.Flags().Changed("fail-under")
			if err := opts.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			c, err := conn.dial(ctx, cliLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			rep, err := fetchReport(ctx, c, args[0], g.policyDir, time.Now())
			if err != nil {
				return err
			}
			return emitReport(cmd.OutOrStdout(), cmd.ErrOrStderr(), rep, opts)
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().StringVar(&opts.format, "format", "table", report.FormatList())
	cmd.Flags().BoolVar(&opts.all, "all", false, "table, md and html: list every host, compliant and not_applicable ones too")
	cmd.Flags().StringVarP(&opts.output, "output", "o", "", "write the report to this file instead of stdout")
	cmd.Flags().Float64Var(&opts.failUnder, "fail-under", 0, "exit 2 when compliance is below this percentage (after writing the report)")
	return cmd
}

// fetchReport is a completed rollout's report (its workflow result), or a
// provisional one built now with the same report.Build from the report
// query: while the rollout runs, or when it ended without a report
// (terminated, failed). The provisional report asks the policies of
// policyDir (the worker's) what the exceptions make of the hosts now.
func fetchReport(ctx context.Context, c client.Client, rolloutID, policyDir string, now time.Time) (contract.Report, error) {
	id := workflows.WorkflowID(rolloutID)
	desc, err := c.DescribeWorkflowExecution(ctx, id, "")
	if err != nil {
		return contract.Report{}, fmt.Errorf("find rollout %s: %w", rolloutID, err)
	}
	info := desc.GetWorkflowExecutionInfo()
	status := info.GetStatus()
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var rep contract.Report
		if err := c.GetWorkflow(ctx, id, info.GetExecution().GetRunId()).Get(ctx, &rep); err != nil {
			return rep, fmt.Errorf("read the report of rollout %s: %w", rolloutID, err)
		}
		return rep.Expanded()
	}
	in, err := queryReportInput(ctx, c, rolloutID)
	if err != nil {
		return contract.Report{}, err
	}
	// Exceptions expire by the wall clock, not by the rollout's last
	// workflow task.
	in.GeneratedAt = now.UTC()
	engine, err := policies.Load(ctx, policyDir)
	if err != nil {
		return contract.Report{}, fmt.Errorf("load policies for the provisional report of %s: %w", rolloutID, err)
	}
	rep, err := report.Build(ctx, engine, in)
	if err != nil {
		return contract.Report{}, fmt.Errorf("provisional report of %s: %w", rolloutID, err)
	}
	rep.Provisional = "rollout still running"
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		rep.Provisional = fmt.Sprintf("rollout %s before its report", strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")))
	}
	return rep, nil
}

// queryReportInput asks a rollout for the input its report would be
// built from now.
func queryReportInput(ctx context.Context, c client.Client, rolloutID string) (contract.ReportInput, error) {
	var in contract.ReportInput
	if err := queryRollout(ctx, c, rolloutID, workflows.QueryReport, "the report input (a worker must be up to answer)", &in); err != nil {
		return in, err
	}
	in, err := in.Unpack()
	if err != nil {
		return in, fmt.Errorf("rollout %s: %w", rolloutID, err)
	}
	return in, nil
}

// emitReport renders the report, writes it to the output file or stdout,
// and only then applies --fail-under, so a failing pipeline still has the
// report to show.
func emitReport(stdout, stderr io.Writer, rep contract.Report, o reportOptions) error {
	var buf bytes.Buffer
	if err := report.Render(&buf, rep, o.format, report.Options{All: o.all}); err != nil {
		return fmt.Errorf("render the %s report of rollout %s: %w", o.format, rep.RolloutID, err)
	}
	if o.output != "" {
		if err := os.WriteFile(o.output, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	} else if _, err := stdout.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if o.failSet && rep.CompliancePercent < o.failUnder {
		fmt.Fprintf(stderr, "patchway: rollout %s is %s compliant, below --fail-under %g%%\n", rep.RolloutID, contract.PercentText(rep.CompliancePercent), o.failUnder)
		return exitError{code: exitBelowThreshold}
	}
	return nil
}
