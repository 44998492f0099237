package report

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// Options change what the human formats (table, md, html) list.
type Options struct {
	// All lists every host, compliant and not_applicable ones too; by
	// default only the hosts that are not compliant are listed. json and
	// csv always hold every host.
	All bool
}

// format is one output format: its name on the command line and its
// renderer, which gets an expanded report (Hosts filled).
type format struct {
	name   string
	render func(io.Writer, contract.Report, Options) error
}

// formats are the formats Render knows, one file each, in the order they
// are listed to a user.
var formats = []format{
	{"table", renderTable},
	{"json", renderJSON},
	{"csv", renderCSV},
	{"md", renderMarkdown},
	{"html", renderHTML},
}

// Known says whether Render knows the format called name.
func Known(name string) bool {
	return slices.ContainsFunc(formats, func(f format) bool { return f.name == name })
}

// FormatList names the formats for a user: "table, json, csv, md or html".
func FormatList() string {
	names := make([]string, len(formats))
	for i, f := range formats {
		names[i] = f.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Render writes rep, expanded (see contract.Report.Expanded), in the
// format called name. An unknown format is an error that lists the known
// ones.
func Render(w io.Writer, rep contract.Report, name string, o Options) error {
	for _, f := range formats {
		if f.name == name {
			return f.render(w, rep, o)
		}
	}
	return fmt.Errorf("unknown report format %q: want %s", name, FormatList())
}

// listedHosts are the hosts a human format lists: those that are not
// compliant (and applicable), or every host with --all, most urgent
// first, then by name.
func listedHosts(rep contract.Report, all bool) []contract.HostReport {
	var out []contract.HostReport
	for _, h := range rep.Hosts {
		if all || (h.State != rollout.StateCompliant && h.State != rollout.StateNotApplicable) {
			out = append(out, h)
		}
	}
	slices.SortStableFunc(out, func(a, b contract.HostReport) int {
		if d := rollout.AttentionRank(a.State) - rollout.AttentionRank(b.State); d != 0 {
			return d
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// headline is the one sentence a CIO reads. It says how many inventory
// hosts the rollout's steps leave out, so nobody reads the percent as the
// whole fleet's.
func headline(rep contract.Report) string {
	applicable := rep.HostCount - rep.Totals[rollout.StateNotApplicable]
	var outside string
	if rep.OutsideSteps > 0 {
		hosts := "hosts"
		if rep.OutsideSteps == 1 {
			hosts = "host"
		}
		outside = fmt.Sprintf("; %d inventory %s in no stage or wave, not counted", rep.OutsideSteps, hosts)
	}
	return fmt.Sprintf("%s compliant: %d of %d applicable hosts proven patched (%d hosts, %d not applicable%s)",
		contract.PercentText(rep.CompliancePercent), rep.Totals[rollout.StateCompliant], applicable, rep.HostCount, rep.Totals[rollout.StateNotApplicable], outside)
}

// otherStates lists a breakdown's states other than compliant, most
// urgent first: "not_effective 2, unreachable 1".
func otherStates(totals map[rollout.HostState]int) string {
	var parts []string
	for _, st := range rollout.AttentionOrder {
		if n := totals[st]; n > 0 && st != rollout.StateCompliant {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return strings.Join(parts, ", ")
}

// breakdownsOf returns the breakdowns of one dimension, in report order.
func breakdownsOf(rep contract.Report, dimension string) []contract.Breakdown {
	var out []contract.Breakdown
	for _, b := range rep.By {
		if b.Dimension == dimension {
			out = append(out, b)
		}
	}
	return out
}

// oneLine flattens text from an inventory or a host onto one line, so it
// cannot forge rows of a table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// hostLines are a host's reasons, then its evidence marked as such, each
// on one line.
func hostLines(h contract.HostReport) []string {
	var out []string
	for _, r := range h.Reasons {
		out = append(out, oneLine(r))
	}
	for _, e := range h.Evidence {
		out = append(out, "evidence: "+oneLine(e))
	}
	return out
}

func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}

// forecastLine says what the SLA forecasts said: the first, the first
// that found the rollout late, the last, and, in a final report, how far
// the first was off the actual end.
func forecastLine(f *contract.ReportForecast) string {
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }
	s := fmt.Sprintf("SLA FORECAST: first (at %s) said complete by %s; last (at %s) said %s",
		stamp(f.First.At), stamp(f.First.Completion), stamp(f.Last.At), stamp(f.Last.Completion))
	if f.FirstBreach != nil {
		s += fmt.Sprintf("; a breach was first forecast at %s", stamp(*f.FirstBreach))
	}
	if !f.Ended.IsZero() {
		off := f.OffBy
		dir := "later"
		if off < 0 {
			off, dir = -off, "earlier"
		}
		s += fmt.Sprintf("; ended %s: %s %s than first forecast", stamp(f.Ended), off.Round(time.Minute), dir)
	}
	return s
}
