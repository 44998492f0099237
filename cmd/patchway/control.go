package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// updateTimeout bounds one gate or control command: the update runs a
// policy local activity and, for some, a notification.
const updateTimeout = 2 * time.Minute

// controlFlags are the flags shared by the gate and control commands.
type controlFlags struct {
	conn   clientFlags
	as     string
	reason string
}

func (f *controlFlags) register(cmd *cobra.Command, reasonRequired bool) {
	f.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&f.as, "as", "", "who decides, as recorded in the rollout (default: the OS user)")
	help := "why, recorded in the rollout"
	if reasonRequired {
		help += " (required)"
	}
	cmd.Flags().StringVar(&f.reason, "reason", "", help)
	if reasonRequired {
		_ = cmd.MarkFlagRequired("reason")
	}
}

func newApproveCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "approve ROLLOUT [GATE]",
		Short: "Approve the gate a rollout waits at (the gates policy decides whether you may)",
		Long: "Approve the gate a rollout waits at. GATE is the stage or wave name shown by `patchway status`;\n" +
			"without it, the gate the rollout waits at now. The gates policy decides whether you may\n" +
			"(for example, whoever filed a rollout cannot approve its gates); a refusal exits 1 with the policy's reason.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			req := workflows.GateRequest{User: user, Reason: f.reason}
			if len(args) == 2 {
				req.Gate = args[1]
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateApprove, req, "approved")
		},
	}
	f.register(cmd, false)
	return cmd
}

func newRejectCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "reject ROLLOUT [GATE] --reason TEXT",
		Short: "Reject the gate a rollout waits at: the rollout stops and reports",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			req := workflows.GateRequest{User: user, Reason: f.reason}
			if len(args) == 2 {
				req.Gate = args[1]
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateReject, req, "rejected")
		},
	}
	f.register(cmd, true)
	return cmd
}

func newPauseCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "pause ROLLOUT --reason TEXT",
		Short: "Stop starting new hosts; hosts in flight finish",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdatePause,
				workflows.ControlRequest{User: user, Reason: f.reason}, "paused")
		},
	}
	f.register(cmd, true)
	return cmd
}

func newResumeCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "resume ROLLOUT --reason TEXT",
		Short: "Lift a pause, or let a halted wave go on (its failures so far no longer count)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateResume,
				workflows.ControlRequest{User: user, Reason: f.reason}, "resumed")
		},
	}
	f.register(cmd, true)
	return cmd
}

func newAbortCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	var rollback bool
	cmd := &cobra.Command{
		Use:   "abort ROLLOUT --reason TEXT [--rollback]",
		Short: "Stop a rollout, optionally uninstalling the patch from the current wave's hosts",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateAbort,
				workflows.AbortRequest{User: user, Reason: f.reason, Rollback: rollback}, "aborted")
		},
	}
	f.register(cmd, true)
	cmd.Flags().BoolVar(&rollback, "rollback", false, "uninstall the patch from the current wave's hosts that received it")
	return cmd
}

func newExceptCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	var expires string
	cmd := &cobra.Command{
		Use:   "except ROLLOUT HOST --reason TEXT --expires WHEN",
		Short: "Grant one host an exception until an expiry: reported excepted, never compliant, not patched",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			until, err := parseExpiry(expires, time.Now())
			if err != nil {
				return err
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateExcept,
				workflows.ExceptRequest{Host: args[1], User: user, Reason: f.reason, Expires: until},
				"excepted "+args[1]+" until "+until.UTC().Format(time.RFC3339)+" in")
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&expires, "expires", "", `when the exception ends: a duration from now ("72h", "7d") or an RFC 3339 time (required)`)
	_ = cmd.MarkFlagRequired("expires")
	return cmd
}

func newSkipHostCmd(_ *globalFlags) *cobra.Command {
	var f controlFlags
	cmd := &cobra.Command{
		Use:   "skip-host ROLLOUT HOST --reason TEXT",
		Short: "Take a failed host out of a halted wave's failure count, so the wave can resume without it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			user, err := operator(f.as)
			if err != nil {
				return err
			}
			return runUpdate(cmd, &f, args[0], workflows.UpdateSkipHost,
				workflows.SkipHostRequest{Host: args[1], User: user, Reason: f.reason}, "skipped "+args[1]+" in")
		},
	}
	f.register(cmd, true)
	return cmd
}

// runUpdate sends one update to a rollout and prints the recorded
// decision. A refusal (by the gates policy or by the workflow's checks) is
// printed with its reason and exits 1.
func runUpdate(cmd *cobra.Command, f *controlFlags, rolloutID, name string, arg any, done string) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), updateTimeout)
	defer cancel()
	c, err := f.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	rec, err := sendUpdate(ctx, c, rolloutID, name, arg)
	out := cmd.OutOrStdout()
	if err != nil {
		if refusal, ok := asRefusal(err); ok {
			printRefusal(cmd.ErrOrStderr(), rolloutID, name, refusal)
			return exitError{code: 1}
		}
		return err
	}
	fmt.Fprintf(out, "%s %s %s", rec.User, done, rolloutID)
	if rec.Subject != "" && rec.Subject != rolloutID {
		fmt.Fprintf(out, " (%s)", rec.Subject)
	}
	fmt.Fprintln(out)
	if rec.Revision != "" {
		fmt.Fprintf(out, "  allowed by policy revision %s\n", shortRevision(rec.Revision))
	}
	return nil
}

// sendUpdate runs update name on the rollout and waits for its result.
func sendUpdate(ctx context.Context, c client.Client, rolloutID, name string, arg any) (workflows.Record, error) {
	var rec workflows.Record
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.WorkflowID(rolloutID),
		UpdateName:   name,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &rec)
	}
	if err != nil {
		if _, ok := asRefusal(err); ok {
			return rec, err
		}
		return rec, fmt.Errorf("%s rollout %s: %w", name, rolloutID, err)
	}
	return rec, nil
}

// refusal is an update the workflow turned down: by the gates policy
// (with violations) or by its own checks (not waiting at a gate, unknown
// host...).
type refusal struct {
	byPolicy   bool
	message    string
	violations []rollout.Violation
}

func asRefusal(err error) (refusal, bool) {
	var app *temporal.ApplicationError
	if !errors.As(err, &app) {
		return refusal{}, false
	}
	r := refusal{byPolicy: app.Type() == contract.Refused, message: app.Message()}
	if r.byPolicy && app.HasDetails() {
		// Details are optional: a refusal without violations still
		// carries its reason in the message.
		_ = app.Details(&r.violations)
	}
	return r, true
}

func printRefusal(w io.Writer, rolloutID, name string, r refusal) {
	who := "rollout " + rolloutID
	if r.byPolicy {
		who = "policy"
	}
	fmt.Fprintf(w, "%s refused by %s: %s\n", name, who, r.message)
	for _, v := range r.violations {
		fmt.Fprintf(w, "  %s: %s\n", v.Code, v.Msg)
	}
}

// parseExpiry reads an exception's end: a duration from now (Go syntax or
// whole days "7d", as durations are written in HCL) or an RFC 3339 time.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err == nil && n > 0 {
			return now.Add(time.Duration(n) * 24 * time.Hour), nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("--expires %q: want a positive duration (72h, 7d) or an RFC 3339 time", s)
	}
	return now.Add(d), nil
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
