package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// renderTable is the report as aligned plain text for a terminal.
func renderTable(w io.Writer, rep contract.Report, o Options) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Compliance report  %s  %s (%s)  generated %s\n", oneLine(rep.RolloutID), oneLine(rep.KB), oneLine(rep.Severity), rep.GeneratedAt.UTC().Format("2006-01-02 15:04Z"))
	if rep.Provisional != "" {
		fmt.Fprintf(&b, "PROVISIONAL (%s): hosts may still change state\n", rep.Provisional)
	}
	fmt.Fprintf(&b, "\n%s\n\n", headline(rep))

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATE\tHOSTS")
	for _, st := range rollout.AttentionOrder {
		if n := rep.Totals[st]; n > 0 {
			fmt.Fprintf(tw, "%s\t%d\n", st, n)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Baseline != nil {
		fmt.Fprintf(&b, "\nPREFLIGHT SCAN (before any host was touched): %s\n", rep.Baseline.Summary())
	}
	for _, dim := range dimensions {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "BY %s\tHOSTS\tCOMPLIANT\t%%\tOTHER STATES\n", strings.ToUpper(dim.name))
		for _, bd := range breakdownsOf(rep, dim.name) {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\n", oneLine(bd.Value), bd.Hosts, bd.Totals[rollout.StateCompliant], contract.PercentText(bd.CompliancePercent), otherStates(bd.Totals))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(rep.Unowned) > 0 {
		fmt.Fprintf(&b, "\nUNKNOWN OWNER OR PURPOSE (%d hosts: nobody answers for them)\n", len(rep.Unowned))
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, u := range rep.Unowned {
			fmt.Fprintf(tw, "  %s\t%s\n", oneLine(u.Host), oneLine(u.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if f := rep.Forecast; f != nil {
		b.WriteString("\n" + forecastLine(f) + "\n")
	}
	if s := rep.Shadow; s != nil {
		b.WriteString("\nSHADOW POLICY " + oneLine(s.String()) + "\n")
		for _, d := range s.Differences {
			fmt.Fprintf(&b, "  %s\n", oneLine(d.String()))
		}
	}
	if len(rep.Unverified) > 0 {
		fmt.Fprintf(&b, "\nUNVERIFIED IDENTITY (%d actions taken with a typed name, not a verified token)\n", len(rep.Unverified))
		for _, u := range rep.Unverified {
			fmt.Fprintf(&b, "  %s\n", oneLine(u))
		}
	}
	hosts := listedHosts(rep, o.All)
	if o.All {
		fmt.Fprintf(&b, "\nHOSTS (%d)\n", len(hosts))
	} else {
		fmt.Fprintf(&b, "\nNOT COMPLIANT (%d of %d applicable hosts; --all lists every host)\n", len(hosts), rep.HostCount-rep.Totals[rollout.StateNotApplicable])
	}
	if len(hosts) > 0 {
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "HOST\tSTATE\tREGION\tSITE\tTIER\tROLE\tOWNER\tREASONS AND EVIDENCE")
		for _, h := range hosts {
			lines := hostLines(h)
			first := ""
			if len(lines) > 0 {
				first = lines[0]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", oneLine(h.Name), h.State, oneLine(h.Region), oneLine(h.Site), oneLine(string(h.Tier)),
				oneLine(h.Role), oneLine(orDash(h.Owner)), first)
			for _, l := range lines[min(1, len(lines)):] {
				fmt.Fprintf(tw, "\t\t\t\t\t\t\t%s\n", l)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, trimLines(b.String()))
	return err
}

// trimLines drops the spaces tabwriter leaves after a short last column.
func trimLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}
