package rollout

import (
	"slices"
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
	// hosts holds the inventory's hosts (keys host[NAME] and
	// host[NAME].FIELD) compactly: an inventory has up to millions.
	hosts map[string]hostRanges
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
	if rng, ok := r.lookupHost(key); ok {
		return rng, true
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
	if len(other.hosts) > 0 && r.hosts == nil {
		r.hosts = make(map[string]hostRanges, len(other.hosts))
	}
	for k, v := range other.hosts {
		r.hosts[k] = v
	}
}

// hostFieldNames are the fields of a host whose ranges are recorded, by
// their Ranges names: a fieldRange refers to one by its index.
var hostFieldNames = []string{
	"name", "address", "os", "build", "site", "region", "tier", "role", "cluster", "owner", "purpose",
	"credential", "tags", "tls.transport", "tls.insecure", "tls.ca_file", "tls.server_name", "tls.auth",
	"time_zone", "distribution_point", "computer_name", "machine_guid", "tls.cert_sha256",
}

// pos32 is an hcl.Pos in 12 bytes instead of 24; files are far smaller
// than 2 GiB (see MaxCSVFileSize).
type pos32 struct{ line, column, byte int32 }

func toPos32(p hcl.Pos) pos32 { return pos32{int32(p.Line), int32(p.Column), int32(p.Byte)} }

func (p pos32) pos() hcl.Pos {
	return hcl.Pos{Line: int(p.line), Column: int(p.column), Byte: int(p.byte)}
}

// fieldRange is the range of one host field, without its file name: a
// host's fields are all in the file of its header. A host of a million-row
// inventory keeps a slice of these rather than a map of hcl.Range and a
// Ranges key for each field, which cost 3 KB a host.
type fieldRange struct {
	field      uint8 // index in hostFieldNames
	start, end pos32
}

// hostFields are the ranges of a host's fields.
type hostFields []fieldRange

func fieldIndex(name string) int {
	for i, n := range hostFieldNames {
		if n == name {
			return i
		}
	}
	panic("rollout: no host field " + name)
}

// set records the range of field.
func (f *hostFields) set(field string, rng hcl.Range) {
	i := uint8(fieldIndex(field))
	fr := fieldRange{field: i, start: toPos32(rng.Start), end: toPos32(rng.End)}
	for j := range *f {
		if (*f)[j].field == i {
			(*f)[j] = fr
			return
		}
	}
	*f = append(*f, fr)
}

// get returns the range of field, in filename.
func (f hostFields) get(filename, field string) (hcl.Range, bool) {
	for _, fr := range f {
		if hostFieldNames[fr.field] == field {
			return fr.rng(filename), true
		}
	}
	return hcl.Range{}, false
}

func (fr fieldRange) rng(filename string) hcl.Range {
	return hcl.Range{Filename: filename, Start: fr.start.pos(), End: fr.end.pos()}
}

// hostRanges is where a host and its fields were written.
type hostRanges struct {
	header hcl.Range
	fields hostFields
}

// setHost records a host's header and fields under host[name] without a
// key for each.
func (r *Ranges) setHost(name string, header hcl.Range, fields hostFields) {
	if r == nil {
		return
	}
	if r.hosts == nil {
		r.hosts = map[string]hostRanges{}
	}
	r.hosts[name] = hostRanges{header: header, fields: slices.Clip(fields)}
}

// lookupHost is Lookup for host[NAME] and host[NAME].FIELD keys.
func (r *Ranges) lookupHost(key string) (hcl.Range, bool) {
	if !strings.HasPrefix(key, "host[") {
		return hcl.Range{}, false
	}
	// Field names hold no "]", so the last one closes the name.
	end := strings.LastIndexByte(key, ']')
	if end < 0 {
		return hcl.Range{}, false
	}
	h, ok := r.hosts[key[len("host["):end]]
	if !ok {
		return hcl.Range{}, false
	}
	if field, ok := strings.CutPrefix(key[end+1:], "."); ok {
		for field != "" {
			if rng, ok := h.fields.get(h.header.Filename, field); ok {
				return rng, true
			}
			i := strings.LastIndexByte(field, '.')
			if i < 0 {
				break
			}
			field = field[:i]
		}
	}
	return h.header, true
}
