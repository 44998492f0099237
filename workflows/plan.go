package workflows

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/patchway/patchway/rollout"
)

// planSteps lays out the staged path: the stages in filed order, then the
// waves in `after` order. Each host belongs to the first step whose
// selector matches it. Within a step, hosts are ordered by site, with a
// site's domain controllers and cluster members first and together, so a
// site's hosts share batches (per-site download and reboot limits hold
// across the rollout) and the riskiest hosts go first.
func planSteps(ro rollout.Rollout, hosts []rollout.Host) ([]*stepState, int, error) {
	waves, err := rollout.WaveOrder(ro.Waves)
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
	selectors := make([]rollout.Selector, len(steps))
	for t, s := range steps {
		var expr string
		if s.Kind == KindWave {
			expr = ro.Waves[s.Index].Hosts
		} else {
			expr = ro.Stages[s.Index].Hosts
		}
		sel, err := rollout.ParseSelector(expr)
		if err != nil {
			return nil, 0, fmt.Errorf("%s %q: hosts selector: %w", s.Kind, s.Name, err)
		}
		selectors[t] = sel
	}
	unplanned := 0
	for i, h := range hosts {
		t := slices.IndexFunc(selectors, func(sel rollout.Selector) bool { return sel.Match(h) })
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
