package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/decisionlog"
)

// decisionsOptions are the flags and argument of patchway decisions.
type decisionsOptions struct {
	ioStreams
	conn   clientFlags
	follow bool
	run    string

	// Set by Complete.
	rolloutID string
}

func newDecisionsCmd(_ *globalFlags) *cobra.Command {
	o := &decisionsOptions{}
	cmd := &cobra.Command{
		Use:   "decisions ROLLOUT",
		Short: "Print a rollout's policy decisions as OPA decision-log JSON lines",
		Long: "Print every policy decision of a rollout, read back from its Temporal histories, one JSON object per\n" +
			"line in the format of OPA's decision log (decision_id, labels, bundles.patchway.revision, path, input,\n" +
			"result, timestamp), so a SIEM takes them as it takes OPA's own. The rollout's own decisions (risk, gates,\n" +
			"waves, escalation) and each host's compliance decision are included; a host's input is rebuilt from\n" +
			"history and checked against its recorded SHA-256 (labels.input_sha256). --follow waits for new decisions\n" +
			"until the rollout ends; a batch's host decisions come when the batch ends.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().BoolVarP(&o.follow, "follow", "f", false, "keep printing new decisions until the rollout ends (Ctrl-C stops)")
	cmd.Flags().StringVar(&o.run, "run", "", "start at this run of the rollout's continue-as-new chain (default: its first)")
	return cmd
}

// Complete takes the rollout.
func (o *decisionsOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.rolloutID = args[0]
	return nil
}

// Validate accepts every combination.
func (o *decisionsOptions) Validate() error { return nil }

// Run prints the decisions. A host decision whose input could not be
// rebuilt exactly is printed, warned about on stderr, and makes the
// command exit 1 at the end, so a pipeline notices.
func (o *decisionsOptions) Run(ctx context.Context) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	inexact := 0
	err = decisionlog.Read(ctx, c, o.rolloutID, decisionlog.Options{RunID: o.run, Follow: o.follow, Version: buildVersion()},
		func(e decisionlog.Entry) error {
			if e.Inexact {
				inexact++
				fmt.Fprintf(o.ErrOut, "patchway: decision %s (%s, host %s): the input rebuilt from history does not hash to the recorded %s\n",
					e.DecisionID, e.Path, e.Labels["host"], e.Labels["input_sha256"])
			}
			return writeJSON(o.Out, e)
		})
	if err != nil {
		if o.follow && ctx.Err() != nil {
			return nil // Ctrl-C ends following, not an error
		}
		return err
	}
	if inexact > 0 {
		fmt.Fprintf(o.ErrOut, "patchway: %d host decision(s) could not be rebuilt exactly; their input is not proven\n", inexact)
		return exitError{code: 1}
	}
	return nil
}

// buildVersion is the module version or VCS revision the binary was built
// from, as a decision log's labels.version.
func buildVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return "devel"
}
