package contract

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/patchway/patchway/rollout"
)

// Advisory is the internal advisory to every IT manager (step 4 of the
// patch policy): the vulnerability, how exploitable it is, how to find
// vulnerable hosts, what to do meanwhile, and what testing found. It is
// rendered twice, in Markdown for chat and in plain text for mail, from
// the same facts. Rendering is pure, so workflows may call it.
type Advisory struct {
	RolloutID string
	Patch     rollout.Patch
	Risk      rollout.Risk
	Deadline  time.Time
	// SLA is the risk decision's SLA as text ("12h0m0s (critical, worm)").
	SLA string
	// Edition 1 is sent at the start; edition 2 after the lab stage adds
	// Lab.
	Edition int
	Lab     *LabFindings
	// Baseline is the preflight scan, when the rollout ran one.
	Baseline *Baseline
}

// LabFindings is what the first pre-production stage showed.
type LabFindings struct {
	Stage string
	Hosts int
	// States counts the stage's hosts per state, in the order of
	// rollout.HostStates.
	States []StateCount
	// Problems are the non-compliant hosts with their reasons (bounded).
	Problems []string
}

// StateCount is the number of hosts in one state.
type StateCount struct {
	State rollout.HostState
	Count int
}

// Title is the advisory's subject line.
func (a Advisory) Title() string {
	p := a.Patch
	name := strings.TrimSpace(p.Bulletin + " " + p.KB)
	if a.Edition >= 2 {
		return fmt.Sprintf("Updated advisory after the lab: %s %s", name, p.Title)
	}
	return fmt.Sprintf("Advisory: %s %s (%s)", name, p.Title, p.Severity)
}

// facts are the advisory's label/value lines, shared by both renderings.
func (a Advisory) facts() [][2]string {
	p, r := a.Patch, a.Risk
	exploit := "no public exploit known"
	switch {
	case r.WormInTheWild:
		exploit = "a worm exploits it in the wild"
	case r.ExploitPublic:
		exploit = "a public exploit exists"
	}
	deadline := "not set"
	if !a.Deadline.IsZero() {
		deadline = a.Deadline.UTC().Format("2006-01-02 15:04 MST")
		if a.SLA != "" {
			deadline += " (SLA " + a.SLA + ")"
		}
	}
	return [][2]string{
		{"Severity", string(p.Severity)},
		{"CVEs", cmp.Or(strings.Join(p.CVEs, ", "), "none listed")},
		{"Published", formatTime(p.Published)},
		{"Deadline", deadline},
		{"Exploit", exploit},
		{"Exposure", cmp.Or(r.Exposure, "unknown")},
		{"Reboot", cmp.Or(string(p.Reboot), "unknown")},
		{"Supersedes", cmp.Or(strings.Join(p.Supersedes, ", "), "nothing")},
	}
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return t.UTC().Format("2006-01-02 15:04 MST")
}

// lists are the advisory's sections of items, shared by both renderings.
func (a Advisory) lists() []struct {
	title, empty string
	items        []string
} {
	workaround := []string{}
	if a.Risk.Workaround != "" {
		workaround = append(workaround, a.Risk.Workaround)
	}
	return []struct {
		title, empty string
		items        []string
	}{
		{"Scanners that find vulnerable hosts", "none listed", a.Risk.Scanners},
		{"Workaround until patched", "none known", workaround},
		{"Known side effects (tests and public feedback)", "none reported", a.Risk.SideEffects},
	}
}

// Markdown renders the advisory for chat and Markdown-aware readers.
func (a Advisory) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## %s\n\n", mdEscape(a.Title()))
	fmt.Fprintf(&b, "Rollout `%s` patches **%s**", a.RolloutID, mdEscape(a.Patch.KB))
	if a.Patch.Title != "" {
		fmt.Fprintf(&b, ": %s", mdEscape(a.Patch.Title))
	}
	b.WriteString(".\n\n")
	for _, f := range a.facts() {
		fmt.Fprintf(&b, "- **%s:** %s\n", f[0], mdEscape(f[1]))
	}
	for _, l := range a.lists() {
		fmt.Fprintf(&b, "\n### %s\n\n", l.title)
		if len(l.items) == 0 {
			fmt.Fprintf(&b, "- %s\n", l.empty)
		}
		for _, it := range l.items {
			fmt.Fprintf(&b, "- %s\n", mdEscape(it))
		}
	}
	if a.Baseline != nil {
		fmt.Fprintf(&b, "\n### Preflight scan, before any host was touched\n\n%s\n", mdEscape(a.Baseline.Summary()))
	}
	if a.Lab != nil {
		fmt.Fprintf(&b, "\n### What the %s stage found\n\n", mdEscape(a.Lab.Stage))
		fmt.Fprintf(&b, "%d hosts: %s\n", a.Lab.Hosts, a.Lab.counts())
		for _, p := range a.Lab.Problems {
			fmt.Fprintf(&b, "- %s\n", mdEscape(p))
		}
	}
	return b.String()
}

// Text renders the advisory as plain text for mail.
func (a Advisory) Text() string {
	var b strings.Builder
	title := a.Title()
	fmt.Fprintf(&b, "%s\n%s\n\n", title, strings.Repeat("=", min(len(title), 72)))
	fmt.Fprintf(&b, "Rollout %s patches %s", a.RolloutID, a.Patch.KB)
	if a.Patch.Title != "" {
		fmt.Fprintf(&b, ": %s", a.Patch.Title)
	}
	b.WriteString(".\n\n")
	for _, f := range a.facts() {
		fmt.Fprintf(&b, "  %-11s %s\n", f[0]+":", f[1])
	}
	for _, l := range a.lists() {
		fmt.Fprintf(&b, "\n%s:\n", l.title)
		if len(l.items) == 0 {
			fmt.Fprintf(&b, "  - %s\n", l.empty)
		}
		for _, it := range l.items {
			fmt.Fprintf(&b, "  - %s\n", it)
		}
	}
	if a.Baseline != nil {
		fmt.Fprintf(&b, "\nPreflight scan, before any host was touched: %s\n", a.Baseline.Summary())
	}
	if a.Lab != nil {
		fmt.Fprintf(&b, "\nWhat the %s stage found: %d hosts: %s\n", a.Lab.Stage, a.Lab.Hosts, a.Lab.counts())
		for _, p := range a.Lab.Problems {
			fmt.Fprintf(&b, "  - %s\n", p)
		}
	}
	return b.String()
}

func (l *LabFindings) counts() string {
	var parts []string
	for _, c := range l.States {
		parts = append(parts, fmt.Sprintf("%d %s", c.Count, c.State))
	}
	if len(parts) == 0 {
		return "none patched"
	}
	return strings.Join(parts, ", ")
}

// mdEscape keeps text from the rollout file (titles, workarounds, host
// reasons) from being read as Markdown markup.
var mdEscaper = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`", "[", `\[`, "]", `\]`, "<", "&lt;", ">", "&gt;")

func mdEscape(s string) string { return mdEscaper.Replace(s) }
