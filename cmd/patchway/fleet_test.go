package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

func TestFleetRefusesToStartWithoutAPasswordFromTheEnvironment(t *testing.T) {
	t.Setenv(envFleetPassword, "")
	root := newRootCmd()
	root.SetArgs([]string{"fleet", "--scenario", "../../examples/fleet-demo.hcl", "--dir", t.TempDir()})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), envFleetPassword) {
		t.Fatalf("fleet without a password: %v, want a refusal naming %s", err, envFleetPassword)
	}
}

func TestFleetRefusesABrokenScenarioWithItsPosition(t *testing.T) {
	t.Setenv(envFleetPassword, "pw-"+t.Name())
	path := filepath.Join(t.TempDir(), "fleet.hcl")
	if err := os.WriteFile(path, []byte("fleet \"x\" {\n  fault \"melts\" { count = 1 }\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	root.SetArgs([]string{"fleet", "--scenario", path, "--dir", t.TempDir()})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "fleet.hcl:2") || !strings.Contains(err.Error(), `"melts"`) {
		t.Fatalf("broken scenario: %v, want its file:line and the unknown fault", err)
	}
}

func TestFleetWritesAnInventoryAndReusesItsPortsOnRestart(t *testing.T) {
	password := "pw-" + t.Name()
	dir := t.TempDir()
	start := func() (*rollout.Inventory, string) {
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- runFleet(ctx, &out, fleetConfig{scenario: "../../examples/fleet-demo.hcl", dir: dir, seed: 1, password: password})
		}()
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "Ctrl-C") && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		inv, diags := rollout.LoadInventory(filepath.Join(dir, "inventory.hcl"))
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("fleet: %v", err)
		}
		if diags.HasErrors() {
			t.Fatalf("inventory written by fleet does not load: %v\n%s", diags, out.String())
		}
		return inv, out.String()
	}
	inv, out := start()
	if strings.Contains(out, password) {
		t.Fatalf("fleet printed its password:\n%s", out)
	}
	if len(inv.Hosts) != 213 || !strings.Contains(out, "213 hosts") || !strings.Contains(out, "PATCHWAY_CRED_FLEET_USER") {
		t.Fatalf("fleet started %d hosts, printed:\n%s", len(inv.Hosts), out)
	}
	again, _ := start()
	for i, h := range again.Hosts {
		if h.Address != inv.Hosts[i].Address {
			t.Fatalf("%s moved from %s to %s on restart", h.Name, inv.Hosts[i].Address, h.Address)
		}
	}
}
