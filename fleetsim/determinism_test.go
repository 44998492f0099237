package fleetsim

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/patchway/patchway/rollout"
)

// overlappingScenario has KBs that ship the same file (spelled in
// different cases) at different versions, and hosts with several of them
// installed, in either order.
func overlappingScenario() *Scenario {
	const os = "windows-server-2003-sp2"
	file := func(path, v string) map[string][]rollout.FileEvidence {
		return map[string][]rollout.FileEvidence{os: {{OS: os, Path: path, MinVersion: v}}}
	}
	catalog := map[string]CatalogEntry{}
	for i, v := range []string{"5.2.3790.4392", "5.2.3790.10000", "5.2.3790.4500", "5.2.3790.9999", "5.2.3790.5000", "5.2.3790.4800"} {
		kb := fmt.Sprintf("KB95%04d", i)
		path := `C:\Windows\System32\netapi32.dll`
		if i%2 == 1 {
			path = `c:\windows\system32\NETAPI32.DLL`
		}
		catalog[kb] = CatalogEntry{KB: kb, Reboot: true, Files: file(path, v)}
	}
	sc := &Scenario{Name: "overlap", Catalog: catalog, Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}}}
	for i, installed := range [][]string{nil, {"KB950000", "KB950001"}, {"KB950001", "KB950000"}, {"KB950002", "KB950004", "KB950005"}, {"kb950003", "KB950002"}} {
		sc.Hosts = append(sc.Hosts, HostSpec{Host: rollout.Host{Name: fmt.Sprintf("h%d", i), OS: os, Site: "paris", Region: "emea", Tier: "lab", Role: "server"}, Installed: installed})
	}
	return sc
}

func TestTheSameScenarioGivesTheSameFleet(t *testing.T) {
	start := func() []Snapshot {
		f, err := Start(context.Background(), overlappingScenario(), Options{Password: testPassword, Plain: true})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var snaps []Snapshot
		for _, h := range f.Hosts() {
			s := h.Snapshot()
			s.BootTime = s.BootTime.Truncate(0)
			snaps = append(snaps, s)
		}
		return snaps
	}
	first := start()
	want := map[string]string{
		"h0": "5.2.3790.4210",  // below every KB's version: none installed
		"h1": "5.2.3790.10000", // the higher of the two installed
		"h2": "5.2.3790.10000", // whatever the order they are listed in
		"h3": "5.2.3790.5000",
		"h4": "5.2.3790.9999",
	}
	for _, s := range first {
		if len(s.Files) != 1 || s.Files[`C:\Windows\System32\netapi32.dll`] != want[s.Name] {
			t.Errorf("%s starts with %v, want netapi32.dll (first spelling, sorted by KB) at %s", s.Name, s.Files, want[s.Name])
		}
	}
	for i := range 20 {
		again := start()
		for j := range first {
			if !reflect.DeepEqual(first[j].Files, again[j].Files) || !reflect.DeepEqual(sortedHotfixes(first[j]), sortedHotfixes(again[j])) {
				t.Fatalf("build %d: host %s starts with %v, the first build with %v", i+2, first[j].Name, again[j].Files, first[j].Files)
			}
		}
	}
}

func sortedHotfixes(s Snapshot) []string {
	m := map[string]bool{}
	for _, kb := range s.Hotfixes {
		m[kb] = true
	}
	return sortedKeys(m)
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"5.1.2600.5694", "5.1.2600.5512", 1},
		{"5.1.2600.10000", "5.1.2600.9999", 1},
		{"6.0", "6.0.0.0", 0},
		{"6.0.6001.18000", "6.1", -1},
		{"1.0.beta", "1.0.alpha", 1},
	} {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
