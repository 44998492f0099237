package rollout

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// bigCSV is an inventory CSV of n hosts over 10 sites, rows like
// examples/inventory.csv (about 225 bytes each).
func bigCSV(n int) []byte {
	var b bytes.Buffer
	b.WriteString("name,address,os,build,site,region,tier,role,cluster,owner,purpose,credential,transport,insecure,ca_file,server_name,auth,tags,time_zone,distribution_point\n")
	for i := range n {
		site := i % 10
		fmt.Fprintf(&b, "ws-%07d,ws-%07d.site%d.corp.example:5986,windows-xp-sp3,5.1.2600,site%d,emea,production,workstation,,desktop-team,\"Workstation, floor %d\",emea-admin,,,,,,desk;floor%d,Europe/Paris,https://wsus.site%d.corp.example/patches\n",
			i, i, site, site, i%7, i%7, site)
	}
	return b.Bytes()
}

// BenchmarkLoadInventoryCSV loads a CSV inventory of hosts from a file, as
// patchway validate and submit do, and reports the bytes allocated and the
// heap the result keeps, per host. PATCHWAY_BENCH_HOSTS sets the number of
// hosts (default 100,000; the finding was about 1,000,000).
func BenchmarkLoadInventoryCSV(b *testing.B) {
	n := 100000
	if s := os.Getenv("PATCHWAY_BENCH_HOSTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	path := filepath.Join(b.TempDir(), "inventory.csv")
	if err := os.WriteFile(path, bigCSV(n), 0o600); err != nil {
		b.Fatal(err)
	}
	var kept, alloc uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		inv, ranges, src, diags := loadInventoryRanges(path)
		if diags.HasErrors() || len(inv.Hosts) != n {
			b.Fatalf("%d hosts, %v", len(inv.Hosts), diags[:min(len(diags), 3)])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept += after.HeapAlloc - before.HeapAlloc
		alloc += after.TotalAlloc - before.TotalAlloc
		runtime.KeepAlive(inv)
		runtime.KeepAlive(ranges)
		runtime.KeepAlive(src)
	}
	b.ReportMetric(float64(alloc)/float64(b.N)/float64(n), "alloc-B/host")
	b.ReportMetric(float64(kept)/float64(b.N)/float64(n), "kept-B/host")
	b.ReportMetric(0, "ns/op")
}

// TestCSVInventoryMemoryPerHost: a 1,000,000-host CSV took 54 s and
// 6.9 GB, over 12 KB allocated a host (a map of ranges and a Ranges key
// for each field, hosts copied into maps by value). Decoding now
// allocates about 3 KB a host; the bound leaves room for the runtime.
func TestCSVInventoryMemoryPerHost(t *testing.T) {
	const n = 20000
	src := bigCSV(n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	inv, ranges, diags := DecodeInventoryCSVRanges("big.csv", src)
	runtime.ReadMemStats(&after)
	if diags.HasErrors() || len(inv.Hosts) != n {
		t.Fatalf("%d hosts, %v", len(inv.Hosts), diags)
	}
	if perHost := (after.TotalAlloc - before.TotalAlloc) / n; perHost > 6000 {
		t.Errorf("decoding allocated %d bytes a host, want at most 6000", perHost)
	}
	// The compact ranges still answer every key.
	row := strings.Split(string(src), "\n")[12346]
	owner := fmt.Sprintf("big.csv:12347:%d", strings.Index(row, "desktop-team")+1)
	for key, want := range map[string]string{
		"host[ws-0012345]":               "big.csv:12347:1",
		"host[ws-0012345].address":       "big.csv:12347:12",
		"host[ws-0012345].owner":         owner,
		"host[ws-0012345].tls.auth":      "big.csv:12347:1", // empty: the host
		"host[ws-0012345].owner.missing": owner,
	} {
		rng, ok := ranges.Lookup(key)
		if got := fmt.Sprintf("%s:%d:%d", rng.Filename, rng.Start.Line, rng.Start.Column); !ok || got != want {
			t.Errorf("Lookup(%q) = %s, %v; want %s", key, got, ok, want)
		}
	}
	if _, ok := ranges.Lookup("host[nobody].owner"); ok {
		t.Error("Lookup of an unknown host found a range")
	}
	merged := NewRanges()
	merged.Merge(ranges)
	if rng, ok := merged.Lookup("host[ws-0000001].os"); !ok || rng.Start.Line != 3 {
		t.Errorf("merged Lookup = %v, %v", rng, ok)
	}
}
