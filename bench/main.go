// Command bench measures what durability costs: a rollout through the
// embedded Temporal server, a worker and a simulated fleet of N hosts,
// against the floor, the same WinRM work per host with the same
// concurrency and no orchestration, in the same run (issue 9). It prints
// the results table and, with -results, writes it to bench/RESULTS.md.
//
//	go run ./bench -patchway bin/patchway -results bench/RESULTS.md
//
// Sizes come from BENCH_N (comma-separated, default 1000,10000; 100000 is
// added when BENCH_LARGE=1), max parallel from BENCH_P (default 64).
// See bench/README.md for what each number means.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is one benchmark run's settings.
type config struct {
	sizes          []int
	parallel       int
	rebootDowntime time.Duration
	// patchway is the binary that runs server, worker, fleet and CLI.
	patchway string
	// examples holds ms08-067.hcl, whose patch the rollout uses.
	examples string
	// workDir holds every generated file, log and profile.
	workDir string
	// results is the markdown file to write ("" = stdout only).
	results string
	// log receives progress lines.
	log io.Writer
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("patchway", "", "patchway binary to run (default: build ./cmd/patchway into the work directory)")
	results := fs.String("results", "", "write the results as markdown to this file (bench/RESULTS.md for `make bench`)")
	downtime := fs.Duration("reboot-downtime", 200*time.Millisecond, "how long a simulated host stays down when it reboots")
	keep := fs.Bool("keep", false, "keep the work directory (logs, profiles, generated files)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, parallel, err := sizesFromEnv()
	if err != nil {
		return err
	}
	if err := raiseOpenFiles(slices.Max(sizes) + 4*parallel + 1024); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	work, err := os.MkdirTemp("", "patchway-bench-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Fprintln(stderr, "work directory:", work)
	} else {
		defer os.RemoveAll(work)
	}
	cfg := config{sizes: sizes, parallel: parallel, rebootDowntime: *downtime, patchway: *bin,
		examples: filepath.Join(root, "examples"), workDir: work, results: *results, log: stderr}
	if cfg.patchway == "" {
		cfg.patchway = filepath.Join(work, "patchway")
		fmt.Fprintln(stderr, "building patchway...")
		if err := buildPatchway(ctx, root, cfg.patchway); err != nil {
			return err
		}
	} else if cfg.patchway, err = filepath.Abs(cfg.patchway); err != nil {
		return err
	}
	return bench(ctx, cfg, stdout)
}

// bench runs every size and reports.
func bench(ctx context.Context, cfg config, stdout io.Writer) error {
	started := time.Now()
	m := describeMachine(ctx)
	var results []sizeResult
	for _, n := range cfg.sizes {
		r, err := runSize(ctx, cfg, n)
		if err != nil {
			return fmt.Errorf("N=%d: %w", n, err)
		}
		results = append(results, r)
	}
	var report bytes.Buffer
	writeReport(ctx, &report, cfg, m, started, results)
	if _, err := stdout.Write(report.Bytes()); err != nil {
		return err
	}
	if cfg.results != "" {
		if err := os.WriteFile(cfg.results, report.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	return nil
}

// raiseOpenFiles lifts the soft open-files limit, which the fleet, worker
// and server processes inherit, to at least need (the fleet holds one
// listening socket per host plus its connections), and refuses to start
// when the hard limit is lower: better than a fleet that fails after
// minutes of set-up.
func raiseOpenFiles(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read the open-files limit: %w", err)
	}
	if lim.Cur >= uint64(need) {
		return nil
	}
	if lim.Max < uint64(need) {
		return fmt.Errorf("the largest size needs about %d open files, and this process may open at most %d (hard limit); raise it (ulimit -Hn as root, or LimitNOFILE) or set a smaller BENCH_N", need, lim.Max)
	}
	lim.Cur = uint64(need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise the open-files limit to %d: %w", need, err)
	}
	return nil
}

// sizesFromEnv reads BENCH_N, BENCH_LARGE and BENCH_P.
func sizesFromEnv() ([]int, int, error) {
	sizes := []int{1000, 10000}
	if s := os.Getenv("BENCH_N"); s != "" {
		sizes = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 7 {
				return nil, 0, fmt.Errorf("BENCH_N=%q: want comma-separated host counts of at least 7", s)
			}
			sizes = append(sizes, n)
		}
	}
	if os.Getenv("BENCH_LARGE") == "1" {
		sizes = append(sizes, 100000)
	}
	parallel := 64
	if s := os.Getenv("BENCH_P"); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 {
			return nil, 0, fmt.Errorf("BENCH_P=%q: want a positive number", s)
		}
		parallel = p
	}
	return sizes, parallel, nil
}

// repoRoot finds the module root from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the patchway module (no go.mod found)")
		}
		dir = parent
	}
}

func buildPatchway(ctx context.Context, root, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/patchway")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/patchway: %w\n%s", err, b)
	}
	return nil
}
