package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/scan"
	"github.com/patchway/patchway/workflows"
)

// scanCallTimeout bounds each call to Temporal that is not a wait for a
// scan's result (connect, start, schedule create/update/describe/delete).
const scanCallTimeout = time.Minute

// minScanInterval keeps a schedule from hammering the fleet.
const minScanInterval = time.Minute

// scanIDPattern keeps scan ids usable as workflow and schedule ids and in
// a shell.
var scanIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// scanOptions are the flags of patchway scan.
type scanOptions struct {
	conn      clientFlags
	inventory string
	patches   []string
	rollouts  []string
	every     string
	id        string
	channels  []string
	as        string
	wait      bool
	runNow    bool
	asJSON    bool
	delete    bool
	last      bool
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
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("wait") {
				o.wait = o.every == ""
			}
			return o.run(cmd)
		},
	}
	o.conn.register(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&o.inventory, "inventory", "", "inventory file (HCL or CSV) of the hosts to scan")
	f.StringArrayVar(&o.patches, "patch", nil, "KB to check (repeatable)")
	f.StringSliceVar(&o.rollouts, "rollouts", nil, "rollout files that define the patches and channels (repeatable or comma-separated)")
	f.StringVar(&o.every, "every", "", `run on a Temporal Schedule at this interval ("24h", "7d"; at least 1m)`)
	f.StringVar(&o.id, "id", "", "scan id: names the schedule and relates each scan to the previous one (default: the KBs)")
	f.StringArrayVar(&o.channels, "channel", nil, "channel that hears about regressions, by name (repeatable)")
	f.StringVar(&o.as, "as", "", "who requests the scan, as recorded (default: the OS user)")
	f.BoolVar(&o.wait, "wait", false, "wait for the scan and print its result (default: true for a one-off scan, false with --every)")
	f.BoolVar(&o.runNow, "run-now", true, "with --every: also start one scan now")
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON, every check and drift included")
	f.BoolVar(&o.delete, "delete", false, "delete the schedule of --id")
	f.BoolVar(&o.last, "last", false, "print the latest completed scan of --id")
	return cmd
}

func (o *scanOptions) run(cmd *cobra.Command) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if o.delete || o.last {
		if o.id == "" {
			return errors.New("--delete and --last need --id")
		}
		c, err := o.dial(cmd.Context())
		if err != nil {
			return err
		}
		defer c.Close()
		if o.delete {
			return deleteScanSchedule(cmd.Context(), c, out, o.id)
		}
		return printLastScan(cmd.Context(), c, out, o.id, o.asJSON)
	}

	var every time.Duration
	if o.every != "" {
		d, err := parseInterval(o.every)
		if err != nil {
			return err
		}
		every = d
	}
	in, err := o.input(errOut)
	if err != nil {
		return err
	}
	c, err := o.dial(cmd.Context())
	if err != nil {
		return err
	}
	defer c.Close()
	if every == 0 {
		return runScan(cmd.Context(), c, out, in, o.wait, o.asJSON)
	}
	// With --json, stdout holds the result alone.
	info := out
	if o.asJSON {
		info = errOut
	}
	return scheduleScan(cmd.Context(), c, out, info, in, every, o.runNow, o.wait, o.asJSON)
}

func (o *scanOptions) dial(ctx context.Context) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
	defer cancel()
	return o.conn.dial(ctx, cliLogger())
}

// input loads the inventory and the patch and channel definitions and
// builds the scan's input. Diagnostics are printed with their source
// lines; a KB or channel the rollout files do not define is an error
// naming the files searched.
func (o *scanOptions) input(errOut io.Writer) (scan.Input, error) {
	switch {
	case o.inventory == "":
		return scan.Input{}, errors.New("--inventory is required")
	case len(o.patches) == 0:
		return scan.Input{}, errors.New("--patch is required (at least one KB)")
	case len(o.rollouts) == 0:
		return scan.Input{}, errors.New("--rollouts is required: the rollout files that define the patches")
	}
	requestedBy, err := operator(o.as)
	if err != nil {
		return scan.Input{}, err
	}
	defs, err := loadScanDefinitions(errOut, o.rollouts)
	if err != nil {
		return scan.Input{}, err
	}
	patches, err := defs.patches(o.patches)
	if err != nil {
		return scan.Input{}, err
	}
	channels, err := defs.channelsNamed(o.channels)
	if err != nil {
		return scan.Input{}, err
	}
	inv, diags := rollout.LoadInventory(o.inventory)
	if len(diags) > 0 {
		if err := writeDiagnostics(errOut, defs.files, diags); err != nil {
			return scan.Input{}, err
		}
	}
	if diags.HasErrors() || inv == nil {
		return scan.Input{}, exitError{code: 1}
	}
	id := o.id
	if id == "" {
		id = strings.ToLower(strings.Join(kbList(patches), "-"))
	}
	if !scanIDPattern.MatchString(id) {
		return scan.Input{}, fmt.Errorf("--id %q: use letters, digits, '.', '_' and '-'", id)
	}
	in := scan.Input{ScanID: id, Hosts: inv.Hosts, Sites: inv.Sites, Patches: patches, Channels: channels, RequestedBy: requestedBy}
	if err := in.Validate(); err != nil {
		return scan.Input{}, err
	}
	return in, nil
}

