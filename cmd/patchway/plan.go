package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// planOptions are the flags and argument of patchway plan.
type planOptions struct {
	ioStreams
	global    *globalFlags
	asJSON    bool
	inventory string

	// Set by Complete.
	file      string
	policyDir string
}

func newPlanCmd(g *globalFlags) *cobra.Command {
	o := &planOptions{global: g}
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the stages and waves a rollout will run, in order, with their hosts and windows",
		Long: "Show what a rollout will do on its inventory: the stages, then the waves in execution order,\n" +
			"each with its host count per region, site and role, and the maintenance window in each\n" +
			"site's local time. Problems are listed as validate lists them; the plan is printed only\n" +
			"when there are no errors.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the plan as JSON")
	cmd.Flags().StringVar(&o.inventory, "inventory", "", "plan on this inventory instead of the one the rollout names")
	return cmd
}

// Complete takes the rollout file and the policies to plan with.
func (o *planOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.file = args[0]
	o.policyDir = o.global.policyDir
	return nil
}

// Validate has nothing to check: any file and inventory may be planned.
func (o *planOptions) Validate() error { return nil }

// Run loads the rollout (printing its diagnostics), builds its plan, asks
// the policies for its deadline and verdict, and prints them.
func (o *planOptions) Run(ctx context.Context) error {
	src, diags := rollout.LoadSource(o.file, rollout.LoadOptions{InventoryPath: o.inventory})
	files := map[string][]byte{}
	if src != nil {
		files = src.Files
	}
	if len(diags) > 0 {
		if err := writeDiagnostics(o.ErrOut, files, diags); err != nil {
			return err
		}
	}
	if diags.HasErrors() {
		return exitError{code: 1}
	}
	plan, err := rollout.BuildPlan(src.Rollout, src.Inventory)
	if err != nil {
		return err
	}
	// The SLA policy sets the deadline; an unfiled rollout counts from now.
	verdict, err := fillDeadlines(ctx, o.policyDir, src.Rollout, plan, time.Now().UTC())
	if err != nil {
		return fmt.Errorf("evaluate policies: %w", err)
	}
	if o.asJSON {
		enc := json.NewEncoder(o.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return fmt.Errorf("write plan: %w", err)
		}
		return nil
	}
	if err := writePlan(o.Out, plan); err != nil {
		return err
	}
	writePolicyVerdict(o.Out, verdict)
	return nil
}

// fillDeadlines loads the policies of policyDir and has them fill the
// plan's deadline and milestones (policies.Engine.FillPlan).
func fillDeadlines(ctx context.Context, policyDir string, r *rollout.Rollout, p *rollout.Plan, now time.Time) (policies.PlanDecision, error) {
	engine, err := policies.Load(ctx, policyDir)
	if err != nil {
		return policies.PlanDecision{}, err
	}
	return engine.FillPlan(ctx, r, p, now)
}

// writePolicyVerdict prints the plan policy's verdict under a plan.
func writePolicyVerdict(w io.Writer, d policies.PlanDecision) {
	if d.Allow {
		fmt.Fprintf(w, "\nPolicy (revision %s): plan allowed; required stages %s.\n", d.Revision, strings.Join(d.RequiredStages, ", "))
	} else {
		fmt.Fprintf(w, "\nPolicy (revision %s): plan refused.\n", d.Revision)
	}
	for _, v := range d.Violations {
		fmt.Fprintf(w, "  %s: %s\n", v.Code, v.Msg)
	}
	for _, r := range d.Reasons {
		fmt.Fprintf(w, "  %s\n", r)
	}
}

// writePlan renders a plan for a person.
func writePlan(w io.Writer, p *rollout.Plan) error {
	out := &printTo{w: w}
	title := p.KB
	if p.Bulletin != "" {
		title += " " + p.Bulletin
	}
	if p.Title != "" {
		title += ": " + p.Title
	}
	out.f("Rollout %s  %s\n", p.Rollout, title)
	out.f("Severity %s, published %s. %d of %d inventory hosts in %d steps.\n",
		p.Severity, p.Published.UTC().Format(time.RFC3339), p.Hosts, p.InventoryHosts, len(p.Steps))
	if p.Deadline != nil {
		out.f("Deadline %s.\n", p.Deadline.UTC().Format(time.RFC3339))
	}
	for _, r := range p.DeadlineReasons {
		out.f("  why: %s\n", r)
	}
	for _, m := range p.Milestones {
		label := fmt.Sprintf("%g%% of the SLA", m.AtPercent)
		switch {
		case m.Breach && p.Deadline != nil && m.At.After(*p.Deadline):
			label = "breach + " + rollout.FormatDuration(m.At.Sub(*p.Deadline).Round(time.Minute))
		case m.Breach:
			label = "breach"
		}
		out.f("  %-18s %s\n", label, m.At.UTC().Format(time.RFC3339))
	}
	for _, s := range p.Steps {
		out.f("\n%d. %s %s: %s  [%s]\n", s.Order, s.Kind, s.Name, plural(s.Count, "host"), s.Selector)
		var facts []string
		if len(s.After) > 0 {
			facts = append(facts, "after "+strings.Join(s.After, ", "))
		}
		if s.Soak != "" {
			facts = append(facts, "soak "+s.Soak)
		}
		if s.Kind == rollout.StepWave {
			facts = append(facts, fmt.Sprintf("max parallel %d", s.MaxParallel), "max failures "+s.MaxFailures)
			if s.DownloadConcurrency > 0 {
				facts = append(facts, fmt.Sprintf("%d downloads per site", s.DownloadConcurrency))
			}
		}
		if s.ApprovalGroup != "" {
			facts = append(facts, "approved by "+s.ApprovalGroup)
		}
		if len(facts) > 0 {
			out.f("   %s\n", strings.Join(facts, "; "))
		}
		out.f("   regions  %s\n", countList(s.ByRegion))
		out.f("   sites    %s\n", countList(s.BySite))
		out.f("   roles    %s\n", countList(s.ByRole))
		if s.Kind == rollout.StepWave && len(s.Windows) == 0 {
			out.f("   window   any time\n")
		}
		for i, win := range s.Windows {
			label := "windows "
			if i > 0 {
				label = "        "
			}
			zone := win.TimeZone
			if zone == "" {
				zone = "time zone unknown"
			}
			out.f("   %s %-14s %-27s %s (%s)\n", label, win.Site, formatDays(win.Days)+" "+win.Hours, zone, plural(win.Hosts, "host"))
		}
	}
	if len(p.Unplanned) > 0 {
		shown := p.Unplanned[:min(len(p.Unplanned), 12)]
		more := ""
		if n := len(p.Unplanned) - len(shown); n > 0 {
			more = fmt.Sprintf(" and %d more (see --json)", n)
		}
		out.f("\nIn no step: %s: %s%s\n", plural(len(p.Unplanned), "host"), strings.Join(shown, ", "), more)
	}
	return out.err
}

func countList(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedCounts(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// weekOrder is the week as formatDays reads it.
var weekOrder = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// formatDays shortens a Monday-first list of days: every day is "daily",
// and a run of three or more days is a range ("mon-fri").
func formatDays(days []string) string {
	if len(days) == len(weekOrder) {
		return "daily"
	}
	var parts []string
	for i := 0; i < len(days); {
		j := i
		for j+1 < len(days) && slices.Index(weekOrder, days[j+1]) == slices.Index(weekOrder, days[j])+1 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, days[i]+"-"+days[j])
		default:
			parts = append(parts, days[i:j+1]...)
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
