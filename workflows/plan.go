package workflows

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/patchway/patchway/rollout"
)

// planSteps lays out the staged path: the stages in filed order, then the
// waves in `after` order. Each host belongs to the first step whose
// selector matches it. Within a step, hosts are ordered by site, with a
// site's domain controllers and cluster members first and together, so a
// site's hosts share batches (per-site download and reboot limits hold
// across the rollout) and the riskiest hosts go first.
func planSteps(ro rollout.Rollout, hosts []rollout.Host) ([]*stepState, int, error) {
	waves, err := waveOrder(ro.Waves)
	if err != nil {
		return nil, 0, err
	}
	var steps []*stepState
	for i, s := range ro.Stages {
		steps = append(steps, &stepState{Name: s.Name, Kind: KindStage, Group: s.ApprovalGroup, Index: i, Status: StepPending})
	}
	for _, i := range waves {
		w := ro.Waves[i]
		steps = append(steps, &stepState{Name: w.Name, Kind: KindWave, Group: w.ApprovalGroup, Index: i, Status: StepPending})
	}
	selectors := make([]selector, len(steps))
	for t, s := range steps {
		expr := ro.Stages[min(s.Index, len(ro.Stages)-1)].Hosts
		if s.Kind == KindWave {
			expr = ro.Waves[s.Index].Hosts
		}
		sel, err := parseSelector(expr)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %q: hosts selector: %w", s.Kind, s.Name, err)
		}
		selectors[t] = sel
	}
	unplanned := 0
	for i, h := range hosts {
		t := slices.IndexFunc(selectors, func(sel selector) bool { return sel(h) })
		if t < 0 {
			unplanned++
			continue
		}
		steps[t].Members = append(steps[t].Members, i)
	}
	for _, s := range steps {
		slices.SortStableFunc(s.Members, func(a, b int) int {
			ha, hb := hosts[a], hosts[b]
			return cmp.Or(cmp.Compare(ha.Site, hb.Site), cmp.Compare(riskRank(hb), riskRank(ha)),
				cmp.Compare(ha.Cluster, hb.Cluster), cmp.Compare(ha.Name, hb.Name))
		})
		s.Queue = slices.Clone(s.Members)
		s.Totals = map[rollout.HostState]int{rollout.StatePending: len(s.Members)}
		if s.Kind == KindStage {
			s.Threshold = 0
		}
	}
	return steps, unplanned, nil
}

// riskRank puts domain controllers, then cluster members, first.
func riskRank(h rollout.Host) int {
	switch {
	case h.Role == "domain_controller":
		return 2
	case h.Cluster != "":
		return 1
	}
	return 0
}

// waveOrder sorts waves so that each comes after the waves it names in
// `after`, keeping filed order otherwise.
func waveOrder(waves []rollout.Wave) ([]int, error) {
	index := map[string]int{}
	for i, w := range waves {
		index[w.Name] = i
	}
	var order []int
	state := make([]int, len(waves)) // 0 new, 1 visiting, 2 done
	var visit func(i int, trail []string) error
	visit = func(i int, trail []string) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("waves depend on each other in a cycle: %s", strings.Join(append(trail, waves[i].Name), " -> "))
		case 2:
			return nil
		}
		state[i] = 1
		for _, a := range waves[i].After {
			j, ok := index[a]
			if !ok {
				return fmt.Errorf("wave %q comes after unknown wave %q", waves[i].Name, a)
			}
			if err := visit(j, append(trail, waves[i].Name)); err != nil {
				return err
			}
		}
		state[i] = 2
		order = append(order, i)
		return nil
	}
	for i := range waves {
		if err := visit(i, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// selector matches hosts. It implements the selector language of the
// cross-team conventions (key:value terms with * globs, and, or, not,
// parentheses, all).
type selector func(rollout.Host) bool

func parseSelector(expr string) (selector, error) {
	p := &selParser{toks: tokenize(expr)}
	if len(p.toks) == 0 {
		return nil, fmt.Errorf("empty selector")
	}
	sel, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.pos < len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in %q", p.toks[p.pos], expr)
	}
	return sel, nil
}

func tokenize(s string) []string {
	var toks []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			toks = append(toks, cur.String())
			cur.Reset()
		}
	}
	for _, r := range s {
		switch r {
		case ' ', '\t', '\n':
			flush()
		case '(', ')':
			flush()
			toks = append(toks, string(r))
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return toks
}

type selParser struct {
	toks []string
	pos  int
}

func (p *selParser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *selParser) or() (selector, error) {
	left, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" {
		p.pos++
		right, err := p.and()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(h rollout.Host) bool { return l(h) || right(h) }
	}
	return left, nil
}

func (p *selParser) and() (selector, error) {
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" {
		p.pos++
		right, err := p.unary()
		if err != nil {
			return nil, err
		}
		l := left
		left = func(h rollout.Host) bool { return l(h) && right(h) }
	}
	return left, nil
}

func (p *selParser) unary() (selector, error) {
	tok := p.peek()
	p.pos++
	switch tok {
	case "":
		return nil, fmt.Errorf("selector ends too early")
	case "not":
		inner, err := p.unary()
		if err != nil {
			return nil, err
		}
		return func(h rollout.Host) bool { return !inner(h) }, nil
	case "(":
		inner, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, fmt.Errorf("missing )")
		}
		p.pos++
		return inner, nil
	case "all":
		return func(rollout.Host) bool { return true }, nil
	}
	key, value, ok := strings.Cut(tok, ":")
	if !ok {
		return nil, fmt.Errorf("term %q is not key:value", tok)
	}
	if _, err := path.Match(value, ""); err != nil {
		return nil, fmt.Errorf("term %q: %w", tok, err)
	}
	field, ok := hostField(key)
	if !ok {
		return nil, fmt.Errorf("unknown key %q in %q", key, tok)
	}
	return func(h rollout.Host) bool {
		for _, v := range field(h) {
			if m, _ := path.Match(value, v); m {
				return true
			}
		}
		return false
	}, nil
}

// hostField returns the values of a host a selector key matches.
func hostField(key string) (func(rollout.Host) []string, bool) {
	switch key {
	case "name":
		return func(h rollout.Host) []string { return []string{h.Name} }, true
	case "region":
		return func(h rollout.Host) []string { return []string{h.Region} }, true
	case "site":
		return func(h rollout.Host) []string { return []string{h.Site} }, true
	case "role":
		return func(h rollout.Host) []string { return []string{h.Role} }, true
	case "tier":
		return func(h rollout.Host) []string { return []string{string(h.Tier)} }, true
	case "tag":
		return func(h rollout.Host) []string { return h.Tags }, true
	case "os":
		return func(h rollout.Host) []string { return []string{h.OS} }, true
	case "owner":
		return func(h rollout.Host) []string { return []string{h.Owner} }, true
	case "cluster":
		return func(h rollout.Host) []string { return []string{h.Cluster} }, true
	}
	return nil, false
}
