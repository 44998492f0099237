package rollout

import (
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Ranges maps the parts of a decoded rollout or inventory back to where they
// were written, so that checks made later (cross-checks here, policy
// violations in policies/) can point at file:line:col. It lives beside the
// plain Rollout and Inventory types rather than inside them, which stay
// JSON-clean.
//
// Keys are dotted paths: a block is `type[label]` (or `type[index]` for
// unlabelled repeated blocks, or just `type` for a single one) and an
// attribute is its name. For example:
//
//	rollout                      the rollout block's header
//	patch.severity               the value of patch { severity = ... }
//	patch.package[windows-xp].sha256
//	stage[lab].hosts
//	wave[emea].window.hours
//	escalation[0].at
//	host[dc01].owner             (inventory)
//	site[paris].time_zone        (inventory)
type Ranges struct {
	byKey map[string]hcl.Range
}

// NewRanges returns an empty Ranges.
func NewRanges() *Ranges { return &Ranges{byKey: map[string]hcl.Range{}} }

// Set records where key was written.
func (r *Ranges) Set(key string, rng hcl.Range) {
	if r == nil {
		return
	}
	if r.byKey == nil {
		r.byKey = map[string]hcl.Range{}
	}
	r.byKey[key] = rng
}

// Lookup returns the range of key, or of its closest recorded parent: an
// attribute that was left out falls back to its enclosing block, so a
// policy violation about a missing setting still points somewhere useful.
func (r *Ranges) Lookup(key string) (hcl.Range, bool) {
	if r == nil {
		return hcl.Range{}, false
	}
	for key != "" {
		if rng, ok := r.byKey[key]; ok {
			return rng, true
		}
		i := strings.LastIndexByte(key, '.')
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return hcl.Range{}, false
}

// Merge copies every range of other into r (a rollout's and its
// inventory's ranges never share a key).
func (r *Ranges) Merge(other *Ranges) {
	if other == nil {
		return
	}
	for k, v := range other.byKey {
		r.Set(k, v)
	}
}
