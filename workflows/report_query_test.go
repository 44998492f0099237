package workflows

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/rollout"
)

// reportNow asks the report query and builds the report a client would.
func (h *harness) reportNow() contract.Report {
	h.t.Helper()
	v, err := h.env.QueryWorkflow(QueryReport)
	if err != nil {
		h.t.Fatalf("query report: %v", err)
	}
	var in contract.ReportInput
	if err := v.Get(&in); err != nil {
		h.t.Fatalf("decode report input: %v", err)
	}
	in, err = in.Unpack()
	if err != nil {
		h.t.Fatal(err)
	}
	rep, err := report.Build(context.Background(), h.engine, in)
	if err != nil {
		h.t.Fatal(err)
	}
	return rep
}

// TestReportQueryBuildsTheReportFinishWould queries the report input
// while the lab soaks and after the rollout ended: the provisional report
// shows what is proven so far, and the one built from the ended rollout's
// query is the workflow's own result.
func TestReportQueryBuildsTheReportFinishWould(t *testing.T) {
	h := newHarness(t, standardInput(5))
	h.approveGates("bob")
	h.at(time.Minute, func() {
		h.update("except", UpdateExcept, ExceptRequest{Host: "WS-AMER-0003", User: "carol", Reason: "lab instrument", Expires: testStart.Add(90 * 24 * time.Hour)})
	})
	var soaking contract.Report
	h.at(2*time.Hour, func() { soaking = h.reportNow() })
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	ended := h.reportNow()
	all := len(h.in.Hosts)
	tests := []struct {
		name      string
		got, want map[rollout.HostState]int
	}{
		{"while the lab soaks only the lab hosts are compliant, the excepted host is excepted, the rest pending", soaking.Totals,
			map[rollout.HostState]int{rollout.StateCompliant: 2, rollout.StateExcepted: 1, rollout.StatePending: all - 3}},
		{"the workflow's report counts every host but the excepted one compliant", rep.Totals,
			map[rollout.HostState]int{rollout.StateCompliant: all - 1, rollout.StateExcepted: 1}},
		{"the ended rollout's query gives the workflow's report", ended.Totals, rep.Totals},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, st := range rollout.HostStates {
				if tt.got[st] != tt.want[st] {
					t.Errorf("%s: %d, want %d (totals %v)", st, tt.got[st], tt.want[st], tt.got)
				}
			}
		})
	}
	if soaking.HostCount != all || len(soaking.By) == 0 {
		t.Errorf("provisional report lists %d hosts and %d breakdowns, want all %d hosts", soaking.HostCount, len(soaking.By), all)
	}
}

// TestCompletionNoticeAgreesWithTheReport builds, with the real
// report.Build and policies, the reports of rollouts where 32 of 45 and 27
// of 38 hosts end compliant, and checks that the completion notice states
// the percent the report shows: the notice once rounded to nearest and
// said 71.1 % where the report said 71.0 %.
func TestCompletionNoticeAgreesWithTheReport(t *testing.T) {
	engine, err := testEngine()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		compliant, hosts int
		want             string
	}{
		{32, 45, "71.1%"},
		{27, 38, "71.0%"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d of %d", tt.compliant, tt.hosts), func(t *testing.T) {
			in := contract.ReportInput{Rollout: fixture.Rollout(testStart), GeneratedAt: testStart}
			for i := range tt.hosts {
				name := fmt.Sprintf("WS-%02d", i)
				state := rollout.StateCompliant
				if i >= tt.compliant {
					state = rollout.StateFailed
				}
				in.Hosts = append(in.Hosts, rollout.Host{Name: name, Region: "emea"})
				in.Verdicts = append(in.Verdicts, contract.HostVerdict{Host: name, State: state})
			}
			rep, err := report.Build(context.Background(), engine, in)
			if err != nil {
				t.Fatal(err)
			}
			var table bytes.Buffer
			if err := report.Render(&table, rep, "table", report.Options{}); err != nil {
				t.Fatal(err)
			}
			title := completionTitle(rep.KB, StatusCompleted, rep)
			if !strings.Contains(table.String(), "\n"+tt.want+" compliant:") || !strings.Contains(title, ": "+tt.want+" of hosts compliant") {
				t.Errorf("notice %q and report headline disagree or are not %s:\n%s", title, tt.want, table.String())
			}
		})
	}
}

// TestReportLeavesOutHostsNoStepSelects runs a rollout whose inventory
// holds a host no stage or wave selects: the report neither lists it nor
// counts it pending (which would lower the percent for a host the rollout
// never meant to patch), and says how many such hosts there are.
func TestReportLeavesOutHostsNoStepSelects(t *testing.T) {
	in := standardInput(3)
	outside := in.Hosts[len(in.Hosts)-1]
	outside.Name, outside.Region = "WS-APAC-0001", "apac"
	in.Hosts = append(in.Hosts, outside)
	h := newHarness(t, in)
	h.approveGates("bob")
	rep, err := h.run()
	if err != nil {
		t.Fatalf("rollout failed: %v", err)
	}
	hosts, err := rep.HostList()
	if err != nil {
		t.Fatal(err)
	}
	planned := len(in.Hosts) - 1
	if rep.HostCount != planned || len(hosts) != planned || rep.OutsideSteps != 1 || rep.Totals[rollout.StatePending] != 0 {
		t.Errorf("report: %d hosts (%d listed), %d outside the steps, totals %v; want %d hosts, 1 outside, none pending",
			rep.HostCount, len(hosts), rep.OutsideSteps, rep.Totals, planned)
	}
	for _, hr := range hosts {
		if hr.Name == outside.Name {
			t.Errorf("the report lists %s, which no step selects", hr.Name)
		}
	}
	var table bytes.Buffer
	if err := report.Render(&table, rep, "table", report.Options{}); err != nil {
		t.Fatal(err)
	}
	if want := "; 1 inventory host in no stage or wave, not counted)"; !strings.Contains(table.String(), want) {
		t.Errorf("headline lacks %q:\n%s", want, table.String())
	}
}
