package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/scan"
)

// scanOptions are the flags of patchway scan.
type scanOptions struct {
	ioStreams
	conn      clientFlags
	inventory string
	patches   []string
	rollouts  []string
	every     string
	id        string
	channels  []string
	ident     identityFlags
	wait      bool
	runNow    bool
	asJSON    bool
	delete    bool
	last      bool

	// Set by Validate: --every read (0 without it).
	interval time.Duration
}

func newScanCmd(_ *globalFlags) *cobra.Command {
	o := &scanOptions{}
	cmd := &cobra.Command{
		Use:   "scan --inventory FILE --patch KB [--patch KB...] --rollouts FILE... [--every DURATION]",
		Short: "Re-verify hosts against patches, once or on a schedule, and report drift",
		Long: "Scan every host of an inventory for patches, apart from any rollout: each host and patch is judged by\n" +
			"the compliance policy on fresh evidence (file versions, hotfix, pending reboot, boot time). The patch\n" +
			"definitions come from the rollout files that roll them out (--rollouts).\n\n" +
			"Without --every, one scan runs now and its result is printed (--wait, the default). With --every, a\n" +
			"Temporal Schedule (id scan/ID) runs the scan every interval; each run reports the drift since the\n" +
			"previous one: a host compliant before and not now is a regression, notified on the --channel\n" +
			"channels (declared in the rollout files; no channel, no notification). Unreachable hosts are\n" +
			"reported unreachable, never compliant.\n\n" +
			"  patchway scan --id ID --last     the latest completed scan of ID\n" +
			"  patchway scan --id ID --delete   stop and delete the schedule",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.inventory, "inventory", "", "inventory file (HCL or CSV) of the hosts to scan")
	f.StringArrayVar(&o.patches, "patch", nil, "KB to check (repeatable)")
	f.StringSliceVar(&o.rollouts, "rollouts", nil, "rollout files that define the patches and channels (repeatable or comma-separated)")
	f.StringVar(&o.every, "every", "", `run on a Temporal Schedule at this interval ("24h", "7d"; at least 1m)`)
	f.StringVar(&o.id, "id", "", "scan id: names the schedule and relates each scan to the previous one (default: the KBs)")
	f.StringArrayVar(&o.channels, "channel", nil, "channel that hears about regressions, by name (repeatable)")
	o.ident.register(f)
	f.BoolVar(&o.wait, "wait", false, "wait for the scan and print its result (default: true for a one-off scan, false with --every)")
	f.BoolVar(&o.runNow, "run-now", true, "with --every: also start one scan now")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON, every check and drift included")
	f.BoolVar(&o.delete, "delete", false, "delete the schedule of --id")
	f.BoolVar(&o.last, "last", false, "print the latest completed scan of --id")
	return cmd
}

// Complete defaults --wait: a one-off scan waits for its result, a
// schedule does not.
func (o *scanOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	if !cmd.Flags().Changed("wait") {
		o.wait = o.every == ""
	}
	return nil
}

// Validate checks the flags before any file is read: --delete and
// --last need --id and nothing else; a scan needs an inventory, patches
// and the rollout files that define them, and --every an interval of at
// least scan.MinInterval.
func (o *scanOptions) Validate() error {
	if err := o.ident.validate(); err != nil {
		return err
	}
	if o.delete || o.last {
		if o.id == "" {
			return errors.New("--delete and --last need --id")
		}
		return nil
	}
	if o.every != "" {
		d, err := parseInterval(o.every)
		if err != nil {
			return err
		}
		o.interval = d
	}
	switch {
	case o.inventory == "":
		return errors.New("--inventory is required")
	case len(o.patches) == 0:
		return errors.New("--patch is required (at least one KB)")
	case len(o.rollouts) == 0:
		return errors.New("--rollouts is required: the rollout files that define the patches")
	}
	return nil
}

