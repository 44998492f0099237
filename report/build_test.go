package report

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/report/reporttest"
	"github.com/patchway/patchway/rollout"
)

var reportAt = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

// reportHost is an inventory host of the report tests.
func reportHost(name, region, site string, tier rollout.Tier, role, owner, purpose string) rollout.Host {
	return rollout.Host{Name: name, Region: region, Site: site, Tier: tier, Role: role, Owner: owner, Purpose: purpose,
		OS: "windows-xp-sp3", Credential: "fleet"}
}

// owned is a production workstation somebody answers for.
func owned(name, region string) rollout.Host {
	return reportHost(name, region, region+"-hq", rollout.TierProduction, "workstation", "it-"+region, "office desktop")
}

func verdict(host string, state rollout.HostState, reasons ...string) contract.HostVerdict {
	return contract.HostVerdict{Host: host, State: state, Reasons: reasons}
}

func reportInput(hosts []rollout.Host, verdicts []contract.HostVerdict, exceptions ...contract.HostException) contract.ReportInput {
	return contract.ReportInput{
		Rollout:  rollout.Rollout{ID: "ms08-067", Patch: rollout.Patch{KB: "KB958644", Severity: rollout.SeverityCritical}},
		Hosts:    hosts,
		Verdicts: verdicts, Exceptions: exceptions, GeneratedAt: reportAt,
	}
}

