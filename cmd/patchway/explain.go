package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/decisionlog"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/workflows"
)

// explainOptions are the flags and argument of patchway explain.
type explainOptions struct {
	ioStreams
	global *globalFlags
	conn   clientFlags
	host   string
	gate   string
	wave   string

	// Set by Complete.
	rolloutID string
}

func newExplainCmd(g *globalFlags) *cobra.Command {
	o := &explainOptions{global: g}
	cmd := &cobra.Command{
		Use:   "explain ROLLOUT [--host H | --gate G | --wave W]",
		Short: "Explain, for a person, the chain of policy decisions behind a rollout, a host, a gate or a wave",
		Long: "Read the rollout's recorded decisions and explain them in order: when, which policy revision, what was\n" +
			"decided, the rule that decided where the policy in force is that revision, and the reasons. --host shows\n" +
			"the host's evidence and each compliance decision; --gate each approval, refusal and control on that gate;\n" +
			"--wave each judgement of the wave (window, limits, failures, halt). Without one, the rollout's own\n" +
			"decisions: its deadline, plan, gates, halts and escalations.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.host, "host", "", "explain one host")
	cmd.Flags().StringVar(&o.gate, "gate", "", "explain one gate (a stage or wave name, or a host for except and skip-host)")
	cmd.Flags().StringVar(&o.wave, "wave", "", "explain one wave or stage's judgements")
	return cmd
}

// Complete takes the rollout.
func (o *explainOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rolloutID = args[0]
	return nil
}

// Validate takes at most one of --host, --gate and --wave.
func (o *explainOptions) Validate() error {
	n := 0
	for _, s := range []string{o.host, o.gate, o.wave} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return errors.New("explain one thing at a time: --host, --gate or --wave")
	}
	return nil
}

// Run reads the decisions and explains those asked for.
func (o *explainOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	engine, err := policies.Load(ctx, o.global.policyDir)
	if err != nil {
		return err
	}
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	var picked []decisionlog.Entry
	err = decisionlog.Read(ctx, c, o.rolloutID, decisionlog.Options{}, func(e decisionlog.Entry) error {
		if o.wants(e) {
			picked = append(picked, e)
		}
		return nil
	})
	if err != nil {
		return err
	}
	what := "rollout " + o.rolloutID
	switch {
	case o.host != "":
		what = "host " + o.host + " in " + what
	case o.gate != "":
		what = "gate " + o.gate + " of " + what
	case o.wave != "":
		what = "wave " + o.wave + " of " + what
	}
	if len(picked) == 0 {
		return fmt.Errorf("no recorded decision for %s (a name not in the rollout, or decisions recorded before Patchway kept them)", what)
	}
	fmt.Fprintf(o.Out, "%s: %d decision(s)\n", what, len(picked))
	for i, e := range picked {
		explainEntry(o.Out, engine, i+1, e)
	}
	// The shadow policy's disagreements are in the rollout's state.
	if p, err := workflows.GetProgress(ctx, c, o.rolloutID); err == nil && p.Shadow != nil {
		var diffs []contract.PolicyDifference
		for _, d := range p.Shadow.Differences {
			if o.wantsDifference(d) {
				diffs = append(diffs, d)
			}
		}
		fmt.Fprintf(o.Out, "\nshadow policy %s\n", p.Shadow)
		if len(diffs) == 0 {
			fmt.Fprintf(o.Out, "  it decided %s as the live policy did (of the differences listed)\n", what)
		}
		for _, d := range diffs {
			fmt.Fprintf(o.Out, "  %s\n", d)
		}
	}
	return nil
}

// wantsDifference selects the shadow differences of the subject asked
// for, by the subject policies.Compare gives them: "host H", "ACTION
// GATE by PERSON", "KIND WAVE".
func (o *explainOptions) wantsDifference(d contract.PolicyDifference) bool {
	f := strings.Fields(d.Subject)
	isHost := len(f) == 2 && f[0] == "host"
	switch decision := policies.DecisionOfPath(d.Path); {
	case o.host != "":
		return isHost && strings.EqualFold(f[1], o.host)
	case o.gate != "":
		return decision == policies.DecisionGates && len(f) > 1 && strings.EqualFold(f[1], o.gate)
	case o.wave != "":
		return decision == policies.DecisionWaves && len(f) > 1 && strings.EqualFold(f[len(f)-1], o.wave)
	default:
		return !isHost
	}
}

// wants selects the decisions of the subject asked for; without one,
// the rollout's own (every decision but a host's).
func (o *explainOptions) wants(e decisionlog.Entry) bool {
	in := explainInput(e)
	switch decision := policies.DecisionOfPath(e.Path); {
	case o.host != "":
		return strings.EqualFold(e.Labels["host"], o.host)
	case o.gate != "":
		return decision == policies.DecisionGates && strings.EqualFold(in.Gate, o.gate)
	case o.wave != "":
		return decision == policies.DecisionWaves && strings.EqualFold(in.Wave.Name, o.wave)
	default:
		return e.Labels["host"] == ""
	}
}

// decisionInput holds the input fields explain names: the facts every
// decision's input may have, and a host decision's scan.
type decisionInput struct {
	policies.InputFacts
	Scan *struct {
		OSBuild  string `json:"os_build"`
		Hotfixes []struct {
			ID string `json:"id"`
		} `json:"hotfixes"`
		Files []struct {
			Path    string `json:"path"`
			Version string `json:"version"`
		} `json:"files"`
		LastBootUpTime time.Time `json:"last_boot_up_time"`
		ScannedAt      time.Time `json:"scanned_at"`
	} `json:"scan"`
}

