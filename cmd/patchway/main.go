// Command patchway files, plans, runs and steers Windows security patch
// rollouts. One binary holds every role: the operator CLI, the worker, the
// embedded dev server and the simulated fleet.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code through cobra without printing a
// second message: the command has already told the user what went wrong.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// globalFlags are the flags every command shares.
type globalFlags struct {
	// policyDir replaces or extends the embedded default policies.
	policyDir string
}

func newRootCmd() *cobra.Command {
	g := &globalFlags{}
	root := &cobra.Command{
		Use:           "patchway",
		Short:         "Policy-as-code rollout orchestrator for Windows security patches",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.policyDir, "policy-dir", os.Getenv("PATCHWAY_POLICY_DIR"),
		"directory of .rego and data files that replace or extend the default policies (env PATCHWAY_POLICY_DIR)")
	root.AddCommand(
		newValidateCmd(g),
		newPlanCmd(g),
		newSubmitCmd(g),
		newWorkerCmd(g),
		newDevCmd(g),
		newFleetCmd(g),
		newStatusCmd(g),
		newApproveCmd(g),
		newRejectCmd(g),
		newPauseCmd(g),
		newResumeCmd(g),
		newAbortCmd(g),
		newExceptCmd(g),
		newSkipHostCmd(g),
		newReportCmd(g),
		newConsoleCmd(g),
		newPolicyCmd(g),
		newScanCmd(g),
		newThreatCmd(g),
		newDraftCmd(g),
		newDecisionsCmd(g),
		newExplainCmd(g),
		newSetupCmd(g),
		newLoginCmd(g),
	)
	return root
}

func main() {
	if err := newRootCmd().Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "patchway:", err)
		os.Exit(1)
	}
}
