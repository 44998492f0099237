package console

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/internal/fixture"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// newConsole is a console over client c, its Temporal calls bounded by
// the request's context.
func newConsole(t *testing.T, c client.Client, address string) *Server {
	t.Helper()
	engine, err := policies.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Client: c, Namespace: "default", Address: address, Exceptions: engine, Issuer: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// lazyClient dials nothing until its first call.
func lazyClient(t *testing.T, address string) client.Client {
	t.Helper()
	c, err := client.NewLazyClient(client.Options{HostPort: address, Namespace: "default", Logger: fixture.QuietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func get(t *testing.T, h http.Handler, path string, mod func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:8235"+path, nil)
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPagesEscapeWhatHostsSay: a host answers with any text it likes (its
// name in the inventory, the reasons and evidence its scripts print);
// every page shows it as text, never as markup.
func TestPagesEscapeWhatHostsSay(t *testing.T) {
	s := newConsole(t, lazyClient(t, "127.0.0.1:1"), "127.0.0.1:1")
	hostile := `<script>alert("pwned")</script><img src=x onerror=alert(1)>`
	host := contract.HostReport{Name: "WS-1" + hostile, Region: "emea" + hostile, Site: "s", State: rollout.StateFailed, Reasons: []string{"exit 1603 " + hostile}}
	page := rolloutPage{frame: frame{Title: "Rollout x", Person: "alice", CSRF: "c"}, ID: "x", Halted: "w" + hostile,
		P:        workflows.Progress{RolloutID: "x", Status: workflows.StatusHalted, WaitingGate: "g" + hostile, Failure: hostile},
		Hosts:    []hostRow{{HostReport: host, Link: "/rollouts/x/hosts/" + url.PathEscape(host.Name)}},
		Failing:  []hostRow{{HostReport: host}},
		Steps:    []stepView{viewStep(workflows.StepProgress{Name: "w" + hostile, Hosts: 1, Totals: map[rollout.HostState]int{rollout.StateFailed: 1}})},
		Heat:     heat([]contract.Breakdown{{Dimension: "region", Value: hostile, Hosts: 1, Totals: map[rollout.HostState]int{rollout.StateFailed: 1}}}),
		Flash:    &flash{Message: hostile, Violations: []rollout.Violation{{Code: "c" + hostile, Msg: hostile}}},
		CanAct:   true,
		Matching: 1, Shown: 1,
	}
	hp := hostPage{frame: frame{Title: host.Name}, ID: "x", Host: workflows.HostStatus{Name: host.Name, State: rollout.StateFailed, Reasons: host.Reasons, Evidence: []string{hostile}}, Report: &host}
	for _, tc := range []struct {
		page, fragment string
		data           any
	}{{"rollout", "", page}, {"rollout", "live", page}, {"rollout", "hosts", page}, {"host", "", hp}} {
		w := httptest.NewRecorder()
		s.render(w, http.StatusOK, tc.page, tc.data, tc.fragment)
		body := w.Body.String()
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
			t.Errorf("%s %q renders the host's text as markup:\n%s", tc.page, tc.fragment, body)
		}
		if !strings.Contains(body, "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;") {
			t.Errorf("%s %q does not show the host's text escaped", tc.page, tc.fragment)
		}
	}
}

// TestAServerThatIsDownThenComesBack: a console started while its
// server is down shows every page as a 503 that retries by itself (the
// live part a page polls too); once the server answers on the same
// address, the same console serves pages again, and an unknown rollout is
// a 404 page naming it.
func TestAServerThatIsDownThenComesBack(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test starts the embedded Temporal server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	h := newConsole(t, lazyClient(t, address), address).Handler()
	for _, path := range []string{"/", "/rollouts/r1", "/rollouts/r1?fragment=live", "/rollouts/r1/hosts/WS-1"} {
		w := get(t, h, path, nil)
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "does not answer") || !strings.Contains(w.Body.String(), "data-retry") {
			t.Errorf("%s with the server down: %d\n%s", path, w.Code, w.Body.String())
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := devserver.Options{DisableUI: true, FrontendPort: port, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, a := range workflows.SearchAttributes {
		opts.SearchAttributes = append(opts.SearchAttributes, devserver.SearchAttribute{Name: a.Name, Type: a.Type})
	}
	srv, err := devserver.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	var w *httptest.ResponseRecorder
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if w = get(t, h, "/", nil); w.Code == http.StatusOK {
			break
		}
	}
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "No rollout is running") {
		t.Errorf("the list once the server is back: %d\n%s", w.Code, w.Body.String())
	}
	w = get(t, h, "/rollouts/no-such-rollout", nil)
	if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "There is no rollout no-such-rollout in namespace default") {
		t.Errorf("unknown rollout: %d\n%s", w.Code, w.Body.String())
	}
}

// TestFormsRefuseForgeryAndForeignHosts: a post from another site, a
// post without the session's anti-forgery token, a request for a
// rebound host name and a sign-in's "next" off the console are refused.
func TestFormsRefuseForgeryAndForeignHosts(t *testing.T) {
	s := newConsole(t, lazyClient(t, "127.0.0.1:1"), "127.0.0.1:1")
	h := s.Handler()
	rec := httptest.NewRecorder()
	ses := session{Subject: "alice", AccessToken: "tok", Expiry: time.Now().Add(time.Hour), CSRF: "right"}
	if err := s.setCookie(rec, sessionCookie, ses, ses.Expiry); err != nil {
		t.Fatal(err)
	}
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || strings.Contains(cookie.Value, "tok") {
		t.Fatalf("session cookie %+v: want sealed, HttpOnly, SameSite", cookie)
	}
	post := func(form url.Values, mod func(*http.Request)) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8235/rollouts/r1/act", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(cookie)
		if mod != nil {
			mod(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	form := url.Values{"action": {"resume"}, "reason": {"x"}, "csrf": {"right"}}
	if w := post(form, func(r *http.Request) {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
		r.Header.Set("Origin", "https://evil.example")
	}); w.Code != http.StatusForbidden {
		t.Errorf("cross-site post: %d, want 403", w.Code)
	}
	bad := url.Values{"action": {"resume"}, "reason": {"x"}, "csrf": {"wrong"}}
	if w := post(bad, nil); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "did not come from your console session") {
		t.Errorf("wrong anti-forgery token: %d\n%s", w.Code, w.Body.String())
	}
	unknown := url.Values{"action": {"terminate"}, "csrf": {"right"}}
	if w := post(unknown, nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not an action of the console") {
		t.Errorf("unknown action: %d", w.Code)
	}
	// Altered cookie: not signed in, sent to sign in.
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8235/rollouts/r1/act", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookie.Value[:len(cookie.Value)-2] + "AA"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
		t.Errorf("altered session cookie: %d to %q, want sent to sign in", w.Code, w.Header().Get("Location"))
	}
	if w := get(t, h, "/", func(r *http.Request) { r.Host = "evil.example:8235" }); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("a rebound host name: %d, want 421", w.Code)
	}
	for next, want := range map[string]string{"/rollouts/r1": "/rollouts/r1", "//evil.example/x": "/", "https://evil.example": "/", `/\evil.example`: "/"} {
		if got := localPath(next); got != want {
			t.Errorf("localPath(%q) = %q, want %q", next, got, want)
		}
	}
	if w := get(t, h, "/static/console.js", nil); w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("static script: %d, CSP %q", w.Code, w.Header().Get("Content-Security-Policy"))
	}
}
