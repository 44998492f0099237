package workflows

import (
	"strconv"
	"strings"
	"testing"

	sdkpb "go.temporal.io/api/sdk/v1"

	"github.com/patchway/patchway/rollout"
)

// currentDetailsNow reads the current details the Web UI shows, through
// the SDK's metadata query, as the UI does.
func (h *harness) currentDetailsNow() string {
	h.t.Helper()
	v, err := h.env.QueryWorkflow("__temporal_workflow_metadata")
	if err != nil {
		h.t.Fatalf("metadata query: %v", err)
	}
	var md sdkpb.WorkflowMetadata
	if err := v.Get(&md); err != nil {
		h.t.Fatalf("decode metadata: %v", err)
	}
	return md.GetCurrentDetails()
}

// TestCurrentDetailsShowTheHaltAndAddUp halts the EMEA wave on three
// failed workstations and reads the current details there: the summary
// says halted, at which wave, why, and the time left; every step's state
// columns add up to its hosts; the failed hosts are listed by name with
// their reason.
func TestCurrentDetailsShowTheHaltAndAddUp(t *testing.T) {
	h := newHarness(t, standardInput(30))
	h.fleet.behave = haltingFleet(3)
	h.approveGates("bob")
	var details string
	h.when(func(p Progress) bool { return p.Status == StatusHalted }, func(Progress) {
		details = h.currentDetailsNow()
		h.update("abort", UpdateAbort, AbortRequest{User: "carol", Reason: "seen enough"})
	})
	if _, err := h.run(); err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	if details == "" {
		t.Fatal("the rollout never halted")
	}
	t.Logf("current details at the halt:\n%s", details)
	summary, _, _ := strings.Cut(details, "\n")
	for _, want := range []string{"**HALTED** at wave **emea**: 3 failed hosts exceed the threshold of 2", "SLA deadline ", " left at "} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	table := fenced(details, 0)
	rows := strings.Split(strings.TrimSpace(table), "\n")
	header := strings.Fields(rows[0])
	if len(rows) < 3 || len(header) < 5 || header[0] != "STEP" || header[2] != "HOSTS" {
		t.Fatalf("no step table:\n%s", table)
	}
	// STEP STATUS HOSTS, a column per state, FAILURES/MAX.
	stateCols := len(header) - 4
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		cells := strings.Fields(row)
		name := cells[0]
		seen[name] = true
		// step, status (one word), hosts, then one count per state column.
		first := 2
		if name == "total" {
			first = 1
		}
		hosts, err := strconv.Atoi(cells[first])
		if err != nil {
			t.Fatalf("row %q: hosts %q", row, cells[first])
		}
		sum := 0
		for _, c := range cells[first+1 : first+1+stateCols] {
			n, err := strconv.Atoi(c)
			if err != nil {
				t.Fatalf("row %q: count %q", row, c)
			}
			sum += n
		}
		if sum != hosts {
			t.Errorf("row %q: states add up to %d, not its %d hosts", row, sum, hosts)
		}
	}
	for _, step := range []string{"lab", "prodlike", "emea", "amer", "total"} {
		if !seen[step] {
			t.Errorf("table lacks a row for %s:\n%s", step, table)
		}
	}
	if !strings.Contains(details, "Not compliant: 3 host(s)") {
		t.Errorf("details do not count the failed hosts:\n%s", details)
	}
	list := fenced(details, 1)
	for _, name := range []string{"WS-EMEA-0001", "WS-EMEA-0002", "WS-EMEA-0003"} {
		if !strings.Contains(list, name+"  failed") {
			t.Errorf("host list lacks %s as failed:\n%s", name, list)
		}
	}
}

// fenced is the n-th fenced block of md.
func fenced(md string, n int) string {
	parts := strings.Split(md, "```text\n")
	if len(parts) <= n+1 {
		return ""
	}
	block, _, _ := strings.Cut(parts[n+1], "```")
	return block
}

// TestHostTextCannotEscapeTheFence: a host answers with a reason built to
// close the fence and inject HTML; what the UI gets is one inert line.
func TestHostTextCannotEscapeTheFence(t *testing.T) {
	hostile := "ok\n```\n<img src=x onerror=alert(1)>\u2028**owned**" + strings.Repeat("x", 400)
	got := inert(hostile, detailsReasonLimit)
	if strings.Contains(got, "`") || strings.ContainsAny(got, "\n\r\u2028") || len([]rune(got)) > detailsReasonLimit {
		t.Errorf("inert(%q) = %q", hostile, got)
	}
	esc := mdEscape("<b>x</b> **y** [z](javascript:1)")
	for _, bad := range []string{"<b>", "**y**", "[z]"} {
		if strings.Contains(esc, bad) {
			t.Errorf("mdEscape left %q in %q", bad, esc)
		}
	}
}

// TestBatchSummaryCountsFailuresByThePolicysStates: the batch's summary
// counts each state and the failures by the states the wave policy gave.
func TestBatchSummaryCountsFailuresByThePolicysStates(t *testing.T) {
	in := HostBatchInput{Hosts: make([]BatchHost, 4), FailureStates: []rollout.HostState{rollout.StateFailed, rollout.StateNotEffective}}
	b := newBatch(in)
	b.done = []HostOutcome{{State: rollout.StateCompliant}, {State: rollout.StateNotEffective}, {State: rollout.StateFailed}}
	b.failures = 2
	want := "3 of 4 hosts done: compliant 1, not_effective 1, failed 1; 2 failed by the wave policy's count"
	if got := b.summary(); got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
}
