package scan

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

// regressed is a result with n regressions and one improvement.
func regressed(n int) Result {
	res := Result{ScanID: "nightly", PreviousAt: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), Regressions: n}
	for i := range n {
		res.Drift = append(res.Drift, Drift{Host: fmt.Sprintf("WS-%04d", i+1), KB: "KB958644", Kind: DriftRegression,
			Previous: rollout.StateCompliant, Current: rollout.StateNotEffective, Regression: true, Reason: "old | file"})
	}
	res.Drift = append(res.Drift, Drift{Host: "WS-9999", KB: "KB958644", Kind: DriftImproved, Previous: rollout.StatePending, Current: rollout.StateCompliant})
	res.DriftCount = len(res.Drift)
	return res
}

func TestRegressionMessagesListTheRegressionsOnly(t *testing.T) {
	res := regressed(2)
	md, text := regressionMarkdown(res), regressionText(res)
	for _, want := range []string{
		"Scan **nightly** found 2 host(s) compliant at the previous scan (2026-11-22T09:00:00Z) and no longer compliant:",
		"| WS-0001 | KB958644 | regression | compliant | not_effective | old \\| file |",
		"| WS-0002 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if want := "- WS-0002 KB958644: compliant -> not_effective: old | file\n"; !strings.Contains(text, want) {
		t.Errorf("text lacks %q:\n%s", want, text)
	}
	if strings.Contains(md+text, "WS-9999") || strings.Contains(md+text, "more") {
		t.Errorf("messages list more than the regressions:\n%s\n%s", md, text)
	}
}

func TestRegressionMessagesAreBounded(t *testing.T) {
	res := regressed(regressionRows + 7)
	md, text := regressionMarkdown(res), regressionText(res)
	if n := strings.Count(md, "| regression |"); n != regressionRows {
		t.Errorf("markdown lists %d regressions, want %d", n, regressionRows)
	}
	if n := strings.Count(text, "\n- "); n != regressionRows {
		t.Errorf("text lists %d regressions, want %d", n, regressionRows)
	}
	if !strings.Contains(md, "... and 7 more: `patchway scan --id nightly --last`") || !strings.HasSuffix(text, "... and 7 more\n") {
		t.Errorf("messages do not say how many are left out:\n%s\n%s", md, text)
	}
}
