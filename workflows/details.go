package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/patchway/patchway/rollout"
)

// countOrder is the order host counts are shown in: compliant, then the
// other states most urgent first (rollout.AttentionOrder).
var countOrder = append([]rollout.HostState{rollout.StateCompliant},
	slices.DeleteFunc(slices.Clone(rollout.AttentionOrder), func(s rollout.HostState) bool { return s == rollout.StateCompliant })...)

// detailsHostLimit bounds the hosts the current details list by name.
const detailsHostLimit = 15

// detailsReasonLimit bounds each listed host's reason, in runes.
const detailsReasonLimit = 160

// currentDetails is the progress the Web UI shows as the rollout's current
// details: a summary line (status, the gate or halt it waits at, the time
// left to the deadline at now), the preflight, a table with one column
// per host state present, so that every row adds up to its hosts, and
// the hosts with a verdict other than compliant, most urgent first.
//
// The table and the host list are plain text in a fenced block. The UI
// renders current details in a sandboxed frame whose stylesheet zeroes
// every element's padding and whose content security policy refuses
// inline styles, so a Markdown or HTML table shows its cells run
// together; a monospace block keeps the columns. Inside a fence, text a
// host sent (its name, its reasons) is inert: no Markdown, no HTML.
func (r *run) currentDetails(now time.Time) string {
	p := r.progress()
	var b strings.Builder
	b.WriteString(r.detailsSummary(p, now))
	if p.Baseline != nil {
		fmt.Fprintf(&b, "\n\nPreflight scan: %s", mdEscape(p.Baseline.Summary()))
	}
	fmt.Fprintf(&b, "\n\n%d of %d hosts done.\n\n```text\n", p.HostsDone, p.HostsTotal)
	b.WriteString(stepTable(p.Steps))
	b.WriteString("```\n")
	if list := r.attentionList(); list != "" {
		b.WriteString("\n" + list)
	}
	return b.String()
}

// detailsSummary is the first line: what the rollout waits for and how
// long is left. Temporal's status badge says Running for a halted or
// gated rollout; this line says which.
func (r *run) detailsSummary(p Progress, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "**%s** %s: **%s**", mdEscape(p.KB), p.Severity, strings.ToUpper(strings.ReplaceAll(string(p.Status), "_", " ")))
	switch {
	case p.WaitingGate != "":
		fmt.Fprintf(&b, " at gate **%s**", mdEscape(p.WaitingGate))
	case p.Status == StatusHalted && p.Stage != "":
		fmt.Fprintf(&b, " at wave **%s**", mdEscape(p.Stage))
		if rec, ok := r.lastRecord("halt", p.Stage); ok {
			fmt.Fprintf(&b, ": %s", mdEscape(rec.Reason))
		}
	case p.Stage != "":
		fmt.Fprintf(&b, " at **%s**", mdEscape(p.Stage))
	}
	if !p.Deadline.IsZero() {
		fmt.Fprintf(&b, ". SLA deadline %s", p.Deadline.UTC().Format("2006-01-02 15:04 MST"))
		switch left := p.Deadline.Sub(now); {
		case r.st.Completed:
		case left > 0:
			fmt.Fprintf(&b, ", %s left at %s", roughDuration(left), now.UTC().Format("15:04 MST"))
		default:
			fmt.Fprintf(&b, ", **breached %s ago** at %s", roughDuration(-left), now.UTC().Format("15:04 MST"))
		}
	}
	if f := p.Forecast; f != nil && !r.st.Completed && !p.Breached {
		fmt.Fprintf(&b, ". Forecast: completes about %s", f.Completion.UTC().Format("2006-01-02 15:04 MST"))
		if f.Breach {
			fmt.Fprintf(&b, ", **%s after the deadline**", roughDuration(-f.Margin))
		} else {
			fmt.Fprintf(&b, ", %s before the deadline", roughDuration(f.Margin))
		}
	}
	return b.String() + "."
}

// lastRecord is the newest decision of kind about subject.
func (r *run) lastRecord(kind, subject string) (Record, bool) {
	for i := len(r.st.Records) - 1; i >= 0; i-- {
		if rec := r.st.Records[i]; rec.Kind == kind && rec.Subject == subject {
			return rec, true
		}
	}
	return Record{}, false
}

