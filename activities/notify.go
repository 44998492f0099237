package activities

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/rollout"
)

// Webhook headers receivers rely on.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>":
	// the HMAC under the channel's key of the timestamp, a dot and the
	// body, so a receiver can refuse a delivery replayed later
	// (VerifySignature).
	SignatureHeader = "X-Patchway-Signature"
	// EventHeader names the event kind.
	EventHeader = "X-Patchway-Event"
	// IdempotencyHeader carries the event key: the same for every
	// delivery attempt of one event, so a receiver acts once.
	IdempotencyHeader = "Idempotency-Key"
)

// Notifier delivers events on the channels a rollout declares, resolving
// their addresses and keys in the worker. Delivery is at least once per
// channel and idempotent by the event key: channels already delivered are
// kept in heartbeat details, so a retried activity skips them, and every
// request carries the key (Idempotency-Key header, email Message-ID).
type Notifier struct {
	Channels ChannelResolver
	// HTTP posts webhooks; nil uses a client with a 15s timeout.
	HTTP *http.Client
	// Attempts per channel within one activity attempt (default 3), with
	// exponential backoff from Backoff (default 1s) capped at 10s or the
	// receiver's Retry-After.
	Attempts int
	Backoff  time.Duration
}

// deliveryError is one channel's failure; permanent ones are not retried.
type deliveryError struct {
	msg       string
	permanent bool
	// retryAfter is the receiver's Retry-After, if any.
	retryAfter time.Duration
}

func (e *deliveryError) Error() string { return e.msg }

func permanent(format string, a ...any) error {
	return &deliveryError{msg: fmt.Sprintf(format, a...), permanent: true}
}

func transient(format string, a ...any) error {
	return &deliveryError{msg: fmt.Sprintf(format, a...)}
}

// Notify delivers in.Event on each of its channels. A channel that fails
// for good (not configured, refused by the receiver, no recipient) is
// listed in the result's Failed and Errors; a channel that may recover
// (timeouts, 5xx, 429) makes the attempt fail with NotifyFailed so
// Temporal retries it, skipping the channels already delivered.
func (n *Notifier) Notify(ctx context.Context, in contract.NotifyInput) (contract.NotifyResult, error) {
	var res contract.NotifyResult
	delivered := map[string]bool{}
	if activity.IsActivity(ctx) && activity.HasHeartbeatDetails(ctx) {
		var prev []string
		if err := activity.GetHeartbeatDetails(ctx, &prev); err == nil {
			for _, name := range prev {
				delivered[name] = true
			}
		}
	}
	var retry []string
	for _, name := range in.Event.Channels {
		if delivered[name] {
			res.Delivered = append(res.Delivered, name)
			continue
		}
		err := n.deliverOn(ctx, in, name)
		var de *deliveryError
		switch {
		case err == nil:
			delivered[name] = true
			res.Delivered = append(res.Delivered, name)
			if activity.IsActivity(ctx) {
				activity.RecordHeartbeat(ctx, res.Delivered)
			}
			n.log(ctx, "notified", "channel", name, "kind", in.Event.Kind, "key", in.Event.Key)
		case errors.As(err, &de) && de.permanent:
			res.Failed = append(res.Failed, name)
			res.Errors = append(res.Errors, name+": "+err.Error())
			n.log(ctx, "notification refused", "channel", name, "kind", in.Event.Kind, "key", in.Event.Key, "error", err)
		default:
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			retry = append(retry, name+": "+err.Error())
		}
	}
	if len(retry) > 0 {
		return res, temporal.NewApplicationError(fmt.Sprintf("event %s undelivered (will retry): %s", in.Event.Key, strings.Join(retry, "; ")), contract.NotifyFailed)
	}
	return res, nil
}

func (n *Notifier) log(ctx context.Context, msg string, kv ...any) {
	if activity.IsActivity(ctx) {
		activity.GetLogger(ctx).Info(msg, kv...)
	}
}

