package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Selector picks hosts from an inventory. Its syntax, meant to read well to
// a security engineer:
//
//	term      key:value           region:emea   role:domain_controller   name:dc*
//	keys      name region site role tier tag os owner cluster
//	glob      * matches any run of characters, ? any one character
//	operators not, and, or (in that order of precedence), parentheses
//	all       every host
//
// For example "region:emea and not role:laptop" or
// "tier:prodlike and (role:mail or role:sql)". Matching is case-sensitive,
// as the inventory is written. A tag term matches if any of the host's tags
// matches.
type Selector struct {
	expr string
	root selNode
}

// String returns the expression the selector was parsed from.
func (s Selector) String() string { return s.expr }

// Match reports whether the selector picks h. The zero Selector matches no
// host.
func (s Selector) Match(h Host) bool {
	if s.root == nil {
		return false
	}
	return s.root.match(h)
}

// Select returns the hosts sel picks, in inventory order.
func (inv *Inventory) Select(sel Selector) []Host {
	if inv == nil {
		return nil
	}
	var out []Host
	for _, h := range inv.Hosts {
		if sel.Match(h) {
			out = append(out, h)
		}
	}
	return out
}

// SelectorKeys are the host fields a selector term can name.
var SelectorKeys = []string{"name", "region", "site", "role", "tier", "tag", "os", "owner", "cluster"}

// SelectorError is a selector syntax error at a byte offset of the
// expression, so a diagnostic can point at the very character.
type SelectorError struct {
	Offset int
	Length int
	Msg    string
}

func (e *SelectorError) Error() string { return e.Msg }

func asSelectorError(err error, target **SelectorError) bool { return errors.As(err, target) }

// ParseSelector parses a selector expression.
func ParseSelector(expr string) (Selector, error) {
	p := &selParser{src: expr}
	p.toks = p.lex()
	if p.err != nil {
		return Selector{}, p.err
	}
	if len(p.toks) == 0 {
		return Selector{}, &SelectorError{Offset: 0, Msg: "the selector is empty (write all to select every host)"}
	}
	root, err := p.or()
	if err != nil {
		return Selector{}, err
	}
	if p.pos < len(p.toks) {
		t := p.toks[p.pos]
		return Selector{}, p.errAt(t, fmt.Sprintf("unexpected %q after a complete selector (join terms with and / or)", t.text))
	}
	return Selector{expr: expr, root: root}, nil
}

type selNode interface{ match(Host) bool }

type (
	selAll  struct{}
	selNot  struct{ inner selNode }
	selAnd  struct{ left, right selNode }
	selOr   struct{ left, right selNode }
	selTerm struct{ key, pattern string }
)

func (selAll) match(Host) bool     { return true }
func (n selNot) match(h Host) bool { return !n.inner.match(h) }
func (n selAnd) match(h Host) bool { return n.left.match(h) && n.right.match(h) }
func (n selOr) match(h Host) bool  { return n.left.match(h) || n.right.match(h) }
func (n selTerm) match(h Host) bool {
	return slices.ContainsFunc(hostValues(h, n.key), func(v string) bool { return glob(n.pattern, v) })
}

// hostValues returns the values of h a selector key compares with.
func hostValues(h Host, key string) []string {
	switch key {
	case "name":
		return []string{h.Name}
	case "region":
		return []string{h.Region}
	case "site":
		return []string{h.Site}
	case "role":
		return []string{h.Role}
	case "tier":
		return []string{string(h.Tier)}
	case "tag":
		return h.Tags
	case "os":
		return []string{h.OS}
	case "owner":
		return []string{h.Owner}
	case "cluster":
		return []string{h.Cluster}
	}
	return nil
}

