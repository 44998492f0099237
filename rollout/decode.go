package rollout

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	// The rollout language names IANA time zones; embedding the database
	// makes them resolve the same on every machine, with or without
	// /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// decoder walks hclsyntax bodies directly rather than through gohcl: it
// needs the source range of every attribute value (for diagnostics and for
// Ranges), it reports secret-looking attributes with their own message
// instead of "Unsupported argument", and it checks every attribute against
// its expected type strictly (a KB written as a number is an error, not a
// silent conversion).
type decoder struct {
	diags  hcl.Diagnostics
	ranges *Ranges
}

// bodySpec describes what a block may contain.
type bodySpec struct {
	// what names the block in messages: "patch block", "wave \"emea\"".
	what string
	// attrs lists the allowed attribute names, in documentation order.
	attrs []string
	// blocks maps allowed nested block types to their number of labels.
	blocks map[string]int
}

func (d *decoder) errorf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  &r,
	})
}

func (d *decoder) warnf(rng hcl.Range, summary, format string, args ...any) {
	r := rng
	d.diags = append(d.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, args...),
		Subject:  &r,
	})
}

// secretWords are the attribute name parts that suggest a secret.
var secretWords = []string{"password", "passwd", "secret", "token", "key", "apikey", "passphrase", "credentials"}

// looksSecret reports whether an attribute name looks like it holds a
// secret: one of its underscore-separated words is a secret word, or it
// contains "password", "secret" or "token" anywhere.
func looksSecret(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range strings.FieldsFunc(lower, func(r rune) bool { return r == '_' || r == '-' }) {
		if slices.Contains(secretWords, w) {
			return true
		}
	}
	for _, w := range []string{"password", "secret", "token"} {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return false
}

// content checks body against spec and returns its attributes by name and
// its blocks in source order. Unknown or secret-looking attributes and
// unknown or mislabelled blocks are reported and left out.
func (d *decoder) content(body *hclsyntax.Body, spec bodySpec) (map[string]*hclsyntax.Attribute, []*hclsyntax.Block) {
	attrs := map[string]*hclsyntax.Attribute{}
	names := make([]string, 0, len(body.Attributes))
	for name := range body.Attributes {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		a := body.Attributes[name]
		switch {
		case looksSecret(name):
			d.errorf(a.NameRange, "Secrets do not belong in a rollout or inventory",
				"The argument %q looks like a secret. Patchway files name secrets, they never hold them: give the host a credential set name (credential = \"corp-admin\") or the channel a name, and let the worker resolve it from its environment (PATCHWAY_CRED_<NAME>_USER/_PASSWORD) or a 0600 credentials file.", name)
		case !slices.Contains(spec.attrs, name):
			detail := fmt.Sprintf("An argument named %q is not expected in a %s.", name, spec.what)
			if s := suggest(name, spec.attrs); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			} else if len(spec.attrs) > 0 {
				detail += " Expected one of: " + strings.Join(spec.attrs, ", ") + "."
			}
			d.errorf(a.NameRange, "Unsupported argument", "%s", detail)
		default:
			attrs[name] = a
		}
	}
	var blocks []*hclsyntax.Block
	blockTypes := make([]string, 0, len(spec.blocks))
	for t := range spec.blocks {
		blockTypes = append(blockTypes, t)
	}
	sort.Strings(blockTypes)
	for _, b := range body.Blocks {
		want, ok := spec.blocks[b.Type]
		if !ok {
			detail := fmt.Sprintf("Blocks of type %q are not expected in a %s.", b.Type, spec.what)
			if s := suggest(b.Type, blockTypes); s != "" {
				detail += fmt.Sprintf(" Did you mean %q?", s)
			} else if len(blockTypes) > 0 {
				detail += " Expected one of: " + strings.Join(blockTypes, ", ") + "."
			} else {
				detail += " It takes no nested blocks."
			}
			if slices.Contains(spec.attrs, b.Type) {
				detail = fmt.Sprintf("%q is an argument of a %s, not a block: write %s = ...", b.Type, spec.what, b.Type)
			}
			d.errorf(b.TypeRange, "Unsupported block type", "%s", detail)
			continue
		}
		switch {
		case len(b.Labels) < want:
			d.errorf(b.TypeRange, fmt.Sprintf("Missing name for %s block", b.Type),
				"A %s block needs a name, like %s \"name\" { ... }.", b.Type, b.Type)
			continue
		case len(b.Labels) > want:
			rng := b.LabelRanges[want]
			if want == 0 {
				d.errorf(rng, "Extraneous label", "A %s block takes no name: write %s { ... }.", b.Type, b.Type)
			} else {
				d.errorf(rng, "Extraneous label", "A %s block takes exactly one name.", b.Type)
			}
			continue
		}
		if want == 1 && strings.TrimSpace(b.Labels[0]) == "" {
			d.errorf(b.LabelRanges[0], fmt.Sprintf("Empty name for %s block", b.Type), "A %s block needs a non-empty name.", b.Type)
			continue
		}
		blocks = append(blocks, b)
	}
	return attrs, blocks
}

