package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/fleetsim"
)

// TestBenchmarkRunsEndToEndOnASmallFleet runs the whole benchmark on 50
// hosts (build, server, worker, fleet, rollout with approvals, baseline,
// profiles) and checks the table has every column and sane numbers. It
// writes its report to a temporary file, never to bench/RESULTS.md.
func TestBenchmarkRunsEndToEndOnASmallFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test runs the real benchmark (about a minute); make test runs it")
	}
	t.Setenv("BENCH_N", "50")
	t.Setenv("BENCH_P", "16")
	t.Setenv("BENCH_LARGE", "")
	results := filepath.Join(t.TempDir(), "RESULTS.md")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	args := []string{"-results", results}
	if bin := os.Getenv("PATCHWAY_BENCH_BIN"); bin != "" {
		if !filepath.IsAbs(bin) { // relative to the module root, like bin/patchway
			root, err := repoRoot()
			if err != nil {
				t.Fatal(err)
			}
			bin = filepath.Join(root, bin)
		}
		args = append(args, "-patchway", bin)
	}
	if err := run(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("benchmark: %v\n%s", err, stderr.String())
	}
	written, err := os.ReadFile(results)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(written, stdout.Bytes()) {
		t.Error("the results file differs from what the benchmark printed")
	}
	header, row := tableRow(t, stdout.String(), "| 50 |")
	for i, c := range columns {
		if i >= len(header) || header[i] != c {
			t.Fatalf("column %d is %q, want %q (header %q)", i, at(header, i), c, header)
		}
	}
	if len(row) != len(columns) {
		t.Fatalf("the row has %d cells for %d columns: %q", len(row), len(columns), row)
	}
	cell := func(name string) float64 {
		for i, c := range columns {
			if c == name {
				v, err := strconv.ParseFloat(strings.Fields(row[i])[0], 64)
				if err != nil {
					t.Fatalf("%s = %q: %v", name, row[i], err)
				}
				return v
			}
		}
		t.Fatalf("no column %s", name)
		return 0
	}
	for _, name := range []string{"rollout wall", "baseline wall", "ratio", "events/host", "history/host", "records/host", "max history", "worker RSS", "server RSS", "fleet RSS", "decisions", "p50/decision", "p99/decision"} {
		if v := cell(name); v <= 0 {
			t.Errorf("%s = %v, want > 0", name, v)
		}
	}
	// Three compliance decisions per host: the preflight, and the host's
	// sequence before and after its install.
	for _, want := range []string{"- date: ", "- machine: ", "reboot downtime 200ms", "| 50 | compliance | 150 |", "| 50 | identity | 50 |", "### N = 50, worker", "### N = 50, server", "flat%"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

// tableRow finds the header of the results table and its row starting
// with prefix, split into cells.
func tableRow(t *testing.T, report, prefix string) (header, row []string) {
	t.Helper()
	cells := func(line string) []string {
		parts := strings.Split(strings.Trim(line, "|"), "|")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts
	}
	for _, line := range strings.Split(report, "\n") {
		switch {
		case header == nil && strings.HasPrefix(line, "| N | P |"):
			header = cells(line)
		case header != nil && row == nil && strings.HasPrefix(line, prefix):
			row = cells(line)
		}
	}
	if header == nil || row == nil {
		t.Fatalf("no results table with a row %q in:\n%s", prefix, report)
	}
	return header, row
}

func at(s []string, i int) string {
	if i < len(s) {
		return s[i]
	}
	return ""
}

func TestGeneratedScenarioHasNHostsWithoutFaultsAndAWavePerRegion(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{7, 50, 1000, 10000} {
		dir := t.TempDir()
		ro, sc, _, err := writeScenario(dir, filepath.Join(root, "examples"), n, 64)
		if err != nil {
			t.Fatal(err)
		}
		s, diags := fleetsim.LoadScenario(sc)
		if diags.HasErrors() {
			t.Fatalf("N=%d: %v", n, diags)
		}
		if len(s.Hosts) != n {
			t.Errorf("N=%d: the scenario has %d hosts", n, len(s.Hosts))
		}
		regions := map[string]int{}
		for _, h := range s.Hosts {
			if len(h.Faults) > 0 || len(h.Installed) > 0 {
				t.Fatalf("N=%d: host %s has faults %v or is already patched", n, h.Host.Name, h.Faults)
			}
			if h.Host.Tier == "production" {
				regions[h.Host.Region]++
			}
		}
		if len(regions) != len(benchRegions) {
			t.Errorf("N=%d: production hosts in regions %v, want one wave for each of %v", n, regions, benchRegions)
		}
		src, err := os.ReadFile(ro)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`soak           = "0s"`, `max_parallel         = 64`, `wave "oceania"`} {
			if !strings.Contains(string(src), want) {
				t.Errorf("N=%d: the rollout lacks %q:\n%s", n, want, src)
			}
		}
	}
}
