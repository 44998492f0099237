package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// The dev inbox takes every unconfigured channel, whatever its declared
// type, through the notifier's real signed-webhook path, and prints one
// line per delivery; a channel with settings in the environment is
// resolved from them instead.
func TestDevInboxPrintsDeliveriesOfUnconfiguredChannels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	inbox, err := startDevInbox(ctx, &out)
	if err != nil {
		t.Fatal(err)
	}
	channels := []rollout.Channel{{Name: "security-chat", Type: "slack"}, {Name: "pager", Type: "webhook"}, {Name: "ciso-mail", Type: "email"}}
	n := &activities.Notifier{Channels: inbox, Attempts: 1}
	at := time.Date(2026, 12, 3, 9, 30, 0, 0, time.Local)
	res, err := n.Notify(ctx, contract.NotifyInput{Channels: channels, Event: contract.Event{
		Key: "ms08-067/escalation/75", Kind: "escalation", RolloutID: "ms08-067", At: at,
		Title: "MS08-067: 75% of the SLA used", Contacts: []string{"secops-oncall", "ciso"},
		Channels: []string{"security-chat", "pager", "ciso-mail"},
	}})
	if err != nil || len(res.Failed) > 0 {
		t.Fatalf("notify: %+v, %v", res, err)
	}
	for _, ch := range []string{"security-chat", "pager", "ciso-mail"} {
		want := "  notification 09:30:00 [" + ch + "] escalation: MS08-067: 75% of the SLA used -> secops-oncall, ciso\n"
		if !strings.Contains(out.String(), want) {
			t.Errorf("inbox output lacks %q:\n%s", want, out.String())
		}
	}

	// An unsigned (or wrongly signed) post is refused and prints nothing.
	before := out.String()
	resp, err := http.Post(inbox.url+"?channel=pager", "application/json", bytes.NewReader([]byte(`{"kind":"escalation","title":"forged"}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || out.String() != before {
		t.Errorf("unsigned post: status %d, output grew to:\n%s", resp.StatusCode, out.String())
	}

	// A channel with any PATCHWAY_CHANNEL_<NAME>_* variable is the
	// environment's: a half-configured one fails as it would in production.
	t.Setenv(activities.ChannelEnvName("pager")+"_KEY", "not-a-url-just-a-key")
	if _, err := inbox.ResolveChannel(ctx, rollout.Channel{Name: "pager", Type: "webhook"}); err == nil {
		t.Error("a half-configured channel resolved to the inbox instead of failing")
	}
	cfg, err := inbox.ResolveChannel(ctx, rollout.Channel{Name: "security-chat", Type: "slack"})
	if err != nil || !strings.HasPrefix(cfg.URL, "http://127.0.0.1:") {
		t.Errorf("unconfigured channel: %+v, %v", cfg, err)
	}
}