// deliverOn delivers on one channel with a few quick attempts.
func (n *Notifier) deliverOn(ctx context.Context, in contract.NotifyInput, name string) error {
	i := slices.IndexFunc(in.Channels, func(c rollout.Channel) bool { return c.Name == name })
	if i < 0 {
		return permanent("channel %q is not declared in rollout %s", name, in.Event.RolloutID)
	}
	if n.Channels == nil {
		return permanent("no channels are configured on this worker")
	}
	cfg, err := n.Channels.ResolveChannel(ctx, in.Channels[i])
	if err != nil {
		return permanent("%v", err)
	}
	attempts, backoff := n.Attempts, n.Backoff
	if attempts <= 0 {
		attempts = 3
	}
	if backoff <= 0 {
		backoff = time.Second
	}
	for a := 1; ; a++ {
		switch cfg.Type {
		case "webhook":
			err = n.postWebhook(ctx, cfg, in.Event)
		case "slack":
			err = n.postSlack(ctx, cfg, in.Event)
		case "email":
			err = sendMail(ctx, cfg, in.Event)
		default:
			return permanent("channel %q has unknown type %q", name, cfg.Type)
		}
		var de *deliveryError
		if err == nil || a >= attempts || (errors.As(err, &de) && de.permanent) {
			return err
		}
		wait := min(backoff<<(a-1), 10*time.Second)
		if de != nil && de.retryAfter > 0 {
			wait = min(de.retryAfter, 30*time.Second)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// SignatureTolerance is how old a signed delivery may be when a receiver
// checks it: older ones are refused as replays. Each delivery attempt is
// signed anew, so a retried event is never stale.
const SignatureTolerance = 5 * time.Minute

// Sign returns the X-Patchway-Signature value of body under key, signed at
// at: "t=<unix seconds>,v1=" and the hex HMAC-SHA256 of "<t>." + body (the
// scheme Stripe and Slack use, so their receivers' code carries over).
func Sign(key, body []byte, at time.Time) string {
	t := strconv.FormatInt(at.Unix(), 10)
	return "t=" + t + ",v1=" + signature(key, t, body)
}

func signature(key []byte, t string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(t))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks a delivery as a receiver must: the header parses,
// its HMAC over the timestamp and the raw body matches (constant-time),
// and the timestamp is within tolerance of now, so a captured delivery
// replayed later is refused.
func VerifySignature(key, body []byte, header string, now time.Time, tolerance time.Duration) error {
	var t, v1 string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			t = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v1 == "" {
		return errors.New("signature header: want t=<unix seconds>,v1=<hex HMAC-SHA256>")
	}
	if !hmac.Equal([]byte(signature(key, t, body)), []byte(v1)) {
		return errors.New("signature does not match the body and timestamp")
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("signed %s from now, beyond the %s tolerance: refused as a replay", age.Round(time.Second), tolerance)
	}
	return nil
}

// postWebhook posts the event as JSON, signed.
func (n *Notifier) postWebhook(ctx context.Context, cfg ChannelConfig, ev contract.Event) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return permanent("encode event: %v", err)
	}
	return n.post(ctx, cfg, ev, body, func() string { return Sign(cfg.Key, body, time.Now()) })
}

// slackMessage is the Slack incoming-webhook body (also accepted by
// Mattermost and Rocket.Chat).
type slackMessage struct {
	Text string `json:"text"`
}

// postSlack posts the event's title and text in Slack's mrkdwn.
func (n *Notifier) postSlack(ctx context.Context, cfg ChannelConfig, ev contract.Event) error {
	text := "*" + ev.Title + "*"
	if ev.Markdown != "" {
		text += "\n" + slackMarkdown(ev.Markdown)
	}
	if len(ev.Contacts) > 0 {
		text += "\nFor: " + strings.Join(ev.Contacts, ", ")
	}
	body, err := json.Marshal(slackMessage{Text: text})
	if err != nil {
		return permanent("encode slack message: %v", err)
	}
	return n.post(ctx, cfg, ev, body, nil)
}

// slackMarkdown converts the Markdown the events use (bold, bullets,
// headings) to Slack's mrkdwn.
func slackMarkdown(md string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(md, "\n") {
		if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
			line = "*" + strings.TrimSpace(h) + "*"
		}
		if rest, ok := strings.CutPrefix(line, "- "); ok {
			line = "• " + rest
		}
		b.WriteString(slackUnescape.Replace(strings.ReplaceAll(line, "**", "*")))
		b.WriteByte('\n')
	}
	return strings.TrimRight(b.String(), "\n")
}

// slackUnescape undoes Markdown's backslash escapes, which mrkdwn does not
// know (it would show the backslashes); &lt; and &gt; stay, as Slack wants.
var slackUnescape = strings.NewReplacer(`\\`, `\`, `\*`, "*", `\_`, "_", "\\`", "`", `\[`, "[", `\]`, "]")

// post sends body and classifies the answer: 2xx delivered; 408, 425,
// 429 and 5xx retried; anything else refused for good. Errors never quote
// the URL, which can be the secret.
// sign, when not nil, gives the signature header of this attempt.
func (n *Notifier) post(ctx context.Context, cfg ChannelConfig, ev contract.Event, body []byte, sign func() string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, bytes.NewReader(body))
	if err != nil {
		return permanent("channel %s: bad URL", cfg.Name)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "patchway")
	req.Header.Set(EventHeader, string(ev.Kind))
	req.Header.Set(IdempotencyHeader, ev.Key)
	if sign != nil {
		req.Header.Set(SignatureHeader, sign())
	}
	hc := n.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop "Post <url>:"
		}
		return transient("post to channel %s: %v", cfg.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return nil
	case c == http.StatusRequestTimeout || c == http.StatusTooEarly || c == http.StatusTooManyRequests || c >= 500:
		de := &deliveryError{msg: fmt.Sprintf("channel %s answered %s", cfg.Name, resp.Status)}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			de.retryAfter = time.Duration(s) * time.Second
		}
		return de
	default:
		return permanent("channel %s refused the event: %s", cfg.Name, resp.Status)
	}
}