// Run deletes the schedule or prints the last scan of --id, or loads the
// scan's input and runs it once or on its schedule.
func (o *scanOptions) Run(ctx context.Context) error {
	out, errOut := o.Out, o.ErrOut
	if o.delete || o.last {
		c, err := o.dial(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		if o.delete {
			if err := scan.DeleteSchedule(ctx, c, o.id); err != nil {
				return err
			}
			fmt.Fprintf(out, "deleted schedule %s; its past scans stay in history (patchway scan --id %s --last)\n", scan.WorkflowID(o.id), o.id)
			return nil
		}
		res, err := scan.Last(ctx, c, o.id)
		if err != nil {
			return err
		}
		return printScan(out, res, o.asJSON)
	}

	in, err := o.input(errOut)
	if err != nil {
		return err
	}
	who, err := o.ident.forAction(ctx, contract.ActionAudience(scan.WorkflowID(in.ScanID), contract.ActionScan, ""))
	if err != nil {
		return err
	}
	c, err := o.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if o.interval == 0 {
		// The scan proves the token before any host, and drops it.
		in.Token, in.RequestedBy = who.token, who.user
		return runScan(ctx, c, out, in, o.wait, o.asJSON)
	}
	// With --json, stdout holds the result alone.
	info := out
	if o.asJSON {
		info = errOut
	}
	// A schedule's runs outlive any token: the person is proven once,
	// now, and the schedule keeps the proof (scan.Grant).
	g, err := scan.Authorize(ctx, c, scan.AuthorizeInput{ScanID: in.ScanID, User: who.user, Token: who.token})
	if err != nil {
		return err
	}
	in.Grant, in.RequestedBy = &g, g.Person.Name
	fmt.Fprintf(info, "requested by %s\n", g)
	return scheduleScan(ctx, c, out, info, in, o.interval, o.runNow, o.wait, o.asJSON)
}

func (o *scanOptions) dial(ctx context.Context) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, scan.CallTimeout)
	defer cancel()
	return o.conn.dial(ctx, cliLogger())
}

// input loads the inventory and the patch and channel definitions and
// builds the scan's input. Diagnostics are printed with their source
// lines; a KB or channel the rollout files do not define is an error
// naming the files searched.
func (o *scanOptions) input(errOut io.Writer) (scan.Input, error) {
	defs, diags, err := scan.LoadDefinitions(o.rollouts)
	if err != nil {
		return scan.Input{}, err
	}
	if len(diags) > 0 {
		if err := writeDiagnostics(errOut, defs.Files, diags); err != nil {
			return scan.Input{}, err
		}
	}
	if diags.HasErrors() {
		return scan.Input{}, exitError{code: 1}
	}
	patches, err := defs.Patches(o.patches)
	if err != nil {
		return scan.Input{}, err
	}
	channels, err := defs.Channels(o.channels)
	if err != nil {
		return scan.Input{}, err
	}
	inv, diags := rollout.LoadInventory(o.inventory)
	if len(diags) > 0 {
		if err := writeDiagnostics(errOut, defs.Files, diags); err != nil {
			return scan.Input{}, err
		}
	}
	if diags.HasErrors() || inv == nil {
		return scan.Input{}, exitError{code: 1}
	}
	id, err := scan.IDFor(o.id, patches)
	if err != nil {
		return scan.Input{}, fmt.Errorf("--id %q: %w", id, err)
	}
	in := scan.Input{ScanID: id, Hosts: inv.Hosts, Sites: inv.Sites, Patches: patches, Channels: channels}
	if err := in.Validate(); err != nil {
		return scan.Input{}, err
	}
	return in, nil
}

// parseInterval reads --every: Go durations plus whole days ("7d").
func parseInterval(s string) (time.Duration, error) {
	d, err := parseDayDuration(s)
	if err != nil || d < scan.MinInterval {
		return 0, fmt.Errorf("--every %q: want a duration of at least %s (\"24h\", \"7d\")", s, scan.MinInterval)
	}
	return d, nil
}

// parseDayDuration reads a Go duration or whole days ("30d").
func parseDayDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		return time.Duration(n) * 24 * time.Hour, err
	}
	return time.ParseDuration(s)
}

// runScan starts a one-off scan and, with wait, prints its result.
func runScan(ctx context.Context, c client.Client, out io.Writer, in scan.Input, wait, asJSON bool) error {
	run, err := scan.Start(ctx, c, in)
	if err != nil {
		return err
	}
	if !wait {
		fmt.Fprintf(out, "started scan %s: %s on %d hosts (workflow %s)\n  its result:  patchway scan --id %s --last\n",
			in.ScanID, strings.Join(in.KBs(), ", "), len(in.Hosts), run.GetID(), in.ScanID)
		return nil
	}
	res, err := scan.Await(ctx, c, run.GetID(), "")
	if err != nil {
		return err
	}
	return printScan(out, res, asJSON)
}

