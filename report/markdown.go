package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// mdEscaper escapes what Markdown would read as formatting, a table
// separator or inline HTML in text from inventories and hosts.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "[", `\[`, "]", `\]`,
	"<", "&lt;", ">", "&gt;", "|", `\|`, "#", `\#`,
)

func md(s string) string { return mdEscaper.Replace(oneLine(s)) }

// renderMarkdown is the report as Markdown, for a ticket or a wiki.
func renderMarkdown(w io.Writer, rep contract.Report, o Options) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Compliance report: %s\n\n", md(rep.RolloutID))
	fmt.Fprintf(&b, "%s (%s), generated %s\n\n", md(rep.KB), md(rep.Severity), rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"))
	if rep.Provisional != "" {
		fmt.Fprintf(&b, "> **Provisional** (%s): hosts may still change state.\n\n", md(rep.Provisional))
	}
	fmt.Fprintf(&b, "**%s**\n\n", md(headline(rep)))
	b.WriteString("| State | Hosts |\n|---|---:|\n")
	for _, st := range rollout.AttentionOrder {
		if n := rep.Totals[st]; n > 0 {
			fmt.Fprintf(&b, "| %s | %d |\n", md(string(st)), n)
		}
	}
	if rep.Baseline != nil {
		fmt.Fprintf(&b, "\n## Preflight scan, before any host was touched\n\n%s\n", md(rep.Baseline.Summary()))
	}
	for _, dim := range dimensions {
		fmt.Fprintf(&b, "\n## By %s\n\n| %s | Hosts | Compliant | %% | Other states |\n|---|---:|---:|---:|---|\n", dim.name, strings.ToUpper(dim.name[:1])+dim.name[1:])
		for _, bd := range breakdownsOf(rep, dim.name) {
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s |\n", md(bd.Value), bd.Hosts, bd.Totals[rollout.StateCompliant], contract.PercentText(bd.CompliancePercent), md(otherStates(bd.Totals)))
		}
	}
	if f := rep.Forecast; f != nil {
		fmt.Fprintf(&b, "\n## SLA forecast\n\n%s\n", md(forecastLine(f)))
	}
	if s := rep.Shadow; s != nil {
		fmt.Fprintf(&b, "\n## Shadow policy\n\n%s\n\n", md(s.String()))
		for _, d := range s.Differences {
			fmt.Fprintf(&b, "- %s\n", md(d.String()))
		}
	}
	if len(rep.Unverified) > 0 {
		fmt.Fprintf(&b, "\n## Unverified identity (%d)\n\nThese actions were taken with a typed name, not a verified token: who they name proves nothing.\n\n", len(rep.Unverified))
		for _, u := range rep.Unverified {
			fmt.Fprintf(&b, "- %s\n", md(u))
		}
	}
	if len(rep.Unowned) > 0 {
		fmt.Fprintf(&b, "\n## Unknown owner or purpose (%d)\n\nNobody answers for these hosts.\n\n| Host | Missing |\n|---|---|\n", len(rep.Unowned))
		for _, u := range rep.Unowned {
			fmt.Fprintf(&b, "| %s | %s |\n", md(u.Host), md(u.Reason))
		}
	}
	hosts := listedHosts(rep, o.All)
	if o.All {
		fmt.Fprintf(&b, "\n## Hosts (%d)\n\n", len(hosts))
	} else {
		fmt.Fprintf(&b, "\n## Not compliant (%d of %d applicable hosts)\n\n", len(hosts), rep.HostCount-rep.Totals[rollout.StateNotApplicable])
	}
	if len(hosts) > 0 {
		b.WriteString("| Host | State | Region | Site | Tier | Role | Owner | Reasons and evidence |\n|---|---|---|---|---|---|---|---|\n")
		for _, h := range hosts {
			var lines []string
			for _, l := range hostLines(h) {
				lines = append(lines, md(l))
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", md(h.Name), md(string(h.State)), md(h.Region), md(h.Site),
				md(string(h.Tier)), md(h.Role), md(orDash(h.Owner)), strings.Join(lines, "<br>"))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
