package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/workflows"
)

// updateTimeout bounds one gate or control command: the update runs a
// policy local activity and, for some, a notification.
const updateTimeout = 2 * time.Minute

// controlAction is one gate or control command: the update it sends and
// how its arguments and flags become the update's request.
type controlAction struct {
	// update is the workflow update (workflows.Update*).
	update string
	// withHost: ROLLOUT HOST; else ROLLOUT [GATE] or ROLLOUT, as the
	// command's Args allow.
	withHost bool
	// expires: the command has --expires (an exception's end).
	expires bool
	// facts: the command has the risk-fact flags of a threat update.
	facts bool
}

var (
	actionApprove  = controlAction{update: workflows.UpdateApprove}
	actionReject   = controlAction{update: workflows.UpdateReject}
	actionPause    = controlAction{update: workflows.UpdatePause}
	actionResume   = controlAction{update: workflows.UpdateResume}
	actionAbort    = controlAction{update: workflows.UpdateAbort}
	actionExcept   = controlAction{update: workflows.UpdateExcept, withHost: true, expires: true}
	actionSkipHost = controlAction{update: workflows.UpdateSkipHost, withHost: true}
	actionThreat   = controlAction{update: workflows.UpdateThreat, facts: true}
)

// controlOptions are the flags and arguments of the gate and control
// commands (approve, reject, pause, resume, abort, except, skip-host).
type controlOptions struct {
	ioStreams
	action   controlAction
	conn     clientFlags
	id       identityFlags
	reason   string
	rollback bool
	expires  string
	// The facts a threat update adds.
	exploited, worm, exploitPublic bool

	// Set by Complete.
	rolloutID string
	gate      string
	host      string
	who       who
	now       time.Time
	// Set by Validate: the exception's end.
	until time.Time
}

// bind adds the flags shared by every gate and control command.
func (o *controlOptions) bind(cmd *cobra.Command, reasonRequired bool) {
	o.conn.register(cmd.Flags())
	o.id.register(cmd.Flags())
	help := "why, recorded in the rollout"
	if reasonRequired {
		help += " (required)"
	}
	cmd.Flags().StringVar(&o.reason, "reason", "", help)
	if reasonRequired {
		_ = cmd.MarkFlagRequired("reason")
	}
}

func newApproveCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionApprove}
	cmd := &cobra.Command{
		Use:   "approve ROLLOUT [GATE]",
		Short: "Approve the gate a rollout waits at (the gates policy decides whether you may)",
		Long: "Approve the gate a rollout waits at. GATE is the stage or wave name shown by `patchway status`;\n" +
			"without it, the gate the rollout waits at now. The gates policy decides whether you may\n" +
			"(for example, whoever filed a rollout cannot approve its gates); a refusal exits 1 with the policy's reason.",
		Args: cobra.RangeArgs(1, 2),
		RunE: runOptions(o),
	}
	o.bind(cmd, false)
	return cmd
}

func newRejectCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionReject}
	cmd := &cobra.Command{
		Use:   "reject ROLLOUT [GATE] --reason TEXT",
		Short: "Reject the gate a rollout waits at: the rollout stops and reports",
		Args:  cobra.RangeArgs(1, 2),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	return cmd
}

func newPauseCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionPause}
	cmd := &cobra.Command{
		Use:   "pause ROLLOUT --reason TEXT",
		Short: "Stop starting new hosts; hosts in flight finish",
		Args:  cobra.ExactArgs(1),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	return cmd
}

func newResumeCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionResume}
	cmd := &cobra.Command{
		Use:   "resume ROLLOUT --reason TEXT",
		Short: "Lift a pause, or let a halted wave go on (its failures so far no longer count)",
		Args:  cobra.ExactArgs(1),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	return cmd
}

func newAbortCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionAbort}
	cmd := &cobra.Command{
		Use:   "abort ROLLOUT --reason TEXT [--rollback]",
		Short: "Stop a rollout, optionally uninstalling the patch from the current wave's hosts",
		Args:  cobra.ExactArgs(1),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	cmd.Flags().BoolVar(&o.rollback, "rollback", false, "uninstall the patch from the current wave's hosts that received it")
	return cmd
}

func newExceptCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionExcept}
	cmd := &cobra.Command{
		Use:   "except ROLLOUT HOST --reason TEXT --expires WHEN",
		Short: "Grant one host an exception until an expiry: reported excepted, never compliant, not patched",
		Args:  cobra.ExactArgs(2),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	cmd.Flags().StringVar(&o.expires, "expires", "", `when the exception ends: a duration from now ("72h", "7d") or an RFC 3339 time (required)`)
	_ = cmd.MarkFlagRequired("expires")
	return cmd
}

func newSkipHostCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionSkipHost}
	cmd := &cobra.Command{
		Use:   "skip-host ROLLOUT HOST --reason TEXT",
		Short: "Take a failed host out of a halted wave's failure count, so the wave can resume without it",
		Args:  cobra.ExactArgs(2),
		RunE:  runOptions(o),
	}
	o.bind(cmd, true)
	return cmd
}

