package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Every command has the same shape: an xxxOptions struct holds its flags
// and its streams; newXxxCmd binds the flags to the struct, and its RunE
// calls Complete (derived values: arguments, environment, defaults),
// Validate (flag combinations, no network) and Run (the work, done by a
// package, and the printing) in that order.

// ioStreams are a command's standard streams, taken from cobra so that
// tests can set them.
type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// streamsOf returns cmd's streams.
func streamsOf(cmd *cobra.Command) ioStreams {
	return ioStreams{In: cmd.InOrStdin(), Out: cmd.OutOrStdout(), ErrOut: cmd.ErrOrStderr()}
}

// commandOptions is what every command's options implement.
type commandOptions interface {
	Complete(cmd *cobra.Command, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runOptions is the RunE of a command: Complete, Validate, then Run.
func runOptions(o commandOptions) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(cmd, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}