// scanDefinitions are the patches and channels declared by rollout files.
type scanDefinitions struct {
	files map[string][]byte
	order []string // files in the order given
	// byKB maps an upper-case KB to its patch and the file defining it.
	byKB     map[string]rollout.Patch
	kbFile   map[string]string
	channels map[string]rollout.Channel
	fileKBs  map[string]string
}

func loadScanDefinitions(errOut io.Writer, paths []string) (*scanDefinitions, error) {
	d := &scanDefinitions{files: map[string][]byte{}, byKB: map[string]rollout.Patch{}, kbFile: map[string]string{},
		channels: map[string]rollout.Channel{}, fileKBs: map[string]string{}}
	var diags hcl.Diagnostics
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read rollout file: %w", err)
		}
		d.files[path] = data
		d.order = append(d.order, path)
		r, _, ds := rollout.DecodeRolloutRanges(path, data)
		diags = append(diags, ds...)
		if r == nil || ds.HasErrors() {
			continue
		}
		kb := strings.ToUpper(r.Patch.KB)
		d.fileKBs[path] = kb
		if prev, ok := d.byKB[kb]; ok && !reflect.DeepEqual(prev, r.Patch) {
			return nil, fmt.Errorf("%s is defined differently in %s and %s: scan with one of them", kb, d.kbFile[kb], path)
		}
		if _, ok := d.byKB[kb]; !ok {
			d.byKB[kb], d.kbFile[kb] = r.Patch, path
		}
		for _, c := range r.Channels {
			if _, ok := d.channels[c.Name]; !ok {
				d.channels[c.Name] = c
			}
		}
	}
	if len(diags) > 0 {
		if err := writeDiagnostics(errOut, d.files, diags); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() {
		return nil, exitError{code: 1}
	}
	return d, nil
}

// patches returns the patches of kbs, in the order asked.
func (d *scanDefinitions) patches(kbs []string) ([]rollout.Patch, error) {
	var out []rollout.Patch
	for _, kb := range kbs {
		p, ok := d.byKB[strings.ToUpper(strings.TrimSpace(kb))]
		if !ok {
			return nil, fmt.Errorf("patch %s is not defined by the rollout files searched: %s", strings.ToUpper(kb), d.searched())
		}
		out = append(out, p)
	}
	return out, nil
}

func (d *scanDefinitions) searched() string {
	var parts []string
	for _, f := range d.order {
		parts = append(parts, fmt.Sprintf("%s (%s)", f, orDefaultString(d.fileKBs[f], "invalid")))
	}
	return strings.Join(parts, ", ")
}

