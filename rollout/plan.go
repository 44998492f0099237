package rollout

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Plan is what a rollout will do on an inventory, in execution order:
// `patchway plan` prints it and its JSON form is stable (golden-tested).
// Each host belongs to the first step, in execution order, whose selector
// matches it, as the workflow assigns them: a lab host that a regional
// wave's selector also matches is patched in the lab stage only.
type Plan struct {
	Rollout   string    `json:"rollout"`
	KB        string    `json:"kb"`
	Bulletin  string    `json:"bulletin,omitempty"`
	Title     string    `json:"title,omitempty"`
	Severity  Severity  `json:"severity"`
	Published time.Time `json:"published"`
	// Hosts counts the hosts in some step; InventoryHosts the inventory.
	Hosts          int        `json:"hosts"`
	InventoryHosts int        `json:"inventory_hosts"`
	Steps          []PlanStep `json:"steps"`
	// Unplanned lists the inventory's hosts in no step.
	Unplanned []string `json:"unplanned,omitempty"`
	// Deadline and Milestones come from the SLA policy; BuildPlan leaves
	// them empty for the policies package to fill.
	Deadline   *time.Time  `json:"deadline,omitempty"`
	Milestones []Milestone `json:"milestones,omitempty"`
	// DeadlineReasons are the SLA policy's reasons for the deadline
	// (severity, risk factors, a KEV due date).
	DeadlineReasons []string `json:"deadline_reasons,omitempty"`
}

// Milestone is a point of the SLA clock: the sla policy computes them, a
// plan shows them, and the escalation policy is asked at each who to tell.
// It crosses Temporal payloads and policy input, so its JSON names are
// part of recorded histories and of what Rego reads.
type Milestone struct {
	// AtPercent is the share of the SLA elapsed (50, 75, 100); above 100
	// for steps after the breach.
	AtPercent float64   `json:"at_percent"`
	At        time.Time `json:"at"`
	// Breach is true from the deadline on.
	Breach bool `json:"breach,omitempty"`
	// Forecast: not a point of the clock but the forecast policy's
	// finding that the rollout will finish after its deadline, escalated
	// before the breach it predicts (AtPercent is the SLA elapsed then).
	Forecast bool `json:"forecast,omitempty"`
}

// Step kinds.
const (
	StepStage = "stage"
	StepWave  = "wave"
)

// PlanStep is one stage or wave of a plan.
type PlanStep struct {
	// Order is the step's 1-based position in execution order.
	Order int    `json:"order"`
	Kind  string `json:"kind"`
	Name  string `json:"name"`
	// Selector is the step's hosts expression as written.
	Selector string   `json:"selector"`
	After    []string `json:"after,omitempty"`
	// Soak is how long a stage watches its hosts before the next step.
	Soak                string `json:"soak,omitempty"`
	ApprovalGroup       string `json:"approval_group,omitempty"`
	MaxParallel         int    `json:"max_parallel,omitempty"`
	MaxFailures         string `json:"max_failures,omitempty"`
	DownloadConcurrency int    `json:"download_concurrency,omitempty"`
	// Count is len(Hosts); Hosts are names in inventory order.
	Count    int            `json:"count"`
	Hosts    []string       `json:"hosts"`
	ByRegion map[string]int `json:"by_region"`
	BySite   map[string]int `json:"by_site"`
	ByRole   map[string]int `json:"by_role"`
	// Windows is the wave's maintenance window in each of its sites' local
	// time; empty when the wave may run at any time.
	Windows []SiteWindow `json:"windows,omitempty"`
}

// SiteWindow is a maintenance window as a site sees it.
type SiteWindow struct {
	Site     string `json:"site"`
	TimeZone string `json:"time_zone,omitempty"`
	// Days are the local days the window opens ("sat"), Hours its local
	// hours ("22:00-06:00").
	Days  []string `json:"days"`
	Hours string   `json:"hours"`
	Hosts int      `json:"hosts"`
}