func hostOf(t *testing.T, rep contract.Report, name string) contract.HostReport {
	t.Helper()
	for _, h := range rep.Hosts {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("host %s not in the report", name)
	return contract.HostReport{}
}

func TestBuildReport(t *testing.T) {
	a, b, c, d, e := owned("WS-A", "emea"), owned("WS-B", "emea"), owned("WS-C", "amer"), owned("WS-D", "amer"), owned("WS-E", "apac")
	workflowException := fmt.Sprintf("exception by carol until %s: vendor forbids patching", reportAt.Add(24*time.Hour).Format("2006-01-02T15:04Z"))
	tests := []struct {
		name  string
		in    contract.ReportInput
		check func(t *testing.T, rep contract.Report)
	}{
		{"a registry-only host is not_effective and never counted compliant",
			reportInput([]rollout.Host{a, b}, []contract.HostVerdict{
				verdict("WS-A", rollout.StateCompliant),
				verdict("WS-B", rollout.StateNotEffective, `KB958644 is present but the fix is not in effect: C:\Windows\System32\netapi32.dll is 5.1.2600.3462, below 5.1.2600.5694`),
			}),
			func(t *testing.T, rep contract.Report) {
				if rep.Totals[rollout.StateCompliant] != 1 || rep.Totals[rollout.StateNotEffective] != 1 || rep.CompliancePercent != 50 {
					t.Errorf("totals %v, %.2f%%; want 1 compliant, 1 not_effective, 50%%", rep.Totals, rep.CompliancePercent)
				}
			}},
		{"not_applicable hosts are left out of the denominator",
			reportInput([]rollout.Host{a, b, c, d, e}, []contract.HostVerdict{
				verdict("WS-A", rollout.StateCompliant), verdict("WS-B", rollout.StateCompliant), verdict("WS-C", rollout.StateFailed),
				verdict("WS-D", rollout.StateNotApplicable), verdict("WS-E", rollout.StateNotApplicable),
			}),
			func(t *testing.T, rep contract.Report) {
				if got, want := rep.CompliancePercent, 200.0/3; got != want {
					t.Errorf("compliance %.4f%%, want %.4f%% (2 of 3 applicable)", got, want)
				}
				if rep.HostCount != 5 {
					t.Errorf("host count %d, want 5 (not_applicable hosts are still listed)", rep.HostCount)
				}
			}},
		{"unknown, pending_reboot, not_effective and excepted never count as compliant",
			reportInput([]rollout.Host{a, b, c, d, e}, []contract.HostVerdict{
				verdict("WS-A", rollout.StateCompliant), verdict("WS-B", rollout.StateUnknown), verdict("WS-C", rollout.StatePendingReboot),
				verdict("WS-D", rollout.StateNotEffective), verdict("WS-E", rollout.StateExcepted),
			}),
			func(t *testing.T, rep contract.Report) {
				if rep.Totals[rollout.StateCompliant] != 1 || rep.CompliancePercent != 20 {
					t.Errorf("totals %v, %.2f%%; want 1 compliant of 5, 20%%", rep.Totals, rep.CompliancePercent)
				}
			}},
		{"no host at all reports 0 percent, not 100",
			reportInput(nil, nil),
			func(t *testing.T, rep contract.Report) {
				if rep.CompliancePercent != 0 || rep.HostCount != 0 {
					t.Errorf("empty report: %.2f%%, %d hosts", rep.CompliancePercent, rep.HostCount)
				}
			}},
		{"only not_applicable hosts report 0 percent",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateNotApplicable)}),
			func(t *testing.T, rep contract.Report) {
				if rep.CompliancePercent != 0 {
					t.Errorf("compliance %.2f%%, want 0", rep.CompliancePercent)
				}
			}},
		{"every state is in the totals, zeros included",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateCompliant)}),
			func(t *testing.T, rep contract.Report) {
				if len(rep.Totals) != len(rollout.HostStates) {
					t.Errorf("totals %v, want all %d states", rep.Totals, len(rollout.HostStates))
				}
			}},
		{"a host the workflow excepted counts once, its exception reason not repeated",
			reportInput([]rollout.Host{a, b}, []contract.HostVerdict{verdict("WS-A", rollout.StateExcepted, workflowException), verdict("WS-B", rollout.StateCompliant)},
				contract.HostException{Host: "WS-A", GrantedBy: "carol", Reason: "vendor forbids patching", Expires: reportAt.Add(24 * time.Hour)}),
			func(t *testing.T, rep contract.Report) {
				h := hostOf(t, rep, "WS-A")
				if rep.Totals[rollout.StateExcepted] != 1 || h.State != rollout.StateExcepted || len(h.Reasons) != 1 {
					t.Errorf("totals %v, host %+v; want one excepted host with the workflow's one reason", rep.Totals, h)
				}
				if rep.CompliancePercent != 50 {
					t.Errorf("compliance %.2f%%, want 50%% (excepted is applicable, not compliant)", rep.CompliancePercent)
				}
			}},
		{"an exception that holds makes a host excepted whatever its verdict",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateFailed, "install exited 1603")},
				contract.HostException{Host: "WS-A", GrantedBy: "carol", Reason: "decommissioned Friday", Expires: reportAt.Add(time.Hour)}),
			func(t *testing.T, rep contract.Report) {
				h := hostOf(t, rep, "WS-A")
				if h.State != rollout.StateExcepted || !slices.Contains(h.Reasons, "exception by carol until 2026-12-02T13:00Z: decommissioned Friday") {
					t.Errorf("host %+v, want excepted with the exception's reason", h)
				}
			}},
		{"an expired exception leaves the host unknown, never compliant or excepted",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateExcepted, workflowException)},
				contract.HostException{Host: "WS-A", GrantedBy: "carol", Reason: "vendor forbids patching", Expires: reportAt.Add(-time.Minute)}),
			func(t *testing.T, rep contract.Report) {
				h := hostOf(t, rep, "WS-A")
				if h.State != rollout.StateUnknown || !strings.Contains(strings.Join(h.Reasons, "\n"), "expired 2026-12-02T11:59Z") {
					t.Errorf("host %+v, want unknown saying the exception expired", h)
				}
			}},
		{"the latest of two exceptions for a host decides",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateExcepted, workflowException)},
				contract.HostException{Host: "WS-A", GrantedBy: "carol", Reason: "first", Expires: reportAt.Add(-time.Hour)},
				contract.HostException{Host: "WS-A", GrantedBy: "dave", Reason: "extended", Expires: reportAt.Add(24 * time.Hour)}),
			func(t *testing.T, rep contract.Report) {
				if h := hostOf(t, rep, "WS-A"); h.State != rollout.StateExcepted {
					t.Errorf("host %+v, want excepted under the extended exception", h)
				}
			}},
		{"an inventory host without a verdict is pending",
			reportInput([]rollout.Host{a}, nil),
			func(t *testing.T, rep contract.Report) {
				if h := hostOf(t, rep, "WS-A"); h.State != rollout.StatePending || len(h.Reasons) == 0 {
					t.Errorf("host %+v, want pending with a reason", h)
				}
			}},
		{"a state Patchway does not know is reported unknown",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", "patched")}),
			func(t *testing.T, rep contract.Report) {
				if h := hostOf(t, rep, "WS-A"); h.State != rollout.StateUnknown || rep.Totals[rollout.StateCompliant] != 0 {
					t.Errorf("host %+v, totals %v; want unknown", h, rep.Totals)
				}
			}},
		{"a verdict for a host the inventory no longer lists is kept",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{verdict("WS-A", rollout.StateCompliant), verdict("WS-GONE", rollout.StateFailed)}),
			func(t *testing.T, rep contract.Report) {
				if h := hostOf(t, rep, "WS-GONE"); h.State != rollout.StateFailed || h.Region != "" {
					t.Errorf("host %+v, want failed without dimensions", h)
				}
			}},
		{"evidence lines are the verdict's proof, and the inventory's dimensions are copied",
			reportInput([]rollout.Host{a}, []contract.HostVerdict{{Host: "WS-A", State: rollout.StateCompliant, Proof: []string{
				`C:\Windows\System32\netapi32.dll 5.1.2600.5694 (expected >= 5.1.2600.5694)`,
				"booted 2026-12-02T10:03:00Z after install at 2026-12-02T10:01:00Z",
			}}}),
			func(t *testing.T, rep contract.Report) {
				h := hostOf(t, rep, "WS-A")
				if len(h.Evidence) != 2 || !strings.HasPrefix(h.Evidence[1], "booted 2026-12-02T10:03:00Z") {
					t.Errorf("evidence %q", h.Evidence)
				}
				if h.Region != "emea" || h.Site != "emea-hq" || h.Tier != rollout.TierProduction || h.Role != "workstation" || h.Owner != "it-emea" || h.Purpose != "office desktop" {
					t.Errorf("dimensions not copied: %+v", h)
				}
			}},
		{"breakdowns come region, site, tier, role, each with sorted values and an empty value as (none)",
			reportInput([]rollout.Host{
				reportHost("H1", "emea", "paris", rollout.TierProduction, "workstation", "o", "p"),
				reportHost("H2", "amer", "dallas", rollout.TierLab, "web", "o", "p"),
				reportHost("H3", "", "tokyo", rollout.TierProdlike, "domain_controller", "o", "p"),
				reportHost("H4", "emea", "berlin", rollout.TierProduction, "workstation", "o", "p"),
			}, []contract.HostVerdict{verdict("H1", rollout.StateCompliant), verdict("H2", rollout.StateFailed), verdict("H3", rollout.StateCompliant), verdict("H4", rollout.StateUnreachable)}),
			func(t *testing.T, rep contract.Report) {
				var got []string
				for _, b := range rep.By {
					got = append(got, fmt.Sprintf("%s=%s:%d", b.Dimension, b.Value, b.Hosts))
				}
				want := []string{
					"region=(none):1", "region=amer:1", "region=emea:2",
					"site=berlin:1", "site=dallas:1", "site=paris:1", "site=tokyo:1",
					"tier=lab:1", "tier=prodlike:1", "tier=production:2",
					"role=domain_controller:1", "role=web:1", "role=workstation:2",
				}
				if !slices.Equal(got, want) {
					t.Errorf("breakdowns\n got %q\nwant %q", got, want)
				}
				emea := rep.By[2]
				if emea.CompliancePercent != 50 || emea.Totals[rollout.StateUnreachable] != 1 || len(emea.Totals) != 2 {
					t.Errorf("emea breakdown %+v, want 50%% with only its non-zero states", emea)
				}
			}},
		{"hosts of unknown owner or purpose are listed apart with what is missing",
			reportInput([]rollout.Host{
				reportHost("SRV-1", "emea", "paris", rollout.TierProduction, "file", "", "file share"),
				reportHost("SRV-2", "emea", "paris", rollout.TierProduction, "file", "unknown", "?"),
				reportHost("SRV-3", "emea", "paris", rollout.TierProduction, "file", "it-paris", "TBD"),
				reportHost("SRV-4", "emea", "paris", rollout.TierProduction, "file", "it-paris", "print server"),
				reportHost("SRV-5", "emea", "paris", rollout.TierProduction, "file", " n/a ", "---"),
			}, nil),
			func(t *testing.T, rep contract.Report) {
				want := []contract.UnownedHost{
					{Host: "SRV-1", Reason: "no owner"},
					{Host: "SRV-2", Reason: `owner "unknown", purpose "?"`},
					{Host: "SRV-3", Reason: `purpose "TBD"`},
					{Host: "SRV-5", Reason: `owner " n/a ", purpose "---"`},
				}
				if !slices.Equal(rep.Unowned, want) {
					t.Errorf("unowned\n got %q\nwant %q", rep.Unowned, want)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustReport(t, tt.in))
		})
	}
}

