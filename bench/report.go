package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/patchway/patchway/policies"
)

// machine describes where the benchmark ran.
type machine struct {
	CPU, Memory, Go, Kernel, Load string
	Cores                         int
}

func describeMachine(ctx context.Context) machine {
	m := machine{CPU: "unknown", Memory: "unknown", Kernel: "unknown", Load: "unknown", Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(rest), &kb)
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.Load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.Go = strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
	}
	return m
}

// columns of the results table, in order; the test checks each is there.
var columns = []string{
	"N", "P", "rollout wall", "hosts/s", "baseline wall", "baseline hosts/s", "ratio",
	"events/host", "history/host", "records/host", "max history", "executions", "worker RSS", "server RSS", "fleet RSS",
	"worker CPU", "server CPU", "fleet CPU", "baseline CPU", "baseline fleet CPU", "decisions", "decisions/s", "p50/decision", "p99/decision", "approval wait",
}

func kib(b float64) string { return fmt.Sprintf("%.1f KiB", b/1024) }

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func lat(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

// writeTable writes the main table, one row per size.
func writeTable(w io.Writer, results []sizeResult) {
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(columns, " | "), strings.Repeat("---:|", len(columns)))
	for _, r := range results {
		n := float64(r.N)
		fleetRSS := max(r.Fleet.PeakRSS, r.Baseline.Fleet.PeakRSS)
		row := []string{
			fmt.Sprint(r.N), fmt.Sprint(r.P), secs(r.RolloutWall), fmt.Sprintf("%.1f", n/r.RolloutWall.Seconds()),
			secs(r.Baseline.Wall), fmt.Sprintf("%.1f", n/r.Baseline.Wall.Seconds()), fmt.Sprintf("%.2f", r.ratio()),
			fmt.Sprintf("%.1f", float64(r.Events)/n), kib(float64(r.HistoryBytes) / n), kib(float64(r.RecordBytes) / n), fmt.Sprint(r.MaxHistory), fmt.Sprint(r.Executions),
			mib(r.Worker.PeakRSS), mib(r.Server.PeakRSS), mib(fleetRSS),
			secs(r.Worker.CPU), secs(r.Server.CPU), secs(r.Fleet.CPU), secs(r.Baseline.CPU), secs(r.Baseline.Fleet.CPU),
			fmt.Sprint(r.Policy.Overall.Count), fmt.Sprintf("%.1f", float64(r.Policy.Overall.Count)/r.RolloutWall.Seconds()),
			lat(r.Policy.Overall.P50), lat(r.Policy.Overall.P99), secs(r.ApprovalWait),
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
}

// writeDecisions writes the policy cost per decision kind.
func writeDecisions(w io.Writer, results []sizeResult) {
	fmt.Fprintln(w, "| N | decision | count | per second | mean | p50 | p99 | max | share of rollout wall |")
	fmt.Fprintln(w, "|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range results {
		names := make([]string, 0, len(r.Policy.Decisions))
		for name := range r.Policy.Decisions {
			names = append(names, name)
		}
		sort.Strings(names)
		row := func(name string, s policies.LatencySummary) {
			fmt.Fprintf(w, "| %d | %s | %d | %.1f | %s | %s | %s | %s | %.1f %% |\n", r.N, name, s.Count,
				float64(s.Count)/r.RolloutWall.Seconds(), lat(s.Mean), lat(s.P50), lat(s.P99), lat(s.Max),
				100*s.Total.Seconds()/r.RolloutWall.Seconds())
		}
		for _, name := range names {
			row(name, r.Policy.Decisions[name])
		}
		row("**all**", r.Policy.Overall)
	}
}

// profileTop is `go tool pprof -top` of a profile, by flat or cumulative
// time.
func profileTop(ctx context.Context, bin, profile string, cum bool) string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	args := []string{"tool", "pprof", "-top", "-nodecount=10"}
	if cum {
		args = []string{"tool", "pprof", "-top", "-cum", "-nodecount=20"}
	}
	cmd := exec.CommandContext(ctx, "go", append(args, bin, profile)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return fmt.Sprintf("(go tool pprof failed: %v: %s)", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimRight(out.String(), "\n")
}

// writeReport writes the whole report: what ran where, the tables and the
// profile tops.
func writeReport(ctx context.Context, w io.Writer, cfg config, m machine, started time.Time, results []sizeResult) {
	fmt.Fprintln(w, "# Patchway benchmark results")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Written by `make bench` (bench/, see bench/README.md); never edited by hand.")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "- date: %s\n", started.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "- machine: %s, %d cores, %s memory, %s, %s; load average at start %s\n", m.CPU, m.Cores, m.Memory, m.Kernel, m.Go, m.Load)
	fmt.Fprintf(w, "- parameters: N = %s, max parallel P = %d, reboot downtime %s (fleet and baseline alike), zero soak, automatic approvals as %s (filed by %s)\n",
		joinInts(cfg.sizes), cfg.parallel, cfg.rebootDowntime, benchApprover, benchFiler)
	fmt.Fprintln(w, "- rollout: embedded Temporal dev server (in memory), one `patchway worker` and one `patchway fleet`, each its own process, on loopback; lab and production-like stages, then five regional waves")
	fmt.Fprintln(w, "- baseline: PatchHost (scan, install, reboot, wait for boot, verify) called directly for every host with P goroutines against a fresh fleet, no orchestration")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Rollout against the floor")
	fmt.Fprintln(w)
	writeTable(w, results)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ratio = rollout wall / baseline wall (goal: at most 1.5 at N = 10,000). history/host is the encoded size of every event of every execution of the rollout over N; records/host the part of it that is decision records (without them, history/host less records/host). RSS is each process's peak (VmHWM); CPU is user + system time of the process over its life (baseline CPU: the benchmark process during the baseline; baseline fleet CPU: the baseline's own fresh fleet). The machine has %d cores: a phase whose processes' CPU adds up to cores × wall is CPU-bound.\n", m.Cores)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Policy cost during the rollout (worker)")
	fmt.Fprintln(w)
	writeDecisions(w, results)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Where the time goes: CPU profiles")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each process's whole life (start-up included), by flat time (`go tool pprof -top -nodecount=10`) and by cumulative time (`-top -cum -nodecount=20`).")
	for _, r := range results {
		for _, p := range []struct{ name, path string }{{"worker", r.WorkerProfile}, {"server", r.ServerProfile}} {
			fmt.Fprintf(w, "\n### N = %d, %s\n\n```\n%s\n```\n\n```\n%s\n```\n", r.N, p.name,
				profileTop(ctx, cfg.patchway, p.path, false), profileTop(ctx, cfg.patchway, p.path, true))
		}
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}
