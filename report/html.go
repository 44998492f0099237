package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"strings"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// stateColors are the colours of the states in the HTML report: green
// only for compliant, reds for what looks patched or failed, amber for a
// missing reboot, greys for no proof and not concerned, blue for excepted.
var stateColors = map[rollout.HostState]string{
	rollout.StateCompliant:     "#2e7d32",
	rollout.StateNotEffective:  "#b71c1c",
	rollout.StateFailed:        "#e53935",
	rollout.StateUnknown:       "#616161",
	rollout.StatePendingReboot: "#f9a825",
	rollout.StateUnreachable:   "#6d4c41",
	rollout.StateRolledBack:    "#8e24aa",
	rollout.StateInProgress:    "#64b5f6",
	rollout.StatePending:       "#cfd8dc",
	rollout.StateExcepted:      "#1565c0",
	rollout.StateNotApplicable: "#e0e0e0",
	// Another machine answered: the colour of an alarm, not of a failure.
	rollout.StateIdentityMismatch: "#ff6f00",
}

func stateColor(s rollout.HostState) string {
	if c, ok := stateColors[s]; ok {
		return c
	}
	return "#000000"
}

// htmlView is what the HTML template renders; every string in it is
// escaped by html/template, inventories being untrusted input.
type htmlView struct {
	Title      string
	Report     contract.Report
	Generated  string
	Headline   string
	Percent    string
	Totals     []htmlCount
	Chart      svgChart
	Dimensions []htmlDimension
	HostsTitle string
	HostsNote  string
	Hosts      []htmlHost
}

type htmlCount struct {
	State rollout.HostState
	N     int
	Color string
}

type htmlDimension struct {
	Name string
	Rows []htmlBreakdown
}

type htmlBreakdown struct {
	Value     string
	Hosts     int
	Compliant int
	Percent   string
	Other     string
}

type htmlHost struct {
	contract.HostReport
	Color string
}

// svgChart is the stacked bar chart of states by region, laid out here
// so the template only draws.
type svgChart struct {
	Width, Height, BarH int
	Rows                []svgRow
	Legend              []svgLegend
}

type svgRow struct {
	Label        string
	LabelY, BarY int
	Summary      string
	SummaryX     float64
	Segments     []svgSegment
}

type svgSegment struct {
	X, W  float64
	Color string
	Title string
}

type svgLegend struct {
	X, Y  int
	Color string
	State rollout.HostState
}

// Chart geometry in SVG user units.
const (
	chartLabelW = 150
	chartBarW   = 520
	chartRowH   = 26
	chartBarH   = 18
	chartLegend = 20
	chartPerRow = 5
	chartItemW  = 150
)

// regionChart lays out one bar per region, as long as its host count
// relative to the largest region, split into its states.
func regionChart(rep contract.Report) svgChart {
	regions := breakdownsOf(rep, "region")
	most := 1
	for _, r := range regions {
		most = max(most, r.Hosts)
	}
	c := svgChart{Width: chartLabelW + chartBarW + 180, BarH: chartBarH}
	y := 8
	for _, r := range regions {
		row := svgRow{Label: r.Value, LabelY: y + chartBarH - 4, BarY: y,
			Summary: fmt.Sprintf("%d hosts, %s", r.Hosts, contract.PercentText(r.CompliancePercent))}
		x := float64(chartLabelW)
		for _, st := range rollout.HostStates {
			n := r.Totals[st]
			if n == 0 {
				continue
			}
			w := float64(n) * chartBarW / float64(most)
			row.Segments = append(row.Segments, svgSegment{X: x, W: w, Color: stateColor(st), Title: fmt.Sprintf("%s: %s %d", r.Value, st, n)})
			x += w
		}
		row.SummaryX = x + 8
		c.Rows = append(c.Rows, row)
		y += chartRowH
	}
	y += 10
	var present []rollout.HostState
	for _, st := range rollout.HostStates {
		if rep.Totals[st] > 0 {
			present = append(present, st)
		}
	}
	for i, st := range present {
		c.Legend = append(c.Legend, svgLegend{X: (i % chartPerRow) * chartItemW, Y: y + (i/chartPerRow)*chartLegend, Color: stateColor(st), State: st})
	}
	c.Height = y + ((len(present)+chartPerRow-1)/chartPerRow)*chartLegend + 4
	return c
}

// renderHTML is the report as one self-contained HTML page.
func renderHTML(w io.Writer, rep contract.Report, o Options) error {
	v := htmlView{
		Title:     fmt.Sprintf("Compliance report %s (%s)", rep.RolloutID, rep.KB),
		Report:    rep,
		Generated: rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"),
		Headline:  headline(rep),
		Percent:   contract.PercentText(rep.CompliancePercent),
		Chart:     regionChart(rep),
	}
	for _, st := range rollout.AttentionOrder {
		if n := rep.Totals[st]; n > 0 {
			v.Totals = append(v.Totals, htmlCount{State: st, N: n, Color: stateColor(st)})
		}
	}
	for _, dim := range dimensions {
		d := htmlDimension{Name: dim.name}
		for _, b := range breakdownsOf(rep, dim.name) {
			d.Rows = append(d.Rows, htmlBreakdown{Value: b.Value, Hosts: b.Hosts, Compliant: b.Totals[rollout.StateCompliant],
				Percent: contract.PercentText(b.CompliancePercent), Other: otherStates(b.Totals)})
		}
		v.Dimensions = append(v.Dimensions, d)
	}
	hosts := listedHosts(rep, o.All)
	if o.All {
		v.HostsTitle = fmt.Sprintf("Hosts (%d)", len(hosts))
	} else {
		v.HostsTitle = fmt.Sprintf("Not compliant (%d of %d applicable hosts)", len(hosts), rep.HostCount-rep.Totals[rollout.StateNotApplicable])
		v.HostsNote = "Compliant and not applicable hosts are left out; patchway report --all lists every host."
	}
	for _, h := range hosts {
		v.Hosts = append(v.Hosts, htmlHost{HostReport: h, Color: stateColor(h.State)})
	}
	if err := reportTemplate.Execute(w, v); err != nil {
		return fmt.Errorf("execute HTML template: %w", err)
	}
	return nil
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f1":       func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"add":      func(d, x int) int { return x + d },
	"title":    func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
	"forecast": forecastLine,
}).Parse(reportHTML))

// reportHTML is one self-contained page: inline CSS, inline SVG, no
// script, no external asset, so it can be mailed or archived as is.
//
//go:embed html.tmpl
var reportHTML string
