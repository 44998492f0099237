package rollout

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// LoadOptions changes how Load finds a rollout's inventory.
type LoadOptions struct {
	// InventoryPath replaces the rollout's own inventory attribute (as
	// `patchway submit --inventory` and the demo's simulated fleet do). It
	// is used as given, relative to the working directory.
	InventoryPath string
}

// Source is a loaded rollout with its inventory, where each part of them
// was written, and the files read, so that callers can print diagnostics
// with their source lines and map later findings (policy violations) back
// to file:line:col.
type Source struct {
	Rollout   *Rollout
	Inventory *Inventory
	// RolloutFile and InventoryFile are the paths read.
	RolloutFile   string
	InventoryFile string
	// Ranges holds the rollout's and the inventory's source ranges (their
	// keys never collide: see Ranges).
	Ranges *Ranges
	// Files maps each path read to its contents.
	Files map[string][]byte
}

// Load reads the rollout file at path and its inventory (the rollout's
// inventory attribute, relative to the rollout file, unless opts names
// another), and checks them together: every selector matches hosts, no host
// is in two waves, every stage has hosts. It returns every problem found.
func Load(path string, opts LoadOptions) (*Rollout, *Inventory, hcl.Diagnostics) {
	src, diags := LoadSource(path, opts)
	if src == nil {
		return nil, nil, diags
	}
	return src.Rollout, src.Inventory, diags
}

// LoadSource is Load that also returns the source ranges and the files
// read. It returns nil only when the rollout file cannot be read or parsed.
func LoadSource(path string, opts LoadOptions) (*Source, hcl.Diagnostics) {
	data, diags := ReadInput(path, "rollout")
	if diags.HasErrors() {
		return nil, diags
	}
	r, ranges, diags := DecodeRolloutRanges(path, data)
	if r == nil {
		return nil, diags
	}
	src := &Source{Rollout: r, RolloutFile: path, Ranges: ranges, Files: map[string][]byte{path: data}}

	invPath := opts.InventoryPath
	if invPath == "" {
		if r.Inventory == "" {
			rng, _ := ranges.Lookup("rollout")
			return src, append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "No inventory",
				Detail:   `The rollout names no inventory: add inventory = "inventory.hcl" (relative to this file), or pass --inventory.`,
				Subject:  &rng,
			})
		}
		invPath = r.Inventory
		if !filepath.IsAbs(invPath) {
			invPath = filepath.Join(filepath.Dir(path), invPath)
		}
	}
	src.InventoryFile = invPath
	inv, invRanges, invSrc, invDiags := loadInventoryRanges(invPath)
	if invDiags.HasErrors() && inv == nil {
		if rng, ok := ranges.Lookup("rollout.inventory"); ok && opts.InventoryPath == "" {
			for _, d := range invDiags {
				if d.Subject == nil {
					d.Subject = &rng
				}
			}
		}
	}
	diags = append(diags, invDiags...)
	if invSrc != nil {
		src.Files[invPath] = invSrc
	}
	if inv == nil {
		return src, diags
	}
	src.Inventory = inv
	ranges.Merge(invRanges)
	diags = append(diags, CheckRollout(r, inv, ranges)...)
	return src, diags
}