// stepTable lays the steps out in aligned columns: step, status, hosts,
// then one column per state any step has (compliant first, then the most
// urgent), and the wave policy's failure count over the most it allows
// (the policy decides which states count; the table only shows its
// answer). A total row sums the stages and waves; the retry row's hosts
// are counted in their own steps too.
func stepTable(steps []StepProgress) string {
	var states []rollout.HostState
	for _, st := range countOrder {
		for _, s := range steps {
			if s.Totals[st] > 0 {
				states = append(states, st)
				break
			}
		}
	}
	header := []string{"STEP", "STATUS", "HOSTS"}
	for _, st := range states {
		header = append(header, strings.ToUpper(string(st)))
	}
	header = append(header, "FAILURES/MAX")
	rows := [][]string{header}
	total := make([]int, len(states)+1)
	for _, s := range steps {
		row := []string{s.Name, string(s.Status), fmt.Sprint(s.Hosts)}
		for i, st := range states {
			row = append(row, fmt.Sprint(s.Totals[st]))
			if s.Kind != KindRetry {
				total[i+1] += s.Totals[st]
			}
		}
		failures := ""
		if s.Kind != KindRetry && s.Status != StepPending {
			failures = fmt.Sprintf("%d/%d", s.Failures, s.Threshold)
		}
		if s.Kind != KindRetry {
			total[0] += s.Hosts
		}
		rows = append(rows, append(row, failures))
	}
	sum := []string{"total", "", fmt.Sprint(total[0])}
	for i := range states {
		sum = append(sum, fmt.Sprint(total[i+1]))
	}
	rows = append(rows, append(sum, ""))
	return alignColumns(rows, 2)
}

// alignColumns pads rows into columns: the first two left-aligned (names),
// the rest right-aligned (counts), the last left-aligned (text).
func alignColumns(rows [][]string, leftCols int) string {
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len([]rune(cell)))
		}
	}
	var b strings.Builder
	for _, row := range rows {
		var line strings.Builder
		for i, cell := range row {
			pad := strings.Repeat(" ", width[i]-len([]rune(cell)))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < leftCols || i == len(row)-1 {
				line.WriteString(cell + pad)
			} else {
				line.WriteString(pad + cell)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	return b.String()
}

// attentionList names the hosts of the rollout's steps whose verdict is
// not compliant (pending, in-progress and not_applicable hosts are only
// counted), most urgent first, then by name, each with its first reason:
// at most detailsHostLimit of them, and how many more there are.
func (r *run) attentionList() string {
	var idx []int
	for i, rec := range r.st.Hosts {
		switch rec.State {
		case rollout.StateCompliant, rollout.StatePending, rollout.StateInProgress, rollout.StateNotApplicable:
			continue
		}
		if rec.Step >= 0 {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return ""
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if d := rollout.AttentionRank(r.st.Hosts[a].State) - rollout.AttentionRank(r.st.Hosts[b].State); d != 0 {
			return d
		}
		return strings.Compare(r.in.Hosts[a].Name, r.in.Hosts[b].Name)
	})
	shown := idx[:min(len(idx), detailsHostLimit)]
	var rows [][]string
	for _, i := range shown {
		rec := r.st.Hosts[i]
		reason := ""
		if len(rec.Reasons) > 0 {
			reason = rec.Reasons[0]
		}
		rows = append(rows, []string{inert(r.in.Hosts[i].Name, 64), string(rec.State), inert(reason, detailsReasonLimit)})
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Not compliant: %d host(s)", len(idx))
	if len(idx) > len(shown) {
		fmt.Fprintf(&b, ", the %d most urgent shown (patchway report lists all)", len(shown))
	}
	b.WriteString(".\n\n```text\n")
	b.WriteString(alignColumns(rows, 2))
	b.WriteString("```\n")
	return b.String()
}

// inert makes text from a host safe inside a fenced block: one line, no
// control characters, no backticks (which could close the fence), at
// most limit runes.
func inert(s string, limit int) string {
	s = strings.Map(func(c rune) rune {
		switch {
		case c == '`':
			return '\''
		case unicode.IsControl(c) || c == '\u2028' || c == '\u2029':
			return ' '
		}
		return c
	}, s)
	if rs := []rune(s); len(rs) > limit {
		s = string(rs[:limit-1]) + "…"
	}
	return s
}

// mdEscape escapes Markdown and HTML in text placed outside a fence.
func mdEscape(s string) string {
	var b strings.Builder
	for _, c := range inert(s, 400) {
		switch c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '\\', '*', '_', '[', ']', '#', '|', '~', '!':
			b.WriteRune('\\')
			b.WriteRune(c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// roughDuration is d to the second under a minute and to the minute
// above, as the rollout language writes durations: "45s", "2h30m", "3d4h".
func roughDuration(d time.Duration) string {
	if d < time.Minute {
		return rollout.FormatDuration(d.Round(time.Second))
	}
	return rollout.FormatDuration(d.Round(time.Minute))
}
