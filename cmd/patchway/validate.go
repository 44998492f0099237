package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spf13/cobra"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/rollout"
)

// validateOptions are the flags and arguments of patchway validate.
type validateOptions struct {
	ioStreams
	asJSON    bool
	inventory string

	// Set by Complete.
	files []string
}

func newValidateCmd(_ *globalFlags) *cobra.Command {
	o := &validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check rollout and inventory files and list every problem with its position",
		Long: "Check rollout files (with the inventory each names) and inventory files (.hcl or .csv),\n" +
			"and list every problem found, each with file:line:col, the source line and a caret.\n" +
			"The kind of each file is told by its top-level blocks (rollout, or site/host).\n" +
			"Exits 0 when there are no errors (warnings allowed), 1 otherwise.",
		Args: cobra.MinimumNArgs(1),
		RunE: runOptions(o),
	}
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the diagnostics as a JSON array of {file,line,column,severity,summary,detail}")
	cmd.Flags().StringVar(&o.inventory, "inventory", "", "check rollouts against this inventory instead of the one each names")
	return cmd
}

// Complete takes the files to check.
func (o *validateOptions) Complete(cmd *cobra.Command, args []string) error {
	o.ioStreams = streamsOf(cmd)
	o.files = args
	return nil
}

// Validate has nothing to check: a file that cannot be read is one of
// the problems reported.
func (o *validateOptions) Validate() error { return nil }

// Run checks every file and prints the diagnostics (on stderr, or as
// JSON on stdout) and one summary line per file; any error exits 1.
func (o *validateOptions) Run(context.Context) error {
	res := validateFiles(o.files, o.inventory)
	if o.asJSON {
		if err := writeDiagnosticsJSON(o.Out, res.json); err != nil {
			return err
		}
	} else {
		if err := writeDiagnostics(o.ErrOut, res.files, res.diags); err != nil {
			return err
		}
		for _, line := range res.summaries {
			fmt.Fprintln(o.Out, line)
		}
	}
	if res.diags.HasErrors() {
		return exitError{code: 1}
	}
	return nil
}

// validation is the outcome of validating a list of files.
type validation struct {
	diags     hcl.Diagnostics
	json      []diagnosticJSON
	files     map[string][]byte
	summaries []string
}

