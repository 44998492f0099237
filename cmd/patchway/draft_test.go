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

// TestDraftReadsEveryAdvisoryFormat drafts through the CLI from each
// format, told by its content: MSRC's May 2022 CVRF XML and the same
// vulnerability as CSAF 2.0 give the same KB5013944 rollout (but for the
// header naming the format, and supersedes, which MSRC's CSAF does not
// carry); MSRC's January 2021 CVRF v3 JSON drafts KB4598230 with the
// products mapped by --product. Documents the readers refuse write
// nothing, each named with its file.
func TestDraftReadsEveryAdvisoryFormat(t *testing.T) {
	testdata := filepath.Join("..", "..", "threat", "testdata")
	tmpl := filepath.Join("..", "..", "examples", "draft-template.hcl")
	draft := func(t *testing.T, from string, extra ...string) (string, string, error) {
		t.Helper()
		dir := t.TempDir()
		out, err := execute(append([]string{"draft", "--from", filepath.Join(testdata, from), "--template", tmpl, "--out", dir, "--as", "alice"}, extra...)...)
		entries, _ := os.ReadDir(dir)
		if err != nil {
			if len(entries) != 0 {
				t.Errorf("%s: %d files written after a refusal", from, len(entries))
			}
			return "", out, err
		}
		if len(entries) != 1 {
			t.Fatalf("%s: %d drafts, want 1:\n%s", from, len(entries), out)
		}
		src, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
		if err != nil {
			t.Fatal(err)
		}
		return string(src), out, nil
	}
	xml, _, err := draft(t, "cvrf-2022-May.xml")
	if err != nil {
		t.Fatal(err)
	}
	csaf, out, err := draft(t, "csaf-msrc-2022-May-converted.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(csaf, "(CSAF 2.0)") || !strings.Contains(xml, "(MSRC CVRF 1.1)") || !strings.Contains(out, "KB5013944 (critical) for windows-server-2022") {
		t.Errorf("headers: CSAF draft\n%s\nXML draft\n%s", csaf, xml)
	}
	fold := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, want := range []string{`kb = "KB5013944"`, `cves = ["CVE-2022-21972"]`, `severity = "critical"`, `published = "2022-05-10T07:00:00Z"`,
		`reboot = "required"`, `package "windows-server-2022"`, `os = "windows-server-2022" min_build = "10.0.20348.707"`, `exploited = false`} {
		if !strings.Contains(fold(xml), want) || !strings.Contains(fold(csaf), want) {
			t.Errorf("the CVRF and CSAF drafts do not both say %s:\nCSAF\n%s\nCVRF\n%s", want, csaf, xml)
		}
	}
	if want := `title = "Point-to-Point Tunneling Protocol Remote Code Execution Vulnerability: KB5013944 for Windows Server 2022, Windows Server 2022 (Server Core installation)"`; !strings.Contains(fold(csaf), want) {
		t.Errorf("the CSAF draft's title: want %s (the document is the CVE's, its title once):\n%s", want, csaf)
	}
	products := []string{
		"--product", "Windows 10 Version 1809 for 32-bit Systems=windows-10-1809",
		"--product", "Windows 10 Version 1809 for x64-based Systems=windows-10-1809",
		"--product", "Windows 10 Version 1809 for ARM64-based Systems=windows-10-1809",
	}
	jan, out, err := draft(t, "cvrf-2021-Jan.json", products...)
	if err != nil {
		t.Fatalf("draft from CVRF JSON: %v\n%s", err, out)
	}
	for _, want := range []string{`rollout "kb4598230"`, "(MSRC CVRF v3 JSON)", `supersedes = ["KB4592440"]`, `package "windows-10-1809"`, `package "windows-server-2019"`, "exploit_public = true"} {
		if !strings.Contains(jan, want) {
			t.Errorf("the January 2021 draft lacks %s:\n%s", want, jan)
		}
	}
	if !strings.Contains(out, "CVE-2021-1647") {
		t.Errorf("the exploited CVE without a fix is not named:\n%s", out)
	}
	for _, tc := range []struct{ from, want string }{
		{"csaf-vex-2022-evd-uc-01-f-001.json", "csaf_vex"},
		{"csaf-msrc_cve-2025-29806.json", "no vendor_fix remediation names a KB"},
		{"cvrf-2021-Jan.json", `applies to "Windows 10 Version 1809 for 32-bit Systems", which the product map does not know`},
		{"known_exploited_vulnerabilities_schema.json", "known_exploited_vulnerabilities_schema.json"},
	} {
		if _, out, err := draft(t, tc.from); err == nil || !strings.Contains(err.Error(), "nothing drafted") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("draft from %s: %v\n%s; want refused naming %q", tc.from, err, out, tc.want)
		}
	}
}
