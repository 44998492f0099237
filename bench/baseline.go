package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
)

// baselineResult is the floor: the same host operations with no
// orchestration.
type baselineResult struct {
	Wall time.Duration
	// CPU is the benchmark process's CPU time during the run (the WinRM
	// client side and the compliance decisions).
	CPU        time.Duration
	Fleet      usage
	Compliant  int
	FirstError string
}

// runBaseline patches every host of inv with PatchHost, the activity the
// worker runs per host (scan, install, reboot, wait for boot, verify),
// called directly in this process with P goroutines: no server, no
// workflow, no task queue. The host operations are configured exactly as
// the worker configures them (newWorker in cmd/patchway), with the same
// policy bundle for the compliance verdict.
func runBaseline(ctx context.Context, inv *rollout.Inventory, patch rollout.Patch, policyDir, user, password string, p int) (baselineResult, error) {
	engine, err := policies.Load(ctx, policyDir)
	if err != nil {
		return baselineResult{}, fmt.Errorf("baseline: load policies: %w", err)
	}
	hosts := &activities.HostActivities{
		Runner: &activities.WinRMRunner{Credentials: activities.StaticCredentials{"fleet": {Username: user, Password: password,
			Binding: activities.CredentialBinding{Addresses: []string{fleetsim.ListenAddresses}}}}, Transport: engine},
		Policy: engine,
	}
	dp := map[string]string{}
	for _, s := range inv.Sites {
		dp[s.Name] = s.DistributionPoint
	}
	var (
		mu        sync.Mutex
		compliant int
		firstErr  string
		wg        sync.WaitGroup
	)
	sem := make(chan struct{}, p)
	cpu0 := selfCPU()
	start := time.Now()
	for _, h := range inv.Hosts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return baselineResult{}, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res, err := hosts.PatchHost(ctx, contract.PatchHostInput{
				Target: contract.HostTarget{RolloutID: "baseline", Host: h, DistributionPoint: dp[h.Site], Patch: patch},
				Reboot: true, BootTimeout: 30 * time.Minute,
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && firstErr == "":
				firstErr = fmt.Sprintf("%s: %v", h.Name, err)
			case err == nil && res.Verdict.State == rollout.StateCompliant:
				compliant++
			case err == nil && firstErr == "":
				firstErr = fmt.Sprintf("%s: %s (%s)", h.Name, res.Verdict.State, strings.Join(res.Verdict.Reasons, "; "))
			}
		}()
	}
	wg.Wait()
	return baselineResult{Wall: time.Since(start), CPU: selfCPU() - cpu0, Compliant: compliant, FirstError: firstErr}, ctx.Err()
}

// selfCPU is this process's CPU time so far (0 when unreadable).
func selfCPU() time.Duration {
	u, err := readUsage(os.Getpid())
	if err != nil {
		return 0
	}
	return u.CPU
}