func explainInput(e decisionlog.Entry) decisionInput {
	var in decisionInput
	_ = json.Unmarshal(e.Input, &in) // explain names what it finds
	return in
}

// decisionResult holds the result fields explain names.
type decisionResult struct {
	Allow      bool `json:"allow"`
	Violations []struct {
		Code string `json:"code"`
		Msg  string `json:"msg"`
	} `json:"violations"`
	Error         string    `json:"error"`
	State         string    `json:"state"`
	Baseline      string    `json:"baseline"`
	Reasons       []string  `json:"reasons"`
	Deadline      time.Time `json:"deadline"`
	Halt          bool      `json:"halt"`
	Failures      int       `json:"failures"`
	MaxFailures   int       `json:"max_failures"`
	MaxParallel   int       `json:"max_parallel"`
	NextWindow    time.Time `json:"next_window"`
	Group         string    `json:"group"`
	Required      bool      `json:"required"`
	Contacts      []string  `json:"contacts"`
	Accelerations []string  `json:"accelerations"`
}

// explainEntry writes one decision for a person: when, what, which rule,
// why, and for a host the evidence it was judged on.
func explainEntry(out io.Writer, engine *policies.Engine, n int, e decisionlog.Entry) {
	decision := policies.DecisionOfPath(e.Path)
	in := explainInput(e)
	var res decisionResult
	_ = json.Unmarshal(e.Result, &res)
	revision := e.Bundles[decisionlog.BundleName].Revision
	var what, rule string
	switch decision {
	case policies.DecisionCompliance, policies.DecisionRollback:
		what, rule = "state "+res.State, res.State
		if res.Baseline != "" {
			what += " (preflight baseline: " + res.Baseline + ")"
		}
	case policies.DecisionSLA:
		what, rule = "deadline "+res.Deadline.UTC().Format("2006-01-02 15:04 UTC"), "deadline"
	case policies.DecisionPlan:
		what = "plan " + policies.Allows(res.Allow)
	case policies.DecisionGates:
		what = fmt.Sprintf("%s %s by %s: %s", in.Action, in.Gate, in.User, policies.Allows(res.Allow))
		if res.Group != "" {
			what += " (as " + res.Group + ")"
		}
	case policies.DecisionWaves:
		what = fmt.Sprintf("%s %s: %d host(s), failures %d of at most %d", cmp.Or(in.Kind, "wave"), in.Wave.Name, in.Hosts, res.Failures, res.MaxFailures)
		switch {
		case res.Halt:
			what, rule = what+", HALT", "halt"
		case !res.Allow && !res.NextWindow.IsZero():
			what += ", waits for its window at " + res.NextWindow.UTC().Format("2006-01-02 15:04 UTC")
		case res.Allow:
			what += fmt.Sprintf(", may dispatch (%d at a time)", res.MaxParallel)
		}
	case policies.DecisionReboot:
		what = "reboot admission: " + map[bool]string{true: "may start and reboot now", false: "held"}[res.Allow]
		if !res.Allow && !res.Required {
			what = "reboot admission: starts without a reboot (none required)"
		}
	case policies.DecisionEscalation:
		what = "notify " + cmp.Or(strings.Join(res.Contacts, ", "), "nobody")
		if len(res.Accelerations) > 0 {
			what += "; allows " + strings.Join(res.Accelerations, ", ")
		}
	}
	fmt.Fprintf(out, "\n%d. %s  %s  %s\n", n, e.Timestamp.UTC().Format("2006-01-02 15:04:05 UTC"), decision, what)
	by := fmt.Sprintf("data.patchway.%s.decision, policy revision %s", decision, revision)
	if rule != "" {
		switch loc := engine.RuleLocation(decision, rule); {
		case engine.Revision() != revision:
			by += fmt.Sprintf("; rule %s (the policy in force is %s, so its line is not shown)", rule, engine.Revision())
		case loc != "":
			by += "; rule " + rule + " at " + loc
		}
	}
	fmt.Fprintf(out, "   decided by: %s\n", by)
	if in.Reason != "" {
		fmt.Fprintf(out, "   asked with: %q\n", in.Reason)
	}
	for _, r := range res.Reasons {
		fmt.Fprintf(out, "   because: %s\n", r)
	}
	for _, v := range res.Violations {
		fmt.Fprintf(out, "   refused: %s: %s\n", v.Code, v.Msg)
	}
	if res.Error != "" {
		fmt.Fprintf(out, "   policy error: %s\n", res.Error)
	}
	if s := in.Scan; s != nil {
		var fixes, files []string
		for _, h := range s.Hotfixes {
			fixes = append(fixes, h.ID)
		}
		for _, f := range s.Files {
			files = append(files, f.Path+" "+cmp.Or(f.Version, "absent"))
		}
		fmt.Fprintf(out, "   evidence (scan at %s): OS build %s; hotfixes %s; files %s; booted %s\n",
			s.ScannedAt.UTC().Format(time.RFC3339), cmp.Or(s.OSBuild, "not reported"), cmp.Or(strings.Join(fixes, ", "), "none"),
			cmp.Or(strings.Join(files, "; "), "none"), s.LastBootUpTime.UTC().Format(time.RFC3339))
	} else if decision == policies.DecisionCompliance || decision == policies.DecisionRollback {
		fmt.Fprintln(out, "   evidence: none gathered (the host did not answer)")
	}
	if e.Inexact {
		fmt.Fprintln(out, "   warning: the input rebuilt from history does not hash to the recorded one; the evidence above is not proven")
	}
}
