package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"golang.org/x/term"

	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// statusOptions are the flags and argument of patchway status.
type statusOptions struct {
	ioStreams
	conn     clientFlags
	watch    bool
	asJSON   bool
	host     string
	interval time.Duration
	maxWatch time.Duration

	// Set by Complete.
	rolloutID string
	tty       bool
}

func newStatusCmd(_ *globalFlags) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status ROLLOUT",
		Short: "Show a rollout's progress per stage and wave, or one host's state",
		Long: "Show a rollout's progress: its status, SLA deadline, the gate it waits at, and a progress bar\n" +
			"per stage and wave with the hosts per state. --watch redraws it in place until the rollout ends\n" +
			"(plain lines, one block per change, when stdout is not a terminal). --host shows one host.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().BoolVarP(&o.watch, "watch", "w", false, "keep showing progress until the rollout ends (Ctrl-C stops watching, not the rollout)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the progress query's JSON (one object per line with --watch)")
	cmd.Flags().StringVar(&o.host, "host", "", "show one host: its state, reasons, stage and attempts")
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "how often --watch asks for progress")
	cmd.Flags().DurationVar(&o.maxWatch, "max-watch", 0, "stop --watch after this long (0: until the rollout ends)")
	return cmd
}

// Complete takes the rollout, whether stdout is a terminal (--watch
// redraws in place there), and a --watch interval that is not positive
// as the default second.
func (o *statusOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rolloutID = args[0]
	o.tty = isTerminal(o.Out)
	if o.interval <= 0 {
		o.interval = time.Second
	}
	return nil
}

// Validate accepts every combination, as the command always has: --host
// wins over --watch, and --interval and --max-watch only matter with
// --watch.
func (o *statusOptions) Validate() error { return nil }

// Run shows one host, the progress, or watches the progress until the
// rollout ends, Ctrl-C or --max-watch.
func (o *statusOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	if o.host != "" {
		return printHost(ctx, c, o.Out, o.rolloutID, o.host, o.asJSON)
	}
	if !o.watch {
		p, err := workflows.GetProgress(ctx, c, o.rolloutID)
		if err != nil {
			return err
		}
		return printProgress(o.Out, p, o.asJSON)
	}
	if o.maxWatch > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.maxWatch)
		defer cancel()
	}
	return watchProgress(ctx, c, o.Out, o.rolloutID, o.interval, o.asJSON, o.tty)
}

func printHost(ctx context.Context, c client.Client, out io.Writer, rolloutID, host string, asJSON bool) error {
	h, err := workflows.GetHost(ctx, c, rolloutID, host)
	if err != nil {
		return err
	}
	if asJSON {
		return writeJSON(out, h)
	}
	fmt.Fprintf(out, "%s  %s  (%s, %d attempt(s))\n", h.Name, h.State, h.Stage, h.Attempts)
	for _, r := range h.Reasons {
		fmt.Fprintf(out, "  - %s\n", r)
	}
	if len(h.Evidence) > 0 {
		fmt.Fprintln(out, "  evidence:")
		for _, e := range h.Evidence {
			fmt.Fprintf(out, "    %s\n", e)
		}
	}
	return nil
}

func printProgress(out io.Writer, p workflows.Progress, asJSON bool) error {
	if asJSON {
		return writeJSON(out, p)
	}
	_, err := io.WriteString(out, renderProgress(p, time.Now()))
	return err
}

func writeJSON(out io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(out, "%s\n", b)
	return err
}

