package activities

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/patchway/patchway/rollout"
)

// channelEnvPrefix starts every channel variable: a channel "pager" reads
// PATCHWAY_CHANNEL_PAGER_URL, PATCHWAY_CHANNEL_PAGER_KEY, ...
const channelEnvPrefix = "PATCHWAY_CHANNEL_"

// SMTP transport security modes.
const (
	SMTPStartTLS = "starttls" // the default: plain connect, then STARTTLS, refused if not offered
	SMTPTLS      = "tls"      // implicit TLS (port 465)
	SMTPNone     = "none"     // clear text; only to a loopback relay
)

// ChannelConfig is how the worker delivers on one channel. The rollout
// declares channels by name and type; the address and the keys live only
// in the worker's environment, so nothing here ever enters history.
// Its String, GoString and LogValue forms redact the secrets.
type ChannelConfig struct {
	Name string
	Type string
	// URL is the webhook or Slack-compatible incoming-webhook address.
	// Slack's URLs are themselves secrets: never log or return them.
	URL string
	// Key signs webhook bodies (X-Patchway-Signature, HMAC-SHA256).
	Key  []byte
	SMTP SMTPConfig
}

// SMTPConfig is an email channel's relay and envelope.
type SMTPConfig struct {
	// Addr is host:port of the relay.
	Addr string
	From string
	// To receives every event; escalation contacts that are addresses are
	// added to it.
	To       []string
	Username string
	Password string
	// Security is SMTPStartTLS, SMTPTLS or SMTPNone.
	Security string
	// RootCAs verifies the relay's certificate (nil: the system roots).
	RootCAs *x509.CertPool
}

// String names the channel without its address or keys.
func (c ChannelConfig) String() string {
	return fmt.Sprintf("channel %s (%s, address and keys redacted)", c.Name, c.Type)
}

// GoString redacts like String (for %#v).
func (c ChannelConfig) GoString() string { return c.String() }

// LogValue redacts like String in slog output.
func (c ChannelConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", c.Name), slog.String("type", c.Type))
}

// ChannelEnvName returns the environment variable prefix of channel name:
// "security-chat" gives PATCHWAY_CHANNEL_SECURITY_CHAT.
func ChannelEnvName(name string) string { return envName(channelEnvPrefix, name) }

// ChannelResolver turns a channel the rollout declared into its delivery
// settings. Workers resolve from the environment (EnvChannels); tests may
// pass a StaticChannels.
type ChannelResolver interface {
	ResolveChannel(ctx context.Context, ch rollout.Channel) (ChannelConfig, error)
}

// StaticChannels resolves channels from a map held in memory, by name.
type StaticChannels map[string]ChannelConfig

// ResolveChannel returns the channel called ch.Name.
func (s StaticChannels) ResolveChannel(_ context.Context, ch rollout.Channel) (ChannelConfig, error) {
	c, ok := s[ch.Name]
	if !ok {
		return ChannelConfig{}, fmt.Errorf("channel %q is not configured on this worker", ch.Name)
	}
	c.Name, c.Type = ch.Name, ch.Type
	return c, nil
}

// EnvChannels resolves a channel NAME from PATCHWAY_CHANNEL_<NAME>_*
// variables (NAME upper-cased, other characters than A-Z and 0-9 replaced
// by '_'):
//
//	webhook  _URL (https, or http to loopback), _KEY (HMAC-SHA256 key, required)
//	slack    _URL (the incoming-webhook address, https, or http to loopback)
//	email    _SMTP (host:port), _FROM, _TO (comma-separated, optional when
//	         escalation contacts are addresses), _USER and _PASSWORD
//	         (optional), _SECURITY (starttls | tls | none; none only to a
//	         loopback relay), _CA (PEM file of extra roots, optional)
type EnvChannels struct {
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// ResolveChannel reads ch's settings from the environment. Errors name the
// variable to set and never quote a value.
func (e EnvChannels) ResolveChannel(_ context.Context, ch rollout.Channel) (ChannelConfig, error) {
	lookup := e.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	prefix := ChannelEnvName(ch.Name)
	get := func(suffix string) string {
		v, _ := lookup(prefix + "_" + suffix)
		return strings.TrimSpace(v)
	}
	need := func(suffix string) (string, error) {
		if v := get(suffix); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("channel %q (%s) is not configured on this worker: set %s_%s", ch.Name, ch.Type, prefix, suffix)
	}
	cfg := ChannelConfig{Name: ch.Name, Type: ch.Type}
	var err error
	switch ch.Type {
	case "webhook", "slack":
		if cfg.URL, err = need("URL"); err != nil {
			return ChannelConfig{}, err
		}
		if err := checkWebhookURL(cfg.URL); err != nil {
			return ChannelConfig{}, fmt.Errorf("channel %q: %s_URL %w", ch.Name, prefix, err)
		}
		if ch.Type == "webhook" {
			key, err := need("KEY")
			if err != nil {
				return ChannelConfig{}, fmt.Errorf("%w (the signing key receivers verify X-Patchway-Signature with)", err)
			}
			cfg.Key = []byte(key)
		}
	case "email":
		s := &cfg.SMTP
		if s.Addr, err = need("SMTP"); err != nil {
			return ChannelConfig{}, err
		}
		host, _, err := net.SplitHostPort(s.Addr)
		if err != nil {
			return ChannelConfig{}, fmt.Errorf("channel %q: %s_SMTP must be host:port", ch.Name, prefix)
		}
		if s.From, err = need("FROM"); err != nil {
			return ChannelConfig{}, err
		}
		for _, to := range strings.Split(get("TO"), ",") {
			if to = strings.TrimSpace(to); to != "" {
				s.To = append(s.To, to)
			}
		}
		s.Username, s.Password = get("USER"), get("PASSWORD")
		s.Security = strings.ToLower(get("SECURITY"))
		switch s.Security {
		case "":
			s.Security = SMTPStartTLS
		case SMTPStartTLS, SMTPTLS:
		case SMTPNone:
			if !isLoopback(host) {
				return ChannelConfig{}, fmt.Errorf("channel %q: %s_SECURITY=none sends mail in clear text; it is allowed only to a loopback relay, not %s", ch.Name, prefix, host)
			}
		default:
			return ChannelConfig{}, fmt.Errorf("channel %q: %s_SECURITY must be starttls, tls or none", ch.Name, prefix)
		}
		if path := get("CA"); path != "" {
			pem, err := os.ReadFile(path)
			if err != nil {
				return ChannelConfig{}, fmt.Errorf("channel %q: %s_CA: %w", ch.Name, prefix, err)
			}
			s.RootCAs = x509.NewCertPool()
			if !s.RootCAs.AppendCertsFromPEM(pem) {
				return ChannelConfig{}, fmt.Errorf("channel %q: %s_CA %s holds no PEM certificate", ch.Name, prefix, path)
			}
		}
	default:
		return ChannelConfig{}, fmt.Errorf("channel %q has unknown type %q (webhook, slack or email)", ch.Name, ch.Type)
	}
	return cfg, nil
}

// checkWebhookURL accepts https anywhere and http only to loopback: event
// bodies carry vulnerability details and the signature does not hide them.
// The message never quotes the URL (Slack's carry their secret in the path).
func checkWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("uses http to %s; use https (http is allowed only to loopback)", u.Hostname())
	}
	return fmt.Errorf("has scheme %q; want https", u.Scheme)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
