package main

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/patchway/patchway/workflows"
)

// chromiumPath finds Debian's chromium (CI installs it: .ci/run).
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// artifactDir is where the browser test leaves its screenshot:
// $PATCHWAY_ARTIFACTS, else a directory under the system temp dir that
// outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("PATCHWAY_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "patchway-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}

// TestWebUIShowsRolloutProgress opens the real Web UI in headless Chromium,
// finds a running rollout by its search attribute, and reads the progress
// table the workflow publishes as its current details: the summary line,
// and every step with a column per state, columns aligned.
func TestWebUIShowsRolloutProgress(t *testing.T) {
	chromium := chromiumPath()
	if chromium == "" {
		t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
	}
	e := newE2E(t, e2eOptions{ui: true})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	inv, _ := e.unreachableInventory()
	e.mustCLI(ctx, "submit", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", inv, "--as", "alice")
	e.waitFor(ctx, "ms08-067", "progress published", time.Minute, func(p workflows.Progress) bool { return len(p.Steps) > 0 })

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	shot := filepath.Join(artifactDir(t), "webui-rollout-progress.png")
	saveShot := func() {
		if png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100)); err == nil {
			if err := os.WriteFile(shot, png, 0o644); err == nil {
				t.Logf("screenshot: %s", shot)
			}
		}
	}

	// The workflow list, filtered by Patchway's search attribute to the
	// rollout itself (its batches carry the attribute too, and appear as
	// soon as a stage starts).
	list := e.srv.UIAddress() + "/namespaces/default/workflows?query=" +
		url.QueryEscape(`RolloutId = "ms08-067" AND WorkflowType = "`+workflows.RolloutWorkflowName+`"`)
	link := chromedp.CSS(`a[href*="rollout%2Fms08-067/"]`)
	if err := chromedp.Do(bctx, chromedp.Navigate(list), chromedp.WaitVisible(link)); err != nil {
		saveShot()
		t.Fatalf("workflow list filtered by RolloutId did not show the rollout: %v", err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(link)); err != nil {
		t.Fatalf("open the rollout: %v", err)
	}
	// Its page; the current details are on the User Metadata tab.
	var page string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		loc, err := chromedp.Run(bctx, chromedp.Location())
		if err == nil && strings.Contains(loc, "/workflows/rollout%2Fms08-067/") {
			page = loc
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if page == "" {
		t.Fatalf("clicking the rollout did not open its page")
	}
	u, err := url.Parse(page)
	if err != nil {
		t.Fatal(err)
	}
	// Keep .../workflows/<id>/<run>, drop the tab the UI opened.
	parts := strings.Split(u.EscapedPath(), "/")
	i := slices.Index(parts, "workflows")
	if i < 0 || len(parts) < i+3 {
		t.Fatalf("unexpected rollout page URL %s", page)
	}
	u.RawPath = strings.Join(parts[:i+3], "/") + "/user-metadata"
	u.Path, _ = url.PathUnescape(u.RawPath)
	details := chromedp.CSS(`iframe#user-metadata-current-details`)
	if err := chromedp.Do(bctx, chromedp.Navigate(u.String()), chromedp.WaitVisible(details)); err != nil {
		saveShot()
		t.Fatalf("rollout page has no current details: %v", err)
	}
	// The rendered markdown lives in a same-origin frame.
	var text string
	for time.Now().Before(deadline.Add(30 * time.Second)) {
		text, err = chromedp.Run(bctx, chromedp.Evaluate[string](
			`(() => { const f = document.querySelector('#user-metadata-current-details'); return f && f.contentDocument && f.contentDocument.body ? f.contentDocument.body.innerText : ''; })()`))
		if err == nil && strings.Contains(text, "compliant") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	saveShot()
	for _, want := range []string{"KB958644", "SLA deadline", "STEP", "STATUS", "HOSTS", "PENDING", "lab", "prodlike", "emea", "total"} {
		if !strings.Contains(text, want) {
			t.Errorf("current details lack %q; rendered text:\n%s", want, text)
		}
	}
	// The step table is a monospace block whose columns line up: the UI's
	// frame zeroes cell padding, so a Markdown table would run together.
	columns, err := chromedp.Run(bctx, chromedp.Evaluate[bool](
		`(() => { const f = document.querySelector('#user-metadata-current-details'); const pre = f && f.contentDocument.querySelector('pre');
		  return !!pre && getComputedStyle(pre).whiteSpace.startsWith('pre') && /STEP +STATUS +HOSTS/.test(pre.innerText); })()`))
	if err != nil || !columns {
		t.Errorf("the step table is not an aligned monospace block (err %v); rendered text:\n%s", err, text)
	}
}