// suggest returns the candidate closest to name, if close enough to be a
// plausible typo.
func suggest(name string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if dist := levenshtein(name, c); dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// value evaluates an attribute with no variables or functions: rollout
// files are data.
func (d *decoder) value(a *hclsyntax.Attribute) (cty.Value, bool) {
	v, diags := a.Expr.Value(nil)
	d.diags = append(d.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if v.IsNull() {
		d.errorf(a.Expr.Range(), "Missing value", "The argument %q is null; give it a value or leave it out.", a.Name)
		return cty.NilVal, false
	}
	return v, true
}

func typeName(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsTupleType() || t.IsListType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	}
	return t.FriendlyName()
}

func (d *decoder) wrongType(a *hclsyntax.Attribute, v cty.Value, want, example string) {
	d.errorf(a.Expr.Range(), "Incorrect attribute value type",
		"The argument %q must be %s, like %s = %s; this is %s.", a.Name, want, a.Name, example, typeName(v.Type()))
}

// str decodes a string attribute. A missing attribute gives "" and true.
func (d *decoder) str(attrs map[string]*hclsyntax.Attribute, name string) (string, bool) {
	a, ok := attrs[name]
	if !ok {
		return "", true
	}
	v, ok := d.value(a)
	if !ok {
		return "", false
	}
	if v.Type() != cty.String {
		d.wrongType(a, v, "a string", `"..."`)
		return "", false
	}
	if text, ok := strings.CutPrefix(v.AsString(), Placeholder); ok {
		d.errorf(a.Expr.Range(), "Placeholder to fill in",
			"%s = %q was left for a person to fill in: %s. Put the real value here before the rollout is filed.", name, v.AsString(), text)
		return "", false
	}
	return v.AsString(), true
}

// Placeholder starts a value a drafted rollout (patchway draft) leaves
// for a person; decoding refuses it where it stands.
const Placeholder = "FILL IN: "

// boolean decodes a bool attribute. A missing attribute gives false.
func (d *decoder) boolean(attrs map[string]*hclsyntax.Attribute, name string) bool {
	a, ok := attrs[name]
	if !ok {
		return false
	}
	v, ok := d.value(a)
	if !ok {
		return false
	}
	if v.Type() != cty.Bool {
		d.wrongType(a, v, "true or false", "true")
		return false
	}
	return v.True()
}

// count decodes a whole, non-negative number. A missing attribute gives 0.
func (d *decoder) count(attrs map[string]*hclsyntax.Attribute, name string) int {
	a, ok := attrs[name]
	if !ok {
		return 0
	}
	v, ok := d.value(a)
	if !ok {
		return 0
	}
	if v.Type() != cty.Number {
		d.wrongType(a, v, "a whole number", "10")
		return 0
	}
	n, ok := wholeNumber(v.AsBigFloat())
	if !ok || n < 0 {
		d.errorf(a.Expr.Range(), "Invalid number", "The argument %q must be a whole number of at least 0.", name)
		return 0
	}
	return n
}

func wholeNumber(f *big.Float) (int, bool) {
	if !f.IsInt() {
		return 0, false
	}
	i, acc := f.Int64()
	if acc != big.Exact || i > 1<<31 || i < -(1<<31) {
		return 0, false
	}
	return int(i), true
}

// strList decodes a list of strings. A missing attribute gives nil.
func (d *decoder) strList(attrs map[string]*hclsyntax.Attribute, name string) []string {
	a, ok := attrs[name]
	if !ok {
		return nil
	}
	v, ok := d.value(a)
	if !ok {
		return nil
	}
	t := v.Type()
	if t == cty.String {
		d.errorf(a.Expr.Range(), "Incorrect attribute value type",
			"The argument %q must be a list of strings; write it in brackets: %s = [%q].", name, name, v.AsString())
		return nil
	}
	if !t.IsTupleType() && !t.IsListType() && !t.IsSetType() {
		d.wrongType(a, v, "a list of strings", `["..."]`)
		return nil
	}
	elemExprs := []hclsyntax.Expression(nil)
	if tup, ok := a.Expr.(*hclsyntax.TupleConsExpr); ok {
		elemExprs = tup.Exprs
	}
	var out []string
	i := 0
	for it := v.ElementIterator(); it.Next(); i++ {
		_, ev := it.Element()
		if ev.IsNull() || ev.Type() != cty.String {
			rng := a.Expr.Range()
			if i < len(elemExprs) {
				rng = elemExprs[i].Range()
			}
			what := "null"
			if !ev.IsNull() {
				what = typeName(ev.Type())
			}
			d.errorf(rng, "Incorrect attribute value type", "Every element of %q must be a string; element %d is %s.", name, i+1, what)
			continue
		}
		out = append(out, ev.AsString())
	}
	return out
}

// parseDuration reads a duration as the rollout language writes it: Go's
// syntax ("30m", "4h", "1h30m") plus whole days ("7d", "2d12h").
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 3650 {
			return 0, fmt.Errorf("%q is not a duration: days must be a whole number before \"d\"", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration", s)
	}
	if rest < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return days + rest, nil
}

// duration decodes a duration attribute.
func (d *decoder) duration(attrs map[string]*hclsyntax.Attribute, name string) time.Duration {
	s, ok := d.str(attrs, name)
	if !ok || s == "" {
		if ok && attrs[name] != nil {
			d.errorf(attrs[name].Expr.Range(), "Invalid duration", "The argument %q is empty; write a duration like \"30m\", \"4h\" or \"7d\".", name)
		}
		return 0
	}
	v, err := parseDuration(s)
	if err != nil {
		d.errorf(attrs[name].Expr.Range(), "Invalid duration",
			"%s. Write a duration as a number and a unit: \"30m\", \"4h\", \"7d\", \"1d12h\" (units d, h, m, s).", capitalize(err.Error()))
		return 0
	}
	return v
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// required reports a missing required attribute at the block's header.
func (d *decoder) required(attrs map[string]*hclsyntax.Attribute, block *hclsyntax.Block, what string, names ...string) {
	for _, n := range names {
		if _, ok := attrs[n]; !ok {
			d.errorf(blockHeader(block), "Missing required argument",
				"The argument %q is required in a %s.", n, what)
		}
	}
}

// blockHeader is the range of a block's type and labels, where HCL itself
// points for problems with a block as a whole.
func blockHeader(b *hclsyntax.Block) hcl.Range {
	rng := b.TypeRange
	if n := len(b.LabelRanges); n > 0 {
		rng = hcl.RangeBetween(rng, b.LabelRanges[n-1])
	}
	return rng
}

// recordAttrs records every attribute value's range under prefix.
func (d *decoder) recordAttrs(prefix string, attrs map[string]*hclsyntax.Attribute) {
	for name, a := range attrs {
		d.ranges.Set(prefix+"."+name, a.Expr.Range())
	}
}

// blockKey is the Ranges key of a labelled block.
func blockKey(prefix, typ, label string) string {
	k := typ + "[" + label + "]"
	if prefix != "" {
		k = prefix + "." + k
	}
	return k
}

// parseFile parses native HCL syntax. Patchway files are always native
// syntax (JSON HCL has no source positions worth the name for users).
func parseFile(filename string, src []byte) (*hclsyntax.Body, hcl.Diagnostics) {
	if diags := CheckInput(filename, src); diags.HasErrors() {
		return nil, diags
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if f == nil {
		return nil, diags
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Not native HCL", Detail: "The file did not parse as native HCL syntax."})
	}
	return body, diags
}

// sortDiagnostics orders diagnostics by file and position (attributes come
// from maps, so their order is otherwise random), keeping those without a
// position last in their original order.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a != nil && b == nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}