// watchProgress polls the progress query until the rollout ends or ctx is
// done. On a terminal it redraws in place; otherwise it prints a block
// only when the progress changed, so a log stays readable.
func watchProgress(ctx context.Context, c client.Client, out io.Writer, rolloutID string, interval time.Duration, asJSON, tty bool) error {
	if interval <= 0 {
		interval = time.Second
	}
	var last []byte
	drawnLines := 0
	for {
		p, err := workflows.GetProgress(ctx, c, rolloutID)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		var buf bytes.Buffer
		if asJSON {
			if err := writeJSON(&buf, p); err != nil {
				return err
			}
		} else {
			text := renderProgress(p, time.Now())
			if tty {
				// Redrawing moves up by lines: a line the terminal wraps
				// would leave residue, so cut lines to its width.
				text = fitWidth(text, terminalWidth(out))
			}
			buf.WriteString(text)
		}
		// The timestamp-free JSON tells a real change from a redraw.
		key, _ := json.Marshal(p)
		if !bytes.Equal(key, last) || (tty && !asJSON) {
			if tty && !asJSON && drawnLines > 0 {
				// Move up over the previous drawing and clear to the end.
				fmt.Fprintf(out, "\x1b[%dA\x1b[J", drawnLines)
			}
			if _, err := out.Write(buf.Bytes()); err != nil {
				return fmt.Errorf("write progress: %w", err)
			}
			drawnLines = bytes.Count(buf.Bytes(), []byte("\n"))
			if !tty && !asJSON {
				fmt.Fprintln(out)
			}
			last = key
		}
		if p.Status.Ended() {
			return nil
		}
		if closed, err := workflows.Closed(ctx, c, rolloutID); err == nil && closed {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// isTerminal tells whether w is a character device (a terminal), where
// redrawing in place makes sense.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// terminalWidth is w's width in columns, 0 when unknown.
func terminalWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return width
}

// fitWidth cuts every line of text to width-1 runes (no limit when width
// is unknown).
func fitWidth(text string, width int) string {
	if width <= 1 {
		return text
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if r := []rune(l); len(r) > width-1 {
			lines[i] = string(r[:width-1])
		}
	}
	return strings.Join(lines, "\n")
}

// barWidth is the width of a progress bar in characters.
const barWidth = 30

// renderProgress draws a rollout's progress as text: a header, one bar per
// stage and wave, and the latest decisions.
func renderProgress(p workflows.Progress, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Rollout %s  %s (%s)  %s", p.RolloutID, p.KB, p.Severity, strings.ToUpper(string(p.Status)))
	if p.Paused && p.Status != workflows.StatusPaused {
		b.WriteString(" (paused)")
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  hosts %d/%d done", p.HostsDone, p.HostsTotal)
	if !p.Deadline.IsZero() {
		fmt.Fprintf(&b, "   SLA deadline %s", p.Deadline.UTC().Format("2006-01-02 15:04Z"))
		if p.Breached {
			b.WriteString("  BREACHED")
		} else if left := p.Deadline.Sub(now); left > 0 {
			fmt.Fprintf(&b, " (in %s)", roundDuration(left))
		}
	}
	b.WriteString("\n")
	if f := p.Forecast; f != nil && !p.Breached && p.Status != workflows.StatusCompleted {
		verdict := fmt.Sprintf("%s before the deadline", roundDuration(f.Margin))
		if f.Breach {
			verdict = fmt.Sprintf("%s AFTER the deadline (breach forecast)", roundDuration(-f.Margin))
		}
		fmt.Fprintf(&b, "  forecast: completes about %s, %s, at %.1f hosts/h (as of %s)\n",
			f.Completion.UTC().Format("2006-01-02 15:04Z"), verdict, f.HostsPerHour, f.At.UTC().Format("15:04Z"))
	}
	if p.Failure != "" {
		fmt.Fprintf(&b, "  failed: %s\n", p.Failure)
	}
	if p.Shadow != nil {
		fmt.Fprintf(&b, "  shadow policy %s\n", p.Shadow)
	}
	if p.Baseline != nil {
		fmt.Fprintf(&b, "  preflight: %s\n", p.Baseline.Summary())
	}
	if p.WaitingGate != "" {
		fmt.Fprintf(&b, "  waiting for approval at %q: patchway approve %s %s (signed in as an approver)\n", p.WaitingGate, p.RolloutID, p.WaitingGate)
	}
	nameWidth := 4
	for _, s := range p.Steps {
		nameWidth = max(nameWidth, len(s.Name))
	}
	for _, s := range p.Steps {
		fmt.Fprintf(&b, "  %-*s %s %3d/%-3d %-16s %s\n", nameWidth, s.Name, bar(s), finished(s), s.Hosts, s.Status, stateCounts(s))
	}
	const shown = 5
	if n := len(p.Decisions); n > 0 {
		b.WriteString("  recent decisions:\n")
		for _, r := range p.Decisions[max(0, n-shown):] {
			verdict := "allow"
			if !r.Allow {
				verdict = "deny"
			}
			line := fmt.Sprintf("    %s %-10s %-5s %s", r.At.UTC().Format("15:04:05"), r.Kind, verdict, r.Subject)
			if r.User != "" {
				line += " by " + personLabel(r.User, r.Person)
			}
			if r.Reason != "" {
				line += ": " + r.Reason
			}
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// finished counts a step's hosts that are past pending and in progress.
func finished(s workflows.StepProgress) int {
	n := 0
	for st, c := range s.Totals {
		if st != rollout.StatePending && st != rollout.StateInProgress {
			n += c
		}
	}
	return n
}

// good tells the states that need no more work from anyone.
func good(st rollout.HostState) bool {
	switch st {
	case rollout.StateCompliant, rollout.StateNotApplicable, rollout.StateExcepted:
		return true
	}
	return false
}

// bar draws [===xx....]: '=' hosts done well, 'x' hosts finished in
// another state (failed, unreachable, not effective...), '>' in progress.
func bar(s workflows.StepProgress) string {
	if s.Hosts == 0 {
		return "[" + strings.Repeat(" ", barWidth) + "]"
	}
	var okN, badN, runN int
	for st, c := range s.Totals {
		switch {
		case good(st):
			okN += c
		case st == rollout.StateInProgress:
			runN += c
		case st != rollout.StatePending:
			badN += c
		}
	}
	cells := func(n int) int { return n * barWidth / s.Hosts }
	ok, bad, run := cells(okN), cells(badN), cells(runN)
	rest := max(0, barWidth-ok-bad-run)
	return "[" + strings.Repeat("=", ok) + strings.Repeat("x", bad) + strings.Repeat(">", run) + strings.Repeat(".", rest) + "]"
}

// stateCounts lists a step's non-zero host states, most frequent first.
func stateCounts(s workflows.StepProgress) string {
	type kv struct {
		state rollout.HostState
		n     int
	}
	var list []kv
	for st, n := range s.Totals {
		if n > 0 {
			list = append(list, kv{st, n})
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].n != list[j].n {
			return list[i].n > list[j].n
		}
		return list[i].state < list[j].state
	})
	parts := make([]string, 0, len(list))
	for _, e := range list {
		parts = append(parts, fmt.Sprintf("%s %d", e.state, e.n))
	}
	out := strings.Join(parts, ", ")
	if s.Threshold > 0 || s.Failures > 0 {
		out += fmt.Sprintf("  (failures %d/%d)", s.Failures, s.Threshold)
	}
	return out
}

func roundDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	default:
		return d.Round(time.Second).String()
	}
}