// validateFiles checks each file and gathers the diagnostics, dropping
// repeats (an inventory validated on its own and through a rollout).
func validateFiles(paths []string, inventory string) validation {
	v := validation{files: map[string][]byte{}}
	seen := map[string]bool{}
	for _, path := range paths {
		diags, summary := validateFile(path, inventory, v.files)
		var kept hcl.Diagnostics
		for _, d := range diags {
			key := d.Summary + "\x00" + d.Detail
			if d.Subject != nil {
				key += fmt.Sprintf("\x00%s:%d:%d", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
			} else {
				key += "\x00" + path
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			kept = append(kept, d)
		}
		v.diags = append(v.diags, kept...)
		v.json = append(v.json, diagnosticsJSON(kept, path)...)
		errs, warns := diagnosticCounts(diags)
		v.summaries = append(v.summaries, fmt.Sprintf("%s: %s%s", path, summary, countsSuffix(errs, warns)))
	}
	return v
}

func countsSuffix(errs, warns int) string {
	var parts []string
	if errs > 0 {
		parts = append(parts, plural(errs, "error"))
	}
	if warns > 0 {
		parts = append(parts, plural(warns, "warning"))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// validateFile checks one file and returns its diagnostics and a one-line
// summary; it records the files it read in files.
func validateFile(path, inventory string, files map[string][]byte) (hcl.Diagnostics, string) {
	src, diags := rollout.ReadInput(path, "input")
	if diags.HasErrors() {
		return diags, "unreadable"
	}
	files[path] = src
	kind, diags := rollout.DetectKind(path, src)
	if diags.HasErrors() {
		return diags, "does not parse"
	}
	switch kind {
	case rollout.KindRollout:
		s, diags := rollout.LoadSource(path, rollout.LoadOptions{InventoryPath: inventory})
		if s == nil {
			return diags, "invalid rollout"
		}
		for name, data := range s.Files {
			files[name] = data
		}
		if diags.HasErrors() {
			return diags, "invalid rollout " + s.Rollout.ID
		}
		hosts := 0
		if s.Inventory != nil {
			hosts = len(s.Inventory.Hosts)
			diags = append(diags, credentialWarnings(s.Inventory, s.Ranges)...)
		}
		return diags, fmt.Sprintf("rollout %s is valid: %s, %s over %s of %s",
			s.Rollout.ID, plural(len(s.Rollout.Stages), "stage"), plural(len(s.Rollout.Waves), "wave"), plural(hosts, "host"), s.InventoryFile)
	case rollout.KindTemplate:
		f, _ := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		stages, waves := 0, 0
		if body, ok := f.Body.(*hclsyntax.Body); ok {
			for _, b := range body.Blocks {
				switch b.Type {
				case "stage":
					stages++
				case "wave":
					waves++
				}
			}
		}
		return nil, fmt.Sprintf("draft template: %s, %s for patchway draft --template (validate checks the rollouts drafted from it)",
			plural(stages, "stage"), plural(waves, "wave"))
	case rollout.KindInventory:
		decode := rollout.DecodeInventoryRanges
		if strings.HasSuffix(strings.ToLower(path), ".csv") {
			decode = rollout.DecodeInventoryCSVRanges
		}
		inv, ranges, diags := decode(path, src)
		if diags.HasErrors() || inv == nil {
			return diags, "invalid inventory"
		}
		diags = append(diags, credentialWarnings(inv, ranges)...)
		return diags, fmt.Sprintf("inventory is valid: %s at %s", plural(len(inv.Hosts), "host"), plural(len(inv.Sites), "site"))
	}
	rng := hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos}
	return hcl.Diagnostics{{
		Severity: hcl.DiagWarning,
		Summary:  "Not a rollout or an inventory",
		Detail:   "The file has no rollout, site or host block at its top level, so validate skipped it (fleet scenarios are checked by patchway fleet).",
		Subject:  &rng,
	}}, "skipped"
}

// credentialWarnings warns, once per inventory, of the credential sets
// its hosts name that this shell cannot resolve (environment, credentials
// file): validate cannot know what the worker defines, and the worker
// refuses the rollout at preflight, before any host is touched, if it
// cannot resolve one. The warning points at the first host naming a set.
func credentialWarnings(inv *rollout.Inventory, ranges *rollout.Ranges) hcl.Diagnostics {
	counts := map[string]int{}
	first := map[string]string{}
	for _, h := range inv.Hosts {
		if counts[h.Credential] == 0 {
			first[h.Credential] = h.Name
		}
		counts[h.Credential]++
	}
	env := &activities.EnvCredentials{}
	var missing []string
	var at *hcl.Range
	for _, set := range slices.Sorted(maps.Keys(counts)) {
		if set == "" {
			continue // the inventory's own check requires one
		}
		if _, err := env.Resolve(context.Background(), set); err == nil {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (%s, first %s)", set, plural(counts[set], "host"), first[set]))
		if at == nil {
			if rng, ok := ranges.Lookup("host[" + first[set] + "].credential"); ok {
				at = &rng
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagWarning,
		Summary:  "Credential sets not checked here",
		Detail: fmt.Sprintf("The hosts name credential sets this shell does not define: %s. validate cannot know what the worker defines "+
			"(PATCHWAY_CRED_<SET>_USER and _PASSWORD, or the %s file); the worker checks every set before it touches a host and refuses the rollout if it cannot resolve one.",
			strings.Join(missing, ", "), activities.CredentialsFileEnv),
		Subject: at,
	}}
}

// printTo is fmt.Fprintf for renderers that write many lines: it keeps the
// first write error and ignores later writes.
type printTo struct {
	w   io.Writer
	err error
}

func (p *printTo) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}
