package fleetsim

import (
	"cmp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchway/patchway/rollout"
)

// faultCounts counts the hosts carrying each fault.
func faultCounts(sc *Scenario) map[Fault]int {
	counts := map[Fault]int{}
	for _, h := range sc.Hosts {
		for _, f := range h.Faults {
			counts[f.Kind]++
		}
	}
	return counts
}

func TestExampleScenariosLoad(t *testing.T) {
	for _, tc := range []struct {
		file   string
		hosts  int
		faults map[Fault]int
		kb     string
	}{
		{"fleet-demo.hcl", 213, map[Fault]int{FaultRegistryOnly: 2, FaultPendingRenameNoise: 3, FaultFlaky: 2, FaultSlow: 2, FaultRevertsOnBoot: 1,
			FaultInstallFails: 1, FaultAuthFails: 1, FaultNoReboot: 1, FaultNeverReturns: 1, FaultCBSRevert: 1}, "KB5013944"},
		// The benchmark fleet leaves out faults that only add timeouts
		// (never_returns, no_reboot, slow, auth_fails).
		{"fleet-10k.hcl", 10000, map[Fault]int{FaultRegistryOnly: 20, FaultFlaky: 49, FaultInstallFails: 10,
			FaultPendingRenameNoise: 99, FaultRevertsOnBoot: 10}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			sc, diags := LoadScenario(filepath.Join("..", "examples", tc.file))
			if diags.HasErrors() {
				t.Fatalf("load: %v", diags)
			}
			if len(sc.Hosts) != tc.hosts {
				t.Errorf("%d hosts, want %d", len(sc.Hosts), tc.hosts)
			}
			got := faultCounts(sc)
			for kind, n := range tc.faults {
				if got[kind] != n {
					t.Errorf("%s on %d hosts, want %d", kind, got[kind], n)
				}
			}
			if len(got) != len(tc.faults) {
				t.Errorf("faults placed %v, want %v", got, tc.faults)
			}
			for _, h := range sc.Hosts {
				if h.Host.Region == "" || h.Host.Site == "" || h.Host.OS == "" {
					t.Fatalf("host %+v lacks region, site or OS", h.Host)
				}
			}
			kb := cmp.Or(tc.kb, "KB958644")
			if _, ok := sc.Catalog[kb]; !ok {
				t.Errorf("catalogue lacks %s: %v", kb, sortedKeys(sc.Catalog))
			}
			again, _ := LoadScenario(filepath.Join("..", "examples", tc.file))
			for i := range sc.Hosts {
				if len(sc.Hosts[i].Faults) != len(again.Hosts[i].Faults) {
					t.Fatalf("fault placement differs between two loads at host %s", sc.Hosts[i].Host.Name)
				}
			}
		})
	}
}

func TestInvalidScenariosSayWhy(t *testing.T) {
	const site = `site "paris" {
    region    = "emea"
    time_zone = "Europe/Paris"
  }
`
	const pop = `population "ws" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 4
    os    = ["windows-xp-sp3"]
  }
`
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unknown fault", site + pop + `fault "melts" { count = 1 }`, `fault "melts" is not one of`},
		{"unknown host", site + pop + `fault "flaky" { hosts = ["nope"] }`, `names host "nope", which is not in the fleet`},
		{"too many hosts", site + pop + `fault "flaky" { count = 9 }`, "asks for 9 hosts but only 4"},
		{"share above one", site + pop + `fault "flaky" { share = 1.5 }`, "either count"},
		{"fault on nothing", site + pop + `fault "flaky" {}`, "needs hosts = [...], count or share"},
		{"bad delay", site + pop + `fault "slow" {
    count = 1
    delay = "soon"
  }`, "Invalid delay"},
		{"bad selector", site + pop + `fault "slow" {
    count    = 1
    selector = "region:"
  }`, "Invalid selector"},
		{"unknown site", pop, `site "paris", which no site block`},
		{"bad tier", site + strings.Replace(pop, `"production"`, `"prod"`, 1), `tier "prod"`},
		{"duplicate population", site + pop + pop, "appears twice"},
		{"missing rollout", `patches_from = ["missing.hcl"]`, "Cannot read rollout"},
		{"syntax", site + `population "ws" {`, "Unclosed configuration block"},
		{"bad booted_ago", site + strings.Replace(pop, "count = 4", `count = 4
    booted_ago = "a week"`, 1), `booted_ago = "a week" is not a duration`},
		{"bad install date", site + strings.Replace(pop, "count = 4", `count = 4
    installed_on = { KB958644 = "10/11/2026" }`, 1), `installed_on KB958644 = "10/11/2026" is not a date`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fleet.hcl")
			if err := os.WriteFile(path, []byte("fleet \"t\" {\n  "+tc.body+"\n}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, diags := LoadScenario(path)
			if !diags.HasErrors() || !strings.Contains(diags.Error(), tc.want) {
				t.Fatalf("diagnostics %q, want one containing %q", diags.Error(), tc.want)
			}
		})
	}
}

func TestFleetInventoryRoundTripsAndKeepsPorts(t *testing.T) {
	f := startFleet(t, Options{}, FaultFlaky)
	path := filepath.Join(t.TempDir(), "inventory.hcl")
	if err := f.WriteInventory(path); err != nil {
		t.Fatal(err)
	}
	inv, diags := rollout.LoadInventory(path)
	if diags.HasErrors() {
		t.Fatalf("written inventory does not load: %v", diags)
	}
	if len(inv.Hosts) != 2 || inv.Hosts[0].TLS.CAFile == "" || inv.Hosts[0].Credential != "fleet" {
		t.Fatalf("inventory hosts %+v: want 2 with the fleet's CA and credential set", inv.Hosts)
	}
	ports := PortsFromInventory(inv)
	addrs := map[string]string{}
	for _, h := range inv.Hosts {
		addrs[h.Name] = h.Address
	}
	f.Close()
	again := startFleet(t, Options{Ports: ports}, FaultFlaky)
	for _, h := range again.Inventory().Hosts {
		if h.Address != addrs[h.Name] {
			t.Errorf("%s restarted on %s, want its previous %s", h.Name, h.Address, addrs[h.Name])
		}
	}
}