// Complete takes the rollout, the gate or host and the time an --expires
// duration counts from. Who decides is proven by a token (Run gets it).
func (o *controlOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rolloutID = args[0]
	if len(args) == 2 {
		if o.action.withHost {
			o.host = args[1]
		} else {
			o.gate = args[1]
		}
	}
	o.now = time.Now()
	return nil
}

// Validate reads --expires of an exception. The rest (arguments, a
// required --reason) cobra checks.
func (o *controlOptions) Validate() error {
	if err := o.id.validate(); err != nil {
		return err
	}
	if o.action.facts && !o.exploited && !o.worm && !o.exploitPublic {
		return errors.New("name what became known: --exploited, --worm or --exploit-public")
	}
	if !o.action.expires {
		return nil
	}
	until, err := workflows.ParseExpiry(o.expires, o.now)
	if err != nil {
		return err
	}
	o.until = until
	return nil
}

// act is the action this command sends.
func (o *controlOptions) act() workflows.Act {
	return workflows.Act{Update: o.action.update, Gate: o.gate, Host: o.host, Reason: o.reason, Expires: o.until, Rollback: o.rollback,
		Exploited: o.exploited, WormInTheWild: o.worm, ExploitPublic: o.exploitPublic, Token: o.who.token, User: o.who.user}
}

// request is the update's argument.
func (o *controlOptions) request() any { return o.act().Request() }

// audience is the audience of this action's token: the rollout, the
// action and the gate or host it names. An approval or rejection names
// its gate; without GATE, the one the rollout waits at now.
func (o *controlOptions) audience(ctx context.Context, c client.Client) (string, error) {
	if (o.action.update == workflows.UpdateApprove || o.action.update == workflows.UpdateReject) && o.gate == "" {
		p, err := workflows.GetProgress(ctx, c, o.rolloutID)
		if err != nil {
			return "", err
		}
		if p.WaitingGate == "" {
			return "", fmt.Errorf("rollout %s is not waiting at a gate (status %s)", o.rolloutID, p.Status)
		}
		o.gate = p.WaitingGate
	}
	return o.act().Audience(o.rolloutID), nil
}

// done is what the decision line says was done ("USER done ROLLOUT").
func (o *controlOptions) done() string {
	switch o.action.update {
	case workflows.UpdateApprove:
		return "approved"
	case workflows.UpdateReject:
		return "rejected"
	case workflows.UpdatePause:
		return "paused"
	case workflows.UpdateResume:
		return "resumed"
	case workflows.UpdateAbort:
		return "aborted"
	case workflows.UpdateExcept:
		return "excepted " + o.host + " until " + o.until.UTC().Format(time.RFC3339) + " in"
	case workflows.UpdateSkipHost:
		return "skipped " + o.host + " in"
	case workflows.UpdateThreat:
		return "reported new risk facts to"
	}
	return o.action.update
}

// Run sends the update to the rollout and prints the recorded decision.
// A refusal (by the gates policy or by the workflow's checks) is printed
// with its reason and exits 1.
func (o *controlOptions) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	name := o.action.update
	audience, err := o.audience(ctx, c)
	if err != nil {
		return err
	}
	if o.who, err = o.id.forAction(ctx, audience); err != nil {
		return err
	}
	rec, err := workflows.SendUpdate(ctx, c, o.rolloutID, name, o.request())
	if err != nil {
		if refusal, ok := workflows.AsRefusal(err); ok {
			printRefusal(o.ErrOut, o.rolloutID, name, refusal)
			return exitError{code: 1}
		}
		return err
	}
	out := o.Out
	fmt.Fprintf(out, "%s %s %s", rec.User, o.done(), o.rolloutID)
	if rec.Subject != "" && rec.Subject != o.rolloutID {
		fmt.Fprintf(out, " (%s)", rec.Subject)
	}
	fmt.Fprintln(out)
	if o.action.facts {
		fmt.Fprintf(out, "  %s\n", rec.Reason)
	}
	if rec.Revision != "" {
		fmt.Fprintf(out, "  allowed by policy revision %s\n", shortRevision(rec.Revision))
	}
	if p := rec.Person; p != nil && !p.Verified {
		fmt.Fprintf(out, "  identity unverified: %s is a typed name (--insecure-dev-identity), recorded and reported so\n", rec.User)
	}
	return nil
}

func printRefusal(w io.Writer, rolloutID, name string, r workflows.Refusal) {
	who := "rollout " + rolloutID
	if r.ByPolicy {
		who = "policy"
	}
	fmt.Fprintf(w, "%s refused by %s: %s\n", name, who, r.Message)
	for _, v := range r.Violations {
		fmt.Fprintf(w, "  %s: %s\n", v.Code, v.Msg)
	}
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}
