package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// submitTimeout bounds a submission: load, start, and the status of an
// already running rollout.
const submitTimeout = time.Minute

func newSubmitCmd(_ *globalFlags) *cobra.Command {
	var (
		conn      clientFlags
		inventory string
		as        string
		tuning    workflows.Tuning
	)
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "File a rollout: load and check it, then start its workflow",
		Long: "File a rollout: load the HCL file and its inventory, check them (errors are printed with\n" +
			"file:line:col and the rollout is not started), then start the rollout's workflow. The rollout id\n" +
			"is the workflow id, so a rollout already running is refused with its current status.\n" +
			"The filer (--as, default the OS user) is recorded and cannot approve the rollout's own gates.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			filer, err := operator(as)
			if err != nil {
				return err
			}
			if tuning.BootTimeout < 0 || tuning.RetryInterval < 0 {
				return errors.New("--boot-timeout and --retry-interval must not be negative")
			}
			src, diags := rollout.LoadSource(args[0], rollout.LoadOptions{InventoryPath: inventory})
			if len(diags) > 0 {
				files := map[string][]byte{}
				if src != nil {
					files = src.Files
				} else if data, err := os.ReadFile(args[0]); err == nil {
					// The file did not parse: show its lines anyway.
					files[args[0]] = data
				}
				if err := writeDiagnostics(cmd.ErrOrStderr(), files, diags); err != nil {
					return err
				}
			}
			if diags.HasErrors() || src == nil {
				return exitError{code: 1}
			}
			r := *src.Rollout
			r.FiledBy = filer
			r.FiledAt = time.Now().UTC()
			in := workflows.RolloutInput{Rollout: r, Hosts: src.Inventory.Hosts, Sites: src.Inventory.Sites, Tuning: tuning}

			ctx, cancel := context.WithTimeout(cmd.Context(), submitTimeout)
			defer cancel()
			c, err := conn.dial(ctx, cliLogger())
			if err != nil {
				return err
			}
			defer c.Close()
			return submit(ctx, c, cmd.OutOrStdout(), cmd.ErrOrStderr(), in)
		},
	}
	conn.register(cmd.Flags())
	cmd.Flags().StringVar(&inventory, "inventory", "", "inventory file to use instead of the rollout's own inventory attribute")
	cmd.Flags().StringVar(&as, "as", "", "who files the rollout, as recorded (default: the OS user)")
	cmd.Flags().DurationVar(&tuning.BootTimeout, "boot-timeout", 0, "how long a host may take to come back from its reboot before it counts unreachable (0: 30m)")
	cmd.Flags().DurationVar(&tuning.RetryInterval, "retry-interval", 0, "pause between the rounds that retry unreachable hosts and laptops until the deadline (0: 4h)")
	return cmd
}

// submit starts the rollout's workflow. A rollout with the same id that is
// still running is not started again: its status is printed and the
// command exits 1.
func submit(ctx context.Context, c client.Client, out, errOut io.Writer, in workflows.RolloutInput) error {
	opts := workflows.StartOptions(in)
	// Without this the SDK hands back the running rollout's handle as if
	// it had just been started.
	opts.WorkflowExecutionErrorWhenAlreadyStarted = true
	start, err := workflows.PackStart(in)
	if err != nil {
		return fmt.Errorf("start rollout %s: %w", in.Rollout.ID, err)
	}
	run, err := c.ExecuteWorkflow(ctx, opts, workflows.RolloutWorkflowName, start)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		fmt.Fprintf(errOut, "rollout %s is already running (filed again by %s: refused); its status:\n\n", in.Rollout.ID, in.Rollout.FiledBy)
		if p, qerr := queryProgress(ctx, c, in.Rollout.ID); qerr == nil {
			fmt.Fprint(errOut, renderProgress(p, time.Now()))
		} else {
			fmt.Fprintf(errOut, "  (status unavailable: %v)\n", qerr)
		}
		return exitError{code: 1}
	}
	if err != nil {
		return fmt.Errorf("start rollout %s: %w", in.Rollout.ID, err)
	}
	fmt.Fprintf(out, "filed rollout %s (%s, %s) by %s: %d hosts, %d stages, %d waves\n",
		in.Rollout.ID, in.Rollout.Patch.KB, in.Rollout.Patch.Severity, in.Rollout.FiledBy,
		len(in.Hosts), len(in.Rollout.Stages), len(in.Rollout.Waves))
	fmt.Fprintf(out, "  workflow %s run %s on task queue %s\n", run.GetID(), run.GetRunID(), workflows.TaskQueue)
	fmt.Fprintf(out, "  watch it:  patchway status %s --watch\n", in.Rollout.ID)
	return nil
}