// glob matches s against pattern, where * is any run of characters and ?
// any one character.
func glob(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	// Iterative wildcard matching with backtracking to the last star:
	// linear in practice and bounded by len(p)*len(r).
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

type selToken struct {
	text   string
	offset int
}

type selParser struct {
	src  string
	toks []selToken
	pos  int
	err  error
}

func (p *selParser) errAt(t selToken, msg string) error {
	return &SelectorError{Offset: t.offset, Length: len(t.text), Msg: msg}
}

// lex splits the expression into words and parentheses.
func (p *selParser) lex() []selToken {
	var toks []selToken
	start := -1
	flush := func(end int) {
		if start >= 0 {
			toks = append(toks, selToken{text: p.src[start:end], offset: start})
			start = -1
		}
	}
	for i, r := range p.src {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			flush(i)
		case r == '(' || r == ')':
			flush(i)
			toks = append(toks, selToken{text: string(r), offset: i})
		case r == '"' || r == '\'' || r == '&' || r == '|' || r == '!' || r == '=' || r == ',':
			flush(i)
			hint := ""
			switch r {
			case '&':
				hint = " (write and)"
			case '|':
				hint = " (write or)"
			case '!':
				hint = " (write not)"
			case '=':
				hint = " (write key:value)"
			case ',':
				hint = " (join terms with or)"
			}
			p.err = &SelectorError{Offset: i, Length: 1, Msg: fmt.Sprintf("unexpected character %q in the selector%s", r, hint)}
			return nil
		default:
			if start < 0 {
				start = i
			}
		}
	}
	flush(len(p.src))
	return toks
}

func (p *selParser) peek() (selToken, bool) {
	if p.pos < len(p.toks) {
		return p.toks[p.pos], true
	}
	return selToken{offset: len(p.src)}, false
}

func isKeyword(s string) bool { return s == "and" || s == "or" || s == "not" }

func (p *selParser) or() (selNode, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for t, ok := p.peek(); ok && t.text == "or"; t, ok = p.peek() {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		left = selOr{left, right}
	}
	return left, nil
}

func (p *selParser) and() (selNode, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for t, ok := p.peek(); ok && t.text == "and"; t, ok = p.peek() {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		left = selAnd{left, right}
	}
	return left, nil
}

func (p *selParser) unary() (selNode, error) {
	t, ok := p.peek()
	if !ok {
		prev := "the selector"
		if p.pos > 0 {
			prev = fmt.Sprintf("%q", p.toks[p.pos-1].text)
		}
		return nil, &SelectorError{Offset: len(p.src), Msg: fmt.Sprintf("the selector ends after %s; a term is missing", prev)}
	}
	p.pos++
	switch t.text {
	case "not":
		inner, err := p.unary()
		if err != nil {
			return nil, err
		}
		return selNot{inner}, nil
	case "(":
		inner, err := p.or()
		if err != nil {
			return nil, err
		}
		if c, ok := p.peek(); !ok || c.text != ")" {
			return nil, &SelectorError{Offset: t.offset, Length: 1, Msg: "this parenthesis is never closed"}
		}
		p.pos++
		return inner, nil
	case ")":
		return nil, p.errAt(t, "unexpected )")
	case "all":
		return selAll{}, nil
	case "and", "or":
		return nil, p.errAt(t, fmt.Sprintf("%q needs a term before it", t.text))
	}
	key, value, ok := strings.Cut(t.text, ":")
	switch {
	case !ok:
		return nil, p.errAt(t, fmt.Sprintf("%q is not a key:value term", t.text))
	case !slices.Contains(SelectorKeys, key):
		msg := fmt.Sprintf("unknown key %q; keys are %s", key, strings.Join(SelectorKeys, ", "))
		if s := suggest(key, SelectorKeys); s != "" {
			msg = fmt.Sprintf("unknown key %q: did you mean %q?", key, s)
		}
		return nil, &SelectorError{Offset: t.offset, Length: len(key), Msg: msg}
	case value == "":
		return nil, p.errAt(t, fmt.Sprintf("the term %q has no value", t.text))
	}
	if isKeyword(key) {
		return nil, p.errAt(t, fmt.Sprintf("%q is not a key:value term", t.text))
	}
	return selTerm{key: key, pattern: value}, nil
}
