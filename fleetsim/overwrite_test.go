package fleetsim

import (
	"testing"

	"github.com/patchway/patchway/hostscript"
)

func TestSetFileVersionOverwritesThePatchedFileAndKeepsTheHotfix(t *testing.T) {
	const path = `C:\Windows\System32\netapi32.dll`
	tests := []struct {
		name    string
		version string
	}{
		{"an older file put back by a later update", "5.1.2600.5512"},
		{"a newer file from a later cumulative update", "5.1.2600.6000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFleet(t, Options{})
			h := f.Host("clean")
			h.mu.Lock()
			h.hotfixes["KB958644"] = h.bootTime
			h.staged[`c:\windows\system32\netapi32.dll`] = "5.1.2600.5694"
			h.mu.Unlock()

			h.SetFileVersion(path, tt.version)
			scan := h.scan(hostscript.ScanParams{KB: "KB958644", Files: []hostscript.FileCheck{{Path: path}}})
			if len(scan.Files) != 1 || !scan.Files[0].Exists || scan.Files[0].Version != tt.version {
				t.Errorf("scan files = %+v, want %s in effect", scan.Files, tt.version)
			}
			if len(scan.Hotfixes) != 1 || scan.Hotfixes[0].ID != "KB958644" {
				t.Errorf("hotfixes = %+v, want KB958644 kept", scan.Hotfixes)
			}
			if s := h.Snapshot(); len(s.Staged) != 0 {
				t.Errorf("staged = %v, want the staged version dropped", s.Staged)
			}
		})
	}
}
