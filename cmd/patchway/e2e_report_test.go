package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/workflows"
)

// TestE2EReportOfARunningThenEndedRollout files MS08-067 on the example
// inventory with every host pointed at a closed loopback port (nothing
// answers, nothing is patched), reads the provisional report of the
// running rollout through the report query, aborts it, and reads the
// final report the real BuildReport activity stored as the workflow
// result: every host listed, none compliant, --fail-under exits 2. Filing
// the same id again is refused, and the report stays the first run's.
func TestE2EReportOfARunningThenEndedRollout(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const id = "ms08-067"

	invPath, port := e.unreachableInventory()
	e.mustCLI(ctx, "submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", invPath, "--as", "alice")
	e.waitFor(ctx, id, "the risk decision", time.Minute, func(p workflows.Progress) bool { return len(p.Steps) > 0 })

	running := e.mustCLI(ctx, "report", id)
	for _, want := range []string{"PROVISIONAL (rollout still running)", fmt.Sprintf("applicable hosts proven patched (%d hosts", port), "BY REGION"} {
		if !strings.Contains(running, want) {
			t.Errorf("provisional report lacks %q:\n%s", want, running)
		}
	}

	e.mustCLI(ctx, "abort", id, "--as", "bob", "--reason", "e2e: report test over")
	var rep contract.Report
	deadline := time.Now().Add(3 * time.Minute)
	for {
		out := e.mustCLI(ctx, "report", id, "--format", "json")
		rep = contract.Report{}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report --format json: %v\n%s", err, out)
		}
		if rep.Provisional == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the aborted rollout never stored its report; last: provisional %q", rep.Provisional)
		}
		time.Sleep(time.Second)
	}
	sum := 0
	for _, n := range rep.Totals {
		sum += n
	}
	if rep.RolloutID != id || rep.HostCount != port || len(rep.Hosts) != port || sum != port || rep.CompliancePercent != 0 {
		t.Errorf("final report: rollout %q, %d hosts (%d listed, totals %v), %.1f%%; want all %d hosts, none compliant",
			rep.RolloutID, rep.HostCount, len(rep.Hosts), rep.Totals, rep.CompliancePercent, port)
	}

	r := e.cli(ctx, "report", id, "--format", "html", "-o", filepath.Join(e.dir, "report.html"), "--fail-under", "50")
	if r.code != exitBelowThreshold || !strings.Contains(r.stderr, "below --fail-under 50%") {
		t.Errorf("report --fail-under 50 exited %d with %q, want %d", r.code, r.stderr, exitBelowThreshold)
	}
	if page, err := os.ReadFile(filepath.Join(e.dir, "report.html")); err != nil || !strings.Contains(string(page), "<svg") {
		t.Errorf("report -o wrote %d bytes (err %v), want the HTML page", len(page), err)
	}

	// Filing the ended rollout's id again is refused with another id to
	// use, and the first run's report stays the one the id shows.
	again := e.cli(ctx, "submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", invPath, "--as", "alice")
	if again.code == 0 || !strings.Contains(again.stderr, "rollout ms08-067 completed (run ") || !strings.Contains(again.stderr, `for example id = "ms08-067-2"`) {
		t.Errorf("submit of a completed id exited %d with %q, want a refusal suggesting ms08-067-2", again.code, again.stderr)
	}
	out := e.mustCLI(ctx, "report", id, "--format", "json")
	var kept contract.Report
	if err := json.Unmarshal([]byte(out), &kept); err != nil || kept.Provisional != "" || !kept.GeneratedAt.Equal(rep.GeneratedAt) {
		t.Errorf("after the refused submit the report is %q generated %s (err %v), want the first run's, generated %s", kept.Provisional, kept.GeneratedAt, err, rep.GeneratedAt)
	}
}
