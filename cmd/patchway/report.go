package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/rollout"
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

// reportFormats renders a report, expanded (Hosts filled), in each format.
var reportFormats = map[string]func(io.Writer, contract.Report, reportOptions) error{
	"table": renderReportTable,
	"json":  renderReportJSON,
	"csv":   renderReportCSV,
	"md":    renderReportMarkdown,
	"html":  renderReportHTML,
}

func (o reportOptions) validate() error {
	if _, ok := reportFormats[o.format]; !ok {
		return fmt.Errorf("--format %q: want table, json, csv, md or html", o.format)
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
	cmd.Flags().StringVar(&opts.format, "format", "table", "table, json, csv, md or html")
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
	if err := reportFormats[o.format](&buf, rep, o); err != nil {
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

// attentionOrder ranks states by how urgently a person must act: first
// the hosts that look patched and are not (the MSBlast trap), then
// failures, missing proof, missing reboots and absent hosts; excepted,
// not_applicable and compliant hosts last.
var attentionOrder = []rollout.HostState{
	rollout.StateNotEffective, rollout.StateFailed, rollout.StateUnknown, rollout.StatePendingReboot,
	rollout.StateUnreachable, rollout.StateRolledBack, rollout.StateInProgress, rollout.StatePending,
	rollout.StateExcepted, rollout.StateNotApplicable, rollout.StateCompliant,
}

func attentionRank(s rollout.HostState) int {
	if i := slices.Index(attentionOrder, s); i >= 0 {
		return i
	}
	return -1
}

// listedHosts are the hosts a human format lists: those that are not
// compliant (and applicable), or every host with --all, most urgent
// first, then by name.
func listedHosts(rep contract.Report, all bool) []contract.HostReport {
	var out []contract.HostReport
	for _, h := range rep.Hosts {
		if all || (h.State != rollout.StateCompliant && h.State != rollout.StateNotApplicable) {
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b contract.HostReport) int {
		if d := attentionRank(a.State) - attentionRank(b.State); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// headline is the one sentence a CIO reads.
func headline(rep contract.Report) string {
	applicable := rep.HostCount - rep.Totals[rollout.StateNotApplicable]
	return fmt.Sprintf("%s compliant: %d of %d applicable hosts proven patched (%d hosts, %d not applicable)",
		contract.PercentText(rep.CompliancePercent), rep.Totals[rollout.StateCompliant], applicable, rep.HostCount, rep.Totals[rollout.StateNotApplicable])
}

// otherStates lists a breakdown's states other than compliant, most
// urgent first: "not_effective 2, unreachable 1".
func otherStates(totals map[rollout.HostState]int) string {
	var parts []string
	for _, st := range attentionOrder {
		if n := totals[st]; n > 0 && st != rollout.StateCompliant {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return strings.Join(parts, ", ")
}

// breakdownsOf returns the breakdowns of one dimension, in report order.
func breakdownsOf(rep contract.Report, dimension string) []contract.Breakdown {
	var out []contract.Breakdown
	for _, b := range rep.By {
		if b.Dimension == dimension {
			out = append(out, b)
		}
	}
	return out
}

// reportDimensions are the breakdowns in the order they are shown.
var reportDimensions = []string{"region", "site", "tier", "role"}

// oneLine flattens text from an inventory or a host onto one line, so it
// cannot forge rows of a table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func renderReportTable(w io.Writer, rep contract.Report, o reportOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Compliance report  %s  %s (%s)  generated %s\n", oneLine(rep.RolloutID), oneLine(rep.KB), oneLine(rep.Severity), rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"))
	if rep.Provisional != "" {
		fmt.Fprintf(&b, "PROVISIONAL (%s): hosts may still change state\n", rep.Provisional)
	}
	fmt.Fprintf(&b, "\n%s\n\n", headline(rep))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tHOSTS")
	for _, st := range attentionOrder {
		if n := rep.Totals[st]; n > 0 {
			fmt.Fprintf(tw, "%s\t%d\n", st, n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, dim := range reportDimensions {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "BY %s\tHOSTS\tCOMPLIANT\t%%\tOTHER STATES\n", strings.ToUpper(dim))
		for _, bd := range breakdownsOf(rep, dim) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", oneLine(bd.Value), bd.Hosts, bd.Totals[rollout.StateCompliant], contract.PercentText(bd.CompliancePercent), otherStates(bd.Totals))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Unowned) > 0 {
		fmt.Fprintf(&b, "\nUNKNOWN OWNER OR PURPOSE (%d hosts: nobody answers for them)\n", len(rep.Unowned))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, u := range rep.Unowned {
			fmt.Fprintf(tw, "  %s\t%s\n", oneLine(u.Host), oneLine(u.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	hosts := listedHosts(rep, o.all)
	if o.all {
		fmt.Fprintf(&b, "\nHOSTS (%d)\n", len(hosts))
	} else {
		fmt.Fprintf(&b, "\nNOT COMPLIANT (%d of %d applicable hosts; --all lists every host)\n", len(hosts), rep.HostCount-rep.Totals[rollout.StateNotApplicable])
	}
	if len(hosts) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSTATE\tREGION\tSITE\tTIER\tROLE\tOWNER\tREASONS AND EVIDENCE")
		for _, h := range hosts {
			lines := hostLines(h)
			first := ""
			if len(lines) > 0 {
				first = lines[0]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", oneLine(h.Name), h.State, oneLine(h.Region), oneLine(h.Site), oneLine(string(h.Tier)),
				oneLine(h.Role), oneLine(orDash(h.Owner)), first)
			for _, l := range lines[min(1, len(lines)):] {
				fmt.Fprintf(tw, "\t\t\t\t\t\t\t%s\n", l)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, trimLines(b.String()))
	return err
}

// trimLines drops the spaces tabwriter leaves after a short last column.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// hostLines are a host's reasons, then its evidence marked as such, each
// on one line.
func hostLines(h contract.HostReport) []string {
	var out []string
	for _, r := range h.Reasons {
		out = append(out, oneLine(r))
	}
	for _, e := range h.Evidence {
		out = append(out, "evidence: "+oneLine(e))
	}
	return out
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

func renderReportJSON(w io.Writer, rep contract.Report, _ reportOptions) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return nil
}

// csvHeader is the CSV format's header; one host per row follows.
var csvHeader = []string{"name", "region", "site", "tier", "role", "owner", "purpose", "state", "reasons", "evidence"}

func renderReportCSV(w io.Writer, rep contract.Report, _ reportOptions) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	for _, h := range rep.Hosts {
		row := []string{h.Name, h.Region, h.Site, string(h.Tier), h.Role, h.Owner, h.Purpose, string(h.State),
			strings.Join(h.Reasons, "; "), strings.Join(h.Evidence, "; ")}
		for i := range row {
			row[i] = csvCell(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write CSV: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

// csvCell keeps a cell from an inventory from running as a formula when
// the file is opened in a spreadsheet (CSV injection): a leading =, +, -,
// @, tab or carriage return gets a quote in front.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// mdEscaper escapes what Markdown would read as formatting, a table
// separator or inline HTML in text from inventories and hosts.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "#", `\#`,
)

func md(s string) string { return mdEscaper.Replace(oneLine(s)) }

func renderReportMarkdown(w io.Writer, rep contract.Report, o reportOptions) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Compliance report: %s\n\n", md(rep.RolloutID))
	fmt.Fprintf(&b, "%s (%s), generated %s\n\n", md(rep.KB), md(rep.Severity), rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"))
	if rep.Provisional != "" {
		fmt.Fprintf(&b, "> **Provisional** (%s): hosts may still change state.\n\n", md(rep.Provisional))
	}
	fmt.Fprintf(&b, "**%s**\n\n", md(headline(rep)))
	b.WriteString("| State | Hosts |\n|---|---:|\n")
	for _, st := range attentionOrder {
		if n := rep.Totals[st]; n > 0 {
			fmt.Fprintf(&b, "| %s | %d |\n", md(string(st)), n)
		}
	}
	for _, dim := range reportDimensions {
		fmt.Fprintf(&b, "\n## By %s\n\n| %s | Hosts | Compliant | %% | Other states |\n|---|---:|---:|---:|---|\n", dim, strings.ToUpper(dim[:1])+dim[1:])
		for _, bd := range breakdownsOf(rep, dim) {
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s |\n", md(bd.Value), bd.Hosts, bd.Totals[rollout.StateCompliant], contract.PercentText(bd.CompliancePercent), md(otherStates(bd.Totals)))
		}
	}
	if len(rep.Unowned) > 0 {
		fmt.Fprintf(&b, "\n## Unknown owner or purpose (%d)\n\nNobody answers for these hosts.\n\n| Host | Missing |\n|---|---|\n", len(rep.Unowned))
		for _, u := range rep.Unowned {
			fmt.Fprintf(&b, "| %s | %s |\n", md(u.Host), md(u.Reason))
		}
	}
	hosts := listedHosts(rep, o.all)
	if o.all {
		fmt.Fprintf(&b, "\n## Hosts (%d)\n\n", len(hosts))
	} else {
		fmt.Fprintf(&b, "\n## Not compliant (%d of %d applicable hosts)\n\n", len(hosts), rep.HostCount-rep.Totals[rollout.StateNotApplicable])
	}
	if len(hosts) > 0 {
		b.WriteString("| Host | State | Region | Site | Tier | Role | Owner | Reasons and evidence |\n|---|---|---|---|---|---|---|---|\n")
		for _, h := range hosts {
			var lines []string
			for _, l := range hostLines(h) {
				lines = append(lines, md(l))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", md(h.Name), md(string(h.State)), md(h.Region), md(h.Site),
				md(string(h.Tier)), md(h.Role), md(orDash(h.Owner)), strings.Join(lines, "<br>"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
