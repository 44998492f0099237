package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/threat"
	"github.com/patchway/patchway/workflows"
)

// kevFile is the data file threat import writes into the policy directory.
const kevFile = "kev.json"

func newThreatCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "threat",
		Short: "Bring threat intelligence (CISA's KEV catalogue) into the policies",
	}
	cmd.AddCommand(newThreatImportCmd(g), newThreatUpdateCmd(g))
	return cmd
}

func newThreatUpdateCmd(_ *globalFlags) *cobra.Command {
	o := &controlOptions{action: actionThreat}
	cmd := &cobra.Command{
		Use:   "update ROLLOUT (--exploited | --worm | --exploit-public) --reason TEXT",
		Short: "Tell a running rollout what became known: the policies decide its deadline again, never later",
		Long: "Add risk facts to a running rollout: exploitation in the wild, a worm, a public exploit.\n" +
			"The gates policy decides whether you may (action threat_update); the sla and plan policies\n" +
			"decide the deadline again from the new facts, never moving it later; the SLA clock and its\n" +
			"escalations follow the new deadline at once. The decision is recorded with its reasons, in\n" +
			"status and in the workflow history. A fact is only ever added.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.bind(cmd, true)
	cmd.Flags().BoolVar(&o.exploited, "exploited", false, "attacks in the wild are known (MSRC: Exploitation Detected, or listed by CISA KEV)")
	cmd.Flags().BoolVar(&o.worm, "worm", false, "a worm exploits it in the wild")
	cmd.Flags().BoolVar(&o.exploitPublic, "exploit-public", false, "exploit code is public")
	return cmd
}

// threatImportOptions are the flags and argument of patchway threat import.
type threatImportOptions struct {
	ioStreams
	global *globalFlags
	conn   clientFlags
	id     identityFlags
	// running: tell the running rollouts whose CVEs the catalogue newly
	// lists.
	running bool

	// Set by Complete.
	source string
}

func newThreatImportCmd(g *globalFlags) *cobra.Command {
	o := &threatImportOptions{global: g}
	cmd := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Load CISA's known_exploited_vulnerabilities.json as policy data (--policy-dir/kev.json)",
		Long: "Read CISA's Known Exploited Vulnerabilities catalogue (known_exploited_vulnerabilities.json,\n" +
			"from https://www.cisa.gov/known-exploited-vulnerabilities-catalog) and write it as\n" +
			"--policy-dir's kev.json, which the policies read as data.kev: the sla policy caps a\n" +
			"rollout's deadline at the due date of any of its CVEs the catalogue lists, and tightens\n" +
			"it for known ransomware use; the plan policy then waives the soak minimums. The file\n" +
			"joins the policy revision. A catalogue that is not CISA's format, lacks a field its\n" +
			"schema requires or does not compile with the bundle is refused, and nothing is written.\n" +
			"Then every running rollout whose CVEs the catalogue newly lists is told (a threat update\n" +
			"under the gates policy, as --as): its deadline is decided again under the new revision,\n" +
			"which its worker loads first. Workers also read the policy directory every --policy-reload.",
		Args: cobra.ExactArgs(1),
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	o.id.register(cmd.Flags())
	cmd.Flags().BoolVar(&o.running, "running", true, "tell the running rollouts whose CVEs the catalogue newly lists (false: only write the policy data)")
	return cmd
}

// Complete takes the catalogue's path ("-" for standard input).
func (o *threatImportOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.source = args[0]
	return nil
}

// Validate needs a policy directory to write into.
func (o *threatImportOptions) Validate() error {
	if err := o.id.validate(); err != nil {
		return err
	}
	if o.global.policyDir == "" {
		return errors.New("threat import writes the catalogue into a policy directory: give --policy-dir DIR (or PATCHWAY_POLICY_DIR), the directory the worker loads")
	}
	if st, err := os.Stat(o.global.policyDir); err != nil || !st.IsDir() {
		return fmt.Errorf("policy directory %s is not a directory", o.global.policyDir)
	}
	return nil
}

// Run reads and checks the catalogue, writes it atomically, and loads the
// bundle with it; a bundle that does not load gets the previous file back.
func (o *threatImportOptions) Run(ctx context.Context) error {
	r, name := o.In, "standard input"
	if o.source != "-" {
		f, err := os.Open(o.source)
		if err != nil {
			return fmt.Errorf("read KEV catalogue: %w", err)
		}
		defer f.Close()
		r, name = f, o.source
	}
	kev, err := threat.ReadKEV(r, name)
	if err != nil {
		return fmt.Errorf("KEV catalogue not imported, nothing written: %w", err)
	}
	data, err := kev.PolicyData()
	if err != nil {
		return fmt.Errorf("encode KEV catalogue: %w", err)
	}
	before := "none (the bundle does not load)"
	if e, err := policies.Load(ctx, o.global.policyDir); err == nil {
		before = e.Revision()
	}
	path := filepath.Join(o.global.policyDir, kevFile)
	previous, hadPrevious := readIfExists(path)
	if err := writeAtomically(path, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	e, err := policies.Load(ctx, o.global.policyDir)
	if err != nil {
		restore := func() error { return os.Remove(path) }
		if hadPrevious {
			restore = func() error { return writeAtomically(path, previous) }
		}
		if rerr := restore(); rerr != nil {
			return fmt.Errorf("the policies do not load with the catalogue (%v), and %s could not be restored: %w", err, path, rerr)
		}
		return fmt.Errorf("the policies do not load with the catalogue, %s left as it was: %w", path, err)
	}
	fmt.Fprintf(o.Out, "imported CISA KEV catalogue %s (released %s): %d CVEs, %d with known ransomware use\n",
		kev.CatalogVersion, kev.DateReleased, len(kev.Vulnerabilities), kev.Ransomware())
	fmt.Fprintf(o.Out, "  wrote %s (sha256 of the source %s)\n", path, kev.SHA256)
	fmt.Fprintf(o.Out, "  policy revision %s -> %s\n", before, e.Revision())
	if !o.running {
		fmt.Fprintln(o.Out, "  running rollouts not told (--running=false); workers apply the revision at their next --policy-reload")
		return nil
	}
	if err := o.tellRunning(ctx, kev, e.Revision()); err != nil {
		return fmt.Errorf("%s is written, but the running rollouts were not all told: %w\n(importing the same file again tells those not told yet; --running=false only writes the policy data)", path, err)
	}
	return nil
}

// tellRunning sends a threat update to every running rollout with a CVE
// the catalogue lists and its last risk decision did not: the sla policy
// decides its deadline again under revision (the gates policy decides
// whether the operator may). A rollout the policy already found listed
// is left alone, so importing the same catalogue again tells no one twice.
func (o *threatImportOptions) tellRunning(ctx context.Context, kev threat.KEV, revision string) error {
	ctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	ids, err := workflows.RunningRollouts(ctx, c)
	if err != nil {
		return err
	}
	told, failed := 0, 0
	for _, id := range ids {
		p, err := workflows.GetProgress(ctx, c, id)
		if err != nil {
			fmt.Fprintf(o.ErrOut, "  %s: not told: %v\n", id, err)
			failed++
			continue
		}
		listed := newlyListed(kev, p)
		if len(listed) == 0 || p.Deadline.IsZero() {
			continue
		}
		w, err := o.id.forAction(ctx, contract.ActionAudience(id, workflows.UpdateThreat, ""))
		if err != nil {
			return err
		}
		req := workflows.ThreatRequest{User: w.user, Token: w.token, KEV: listed, PolicyRevision: revision,
			Reason: fmt.Sprintf("CISA KEV catalogue %s lists %s", kev.CatalogVersion, strings.Join(listed, ", "))}
		rec, err := workflows.SendUpdate(ctx, c, id, workflows.UpdateThreat, req)
		if err != nil {
			if refusal, ok := workflows.AsRefusal(err); ok {
				printRefusal(o.ErrOut, id, workflows.UpdateThreat, refusal)
			} else {
				fmt.Fprintf(o.ErrOut, "  %s: not told: %v\n", id, err)
			}
			failed++
			continue
		}
		told++
		fmt.Fprintf(o.Out, "  told %s (%s): %s\n", id, p.KB, rec.Reason)
	}
	fmt.Fprintf(o.Out, "  %d running rollouts, %d told of newly listed CVEs\n", len(ids), told)
	if failed > 0 {
		return fmt.Errorf("%d of %d running rollouts not told", failed, len(ids))
	}
	return nil
}

// newlyListed names the rollout's CVEs the catalogue lists that its last
// risk decision did not find listed, sorted.
func newlyListed(kev threat.KEV, p workflows.Progress) []string {
	var out []string
	for _, cve := range p.CVEs {
		cve = strings.ToUpper(cve)
		if _, ok := kev.Vulnerabilities[cve]; ok && !slices.Contains(p.KEV, cve) && !slices.Contains(out, cve) {
			out = append(out, cve)
		}
	}
	slices.Sort(out)
	return out
}

// readIfExists returns the file's content and whether it was there.
func readIfExists(path string) ([]byte, bool) {
	b, err := os.ReadFile(path)
	return b, err == nil
}

// writeAtomically writes data to path through a temporary file in the same
// directory, so a reader never sees half a file.
func writeAtomically(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