// channelsNamed returns the declarations of the named channels.
func (d *scanDefinitions) channelsNamed(names []string) ([]rollout.Channel, error) {
	var out []rollout.Channel
	for _, n := range names {
		c, ok := d.channels[n]
		if !ok {
			declared := slices.Sorted(maps.Keys(d.channels))
			return nil, fmt.Errorf("channel %q is not declared by the rollout files searched (%s); declared: %s",
				n, strings.Join(d.order, ", "), orDefaultString(strings.Join(declared, ", "), "none"))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func orDefaultString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func kbList(patches []rollout.Patch) []string {
	kbs := make([]string, len(patches))
	for i, p := range patches {
		kbs[i] = strings.ToUpper(p.KB)
	}
	return kbs
}

// parseInterval reads --every: Go durations plus whole days ("7d").
func parseInterval(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(s, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		d = time.Duration(n) * 24 * time.Hour
	} else {
		d, err = time.ParseDuration(s)
	}
	if err != nil || d < minScanInterval {
		return 0, fmt.Errorf("--every %q: want a duration of at least %s (\"24h\", \"7d\")", s, minScanInterval)
	}
	return d, nil
}

// runScan starts a one-off scan and, with wait, prints its result.
func runScan(ctx context.Context, c client.Client, out io.Writer, in scan.Input, wait, asJSON bool) error {
	opts := scan.StartOptions(in)
	packed, err := in.Pack()
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
	defer cancel()
	run, err := c.ExecuteWorkflow(sctx, opts, scan.WorkflowName, packed)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return fmt.Errorf("scan %s is already running (workflow %s): wait for it, or scan with another --id", in.ScanID, opts.ID)
	}
	if err != nil {
		return fmt.Errorf("start scan %s: %w", in.ScanID, err)
	}
	if !wait {
		fmt.Fprintf(out, "started scan %s: %s on %d hosts (workflow %s)\n  its result:  patchway scan --id %s --last\n",
			in.ScanID, strings.Join(kbList(in.Patches), ", "), len(in.Hosts), run.GetID(), in.ScanID)
		return nil
	}
	res, err := scanResult(ctx, c, run.GetID(), "")
	if err != nil {
		return err
	}
	return printScan(out, res, asJSON)
}

// scanResult waits for a scan workflow (runID "" is the latest run of
// the id; continue-as-new is followed) and returns its result, expanded.
func scanResult(ctx context.Context, c client.Client, workflowID, runID string) (scan.Result, error) {
	var res scan.Result
	if err := c.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res); err != nil {
		return res, fmt.Errorf("scan %s: %w", workflowID, err)
	}
	return res.Expanded()
}

// scheduleScan creates the scan's schedule, or updates it with the new
// input and interval, then with runNow starts one scan at once (after the
// running one, if any) and with wait prints its result on out; what it
// did goes to info.
func scheduleScan(ctx context.Context, c client.Client, out, info io.Writer, in scan.Input, every time.Duration, runNow, wait, asJSON bool) error {
	id := scan.WorkflowID(in.ScanID)
	packed, err := in.Pack()
	if err != nil {
		return err
	}
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID: id, Workflow: scan.WorkflowName, Args: []any{packed}, TaskQueue: workflows.TaskQueue,
		StaticSummary: scan.Summary(in),
	}
	// A scan missed by more than an interval (server down) is replaced
	// by the next one rather than run late.
	catchup := max(every, 10*time.Second)

	sctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
	defer cancel()
	sc := c.ScheduleClient()
	verb := "created"
	h, err := sc.Create(sctx, client.ScheduleOptions{
		ID: id, Spec: spec, Action: action, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, CatchupWindow: catchup,
		Note: "patchway scan, by " + in.RequestedBy,
	})
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		verb = "updated"
		h = sc.GetHandle(sctx, id)
		err = h.Update(sctx, client.ScheduleUpdateOptions{DoUpdate: func(u client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			s := u.Description.Schedule
			s.Spec, s.Action = &spec, action
			if s.Policy == nil {
				s.Policy = &client.SchedulePolicies{}
			}
			s.Policy.Overlap, s.Policy.CatchupWindow = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, catchup
			return &client.ScheduleUpdate{Schedule: &s}, nil
		}})
	}
	if err != nil {
		return fmt.Errorf("schedule scan %s: %w", in.ScanID, err)
	}
	fmt.Fprintf(info, "%s schedule %s: %s on %d hosts every %s\n", verb, id, strings.Join(kbList(in.Patches), ", "), len(in.Hosts), rollout.FormatDuration(every))
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
	before, err := h.Describe(sctx)
	if err != nil {
		return fmt.Errorf("describe schedule %s: %w", id, err)
	}
	// Runs are told apart by run id: the server names a scheduled run
	// by the second it started, so two triggers in one second share a
	// workflow id.
	seen := map[string]bool{}
	for _, a := range before.Info.RecentActions {
		if a.StartWorkflowResult != nil {
			seen[a.StartWorkflowResult.FirstExecutionRunID] = true
		}
	}
	// BUFFER_ONE: a scan already running finishes first; this one then
	// compares against it.
	if err := h.Trigger(sctx, client.ScheduleTriggerOptions{Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE}); err != nil {
		return fmt.Errorf("start a scan of schedule %s now: %w", id, err)
	}
	if !wait {
		fmt.Fprintln(info, "  started one scan now")
		return nil
	}
	run, err := triggeredRun(ctx, h, seen)
	if err != nil {
		return err
	}
	fmt.Fprintf(info, "  started one scan now: workflow %s\n\n", run.WorkflowID)
	res, err := scanResult(ctx, c, run.WorkflowID, run.FirstExecutionRunID)
	if err != nil {
		return err
	}
	return printScan(out, res, asJSON)
}

