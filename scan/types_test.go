package scan

import (
	"strings"
	"testing"

	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/rollout"
)

func TestScanInputIsRefusedWhenIncomplete(t *testing.T) {
	patch := fixture.Rollout(testStart).Patch
	host := rollout.Host{Name: "h"}
	tests := []struct {
		name string
		in   Input
		want string
	}{
		{"no hosts", Input{ScanID: "x", Patches: []rollout.Patch{patch}}, "no hosts"},
		{"no patches", Input{ScanID: "x", Hosts: []rollout.Host{host}}, "no patches"},
		{"the same KB twice", Input{ScanID: "x", Hosts: []rollout.Host{host}, Patches: []rollout.Patch{patch, patch}}, "KB958644 twice"},
		{"no id", Input{Hosts: []rollout.Host{host}, Patches: []rollout.Patch{patch}}, "no scan id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}