// CheckRollout makes the checks that need both the rollout and its
// inventory: each stage has hosts, each wave's selector matches a host, no
// host is in two waves, and every selected OS has a package. Hosts of the
// inventory in no stage or wave, and production hosts especially, are
// reported as warnings. ranges (which may be nil) places the diagnostics.
func CheckRollout(r *Rollout, inv *Inventory, ranges *Ranges) hcl.Diagnostics {
	var diags hcl.Diagnostics
	at := func(key string) *hcl.Range {
		if rng, ok := ranges.Lookup(key); ok {
			return &rng
		}
		return nil
	}
	add := func(sev hcl.DiagnosticSeverity, key, summary, detail string) {
		diags = append(diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: at(key)})
	}
	inStep := make([]bool, len(inv.Hosts))
	osUsed := map[string]int{}
	for _, s := range r.Stages {
		sel, err := ParseSelector(s.Hosts)
		if err != nil {
			continue // reported when the rollout was decoded
		}
		n := 0
		for i, h := range inv.Hosts {
			if sel.Match(h) {
				n++
				if !inStep[i] {
					osUsed[h.OS]++
				}
				inStep[i] = true
			}
		}
		if n == 0 {
			add(hcl.DiagError, blockKey("", "stage", s.Name)+".hosts", "Stage has no hosts",
				fmt.Sprintf("The selector %q of stage %q matches no host of the inventory (%d hosts), so the stage would prove nothing about the patch.", s.Hosts, s.Name, len(inv.Hosts)))
		}
	}
	waveOf := make([]int, len(inv.Hosts))
	for i := range waveOf {
		waveOf[i] = -1
	}
	for wi, w := range r.Waves {
		sel, err := ParseSelector(w.Hosts)
		if err != nil {
			continue
		}
		n := 0
		overlap := map[int][]string{} // earlier wave -> hosts also selected here
		for i, h := range inv.Hosts {
			if !sel.Match(h) {
				continue
			}
			n++
			if inStep[i] && waveOf[i] < 0 {
				continue // a stage host: the stage patches it first
			}
			if waveOf[i] >= 0 {
				overlap[waveOf[i]] = append(overlap[waveOf[i]], h.Name)
				continue
			}
			waveOf[i] = wi
			inStep[i] = true
			osUsed[h.OS]++
		}
		key := blockKey("", "wave", w.Name) + ".hosts"
		if n == 0 {
			add(hcl.DiagError, key, "Selector matches no host",
				fmt.Sprintf("The selector %q of wave %q matches none of the inventory's %d hosts. Check the keys and values against the inventory (%s).", w.Hosts, w.Name, len(inv.Hosts), inventoryValuesHint(inv)))
		}
		for other := range len(r.Waves) {
			names := overlap[other]
			if len(names) == 0 {
				continue
			}
			add(hcl.DiagError, key, "Host selected by two waves",
				fmt.Sprintf("Wave %q selects %d host(s) that wave %q already selects: %s. A host belongs to one wave, or its failure limit and window would be counted twice; narrow one of the selectors (for example with \"and not ...\").", w.Name, len(names), r.Waves[other].Name, listSome(names, 5)))
		}
	}
	have := map[string]bool{}
	for _, p := range r.Patch.Packages {
		have[p.OS] = true
	}
	// Lab and prodlike hosts outside the stages are a normal choice, and so
	// are hosts whose OS the patch does not cover; production hosts that
	// need the patch and are in no wave are worth a warning.
	var prodMissed []string
	for i, h := range inv.Hosts {
		if !inStep[i] && h.Tier == TierProduction && have[h.OS] {
			prodMissed = append(prodMissed, h.Name)
		}
	}
	if len(prodMissed) > 0 {
		add(hcl.DiagWarning, "rollout", "Production hosts in no wave",
			fmt.Sprintf("%d production host(s) run an OS the patch has a package for, yet are in no stage or wave and will not be patched: %s.", len(prodMissed), listSome(prodMissed, 8)))
	}
	for _, os := range slices.Sorted(maps.Keys(osUsed)) {
		if n := osUsed[os]; !have[os] && len(r.Patch.Packages) > 0 {
			add(hcl.DiagWarning, "patch", "No package for an OS",
				fmt.Sprintf("%d selected host(s) run %q, but the patch has no package \"%s\" { ... } block: nothing is installed on them and they will be reported not_applicable.", n, os, os))
		}
	}
	sortDiagnostics(diags)
	return diags
}

func listSome(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

// inventoryValuesHint lists the regions and roles present, the values
// selectors most often get wrong.
func inventoryValuesHint(inv *Inventory) string {
	var regions, roles []string
	seenR, seenRole := map[string]bool{}, map[string]bool{}
	for _, h := range inv.Hosts {
		if !seenR[h.Region] {
			seenR[h.Region] = true
			regions = append(regions, h.Region)
		}
		if !seenRole[h.Role] {
			seenRole[h.Role] = true
			roles = append(roles, h.Role)
		}
	}
	return fmt.Sprintf("regions %s; roles %s", listSome(regions, 8), listSome(roles, 10))
}
