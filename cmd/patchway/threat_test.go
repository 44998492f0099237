package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/workflows"
)

// realKEVFile writes CISA's catalogue 2025.08.25 to a temporary file, as
// a user downloads it.
func realKEVFile(t *testing.T) string {
	t.Helper()
	b, err := fixture.KEVCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "known_exploited_vulnerabilities.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// execute runs the CLI in process and returns its output and error.
func execute(args ...string) (string, error) {
	var out bytes.Buffer
	root := newRootCmd()
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// TestThreatImportCapsTheDeadlineByKEV imports CISA's real catalogue into
// a policy directory and plans May 2022's cumulative update as an
// important patch: CVE-2022-26925 is listed, due 2022-07-22, long past,
// so the policy gives the overdue SLA (24 h) instead of 30 days, and the
// plan says why. The import joins the policy revision.
func TestThreatImportCapsTheDeadlineByKEV(t *testing.T) {
	dir := t.TempDir()
	out, err := execute("threat", "import", realKEVFile(t), "--policy-dir", dir, "--running=false")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	if !strings.Contains(out, "imported CISA KEV catalogue 2025.08.25") || !strings.Contains(out, "1404 CVEs, 293 with known ransomware use") {
		t.Errorf("import printed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "kev.json")); err != nil {
		t.Fatalf("no kev.json: %v", err)
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "kb5013944.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	important := filepath.Join(t.TempDir(), "kb5013944.hcl")
	inventory, err := filepath.Abs(filepath.Join("..", "..", "examples", "inventory-modern.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), `severity   = "critical"`, `severity   = "important"`, 1)
	s = strings.Replace(s, `inventory = "inventory-modern.hcl"`, `inventory = "`+inventory+`"`, 1)
	if err := os.WriteFile(important, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := func(policyDir string) string {
		t.Helper()
		code, stdout, stderr := run(t, "plan", important, "--policy-dir", policyDir)
		if code != 0 {
			t.Fatalf("plan exited %d:\n%s%s", code, stdout, stderr)
		}
		return stdout
	}
	with, without := plan(dir), plan(t.TempDir())
	for _, want := range []string{
		"why: CVE-2022-26925 is in CISA's KEV catalogue 2025.08.25 (Microsoft Windows LSA Spoofing Vulnerability, added 2022-07-01): due 2022-07-22, already past at the SLA start; overdue, the SLA is at most 24h",
		"why: important SLA 24h counted from filing",
	} {
		if !strings.Contains(with, want) {
			t.Errorf("plan with the catalogue lacks %q:\n%s", want, with)
		}
	}
	if strings.Contains(without, "KEV") {
		t.Errorf("plan without the catalogue names KEV:\n%s", without)
	}
	deadline := func(out string) time.Time {
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "Deadline "); ok {
				d, err := time.Parse(time.RFC3339, strings.TrimSuffix(v, "."))
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
		}
		t.Fatalf("no deadline in:\n%s", out)
		return time.Time{}
	}
	if got := time.Until(deadline(with)); got > 24*time.Hour || got < 23*time.Hour {
		t.Errorf("deadline with the catalogue is %s away, want 24h", got.Round(time.Minute))
	}
	if got := time.Until(deadline(without)); got < 20*24*time.Hour {
		t.Errorf("deadline without the catalogue is %s away, want the important SLA", got.Round(time.Hour))
	}
}

// TestThreatImportRefusesAndWritesNothing: no policy directory, a file
// that is not the catalogue, an entry without its due date: each is
// refused by name and kev.json is left as it was.
func TestThreatImportRefusesAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	if _, err := execute("threat", "import", realKEVFile(t)); err == nil || !strings.Contains(err.Error(), "give --policy-dir DIR") {
		t.Errorf("import without a policy directory: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "kev.json")
	for _, tc := range []struct{ name, body, want string }{
		{"not JSON", `{"catalogVersion": `, "bad/kev.json: not valid JSON"},
		{"no due date", `{"catalogVersion":"1","dateReleased":"x","count":1,"vulnerabilities":[{"cveID":"CVE-2022-26925","vendorProject":"Microsoft","product":"Windows","vulnerabilityName":"LSA","dateAdded":"2022-07-01","shortDescription":"x","requiredAction":"y"}]}`,
			"vulnerabilities[0] (CVE-2022-26925): missing dueDate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(bad, []byte(tc.body), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := execute("threat", "import", bad, "--policy-dir", dir)
			if err == nil || !strings.Contains(err.Error(), "nothing written") || !strings.Contains(err.Error(), strings.TrimPrefix(tc.want, "bad/")) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("the policy directory holds %d files after a refused import", len(entries))
			}
		})
	}
}

// TestE2EThreatUpdateTightensARunningRollout files MS08-067 as if no worm
// were known yet (critical 24 h x 0.75 for the public exploit = 18 h),
// then reports the worm through the binary while the rollout runs: the
// deadline moves to 12 h from the start, status shows the new deadline
// and the decision with its reasons, and the same report again is
// refused.
func TestE2EThreatUpdateTightensARunningRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: e2ePolicy})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv, _ := e.unreachableInventory()
	src, err := os.ReadFile(e.fastRollout())
	if err != nil {
		t.Fatal(err)
	}
	noWorm := strings.Replace(string(src), "worm_in_the_wild = true", "worm_in_the_wild = false", 1)
	file := filepath.Join(e.dir, "ms08-067-no-worm.hcl")
	if err := os.WriteFile(file, []byte(noWorm), 0o644); err != nil {
		t.Fatal(err)
	}
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", file, "--inventory", inv, "--as", "alice")
	before := e.waitFor(ctx, id, "the risk decision", time.Minute, func(p workflows.Progress) bool { return !p.Deadline.IsZero() })
	out := e.mustCLI(ctx, "threat", "update", id, "--worm", "--as", "carol", "--reason", "MSRC: worm activity detected")
	if !strings.Contains(out, "carol reported new risk facts to ms08-067") || !strings.Contains(out, "threat update (worm_in_the_wild)") ||
		!strings.Contains(out, "worm_in_the_wild tightens the SLA by a factor of 0.5") {
		t.Errorf("threat update printed:\n%s", out)
	}
	after := e.waitFor(ctx, id, "the new deadline", time.Minute, func(p workflows.Progress) bool { return p.Deadline.Before(before.Deadline) })
	if got := before.Deadline.Sub(after.Deadline); got != 6*time.Hour {
		t.Errorf("deadline moved %s earlier (%s -> %s), want 6h (18h -> 12h)", got, before.Deadline, after.Deadline)
	}
	status := e.mustCLI(ctx, "status", id)
	t.Logf("threat update:\n%s\nstatus:\n%s", out, status)
	if !strings.Contains(status, "threat update (worm_in_the_wild)") {
		t.Errorf("status does not show the threat update:\n%s", status)
	}
	r := e.cli(ctx, "threat", "update", id, "--worm", "--as", "carol", "--reason", "again")
	if r.code != 1 || !strings.Contains(r.stderr, "no new risk fact") {
		t.Errorf("the same fact again exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestE2EKEVImportTellsARunningRollout files MS08-067 with CVE-2022-26925
// among its CVEs (critical 24 h x 0.75 = 18 h; no catalogue yet), then
// imports CISA's real catalogue into the worker's policy directory while
// the rollout runs. The catalogue lists CVE-2022-26925, due 2022-07-22,
// long past: the import tells the rollout, the worker (which never polls
// here: --policy-reload 0) loads the new revision for the decision, and
// the deadline moves to the overdue SLA (6 h in this test's policy data).
// Importing the same file again tells no one.
func TestE2EKEVImportTellsARunningRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{policyData: `{
  "plan": {"min_soak_hours": {"critical": {"lab": 0, "prodlike": 0}}},
  "sla": {"kev": {"overdue_hours": 6}}
}`})
	e.startWorker("--policy-reload", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv, _ := e.unreachableInventory()
	src, err := os.ReadFile(e.fastRollout())
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(src), "worm_in_the_wild = true", "worm_in_the_wild = false", 1)
	s = strings.Replace(s, `cves       = ["CVE-2008-4250"]`, `cves       = ["CVE-2008-4250", "CVE-2022-26925"]`, 1)
	file := filepath.Join(e.dir, "ms08-067-kev.hcl")
	if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	const id = "ms08-067"
	e.mustCLI(ctx, "submit", file, "--inventory", inv, "--as", "alice")
	before := e.waitFor(ctx, id, "the risk decision", time.Minute, func(p workflows.Progress) bool { return !p.Deadline.IsZero() })
	if len(before.KEV) != 0 || len(before.CVEs) != 2 {
		t.Fatalf("before the import: CVEs %v, KEV-listed %v; want two CVEs, none listed", before.CVEs, before.KEV)
	}
	policyDir := filepath.Join(e.dir, "policy")
	// Someone the gates policy does not let add risk facts: the catalogue
	// is written, the rollout is not told, and the command says both.
	r := e.cli(ctx, "threat", "import", realKEVFile(t), "--policy-dir", policyDir, "--as", "mallory")
	if r.code != 1 || !strings.Contains(r.stderr, "not_in_group") || !strings.Contains(r.stderr, "kev.json is written, but the running rollouts were not all told") {
		t.Errorf("import as mallory exited %d:\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := e.mustCLI(ctx, "threat", "import", realKEVFile(t), "--policy-dir", policyDir, "--as", "carol")
	t.Logf("import:\n%s", out)
	for _, want := range []string{
		"told ms08-067 (KB958644): threat update (kev CVE-2022-26925): deadline ",
		"CVE-2022-26925 is in CISA's KEV catalogue 2025.08.25",
		"overdue, the SLA is at most 6h",
		"1 running rollouts, 1 told of newly listed CVEs",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("import output lacks %q", want)
		}
	}
	after := e.waitFor(ctx, id, "the KEV deadline", time.Minute, func(p workflows.Progress) bool { return p.Deadline.Before(before.Deadline) })
	if got := before.Deadline.Sub(after.Deadline); got != 12*time.Hour {
		t.Errorf("deadline moved %s earlier (%s -> %s), want 12h (18h -> 6h)", got, before.Deadline, after.Deadline)
	}
	if fmt.Sprint(after.KEV) != "[CVE-2022-26925]" || after.PolicyRevision == before.PolicyRevision {
		t.Errorf("after the import: KEV-listed %v under revision %s (before %s); want CVE-2022-26925 under the new revision", after.KEV, after.PolicyRevision, before.PolicyRevision)
	}
	if !strings.Contains(out, "-> "+after.PolicyRevision) {
		t.Errorf("the decision's revision %s is not the one the import wrote:\n%s", after.PolicyRevision, out)
	}
	again := e.mustCLI(ctx, "threat", "import", realKEVFile(t), "--policy-dir", policyDir, "--as", "carol")
	if !strings.Contains(again, "1 running rollouts, 0 told") || strings.Contains(again, "told ms08-067") {
		t.Errorf("the same catalogue again:\n%s", again)
	}
}