// scheduleScan creates or updates the scan's schedule, then with runNow
// starts one scan at once (after the running one, if any) and with wait
// prints its result on out; what it did goes to info.
func scheduleScan(ctx context.Context, c client.Client, out, info io.Writer, in scan.Input, every time.Duration, runNow, wait, asJSON bool) error {
	h, updated, err := scan.Schedule(ctx, c, in, every)
	if err != nil {
		return err
	}
	verb := "created"
	if updated {
		verb = "updated"
	}
	id := h.GetID()
	fmt.Fprintf(info, "%s schedule %s: %s on %d hosts every %s\n", verb, id, strings.Join(in.KBs(), ", "), len(in.Hosts), rollout.FormatDuration(every))
	if len(in.Channels) > 0 {
		var names []string
		for _, ch := range in.Channels {
			names = append(names, ch.Name)
		}
		fmt.Fprintf(info, "  regressions notified on: %s\n", strings.Join(names, ", "))
	}
	fmt.Fprintf(info, "  latest result:  patchway scan --id %s --last\n", in.ScanID)
	fmt.Fprintf(info, "  stop it:        patchway scan --id %s --delete   (or: temporal schedule delete --schedule-id %s)\n", in.ScanID, id)
	if !runNow {
		return nil
	}
	t, err := scan.Trigger(ctx, h)
	if err != nil {
		return err
	}
	if !wait {
		fmt.Fprintln(info, "  started one scan now")
		return nil
	}
	run, err := t.Run(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(info, "  started one scan now: workflow %s\n\n", run.WorkflowID)
	res, err := scan.Await(ctx, c, run.WorkflowID, run.FirstExecutionRunID)
	if err != nil {
		return err
	}
	return printScan(out, res, asJSON)
}

// printScan prints a scan's result: JSON, or the table a security
// engineer reads (totals, compliance per KB, drift, the checks that are
// not compliant).
func printScan(out io.Writer, res scan.Result, asJSON bool) error {
	if asJSON {
		return writeJSON(out, res)
	}
	_, err := io.WriteString(out, renderScan(res))
	return err
}

func renderScan(res scan.Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Scan %s  %s  %d hosts  %s  (%s)\n", res.ScanID, strings.Join(res.KBs, ", "), res.Hosts,
		res.StartedAt.UTC().Format(time.RFC3339), res.FinishedAt.Sub(res.StartedAt).Round(100*time.Millisecond))
	var states []string
	for _, st := range rollout.HostStates {
		if n := res.Totals[st]; n > 0 {
			states = append(states, fmt.Sprintf("%s %d", st, n))
		}
	}
	if res.Requester != nil {
		fmt.Fprintf(&b, "  requested by %s\n", res.Requester)
	}
	fmt.Fprintf(&b, "  checks: %s\n", strings.Join(states, ", "))
	fmt.Fprintf(&b, "  hosts compliant with every patch: %d of %d; unreachable: %d\n", res.HostsCompliant, res.Hosts, res.HostsUnreachable)
	for _, k := range res.ByKB {
		applicable := k.Hosts - k.Totals[rollout.StateNotApplicable]
		fmt.Fprintf(&b, "  %s: %.1f %% compliant (%d of %d applicable)\n", k.KB, contract.RoundPercent(k.CompliancePercent),
			k.Totals[rollout.StateCompliant], applicable)
	}
	if res.PreviousAt.IsZero() {
		b.WriteString("\nNo previous scan of this id: no drift.\n")
	} else {
		fmt.Fprintf(&b, "\nDrift since %s: %d, %d regression(s)\n", res.PreviousAt.UTC().Format(time.RFC3339), res.DriftCount, res.Regressions)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, d := range res.Drift {
			kind := string(d.Kind)
			if d.Regression {
				kind = "REGRESSION"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s -> %s\t%s\n", kind, d.Host, d.KB, d.Previous, d.Current, d.Reason)
		}
		_ = tw.Flush()
	}
	if len(res.Notified) > 0 {
		fmt.Fprintf(&b, "  notified: %s\n", strings.Join(res.Notified, ", "))
	}
	for _, e := range res.NotifyErrors {
		fmt.Fprintf(&b, "  NOT notified: %s\n", e)
	}
	var bad []scan.HostCheck
	for _, c := range res.Checks {
		if c.State != rollout.StateCompliant && c.State != rollout.StateNotApplicable {
			bad = append(bad, c)
		}
	}
	if len(bad) > 0 {
		fmt.Fprintf(&b, "\nNot compliant (%d):\n", len(bad))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, c := range bad {
			fmt.Fprintf(tw, "  %s\t%s\t%s\tsince %s\t%s\n", c.Host, c.KB, c.State, c.Since.UTC().Format(time.RFC3339), strings.Join(c.Reasons, "; "))
		}
		_ = tw.Flush()
	}
	return b.String()
}