// WaveOrder returns the indexes of waves in execution order: each wave
// after the waves it names in after, and otherwise in file order (a wave is
// placed as early as its position in the file and its prerequisites
// allow). It fails on unknown names and cycles.
func WaveOrder(waves []Wave) ([]int, error) {
	index := map[string]int{}
	for i, w := range waves {
		index[w.Name] = i
	}
	order := make([]int, 0, len(waves))
	state := make([]int, len(waves)) // 0 new, 1 visiting, 2 placed
	var visit func(i int, trail []string) error
	visit = func(i int, trail []string) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("waves wait for each other in a cycle: %s", strings.Join(append(trail, waves[i].Name), " -> "))
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

// BuildPlan lays out the stages (in file order), then the waves (in
// WaveOrder), with their hosts and maintenance windows. It fails if a
// selector does not parse or the waves cannot be ordered; Load reports
// those as diagnostics first.
func BuildPlan(r *Rollout, inv *Inventory) (*Plan, error) {
	if r == nil || inv == nil {
		return nil, fmt.Errorf("build plan: rollout and inventory are both required")
	}
	order, err := WaveOrder(r.Waves)
	if err != nil {
		return nil, fmt.Errorf("build plan: %w", err)
	}
	p := &Plan{
		Rollout: r.ID, KB: r.Patch.KB, Bulletin: r.Patch.Bulletin, Title: r.Patch.Title,
		Severity: r.Patch.Severity, Published: r.Patch.Published, InventoryHosts: len(inv.Hosts),
	}
	var sels []Selector
	for _, s := range r.Stages {
		sel, err := ParseSelector(s.Hosts)
		if err != nil {
			return nil, fmt.Errorf("build plan: stage %q: hosts: %w", s.Name, err)
		}
		sels = append(sels, sel)
		step := PlanStep{Kind: StepStage, Name: s.Name, Selector: s.Hosts, ApprovalGroup: s.ApprovalGroup}
		if s.Soak > 0 {
			step.Soak = FormatDuration(s.Soak)
		}
		p.Steps = append(p.Steps, step)
	}
	for _, i := range order {
		w := r.Waves[i]
		sel, err := ParseSelector(w.Hosts)
		if err != nil {
			return nil, fmt.Errorf("build plan: wave %q: hosts: %w", w.Name, err)
		}
		sels = append(sels, sel)
		p.Steps = append(p.Steps, PlanStep{
			Kind: StepWave, Name: w.Name, Selector: w.Hosts, After: w.After, ApprovalGroup: w.ApprovalGroup,
			MaxParallel: w.MaxParallel, MaxFailures: w.MaxFailures.String(), DownloadConcurrency: w.DownloadConcurrency,
		})
	}
	members := make([][]Host, len(p.Steps))
	for _, h := range inv.Hosts {
		t := slices.IndexFunc(sels, func(s Selector) bool { return s.Match(h) })
		if t < 0 {
			p.Unplanned = append(p.Unplanned, h.Name)
			continue
		}
		members[t] = append(members[t], h)
		p.Hosts++
	}
	sites := map[string]Site{}
	for _, s := range inv.Sites {
		sites[s.Name] = s
	}
	for t := range p.Steps {
		step := &p.Steps[t]
		step.Order = t + 1
		step.Hosts = []string{}
		step.ByRegion, step.BySite, step.ByRole = map[string]int{}, map[string]int{}, map[string]int{}
		for _, h := range members[t] {
			step.Hosts = append(step.Hosts, h.Name)
			step.ByRegion[h.Region]++
			step.BySite[h.Site]++
			step.ByRole[h.Role]++
		}
		step.Count = len(step.Hosts)
		if step.Kind == StepWave {
			if w := r.Waves[order[t-len(r.Stages)]].Window; w != nil {
				step.Windows = siteWindows(*w, step.BySite, sites, r.Patch.Published)
			}
		}
	}
	return p, nil
}

// String renders a threshold as the rollout language writes it.
func (t Threshold) String() string {
	if t.Percent > 0 {
		return strconv.FormatFloat(t.Percent, 'f', -1, 64) + "%"
	}
	return strconv.Itoa(t.Count)
}

// FormatDuration renders a duration as the rollout language writes it
// ("7d", "2d12h", "1h30m").
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		size time.Duration
		name string
	}{{24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if n := d / u.size; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.size
		}
	}
	if b.Len() == 0 {
		return d.String()
	}
	return b.String()
}

// DayAbbrev is the rollout language's name for a weekday.
func DayAbbrev(d time.Weekday) string { return strings.ToLower(d.String()[:3]) }

// siteWindows renders a wave's window in the local time of each site the
// wave touches. A window without a time zone opens in each site's own
// zone; one with a time zone is converted, with the offsets in force in the
// week the patch was published (a plan must not depend on when it is
// printed).
func siteWindows(w Window, bySite map[string]int, sites map[string]Site, ref time.Time) []SiteWindow {
	names := make([]string, 0, len(bySite))
	for s := range bySite {
		names = append(names, s)
	}
	slices.Sort(names)
	if ref.IsZero() {
		ref = time.Date(2000, 1, 3, 0, 0, 0, 0, time.UTC) // a Monday
	}
	var out []SiteWindow
	for _, name := range names {
		site := sites[name]
		sw := SiteWindow{Site: name, Hosts: bySite[name], TimeZone: site.TimeZone}
		siteLoc, siteErr := time.LoadLocation(site.TimeZone)
		winLoc, winErr := time.LoadLocation(w.TimeZone)
		if w.TimeZone == "" || w.TimeZone == site.TimeZone || site.TimeZone == "" || siteErr != nil || winErr != nil {
			// Opens in the site's own zone, or the site's zone is unknown
			// (a CSV without time_zone): show the window as written.
			if site.TimeZone == "" || siteErr != nil {
				sw.TimeZone = w.TimeZone
			}
			days := slices.Clone(w.Days)
			slices.SortFunc(days, mondayFirst)
			for _, d := range days {
				sw.Days = append(sw.Days, DayAbbrev(d))
			}
			sw.Hours = formatHours(w.Start, w.End)
			out = append(out, sw)
			continue
		}
		length := time.Duration(w.End-w.Start) * time.Minute
		if w.End <= w.Start {
			length += 24 * time.Hour
		}
		refDay := time.Date(ref.Year(), ref.Month(), ref.Day(), 0, 0, 0, 0, winLoc)
		seen := map[time.Weekday]bool{}
		var days []time.Weekday
		for _, d := range w.Days {
			offset := (int(d) - int(refDay.Weekday()) + 7) % 7
			day := refDay.AddDate(0, 0, offset)
			open := time.Date(day.Year(), day.Month(), day.Day(), w.Start/60, w.Start%60, 0, 0, winLoc).In(siteLoc)
			closeAt := open.Add(length)
			if sw.Hours == "" {
				sw.Hours = formatHours(open.Hour()*60+open.Minute(), closeAt.Hour()*60+closeAt.Minute())
			}
			if !seen[open.Weekday()] {
				seen[open.Weekday()] = true
				days = append(days, open.Weekday())
			}
		}
		slices.SortFunc(days, mondayFirst)
		for _, d := range days {
			sw.Days = append(sw.Days, DayAbbrev(d))
		}
		out = append(out, sw)
	}
	return out
}

// mondayFirst orders weekdays as a work week reads: Monday to Sunday.
func mondayFirst(a, b time.Weekday) int { return int((a+6)%7) - int((b+6)%7) }

func formatHours(start, end int) string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", start/60, start%60, end/60, end%60)
}
