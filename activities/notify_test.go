package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// receiver is a local webhook receiver that verifies the signature the
// way a real one must: HMAC over the raw body, compared in constant time.
type receiver struct {
	t   *testing.T
	key []byte
	// answer returns the status for the n-th request (1-based).
	answer func(n int) int

	mu     sync.Mutex
	events []contract.Event
	keys   []string
	n      int
	srv    *httptest.Server
}

func newReceiver(t *testing.T, key string, answer func(n int) int) *receiver {
	t.Helper()
	r := &receiver{t: t, key: []byte(key), answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	if status := r.answer(n); status != http.StatusNoContent {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		w.WriteHeader(status)
		return
	}
	if r.key != nil {
		if err := activities.VerifySignature(r.key, body, req.Header.Get(activities.SignatureHeader), time.Now(), activities.SignatureTolerance); err != nil {
			r.t.Errorf("bad signature %q", req.Header.Get(activities.SignatureHeader))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
	}
	var ev contract.Event
	if err := json.Unmarshal(body, &ev); err != nil && r.key != nil {
		r.t.Errorf("body is not an event: %v", err)
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.keys = append(r.keys, req.Header.Get(activities.IdempotencyHeader))
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

func (r *receiver) received() []contract.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]contract.Event(nil), r.events...)
}

func always(status int) func(int) int { return func(int) int { return status } }

func testEvent(channels ...string) contract.Event {
	return contract.Event{
		Key: "ms08-067/sla_breached/1", Kind: contract.EventSLABreached, RolloutID: "ms08-067",
		At: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), Title: "SLA breached: KB958644",
		Markdown: "**KB958644** missed its deadline.\n\n- emea: 3 hosts pending", Text: "KB958644 missed its deadline.\n- emea: 3 hosts pending",
		Contacts: []string{"ciso@corp.example", "security-team"}, Channels: channels,
		Fields: []contract.Field{{Name: "milestone", Value: "breach"}},
	}
}

var testChannels = []rollout.Channel{{Name: "pager", Type: "webhook"}, {Name: "chat", Type: "slack"}, {Name: "mail", Type: "email"}}

func TestWebhookDeliversASignedEventWithItsIdempotencyKey(t *testing.T) {
	r := newReceiver(t, "k3y", always(http.StatusNoContent))
	n := &activities.Notifier{Channels: activities.StaticChannels{"pager": {URL: r.srv.URL, Key: []byte("k3y")}}}
	ev := testEvent("pager")
	res, err := n.Notify(context.Background(), contract.NotifyInput{Event: ev, Channels: testChannels})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Delivered) != 1 || len(res.Failed) != 0 {
		t.Fatalf("result %+v, want pager delivered", res)
	}
	got := r.received()
	if len(got) != 1 || got[0].Key != ev.Key || got[0].Kind != ev.Kind || got[0].Title != ev.Title || got[0].Fields[0] != ev.Fields[0] {
		t.Fatalf("receiver got %+v", got)
	}
	if r.keys[0] != ev.Key {
		t.Errorf("Idempotency-Key %q, want %q", r.keys[0], ev.Key)
	}
}

func TestSlackChannelPostsMrkdwnText(t *testing.T) {
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ = io.ReadAll(req.Body)
	}))
	defer srv.Close()
	n := &activities.Notifier{Channels: activities.StaticChannels{"chat": {URL: srv.URL}}}
	if _, err := n.Notify(context.Background(), contract.NotifyInput{Event: testEvent("chat"), Channels: testChannels}); err != nil {
		t.Fatal(err)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(body, &msg); err != nil {
		t.Fatalf("slack body %s: %v", body, err)
	}
	want := "*SLA breached: KB958644*\n*KB958644* missed its deadline.\n\n• emea: 3 hosts pending\nFor: ciso@corp.example, security-team"
	if msg.Text != want {
		t.Errorf("slack text\n%q\nwant\n%q", msg.Text, want)
	}
}

