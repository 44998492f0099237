package fleetsim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/patchway/patchway/rollout"
)

func TestStartInDirWritesTheInventoryAndReusesItsPorts(t *testing.T) {
	dir := t.TempDir()
	scenario := filepath.Join("..", "examples", "fleet-demo.hcl")
	start := func() (*rollout.Inventory, string) {
		t.Helper()
		f, sc, invPath, err := StartInDir(context.Background(), scenario, dir, Options{Seed: 1, Password: "pw"})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if invPath != filepath.Join(dir, InventoryFile) {
			t.Errorf("inventory path %s, want it in %s", invPath, dir)
		}
		inv, diags := rollout.LoadInventory(invPath)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		return inv, sc.Credential
	}
	inv, credential := start()
	if len(inv.Hosts) == 0 || credential == "" {
		t.Fatalf("%d hosts, credential set %q", len(inv.Hosts), credential)
	}
	if _, err := os.Stat(filepath.Join(dir, "fleet-ca.pem")); err != nil {
		t.Errorf("no CA certificate in the directory: %v", err)
	}
	again, _ := start()
	for i, h := range again.Hosts {
		if h.Address != inv.Hosts[i].Address {
			t.Fatalf("%s moved from %s to %s on restart", h.Name, inv.Hosts[i].Address, h.Address)
		}
	}
}

func TestStartInDirNamesABrokenScenario(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	if err := os.WriteFile(bad, []byte("fleet {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := StartInDir(context.Background(), bad, t.TempDir(), Options{}); err == nil {
		t.Fatal("a broken scenario started")
	}
}
