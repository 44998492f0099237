package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/converter"

	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/report/reporttest"
	"github.com/patchway/patchway/rollout"
)

// payloadSize is how many bytes v takes as a Temporal payload with the
// default data converter (JSON), the size the server's limit applies to.
func payloadSize(t *testing.T, v any) int {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(p.GetData())
}

// TestReportOf10000HostsFitsInAPayload measures the report and its input
// for a 10,000-host rollout: both must travel well under the 2 MB
// payload limit (the goal is under 1 MB), and the host list must read
// back whole.
func TestReportOf10000HostsFitsInAPayload(t *testing.T) {
	const n = 10000
	in := reporttest.Big(n)
	plainIn := payloadSize(t, in)
	packed, err := in.Pack()
	if err != nil {
		t.Fatal(err)
	}
	packedIn := payloadSize(t, packed)
	rep, err := ReportActivities{Policy: testPolicy(t)}.BuildReport(context.Background(), packed)
	if err != nil {
		t.Fatal(err)
	}
	full, err := report.Build(context.Background(), testPolicy(t), in)
	if err != nil {
		t.Fatal(err)
	}
	plainRep := payloadSize(t, full)
	compactRep := payloadSize(t, rep)
	t.Logf("10,000 hosts: report input %d bytes plain, %d packed; report %d bytes plain, %d with the host list gzipped (%d unowned hosts listed)",
		plainIn, packedIn, plainRep, compactRep, len(rep.Unowned))

	const budget = 1 << 20
	tests := []struct {
		name string
		ok   bool
		why  string
	}{
		{"the plain report would not fit in a payload (why the list is gzipped)", plainRep > 2<<20, fmt.Sprintf("plain report %d bytes", plainRep)},
		{"the plain input would not fit in a payload (why it is packed)", plainIn > 2<<20, fmt.Sprintf("plain input %d bytes", plainIn)},
		{"the report is under 1 MB of JSON", compactRep < budget, fmt.Sprintf("report %d bytes", compactRep)},
		{"the report input is under 1 MB of JSON", packedIn < budget, fmt.Sprintf("input %d bytes", packedIn)},
		{"the summary stays readable JSON", len(rep.HostsGzip) > 0 && rep.Hosts == nil && len(rep.By) > 0 && rep.Totals[rollout.StateCompliant] == 8000,
			fmt.Sprintf("totals %v, %d breakdowns", rep.Totals, len(rep.By))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.ok {
				t.Error(tt.why)
			}
		})
	}

	hosts, err := rep.HostList()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(hosts)
	want, _ := json.Marshal(full.Hosts)
	if string(got) != string(want) {
		t.Errorf("the gzipped host list (%d hosts) reads back different from the built one (%d)", len(hosts), len(full.Hosts))
	}
}

func TestBuildReportActivityRefusesACorruptInput(t *testing.T) {
	in := reporttest.Big(0)
	in.Packed = []byte("not gzip")
	_, err := ReportActivities{Policy: testPolicy(t)}.BuildReport(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "unpack report input") {
		t.Errorf("error = %v, want one saying the input did not unpack", err)
	}
}
