package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/patchway/patchway/devidp"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/workflows"
)

// startConsole runs `patchway console` against the test's server and
// returns its URL.
func (e *e2e) startConsole(issuer string) string {
	e.t.Helper()
	args := []string{"console", "--listen", "127.0.0.1:0", "--address", e.address(), "--namespace", devserver.DefaultNamespace, "--issuer", issuer}
	if e.srv.UIAddress() != "" {
		args = append(args, "--web-ui", e.srv.UIAddress())
	}
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env
	log, err := os.Create(filepath.Join(e.dir, "console.log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	m := regexp.MustCompile(`^console: (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(line)
	if err != nil || m == nil {
		e.t.Fatalf("patchway console printed %q (%v); its log is %s", line, err, log.Name())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return m[1]
}

// TestConsoleHaltedWaveRefusedToTheFilerApprovedByAnother is the console
// as a person uses it, in headless Chromium: alice signs in at the
// identity provider's own page, opens her rollout whose first wave the
// waves policy halted, and reads the failing hosts' names and reasons;
// her resume is refused with the gates policy's four-eyes reason; bob
// signs in, resumes, and the page shows the wave move on by itself.
func TestConsoleHaltedWaveRefusedToTheFilerApprovedByAnother(t *testing.T) {
	chromium := chromiumPath()
	if chromium == "" {
		t.Skip("chromium is not installed (Debian package chromium; .ci/run installs it)")
	}
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	e := newE2E(t, e2eOptions{ui: true, verifiedIdentity: true,
		policyData: fmt.Sprintf(`{%s, "oidc": {"issuer": %q}}`, policyBase, idp.URL())})
	_, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-policy.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const id = "na-console"
	alice := e.login(ctx, idp, "alice")
	e.mustCLI(ctx, "submit", e.policyRollout(id, "na"), "--inventory", inv, "--session", alice, "--boot-timeout", "3s")
	base := e.startConsole(idp.URL())

	// A rollout nobody filed is a clear page, not a stack trace.
	if resp, err := http.Get(base + "/rollouts/no-such-rollout"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown rollout: %v %v, want 404", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	p := e.waitFor(ctx, id, "the first wave to halt", 3*time.Minute, func(p workflows.Progress) bool {
		return p.Status == workflows.StatusHalted || begun(stepOf(p, "file-servers"))
	})
	if p.Status != workflows.StatusHalted {
		t.Fatalf("rollout %s; want its first wave halted", p.Status)
	}
	states := e.hostStates(ctx, id)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1100))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	// Start the browser on bctx itself: a browser first started under a
	// step's timeout would die with that step.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	shots := artifactDir(t)
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot %s: %v", name, err)
			return
		}
		path := filepath.Join(shots, name)
		if err := os.WriteFile(path, png, 0o644); err == nil {
			t.Logf("screenshot: %s", path)
		}
	}
	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot("console-failure.png")
			t.Fatalf("%s: %v (console log: %s)", what, err, filepath.Join(e.dir, "console.log"))
		}
	}
	text := func(what, sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, 45*time.Second)
		defer cancel()
		got, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			shot("console-failure.png")
			t.Fatalf("%s: %v (console log: %s)", what, err, filepath.Join(e.dir, "console.log"))
		}
		return got
	}
	signIn := func(user string) {
		t.Helper()
		run("sign in as "+user,
			chromedp.Navigate(base+"/"),
			chromedp.Click(chromedp.CSS("#login")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="username"]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name="username"]`), user),
			chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), user),
			chromedp.Click(chromedp.CSS(`button[name="approve"]`)),
			chromedp.WaitVisible(chromedp.CSS("#person")))
		if who := text("who is signed in", "#person"); who != user {
			t.Fatalf("signed in as %q, want %s", who, user)
		}
	}
	rolloutURL := base + "/rollouts/" + id

	// alice opens the halted wave: every failing host, by name, with why.
	signIn("alice")
	run("open the halted wave", chromedp.Navigate(rolloutURL), chromedp.WaitVisible(chromedp.CSS("#halt")))
	halt := text("the halted wave", "#halt")
	shot("console-halted-wave.png")
	failing := 0
	for name, st := range states {
		if st == "failed" || st == "unreachable" {
			failing++
			if !strings.Contains(halt, name) || !strings.Contains(halt, string(st)) {
				t.Errorf("the halted wave does not show %s (%s):\n%s", name, st, halt)
			}
		}
	}
	if failing < 2 || !strings.Contains(halt, "Wave workstations halted") {
		t.Errorf("halted wave shows:\n%s\nwant the workstations wave with its %d failing hosts", halt, failing)
	}
	if !regexp.MustCompile(`(?i)exit code|installer|boot|reach`).MatchString(halt) {
		t.Errorf("the halted wave gives no reason for its hosts:\n%s", halt)
	}

	// The filer's resume is refused, with the policy's reason.
	run("resume as the filer",
		chromedp.SendKeys(chromedp.CSS(`#resume-form input[name="reason"]`), "console e2e: the filer tries"),
		chromedp.Click(chromedp.CSS(`#resume-form button[name="action"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flash")))
	refused := text("the refusal", "#flash")
	shot("console-refused.png")
	if !strings.Contains(refused, "refused by policy") || !strings.Contains(refused, "four_eyes") || !strings.Contains(refused, "alice filed rollout "+id) {
		t.Errorf("the filer's resume shows %q; want the gates policy's four-eyes refusal", refused)
	}
	if p, _ := e.progress(ctx, id); p.Status != workflows.StatusHalted {
		t.Fatalf("after the refusal the rollout is %s; want still halted", p.Status)
	}

	// bob resumes it, and the page shows the wave move.
	run("sign out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login")))
	signIn("bob")
	run("resume as bob",
		chromedp.Navigate(rolloutURL),
		chromedp.WaitVisible(chromedp.CSS("#resume-form")),
		chromedp.SendKeys(chromedp.CSS(`#resume-form input[name="reason"]`), "console e2e: failures understood"),
		chromedp.Click(chromedp.CSS(`#resume-form button[name="action"]`)),
		chromedp.WaitVisible(chromedp.CSS("#flash.ok")))
	done := text("bob's resume", "#flash")
	if !strings.Contains(done, "bob") {
		t.Errorf("bob's resume shows %q", done)
	}
	// The live part refreshes by itself: no reload.
	var status string
	deadline := time.Now().Add(90 * time.Second)
	for {
		status = text("the live status", `tr[data-step="file-servers"] .step-status`)
		if status != "pending" || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	shot("console-wave-moved.png")
	if status == "pending" {
		t.Fatalf("90 s after bob resumed, the console still shows file-servers pending")
	}
	t.Logf("after bob's resume the page shows file-servers %s", status)
}
