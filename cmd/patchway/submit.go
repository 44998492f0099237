package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// submitTimeout bounds a submission: load, start, and the status of an
// already running rollout.
const submitTimeout = time.Minute

// submitOptions are the flags and arguments of patchway submit.
type submitOptions struct {
	ioStreams
	conn      clientFlags
	inventory string
	id        identityFlags
	tuning    workflows.Tuning
	shadow    string

	// Set by Complete.
	file string
}

func newSubmitCmd(_ *globalFlags) *cobra.Command {
	o := &submitOptions{}
	cmd := &cobra.Command{
		Use:   "submit FILE",
		Short: "File a rollout: load and check it, then start its workflow",
		Long: "File a rollout: load the HCL file and its inventory, check them (errors are printed with\n" +
			"file:line:col and the rollout is not started), then start the rollout's workflow. The rollout id\n" +
			"is the workflow id, so a rollout already running is refused with its current status.\n" +
			"Who files is proven by your sign-in (patchway login): the rollout records the verified person,\n" +
			"who cannot approve its own gates.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.inventory, "inventory", "", "inventory file to use instead of the rollout's own inventory attribute")
	o.id.register(cmd.Flags())
	cmd.Flags().DurationVar(&o.tuning.BootTimeout, "boot-timeout", 0, "how long a host may take to come back from its reboot before it counts unreachable (0: 30m)")
	cmd.Flags().StringVar(&o.shadow, "shadow-policy", "", "a candidate policy directory (as for --policy-dir) run beside the live policy: asked about every decision,\nnever acted on; where it decides otherwise shows in status, explain and the report")
	cmd.Flags().DurationVar(&o.tuning.RetryInterval, "retry-interval", 0, "pause between the rounds that retry unreachable hosts and laptops until the deadline (0: 4h)")
	return cmd
}

// Complete takes the file.
func (o *submitOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.file = args[0]
	return nil
}

// Validate refuses negative tuning and a bare --as.
func (o *submitOptions) Validate() error {
	if err := o.id.validate(); err != nil {
		return err
	}
	if o.tuning.BootTimeout < 0 || o.tuning.RetryInterval < 0 {
		return errors.New("--boot-timeout and --retry-interval must not be negative")
	}
	return nil
}

// Run loads and checks the rollout (printing its diagnostics), then
// starts its workflow.
func (o *submitOptions) Run(ctx context.Context) error {
	src, diags := rollout.LoadSource(o.file, rollout.LoadOptions{InventoryPath: o.inventory})
	if len(diags) > 0 {
		files := map[string][]byte{}
		if src != nil {
			files = src.Files
		} else if data, d := rollout.ReadInput(o.file, "rollout"); !d.HasErrors() {
			// The file did not parse: show its lines anyway (within the
			// size limit).
			files[o.file] = data
		}
		if err := writeDiagnostics(o.ErrOut, files, diags); err != nil {
			return err
		}
	}
	if diags.HasErrors() || src == nil {
		return exitError{code: 1}
	}
	ctx, cancel := context.WithTimeout(ctx, submitTimeout)
	defer cancel()
	var shadow *contract.ShadowPolicy
	if o.shadow != "" {
		// Refused here, with file:line, as the worker would refuse it:
		// a shadow that does not compile compares nothing.
		sp, err := policies.ReadShadow(ctx, o.shadow)
		if err != nil {
			return err
		}
		shadow = &sp
	}
	w, err := o.id.forAction(ctx, contract.ActionAudience(src.Rollout.ID, contract.ActionSubmit, ""))
	if err != nil {
		return err
	}
	filer := w.user
	if w.token != "" {
		filer = subjectOf(w.token) // the rollout replaces it by the verified subject
	}
	in := workflows.NewRolloutInput(src, filer, time.Now(), o.tuning)
	in.FilerToken, in.Shadow = w.token, shadow

	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	return submit(ctx, c, o.Out, o.ErrOut, in)
}

// submit starts the rollout's workflow. A rollout with the same id that is
// still running is not started again: its status is printed and the
// command exits 1.
func submit(ctx context.Context, c client.Client, out, errOut io.Writer, in workflows.RolloutInput) error {
	run, running, err := workflows.Start(ctx, c, in)
	if err != nil {
		return err
	}
	if running {
		fmt.Fprintf(errOut, "rollout %s is already running (filed again by %s: refused); its status:\n\n", in.Rollout.ID, in.Rollout.FiledBy)
		if p, qerr := workflows.GetProgress(ctx, c, in.Rollout.ID); qerr == nil {
			fmt.Fprint(errOut, renderProgress(p, time.Now()))
		} else {
			fmt.Fprintf(errOut, "  (status unavailable: %v)\n", qerr)
		}
		return exitError{code: 1}
	}
	filer, err := awaitFiler(ctx, c, in.Rollout.ID)
	if err != nil {
		fmt.Fprintf(errOut, "rollout %s was refused: %v\n", in.Rollout.ID, err)
		return exitError{code: 1}
	}
	fmt.Fprintf(out, "filed rollout %s (%s, %s) by %s: %s, %d stages, %d waves\n",
		in.Rollout.ID, in.Rollout.Patch.KB, in.Rollout.Patch.Severity, filer,
		workflows.PlannedHosts(in), len(in.Rollout.Stages), len(in.Rollout.Waves))
	fmt.Fprintf(out, "  workflow %s run %s on task queue %s\n", run.GetID(), run.GetRunID(), workflows.TaskQueue)
	if sp := in.Shadow; sp != nil {
		fmt.Fprintf(out, "  shadow policy %s (revision %s) runs beside the live one; nothing acts on it\n", sp.Dir, sp.Revision[:min(12, len(sp.Revision))])
	}
	fmt.Fprintf(out, "  watch it:  patchway status %s --watch\n", in.Rollout.ID)
	return nil
}

// filerWait bounds how long submit waits for the rollout to prove who
// filed it (a worker must be running).
const filerWait = 30 * time.Second

// awaitFiler waits until the rollout's gates policy has proven who filed
// it and returns the person as the record names them; a refusal (the
// rollout then fails before touching any host) is the error. Without a
// worker to decide within filerWait, it says the proof is pending.
func awaitFiler(ctx context.Context, c client.Client, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, filerWait)
	defer cancel()
	for {
		p, err := workflows.GetProgress(ctx, c, id)
		if err == nil {
			if p.Status == workflows.StatusFailed {
				return "", errors.New(p.Failure)
			}
			for _, r := range p.Decisions {
				if r.Kind == contract.ActionSubmit {
					if r.Person != nil {
						return r.Person.Describe(), nil
					}
					return r.User, nil
				}
			}
			if p.Status != "" && len(p.Steps) > 0 {
				return "(a rollout filed before filers were proven)", nil
			}
		}
		select {
		case <-ctx.Done():
			return "(not proven yet: no worker decided within " + filerWait.String() + ")", nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
