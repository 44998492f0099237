package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
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

// reportOptions are the report command's flags and argument.
type reportOptions struct {
	ioStreams
	global *globalFlags
	conn   clientFlags
	format string
	all    bool
	output string
	// failUnder is the threshold in percent; failSet says it was given.
	failUnder float64
	failSet   bool

	// Set by Complete.
	rolloutID string
	policyDir string
}

func newReportCmd(g *globalFlags) *cobra.Command {
	o := &reportOptions{global: g}
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
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.format, "format", "table", report.FormatList())
	cmd.Flags().BoolVar(&o.all, "all", false, "table, md and html: list every host, compliant and not_applicable ones too")
	cmd.Flags().StringVarP(&o.output, "output", "o", "", "write the report to this file instead of stdout")
	cmd.Flags().Float64Var(&o.failUnder, "fail-under", 0, "exit 2 when compliance is below this percentage (after writing the report)")
	return cmd
}

// Complete takes the rollout, the policies a provisional report is built
// with, and whether --fail-under was given (0 is a threshold too).
func (o *reportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rolloutID = args[0]
	o.policyDir = o.global.policyDir
	o.failSet = cmd.Flags().Changed("fail-under")
	return nil
}

// Validate refuses an unknown format and a threshold that is no
// percentage, before any connection.
func (o *reportOptions) Validate() error {
	if !report.Known(o.format) {
		return fmt.Errorf("--format %q: want %s", o.format, report.FormatList())
	}
	if o.failSet && (o.failUnder < 0 || o.failUnder > 100 || math.IsNaN(o.failUnder)) {
		return fmt.Errorf("--fail-under %g: want a percentage from 0 to 100", o.failUnder)
	}
	return nil
}

// Run fetches the report and writes it, then applies --fail-under.
func (o *reportOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	rep, err := fetchReport(ctx, c, o.rolloutID, o.policyDir, time.Now())
	if err != nil {
		return err
	}
	return emitReport(o.Out, o.ErrOut, rep, *o)
}

// fetchReport is a completed rollout's report (its workflow result), or a
// provisional one built now with the same report.Build from the report
// query: while the rollout runs, or when it ended without a report
// (terminated, failed). The provisional report asks the policies of
// policyDir (the worker's) what the exceptions make of the hosts now.
func fetchReport(ctx context.Context, c client.Client, rolloutID, policyDir string, now time.Time) (contract.Report, error) {
	st, err := workflows.FetchReport(ctx, c, rolloutID)
	if err != nil {
		return contract.Report{}, err
	}
	if st.Report != nil {
		return *st.Report, nil
	}
	in := st.Input
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
	rep.Provisional = st.Provisional
	return rep, nil
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