func TestWebhookRetriesWhatMayPassAndRefusesWhatWillNot(t *testing.T) {
	for _, tc := range []struct {
		name         string
		answer       func(int) int
		wantRequests int
		wantErr      bool
		wantFailed   bool
	}{
		{"503 then 429 then success is delivered on the third request", func(n int) int {
			return []int{http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusNoContent}[min(n, 3)-1]
		}, 3, false, false},
		{"a receiver down for every attempt fails the activity for Temporal to retry", always(http.StatusBadGateway), 3, true, false},
		{"400 is refused for good after one request", always(http.StatusBadRequest), 1, false, true},
		{"401 (wrong key on the receiver) is refused for good", always(http.StatusUnauthorized), 1, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReceiver(t, "k3y", tc.answer)
			n := &activities.Notifier{Channels: activities.StaticChannels{"pager": {URL: r.srv.URL, Key: []byte("k3y")}}, Backoff: 10 * time.Millisecond}
			res, err := n.Notify(context.Background(), contract.NotifyInput{Event: testEvent("pager"), Channels: testChannels})
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %t", err, tc.wantErr)
			}
			if got := len(res.Failed) > 0; got != tc.wantFailed {
				t.Errorf("failed %v, want failed %t", res.Failed, tc.wantFailed)
			}
			if r.requests() != tc.wantRequests {
				t.Errorf("%d requests, want %d", r.requests(), tc.wantRequests)
			}
			if err != nil && strings.Contains(err.Error(), r.srv.URL) {
				t.Errorf("error quotes the URL: %v", err)
			}
		})
	}
}

