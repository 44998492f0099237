package fleetsim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/patchway/patchway/rollout"
)

// InventoryFile is the name of the inventory StartInDir writes.
const InventoryFile = "inventory.hcl"

// StartInDir loads the scenario file, starts its hosts with opts and
// writes their inventory to dir/inventory.hcl and the fleet's CA
// certificate to dir (opts.Dir). The ports of an inventory already there
// are reused (opts.Ports), so that rollouts resumed after a restart reach
// the same hosts; an inventory that no longer parses is simply replaced.
// It returns the fleet, its scenario and the inventory's path.
func StartInDir(ctx context.Context, scenarioPath, dir string, opts Options) (*Fleet, *Scenario, string, error) {
	sc, diags := LoadScenario(scenarioPath)
	if diags.HasErrors() {
		return nil, nil, "", fmt.Errorf("load fleet scenario: %w", diags)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, "", fmt.Errorf("fleet directory: %w", err)
	}
	invPath := filepath.Join(dir, InventoryFile)
	opts.Dir = dir
	opts.Ports = nil
	if _, err := os.Stat(invPath); err == nil {
		if inv, diags := rollout.LoadInventory(invPath); !diags.HasErrors() {
			opts.Ports = PortsFromInventory(inv)
		}
	}
	f, err := Start(ctx, sc, opts)
	if err != nil {
		return nil, nil, "", fmt.Errorf("start fleet: %w", err)
	}
	if err := f.WriteInventory(invPath); err != nil {
		_ = f.Close()
		return nil, nil, "", err
	}
	return f, sc, invPath, nil
}
