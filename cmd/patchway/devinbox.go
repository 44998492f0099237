package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// devInbox receives, on loopback, the notifications of every channel the
// dev worker has no PATCHWAY_CHANNEL_<NAME>_* configuration for, and
// prints one line per delivery on dev's output: a newcomer sees the
// advisory, the gates and the escalations arrive without setting up Slack
// or a pager. It is a signed webhook like any other (the signature is
// checked), so the notifier's real delivery path runs.
type devInbox struct {
	url string
	key []byte
	srv *http.Server

	mu  sync.Mutex
	out io.Writer
}

// startDevInbox listens on a loopback port until ctx ends.
func startDevInbox(ctx context.Context, out io.Writer) (*devInbox, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("dev inbox key: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dev inbox: %w", err)
	}
	d := &devInbox{url: "http://" + l.Addr().String() + "/notify", key: key, out: out}
	d.srv = &http.Server{Handler: http.HandlerFunc(d.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = d.srv.Serve(l) }()
	context.AfterFunc(ctx, func() { _ = d.srv.Close() })
	return d, nil
}

// ResolveChannel resolves a channel from the environment when any of its
// variables is set (so a real channel, or a mistake in one, is used and
// reported as in production), and to the inbox otherwise.
func (d *devInbox) ResolveChannel(ctx context.Context, ch rollout.Channel) (activities.ChannelConfig, error) {
	env := activities.EnvChannels{}
	if channelConfigured(ch.Name) {
		return env.ResolveChannel(ctx, ch)
	}
	return activities.ChannelConfig{Name: ch.Name, Type: "webhook", URL: d.url + "?channel=" + url.QueryEscape(ch.Name), Key: d.key}, nil
}

// channelConfigured says whether the environment has any variable of the
// channel called name.
func channelConfigured(name string) bool {
	prefix := activities.ChannelEnvName(name) + "_"
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, prefix) {
			return true
		}
	}
	return false
}

func (d *devInbox) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if activities.VerifySignature(d.key, body, r.Header.Get(activities.SignatureHeader), time.Now(), activities.SignatureTolerance) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev contract.Event
	if err := json.Unmarshal(body, &ev); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	d.print(r.URL.Query().Get("channel"), ev)
	w.WriteHeader(http.StatusNoContent)
}

// print writes one line: when, on which channel, what, and for whom.
func (d *devInbox) print(channel string, ev contract.Event) {
	line := fmt.Sprintf("  notification %s [%s] %s: %s", ev.At.Local().Format("15:04:05"), channel, ev.Kind, ev.Title)
	if len(ev.Contacts) > 0 {
		line += " -> " + strings.Join(ev.Contacts, ", ")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintln(d.out, line)
}
