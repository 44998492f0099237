package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/patchway/patchway/threat"
)

// draftOptions are the flags of patchway draft.
type draftOptions struct {
	ioStreams
	from      string
	template  string
	out       string
	inventory string
	as        string
	products  []string
	kbs       []string
	force     bool

	// Set by Complete.
	user      string
	productOS map[string]string
}

func newDraftCmd(_ *globalFlags) *cobra.Command {
	o := &draftOptions{}
	cmd := &cobra.Command{
		Use:   "draft --from FILE|- --template FILE --out DIR",
		Short: "Draft one rollout per KB from a security advisory (MSRC CVRF 1.1 XML, CVRF v3 JSON, CSAF 2.0)",
		Long: "Read a security advisory (MSRC's CVRF 1.1 XML, the JSON of MSRC's CVRF v3 API, or a CSAF 2.0\n" +
			"csaf_security_advisory; the format is told from the content) and write DIR/<kb>.hcl for each KB\n" +
			"its vendor fix remediations\n" +
			"name: title, CVEs, the highest severity for the products in scope, publication, reboot (from\n" +
			"RestartRequired), supersedes (Supercedence), OS build evidence (FixedBuild), one package per OS\n" +
			"(product names mapped to inventory OS names, --product adds to the map), and risk facts from\n" +
			"\"Exploit Status\", read field by field. The stages, waves, escalation and channels come from\n" +
			"--template. What only a person can fill (each package's sha256 and source) is a \"FILL IN:\"\n" +
			"value that validate points at. Nothing is written when the document cannot be used.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	cmd.Flags().StringVar(&o.from, "from", "", "the advisory: an MSRC CVRF 1.1 XML, CVRF v3 JSON or CSAF 2.0 file, or - for standard input (required)")
	cmd.Flags().StringVar(&o.template, "template", "", "HCL file of the team's stage, wave, escalation and channel blocks (required)")
	cmd.Flags().StringVar(&o.out, "out", ".", "directory the drafted rollouts are written to")
	cmd.Flags().StringVar(&o.inventory, "inventory", "inventory.hcl", "the inventory the drafted rollouts name")
	cmd.Flags().StringVar(&o.as, "as", "", "who files the drafts (default: the OS user)")
	cmd.Flags().StringArrayVar(&o.products, "product", nil, `map an advisory product to an inventory OS: "Windows Server 2022=windows-server-2022" (repeatable)`)
	cmd.Flags().StringArrayVar(&o.kbs, "kb", nil, "draft only this KB (repeatable; default: every KB the advisory fixes)")
	cmd.Flags().BoolVar(&o.force, "force", false, "overwrite drafts that exist")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("template")
	return cmd
}

// Complete takes who files and the product map.
func (o *draftOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	user, err := operator(o.as)
	if err != nil {
		return err
	}
	o.user = user
	o.productOS = maps.Clone(threat.DefaultProducts)
	for _, p := range o.products {
		name, osName, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(name) == "" || strings.TrimSpace(osName) == "" {
			return fmt.Errorf("--product %q: want \"PRODUCT NAME=inventory-os\"", p)
		}
		o.productOS[strings.TrimSpace(name)] = strings.TrimSpace(osName)
	}
	return nil
}

// Validate checks the output directory.
func (o *draftOptions) Validate() error {
	if st, err := os.Stat(o.out); err != nil || !st.IsDir() {
		return fmt.Errorf("--out %s is not a directory", o.out)
	}
	return nil
}

// Run reads the advisory and the template, drafts every rollout, and only
// then writes them.
func (o *draftOptions) Run(context.Context) error {
	r, name := o.In, "standard input"
	if o.from != "-" {
		f, err := os.Open(o.from)
		if err != nil {
			return fmt.Errorf("read advisory: %w", err)
		}
		defer f.Close()
		r, name = f, o.from
	}
	adv, err := threat.ReadAdvisory(r, name, o.productOS)
	if err != nil {
		return fmt.Errorf("nothing drafted: %w", err)
	}
	tmpl, err := os.ReadFile(o.template)
	if err != nil {
		return fmt.Errorf("nothing drafted: read template: %w", err)
	}
	type draft struct {
		path string
		src  []byte
		fix  threat.Fix
	}
	var drafts []draft
	for _, f := range adv.Fixes {
		if len(o.kbs) > 0 && !containsFold(o.kbs, f.KB) {
			continue
		}
		src, err := threat.Draft(adv, f, threat.DraftOptions{Source: filepath.Base(name) + " (" + adv.Format + ")", FiledBy: o.user,
			Inventory: o.inventory, Template: tmpl, TemplateName: o.template})
		if err != nil {
			return fmt.Errorf("nothing drafted: %w", err)
		}
		path := filepath.Join(o.out, strings.ToLower(f.KB)+".hcl")
		if _, err := os.Stat(path); err == nil && !o.force {
			return fmt.Errorf("nothing drafted: %s exists (--force overwrites it)", path)
		}
		drafts = append(drafts, draft{path, src, f})
	}
	if len(drafts) == 0 {
		return errors.New("nothing drafted: the advisory fixes none of the KBs --kb names")
	}
	for _, d := range drafts {
		if err := writeAtomically(d.path, d.src); err != nil {
			return fmt.Errorf("write %s: %w", d.path, err)
		}
		fmt.Fprintf(o.Out, "drafted %s: %s (%s) for %s; %d CVE(s), exploited %t, publicly disclosed %t\n",
			d.path, d.fix.KB, d.fix.Severity, strings.Join(d.fix.OS, ", "), len(d.fix.CVEs), d.fix.Exploited, d.fix.ExploitPublic)
		fmt.Fprintf(o.Out, "  fill in its %d \"FILL IN:\" value(s), then: patchway validate %s\n", strings.Count(string(d.src), threat.Placeholder), d.path)
	}
	for _, u := range adv.Unfixed {
		fmt.Fprintf(o.ErrOut, "warning: %s (%s) is exploited and the advisory gives no vendor fix for the products in scope: no rollout fixes it; apply its mitigations\n", u.CVE, u.Title)
	}
	return nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}
