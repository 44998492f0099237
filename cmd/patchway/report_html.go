package main

import (
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

func renderReportHTML(w io.Writer, rep contract.Report, o reportOptions) error {
	v := htmlView{
		Title:     fmt.Sprintf("Compliance report %s (%s)", rep.RolloutID, rep.KB),
		Report:    rep,
		Generated: rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"),
		Headline:  headline(rep),
		Percent:   contract.PercentText(rep.CompliancePercent),
		Chart:     regionChart(rep),
	}
	for _, st := range attentionOrder {
		if n := rep.Totals[st]; n > 0 {
			v.Totals = append(v.Totals, htmlCount{State: st, N: n, Color: stateColor(st)})
		}
	}
	for _, dim := range reportDimensions {
		d := htmlDimension{Name: dim}
		for _, b := range breakdownsOf(rep, dim) {
			d.Rows = append(d.Rows, htmlBreakdown{Value: b.Value, Hosts: b.Hosts, Compliant: b.Totals[rollout.StateCompliant],
				Percent: contract.PercentText(b.CompliancePercent), Other: otherStates(b.Totals)})
		}
		v.Dimensions = append(v.Dimensions, d)
	}
	hosts := listedHosts(rep, o.all)
	if o.all {
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
	"f1":    func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"add":   func(d, x int) int { return x + d },
	"title": func(s string) string { return strings.ToUpper(s[:1]) + s[1:] },
}).Parse(reportHTML))

// reportHTML is one self-contained page: inline CSS, inline SVG, no
// script, no external asset, so it can be mailed or archived as is.
const reportHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: #212121; margin: 2em auto; max-width: 1200px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #e0e0e0; padding-bottom: .2em; }
.meta { color: #616161; }
.provisional { background: #fff8e1; border-left: 4px solid #f9a825; padding: .6em 1em; margin: 1em 0; }
.figure { font-size: 3em; font-weight: 600; margin: .3em 0 0; }
.headline { margin: 0 0 1em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { text-align: left; padding: .3em .8em .3em 0; border-bottom: 1px solid #eeeeee; vertical-align: top; }
th { font-weight: 600; border-bottom: 2px solid #bdbdbd; }
td.n, th.n { text-align: right; }
.dot { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: .4em; vertical-align: -1px; }
.dims { display: flex; flex-wrap: wrap; gap: 0 3em; }
.hosts td.lines { font-size: .92em; }
.evidence { color: #455a64; font-family: Consolas, "Liberation Mono", monospace; font-size: .95em; }
svg text { font-size: 12px; fill: #212121; }
</style>
</head>
<body>
<h1>Compliance report: {{.Report.RolloutID}}</h1>
<p class="meta">{{.Report.KB}} ({{.Report.Severity}}), generated {{.Generated}}</p>
{{if .Report.Provisional}}<p class="provisional"><strong>Provisional</strong> ({{.Report.Provisional}}): hosts may still change state.</p>
{{end}}<p class="figure">{{.Percent}}</p>
<p class="headline">{{.Headline}}</p>

<h2>Hosts per state</h2>
<table>
<tr><th>State</th><th class="n">Hosts</th></tr>
{{range .Totals}}<tr><td><span class="dot" style="background: {{.Color}}"></span>{{.State}}</td><td class="n">{{.N}}</td></tr>
{{end}}</table>

<h2>States by region</h2>
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Host states by region" width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}">
{{range $row := .Chart.Rows}}<text x="0" y="{{$row.LabelY}}">{{$row.Label}}</text>
{{range $row.Segments}}<rect x="{{f1 .X}}" y="{{$row.BarY}}" width="{{f1 .W}}" height="{{$.Chart.BarH}}" fill="{{.Color}}"><title>{{.Title}}</title></rect>
{{end}}<text x="{{f1 $row.SummaryX}}" y="{{$row.LabelY}}">{{$row.Summary}}</text>
{{end}}{{range .Chart.Legend}}<rect x="{{.X}}" y="{{.Y}}" width="12" height="12" fill="{{.Color}}"></rect><text x="{{.X | add 18}}" y="{{.Y | add 11}}">{{.State}}</text>
{{end}}</svg>

<h2>Breakdowns</h2>
<div class="dims">
{{range .Dimensions}}<table>
<tr><th>{{title .Name}}</th><th class="n">Hosts</th><th class="n">Compliant</th><th class="n">%</th><th>Other states</th></tr>
{{range .Rows}}<tr><td>{{.Value}}</td><td class="n">{{.Hosts}}</td><td class="n">{{.Compliant}}</td><td class="n">{{.Percent}}</td><td>{{.Other}}</td></tr>
{{end}}</table>
{{end}}</div>
{{with .Report.Unowned}}
<h2>Unknown owner or purpose ({{len .}})</h2>
<p>Nobody answers for these hosts: a finding on them goes nowhere until the inventory names an owner and a purpose.</p>
<table>
<tr><th>Host</th><th>Missing</th></tr>
{{range .}}<tr><td>{{.Host}}</td><td>{{.Reason}}</td></tr>
{{end}}</table>
{{end}}
<h2>{{.HostsTitle}}</h2>
{{with .HostsNote}}<p class="meta">{{.}}</p>
{{end}}{{if .Hosts}}<table class="hosts">
<tr><th>Host</th><th>State</th><th>Region</th><th>Site</th><th>Tier</th><th>Role</th><th>Owner</th><th>Purpose</th><th>Reasons and evidence</th></tr>
{{range .Hosts}}<tr><td>{{.Name}}</td><td><span class="dot" style="background: {{.Color}}"></span>{{.State}}</td><td>{{.Region}}</td><td>{{.Site}}</td><td>{{.Tier}}</td><td>{{.Role}}</td><td>{{.Owner}}</td><td>{{.Purpose}}</td><td class="lines">{{range .Reasons}}<div>{{.}}</div>{{end}}{{range .Evidence}}<div class="evidence">{{.}}</div>{{end}}</td></tr>
{{end}}</table>
{{end}}</body>
</html>
`
