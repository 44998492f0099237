package activities

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
)

// sendMail delivers ev by SMTP: STARTTLS (or implicit TLS) with the
// relay's certificate verified, AUTH PLAIN only inside TLS, and a
// Message-ID derived from the event key so that mail clients and
// archives see a repeated delivery as the same message.
func sendMail(ctx context.Context, cfg ChannelConfig, ev contract.Event) error {
	s := cfg.SMTP
	rcpts := recipients(s.To, ev.Contacts)
	if len(rcpts) == 0 {
		return permanent("channel %s: no recipient (set PATCHWAY_CHANNEL_..._TO or give escalation contacts as addresses)", cfg.Name)
	}
	msg, err := mailMessage(s.From, rcpts, ev)
	if err != nil {
		return permanent("channel %s: %v", cfg.Name, err)
	}
	host, _, _ := net.SplitHostPort(s.Addr)
	tlsCfg := &tls.Config{ServerName: host, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}

	dl, ok := ctx.Deadline()
	if !ok || time.Until(dl) > time.Minute {
		dl = time.Now().Add(time.Minute)
	}
	d := &net.Dialer{Deadline: dl}
	var conn net.Conn
	if s.Security == SMTPTLS {
		conn, err = (&tls.Dialer{NetDialer: d, Config: tlsCfg}).DialContext(ctx, "tcp", s.Addr)
	} else {
		conn, err = d.DialContext(ctx, "tcp", s.Addr)
	}
	if err != nil {
		return smtpError(cfg.Name, "connect", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(dl)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return smtpError(cfg.Name, "greeting", err)
	}
	defer c.Close()
	if err := c.Hello("patchway"); err != nil {
		return smtpError(cfg.Name, "EHLO", err)
	}
	if s.Security == SMTPStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return permanent("channel %s: relay %s does not offer STARTTLS; refusing to send in clear text", cfg.Name, s.Addr)
		}
		if err := c.StartTLS(tlsCfg); err != nil {
			return smtpError(cfg.Name, "STARTTLS", err)
		}
	}
	if s.Username != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return permanent("channel %s: relay %s does not offer AUTH", cfg.Name, s.Addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return smtpError(cfg.Name, "AUTH", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return smtpError(cfg.Name, "MAIL FROM", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r); err != nil {
			return smtpError(cfg.Name, "RCPT TO "+r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return smtpError(cfg.Name, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return smtpError(cfg.Name, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return smtpError(cfg.Name, "end of DATA", err)
	}
	_ = c.Quit()
	return nil
}

// smtpError classifies a failed SMTP step: 4xx replies and network errors
// may pass, 5xx replies and certificate errors will not.
func smtpError(channel, step string, err error) error {
	var te *textproto.Error
	if errors.As(err, &te) {
		if te.Code >= 400 && te.Code < 500 {
			return transient("channel %s: %s: %d %s", channel, step, te.Code, te.Msg)
		}
		return permanent("channel %s: %s: %d %s", channel, step, te.Code, te.Msg)
	}
	var ce *tls.CertificateVerificationError
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	if errors.As(err, &ce) || errors.As(err, &ue) || errors.As(err, &he) {
		return permanent("channel %s: %s: %v", channel, step, err)
	}
	if strings.Contains(err.Error(), "unencrypted connection") {
		return permanent("channel %s: %s: refusing to send the password without TLS", channel, step)
	}
	return transient("channel %s: %s: %v", channel, step, err)
}

// recipients are the channel's fixed addresses plus the event's contacts
// that are addresses, each once, in order.
func recipients(to, contacts []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range append(append([]string(nil), to...), contacts...) {
		addr, err := mail.ParseAddress(a)
		if err != nil {
			continue // a group name, not an address
		}
		if k := strings.ToLower(addr.Address); !seen[k] {
			seen[k] = true
			out = append(out, addr.Address)
		}
	}
	return out
}

// MessageID is the email Message-ID of an event: the same for every
// delivery of the same event key.
func MessageID(key string) string {
	sum := sha256.Sum256([]byte(key))
	return "<" + hex.EncodeToString(sum[:16]) + "@patchway>"
}

// mailMessage renders ev as a multipart/alternative message: the plain
// text first, the Markdown second (RFC 7763), so every client shows one.
func mailMessage(from string, to []string, ev contract.Event) ([]byte, error) {
	if _, err := mail.ParseAddress(from); err != nil {
		return nil, fmt.Errorf("sender %q is not an address", from)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ ctype, text string }{
		{"text/plain; charset=utf-8", cmp.Or(ev.Text, ev.Title)},
		{"text/markdown; charset=utf-8; variant=CommonMark", cmp.Or(ev.Markdown, ev.Title)},
	} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(strings.ReplaceAll(part.text, "\n", "\r\n"))); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	header("From", from)
	header("To", strings.Join(to, ", "))
	header("Subject", mime.QEncoding.Encode("utf-8", "[Patchway] "+ev.Title))
	header("Date", ev.At.UTC().Format(time.RFC1123Z))
	header("Message-ID", MessageID(ev.Key))
	header("X-Patchway-Event", string(ev.Kind))
	header("X-Patchway-Key", ev.Key)
	header("MIME-Version", "1.0")
	header("Content-Type", `multipart/alternative; boundary="`+mw.Boundary()+`"`)
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}