func TestChannelsThatCannotBeDeliveredSayWhatToFix(t *testing.T) {
	env := map[string]string{
		"PATCHWAY_CHANNEL_PAGER_URL":     "http://hooks.example.net/T000/B000/secretpath",
		"PATCHWAY_CHANNEL_PAGER_KEY":     "k",
		"PATCHWAY_CHANNEL_CHAT_URL":      "https://hooks.example.net/services/T000/B000/secretpath",
		"PATCHWAY_CHANNEL_NOKEY_URL":     "https://hooks.example.net/x",
		"PATCHWAY_CHANNEL_MAIL_SMTP":     "smtp.example.net:25",
		"PATCHWAY_CHANNEL_MAIL_FROM":     "patchway@corp.example",
		"PATCHWAY_CHANNEL_MAIL_SECURITY": "none",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	chans := append(testChannels, rollout.Channel{Name: "nokey", Type: "webhook"}, rollout.Channel{Name: "ops", Type: "webhook"})
	n := &activities.Notifier{Channels: activities.EnvChannels{LookupEnv: lookup}}
	res, err := n.Notify(context.Background(), contract.NotifyInput{
		Event: testEvent("pager", "nokey", "ops", "mail", "undeclared"), Channels: chans,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pager: channel \"pager\": PATCHWAY_CHANNEL_PAGER_URL uses http to hooks.example.net; use https (http is allowed only to loopback)",
		"nokey: channel \"nokey\" (webhook) is not configured on this worker: set PATCHWAY_CHANNEL_NOKEY_KEY (the signing key receivers verify X-Patchway-Signature with)",
		"ops: channel \"ops\" (webhook) is not configured on this worker: set PATCHWAY_CHANNEL_OPS_URL",
		"mail: channel \"mail\": PATCHWAY_CHANNEL_MAIL_SECURITY=none sends mail in clear text; it is allowed only to a loopback relay, not smtp.example.net",
		"undeclared: channel \"undeclared\" is not declared in rollout ms08-067",
	}
	if strings.Join(res.Errors, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors\n%s\nwant\n%s", strings.Join(res.Errors, "\n"), strings.Join(want, "\n"))
	}
	for _, e := range res.Errors {
		if strings.Contains(e, "secretpath") {
			t.Errorf("an error quotes a webhook URL: %s", e)
		}
	}
	cfg, err := (activities.EnvChannels{LookupEnv: lookup}).ResolveChannel(context.Background(), rollout.Channel{Name: "chat", Type: "slack"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{cfg.String(), cfg.GoString()} {
		if strings.Contains(s, "secretpath") {
			t.Errorf("ChannelConfig prints its URL: %s", s)
		}
	}
}

// notifyWorkflow runs Notify the way the rollout does: as an activity
// with retries.
func notifyWorkflow(ctx workflow.Context, in contract.NotifyInput) (contract.NotifyResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 5},
	})
	var res contract.NotifyResult
	err := workflow.ExecuteActivity(ctx, contract.NotifyName, in).Get(ctx, &res)
	return res, err
}

// A retried Notify activity skips the channels its earlier attempt
// delivered (kept in heartbeat details): the first receiver hears the
// event once although the activity ran twice.
func TestRetriedNotifyNeverDeliversTwiceOnAChannel(t *testing.T) {
	pager := newReceiver(t, "k3y", always(http.StatusNoContent))
	// The second channel is down for the whole first activity attempt
	// (three requests), then recovers.
	flaky := newReceiver(t, "k2", func(n int) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	n := &activities.Notifier{Backoff: time.Millisecond, Channels: activities.StaticChannels{
		"pager": {URL: pager.srv.URL, Key: []byte("k3y")},
		"ops":   {URL: flaky.srv.URL, Key: []byte("k2")},
	}}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(notifyWorkflow)
	activities.Register(env, activities.Deps{Notifier: n})
	chans := append(testChannels, rollout.Channel{Name: "ops", Type: "webhook"})
	env.ExecuteWorkflow(notifyWorkflow, contract.NotifyInput{Event: testEvent("pager", "ops"), Channels: chans})
	if err := env.GetWorkflowError(); err != nil {
		t.Fatal(err)
	}
	var res contract.NotifyResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Delivered, ",") != "pager,ops" {
		t.Errorf("delivered %v, want pager,ops", res.Delivered)
	}
	if got := len(pager.received()); got != 1 {
		t.Errorf("pager received the event %d times, want once", got)
	}
	if got := len(flaky.received()); got != 1 || flaky.requests() != 4 {
		t.Errorf("ops received %d events in %d requests, want 1 in 4", got, flaky.requests())
	}
}

// TestVerifySignatureRefusesReplaysAndTampering: the signature covers the
// timestamp and the body together, so neither can be changed alone, and a
// delivery older than the tolerance is refused as a replay.
func TestVerifySignatureRefusesReplaysAndTampering(t *testing.T) {
	key, body := []byte("pager-signing-key"), []byte(`{"kind":"sla_breached"}`)
	signed := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	header := activities.Sign(key, body, signed)
	retimed := strings.Replace(header, fmt.Sprintf("t=%d", signed.Unix()), fmt.Sprintf("t=%d", signed.Add(time.Hour).Unix()), 1)
	tests := []struct {
		name   string
		key    []byte
		body   []byte
		header string
		now    time.Time
		want   string
	}{
		{"fresh", key, body, header, signed.Add(time.Minute), ""},
		{"clocks a little apart", key, body, header, signed.Add(-time.Minute), ""},
		{"replayed six minutes later", key, body, header, signed.Add(6 * time.Minute), "refused as a replay"},
		{"timestamp moved forward to look fresh", key, body, retimed, signed.Add(time.Hour), "does not match"},
		{"body changed", key, []byte(`{"kind":"rollout_completed"}`), header, signed, "does not match"},
		{"another key", []byte("other"), body, header, signed, "does not match"},
		{"the old body-only signature", key, body, "sha256=" + strings.Repeat("0", 64), signed, "want t=<unix seconds>,v1="},
		{"no header", key, body, "", signed, "want t="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := activities.VerifySignature(tt.key, tt.body, tt.header, tt.now, activities.SignatureTolerance)
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("VerifySignature = %v, want %q", err, tt.want)
			}
		})
	}
}
