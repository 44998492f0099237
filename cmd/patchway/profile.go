package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/patchway/patchway/policies"
)

// withCPUProfile runs fn with a CPU profile written to path ("" = no
// profile), stopped and flushed when fn returns: for `patchway worker` and
// `patchway dev`, whose fn returns on a graceful stop (SIGINT, SIGTERM).
// The benchmark (bench/) reads the profiles to say where the time goes.
func withCPUProfile(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("--cpuprofile: start: %w", err)
	}
	runErr := fn()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return errors.Join(runErr, fmt.Errorf("--cpuprofile: write %s: %w", path, err))
	}
	return runErr
}

// cpuProfileUsage documents --cpuprofile the same way on every command.
const cpuProfileUsage = "write a CPU profile (runtime/pprof) to this file, stopped on a graceful stop"

// writePolicyStats writes the policy decisions' counts and latencies as
// JSON (the worker's --policy-stats, on a graceful stop).
func writePolicyStats(path string, s *policies.Stats) error {
	b, err := json.MarshalIndent(s.Report(), "", "  ")
	if err != nil {
		return fmt.Errorf("--policy-stats: encode: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--policy-stats: %w", err)
	}
	return nil
}
