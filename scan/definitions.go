package scan

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/patchway/patchway/rollout"
)

// Definitions are the patches and channels declared by rollout files: a
// scan checks the patches those files roll out and notifies their
// channels.
type Definitions struct {
	// Files holds each file read, by path, for diagnostics with their
	// source lines.
	Files map[string][]byte
	order []string // files in the order given
	// byKB maps an upper-case KB to its patch and the file defining it.
	byKB     map[string]rollout.Patch
	kbFile   map[string]string
	channels map[string]rollout.Channel
	fileKBs  map[string]string
}

// LoadDefinitions reads and decodes rollout files. A file that cannot be
// read, or a KB two files define differently, is an error; what the files
// themselves get wrong is in the diagnostics, and with an error among
// them the definitions are incomplete.
func LoadDefinitions(paths []string) (*Definitions, hcl.Diagnostics, error) {
	d := &Definitions{Files: map[string][]byte{}, byKB: map[string]rollout.Patch{}, kbFile: map[string]string{},
		channels: map[string]rollout.Channel{}, fileKBs: map[string]string{}}
	var diags hcl.Diagnostics
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, diags, fmt.Errorf("read rollout file: %w", err)
		}
		d.Files[path] = data
		d.order = append(d.order, path)
		r, _, ds := rollout.DecodeRolloutRanges(path, data)
		diags = append(diags, ds...)
		if r == nil || ds.HasErrors() {
			continue
		}
		kb := strings.ToUpper(r.Patch.KB)
		d.fileKBs[path] = kb
		if prev, ok := d.byKB[kb]; ok && !reflect.DeepEqual(prev, r.Patch) {
			return nil, diags, fmt.Errorf("%s is defined differently in %s and %s: scan with one of them", kb, d.kbFile[kb], path)
		}
		if _, ok := d.byKB[kb]; !ok {
			d.byKB[kb], d.kbFile[kb] = r.Patch, path
		}
		for _, c := range r.Channels {
			if _, ok := d.channels[c.Name]; !ok {
				d.channels[c.Name] = c
			}
		}
	}
	return d, diags, nil
}

// Patches returns the patches of kbs, in the order asked; a KB no file
// defines is an error naming the files searched and the KB of each.
func (d *Definitions) Patches(kbs []string) ([]rollout.Patch, error) {
	var out []rollout.Patch
	for _, kb := range kbs {
		p, ok := d.byKB[strings.ToUpper(strings.TrimSpace(kb))]
		if !ok {
			return nil, fmt.Errorf("patch %s is not defined by the rollout files searched: %s", strings.ToUpper(kb), d.searched())
		}
		out = append(out, p)
	}
	return out, nil
}

func (d *Definitions) searched() string {
	var parts []string
	for _, f := range d.order {
		parts = append(parts, fmt.Sprintf("%s (%s)", f, cmp.Or(d.fileKBs[f], "invalid")))
	}
	return strings.Join(parts, ", ")
}

// Channels returns the declarations of the named channels, each once; a
// name no file declares is an error listing the declared ones.
func (d *Definitions) Channels(names []string) ([]rollout.Channel, error) {
	var out []rollout.Channel
	for _, n := range names {
		c, ok := d.channels[n]
		if !ok {
			declared := slices.Sorted(maps.Keys(d.channels))
			return nil, fmt.Errorf("channel %q is not declared by the rollout files searched (%s); declared: %s",
				n, strings.Join(d.order, ", "), cmp.Or(strings.Join(declared, ", "), "none"))
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// idPattern keeps scan ids usable as workflow and schedule ids and in a
// shell.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// ErrBadID is the error of a scan id that is no usable workflow id.
var ErrBadID = errors.New("use letters, digits, '.', '_' and '-'")

// ValidateID refuses a scan id that cannot name a workflow and a
// schedule, or be typed in a shell.
func ValidateID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("scan id %q: %w", id, ErrBadID)
	}
	return nil
}

// IDFor returns the scan id of a scan of patches: id when given, else the
// KBs, lower case, joined by '-' ("kb958644-kb823980"). An id that cannot
// name a workflow and a schedule, or be typed in a shell, is ErrBadID.
func IDFor(id string, patches []rollout.Patch) (string, error) {
	if id == "" {
		id = strings.ToLower(strings.Join(Input{Patches: patches}.KBs(), "-"))
	}
	if !idPattern.MatchString(id) {
		return id, ErrBadID
	}
	return id, nil
}