func TestBuildReportIsDeterministic(t *testing.T) {
	in := reporttest.Big(200)
	want, err := json.Marshal(mustReport(t, in))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 5 {
		shuffled := in
		shuffled.Hosts, shuffled.Verdicts = slices.Clone(in.Hosts), slices.Clone(in.Verdicts)
		rng.Shuffle(len(shuffled.Hosts), func(i, j int) { shuffled.Hosts[i], shuffled.Hosts[j] = shuffled.Hosts[j], shuffled.Hosts[i] })
		rng.Shuffle(len(shuffled.Verdicts), func(i, j int) {
			shuffled.Verdicts[i], shuffled.Verdicts[j] = shuffled.Verdicts[j], shuffled.Verdicts[i]
		})
		got, err := json.Marshal(mustReport(t, shuffled))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Fatalf("shuffle %d: the report depends on the order of hosts and verdicts", i)
		}
	}
}

func TestCompactAndPackKeepSmallThingsPlain(t *testing.T) {
	in := reporttest.Big(20)
	tests := []struct {
		name string
		ok   func() (bool, error)
	}{
		{"a small report keeps its host list plain", func() (bool, error) {
			rep, err := mustReport(t, in).Compact()
			return len(rep.Hosts) == 20 && rep.HostsGzip == nil, err
		}},
		{"a small input is not packed", func() (bool, error) {
			p, err := in.Pack()
			return len(p.Hosts) == 20 && p.Packed == nil, err
		}},
		{"a report's expanded form lists every host, never the gzip blob", func() (bool, error) {
			rep, err := mustReport(t, reporttest.Big(3000)).Compact()
			if err != nil || rep.HostsGzip == nil {
				return false, err
			}
			x, err := rep.Expanded()
			return len(x.Hosts) == 3000 && x.HostsGzip == nil, err
		}},
		{"a packed input unpacks to the same hosts and verdicts", func() (bool, error) {
			big := reporttest.Big(3000)
			p, err := big.Pack()
			if err != nil || p.Packed == nil || p.Hosts != nil {
				return false, err
			}
			u, err := p.Unpack()
			return len(u.Hosts) == 3000 && len(u.Verdicts) == 3000 && u.Verdicts[42].Host == big.Verdicts[42].Host && u.Packed == nil, err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := tt.ok()
			if err != nil || !ok {
				t.Errorf("ok %t, err %v", ok, err)
			}
		})
	}
}

// mustReport builds the report of in with the default policies.
func mustReport(t *testing.T, in contract.ReportInput) contract.Report {
	t.Helper()
	rep, err := Build(context.Background(), testPolicy(t), in)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

var (
	policyOnce   sync.Once
	policyEngine *policies.Engine
	policyErr    error
)

// testPolicy is the real policies engine with the default policies: the
// report asks it what exceptions make of hosts, as the worker's does.
func testPolicy(t testing.TB) *policies.Engine {
	t.Helper()
	policyOnce.Do(func() { policyEngine, policyErr = policies.Load(context.Background(), "") })
	if policyErr != nil {
		t.Fatal(policyErr)
	}
	return policyEngine
}
