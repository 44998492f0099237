package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// TestE2EDraftFromMSRCRunsToCompliant drafts KB5013944 from MSRC's May
// 2022 CVRF excerpt with the example template through the binary's CLI,
// sees validate refuse the two placeholders at their lines, fills them
// (the package the demo fleet's distribution point serves), and runs the
// draft on the demo fleet: every Server 2022 host on April's build ends
// compliant by its OS build, except the one whose servicing reverts it.
func TestE2EDraftFromMSRCRunsToCompliant(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	_, inv := e.startFleetFrom(filepath.Join("..", "..", "examples", "fleet-demo.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	dir := t.TempDir()
	out, err := execute("draft", "--from", filepath.Join("..", "..", "threat", "testdata", "cvrf-2022-May.xml"),
		"--template", filepath.Join("..", "..", "examples", "draft-template.hcl"), "--out", dir, "--inventory", inv, "--as", "alice")
	if err != nil || !strings.Contains(out, "KB5013944 (critical) for windows-server-2022") || !strings.Contains(out, "CVE-2022-30190") {
		t.Fatalf("draft: %v\n%s", err, out)
	}
	draft := filepath.Join(dir, "kb5013944.hcl")
	if _, err := execute("draft", "--from", filepath.Join("..", "..", "threat", "testdata", "cvrf-2022-May.xml"),
		"--template", filepath.Join("..", "..", "examples", "draft-template.hcl"), "--out", dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("a second draft over the first: %v, want refused", err)
	}
	code, stdout, stderr := run(t, "validate", draft)
	if code != 1 || strings.Count(stderr, "Placeholder to fill in") != 2 || !strings.Contains(stderr, "kb5013944.hcl:18:") || !strings.Contains(stderr, "kb5013944.hcl:19:") {
		t.Errorf("validate of the draft exited %d, want the two placeholders at lines 18 and 19:\n%s%s", code, stdout, stderr)
	}
	// The package the simulated distribution point serves (examples/kb5013944.hcl).
	src, err := os.ReadFile(draft)
	if err != nil {
		t.Fatal(err)
	}
	filled := strings.NewReplacer(
		`"FILL IN: the package's path on the distribution point (KB5013944 for windows-server-2022)"`, `"KB5013944/windows10.0-kb5013944-x64.msu"`,
		`"FILL IN: the package's SHA-256, from the Microsoft Update Catalog"`, `"5d1a6b2e7c3f4a8b9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f"`).Replace(string(src))
	if err := os.WriteFile(draft, []byte(filled), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "validate", draft); code != 0 {
		t.Fatalf("the filled draft does not validate (%d):\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := run(t, "plan", draft); code != 0 || !strings.Contains(stdout, "13 of 213 inventory hosts in 4 steps") {
		t.Fatalf("plan exited %d:\n%s%s", code, stdout, stderr)
	}
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e.mustCLI(ctx, "submit", e.fastRolloutFrom(draft), "--as", "alice")
	p := e.drive(ctx, "kb5013944", 4*time.Minute, nil)
	if p.Status != workflows.StatusCompleted || p.HostsDone != 13 {
		t.Fatalf("rollout ended %s with %d/13 hosts done:\n%s", p.Status, p.HostsDone, renderProgress(p, time.Now()))
	}
	var rep contract.Report
	if err := json.Unmarshal([]byte(e.mustCLI(ctx, "report", "kb5013944", "--format", "json")), &rep); err != nil {
		t.Fatal(err)
	}
	hosts, err := rep.HostList()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		reasons := strings.Join(h.Reasons, "; ")
		switch {
		case h.Name == "W22-SRV-0006":
			if h.State != rollout.StateNotEffective {
				t.Errorf("%s: %s (%s), want not_effective", h.Name, h.State, reasons)
			}
		case h.State != rollout.StateCompliant || !strings.Contains(reasons, "at or above 20348.707"):
			t.Errorf("%s: %s (%s), want compliant by OS build", h.Name, h.State, reasons)
		}
	}
	if rep.Totals[rollout.StateCompliant] != 12 {
		t.Errorf("%d compliant, want 12", rep.Totals[rollout.StateCompliant])
	}
}
