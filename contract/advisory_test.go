package contract_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func exampleRollout(t *testing.T, name string) *rollout.Rollout {
	t.Helper()
	path := filepath.Join("..", "examples", name)
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ro, diags := rollout.DecodeRollout(path, src)
	if diags.HasErrors() {
		t.Fatalf("decode %s: %v", path, diags)
	}
	return ro
}

// The advisory carries what an IT manager needs to act: the vulnerability,
// CVEs, severity and deadline, exploit availability, scanners, the
// workaround and the side effects, in Markdown and in plain text; the
// second edition adds what the lab found.
func TestAdvisoryRendersEveryFactInMarkdownAndText(t *testing.T) {
	ro := exampleRollout(t, "ms08-067.hcl")
	adv := contract.Advisory{
		RolloutID: ro.ID, Patch: ro.Patch, Risk: ro.Risk, Edition: 1,
		Deadline: time.Date(2008, 10, 24, 5, 0, 0, 0, time.UTC), SLA: "12h0m0s",
	}
	golden(t, "advisory-ms08-067.md", adv.Markdown())
	golden(t, "advisory-ms08-067.txt", adv.Text())
	for _, want := range append(append([]string{ro.Patch.KB, "CVE-2008-4250", "critical", "2008-10-24 05:00 UTC", "a worm exploits it in the wild", ro.Risk.Workaround}, ro.Risk.Scanners...), ro.Risk.SideEffects...) {
		if !strings.Contains(adv.Text(), want) {
			t.Errorf("plain-text advisory lacks %q", want)
		}
	}

	adv.Edition = 2
	adv.Lab = &contract.LabFindings{Stage: "lab", Hosts: 4,
		States:   []contract.StateCount{{State: rollout.StateCompliant, Count: 3}, {State: rollout.StateNotEffective, Count: 1}},
		Problems: []string{`LAB-0002: not_effective: KB958644 is present but the fix is not in effect: C:\Windows\System32\netapi32.dll is 5.1.2600.5512, below 5.1.2600.5694`}}
	golden(t, "advisory-ms08-067-after-lab.md", adv.Markdown())
	golden(t, "advisory-ms08-067-after-lab.txt", adv.Text())
}

func TestAdvisoryEscapesMarkdownFromTheRolloutFile(t *testing.T) {
	adv := contract.Advisory{RolloutID: "x", Patch: rollout.Patch{KB: "KB1", Title: "*bold* [link](http://evil.example) <script>"}}
	md := adv.Markdown()
	if strings.Contains(md, "[link](") || strings.Contains(md, "<script>") || strings.Contains(md, " *bold*") {
		t.Errorf("title markup leaks into the Markdown:\n%s", md)
	}
}
