package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/decisionlog"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/workflows"
)

// policyWhatIfOptions are the flags and arguments of patchway policy
// whatif.
type policyWhatIfOptions struct {
	ioStreams
	global       *globalFlags
	conn         clientFlags
	since        string
	failOnChange bool
	asJSON       bool

	// Set by Complete and Validate.
	rollouts []string
	window   time.Duration
}

func newPolicyWhatIfCmd(g *globalFlags) *cobra.Command {
	o := &policyWhatIfOptions{global: g}
	cmd := &cobra.Command{
		Use:   "whatif [ROLLOUT ...] [--since 30d] --policy-dir NEW",
		Short: "Re-evaluate past and running rollouts' recorded decisions under a candidate policy",
		Long: "Evaluate the recorded input of every decision of the named rollouts (or of every rollout with a run\n" +
			"started within --since) under the candidate policy in --policy-dir (the embedded defaults without it),\n" +
			"and print what would differ: deadlines that move, host verdicts that flip, gates, controls and plans\n" +
			"that would be refused (or allowed), waves that would have halted, escalations to other people.\n" +
			"Nothing is changed on any rollout. --fail-on-change exits 1 when anything differs, so a policy change\n" +
			"can be checked in CI against last month's rollouts before it ships.",
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.since, "since", "", `rollouts with a run started within this long ("30d", "12h")`)
	cmd.Flags().BoolVar(&o.failOnChange, "fail-on-change", false, "exit 1 when any decision would differ")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print each difference as a JSON object per line")
	return cmd
}

// Complete takes the rollouts.
func (o *policyWhatIfOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rollouts = args
	return nil
}

// Validate wants rollouts or --since, and a --since that is a positive
// duration.
func (o *policyWhatIfOptions) Validate() error {
	if len(o.rollouts) == 0 && o.since == "" {
		return errors.New("name the rollouts to re-evaluate, or --since (for example --since 30d)")
	}
	if o.since != "" {
		d, err := parseDayDuration(o.since)
		if err != nil || d <= 0 {
			return fmt.Errorf("--since %q: want a positive duration (\"30d\", \"12h\")", o.since)
		}
		o.window = d
	}
	return nil
}

// Run loads the candidate, reads each rollout's decisions and prints the
// differences, then a summary line per rollout and a total.
func (o *policyWhatIfOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	candidate, err := policies.Load(ctx, o.global.policyDir)
	if err == nil {
		err = policies.PrepareCandidate(ctx, candidate)
	}
	if err != nil {
		return fmt.Errorf("candidate policy: %w", err)
	}
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	ids := o.rollouts
	if o.window > 0 {
		since, err := workflows.RolloutsSince(ctx, c, time.Now().Add(-o.window))
		if err != nil {
			return err
		}
		for _, id := range since {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	fmt.Fprintf(o.ErrOut, "candidate policy %s (%s), %d rollout(s)\n", candidate.Revision(), cmp.Or(o.global.policyDir, "embedded defaults"), len(ids))
	total, changed := 0, 0
	for _, id := range ids {
		n, kinds := 0, map[string]int{}
		// Decisions stream through one at a time: memory does not grow with
		// the rollout, and a long one shows progress.
		err := decisionlog.Read(ctx, c, id, decisionlog.Options{}, func(e decisionlog.Entry) error {
			n++
			if n%whatIfProgressEvery == 0 {
				fmt.Fprintf(o.ErrOut, "%s: %d decision(s) re-evaluated so far\n", id, n)
			}
			changes, err := decisionlog.WhatIf(ctx, candidate, e)
			if err != nil {
				return err
			}
			for _, ch := range changes {
				kinds[ch.Kind]++
				if err := o.print(ch); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		k := 0
		for _, v := range kinds {
			k += v
		}
		total += n
		changed += k
		fmt.Fprintf(o.ErrOut, "%s: %d decision(s) re-evaluated, %d difference(s)%s\n", id, n, k, kindSummary(kinds))
	}
	fmt.Fprintf(o.ErrOut, "%d decision(s) of %d rollout(s), %d difference(s) under policy %s\n", total, len(ids), changed, candidate.Revision())
	if changed > 0 && o.failOnChange {
		return exitError{code: 1}
	}
	return nil
}

func (o *policyWhatIfOptions) print(ch decisionlog.Change) error {
	if o.asJSON {
		return writeJSON(o.Out, ch)
	}
	line := fmt.Sprintf("%s  %-10s  %s: %s -> %s", ch.Rollout, ch.Kind, ch.Subject, ch.Was, ch.Would)
	if ch.Why != "" {
		line += " (" + ch.Why + ")"
	}
	_, err := fmt.Fprintln(o.Out, line)
	return err
}

// whatIfProgressEvery is how many decisions pass between progress lines.
const whatIfProgressEvery = 1000

// kindSummary is ": 2 verdict, 1 deadline" in a fixed order.
func kindSummary(kinds map[string]int) string {
	s := ""
	for _, k := range contract.DifferenceKinds {
		if kinds[k] > 0 {
			if s == "" {
				s = ": "
			} else {
				s += ", "
			}
			s += fmt.Sprintf("%d %s", kinds[k], k)
		}
	}
	return s
}