// triggeredRun waits for the schedule to start the workflow a trigger
// asked for: the first recent action not seen before.
func triggeredRun(ctx context.Context, h client.ScheduleHandle, seen map[string]bool) (*client.ScheduleWorkflowExecution, error) {
	for {
		dctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
		d, err := h.Describe(dctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("describe schedule %s: %w", h.GetID(), err)
		}
		for _, a := range slices.Backward(d.Info.RecentActions) {
			if r := a.StartWorkflowResult; r != nil && !seen[r.FirstExecutionRunID] {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("wait for the scan of schedule %s to start: %w", h.GetID(), ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// deleteScanSchedule stops a scan's schedule; past scans stay in history.
func deleteScanSchedule(ctx context.Context, c client.Client, out io.Writer, scanID string) error {
	id := scan.WorkflowID(scanID)
	ctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
	defer cancel()
	err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		return fmt.Errorf("no scan schedule %s", id)
	}
	if err != nil {
		return fmt.Errorf("delete schedule %s: %w", id, err)
	}
	fmt.Fprintf(out, "deleted schedule %s; its past scans stay in history (patchway scan --id %s --last)\n", id, scanID)
	return nil
}

// printLastScan prints the latest completed scan of a scan id: of its
// schedule's recent runs the newest that completed, else the one-off scan
// of that id; once the schedule is deleted, the newest completed run
// visibility still lists.
func printLastScan(ctx context.Context, c client.Client, out io.Writer, scanID string, asJSON bool) error {
	id := scan.WorkflowID(scanID)
	cctx, cancel := context.WithTimeout(ctx, scanCallTimeout)
	defer cancel()
	var candidates []string
	d, err := c.ScheduleClient().GetHandle(cctx, id).Describe(cctx)
	var notFound *serviceerror.NotFound
	switch {
	case err == nil:
		for _, a := range slices.Backward(d.Info.RecentActions) {
			if a.StartWorkflowResult != nil {
				candidates = append(candidates, a.StartWorkflowResult.WorkflowID)
			}
		}
	case errors.As(err, &notFound):
		resp, err := c.ListWorkflow(cctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 1, Query: fmt.Sprintf(
			"WorkflowType = '%s' AND ExecutionStatus = 'Completed' AND (WorkflowId = '%s' OR TemporalScheduledById = '%s')",
			scan.WorkflowName, id, id)})
		if err != nil {
			return fmt.Errorf("list scans of %s: %w", scanID, err)
		}
		for _, e := range resp.GetExecutions() {
			candidates = append(candidates, e.GetExecution().GetWorkflowId())
		}
	default:
		return fmt.Errorf("describe schedule %s: %w", id, err)
	}
	candidates = append(candidates, id)
	for _, wid := range candidates {
		desc, err := c.DescribeWorkflowExecution(cctx, wid, "")
		if errors.As(err, &notFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("describe scan %s: %w", wid, err)
		}
		if desc.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
			continue
		}
		res, err := scanResult(cctx, c, wid, "")
		if err != nil {
			return err
		}
		return printScan(out, res, asJSON)
	}
	return fmt.Errorf("no completed scan of %s yet", scanID)
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
	fmt.Fprintf(&b, "  checks: %s\n", strings.Join(states, ", "))
	fmt.Fprintf(&b, "  hosts compliant with every patch: %d of %d; unreachable: %d\n", res.HostsCompliant, res.Hosts, res.HostsUnreachable)
	for _, k := range res.ByKB {
		applicable := k.Hosts - k.Totals[rollout.StateNotApplicable]
		fmt.Fprintf(&b, "  %s: %.1f %% compliant (%d of %d applicable)\n", k.KB, math.Floor(k.CompliancePercent*10)/10,
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
