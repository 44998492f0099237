package activities_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/patchway/patchway/activities"
	"github.com/patchway/patchway/contract"
)

// smtpReceiver is a real SMTP server (emersion/go-smtp) on loopback that
// offers STARTTLS with a certificate from its own CA and AUTH PLAIN.
type smtpReceiver struct {
	addr  string
	roots *x509.CertPool
	mu    sync.Mutex
	mails []receivedMail
}

type receivedMail struct {
	from string
	to   []string
	data []byte
	tls  bool
	user string
}

type smtpSession struct {
	r    *smtpReceiver
	c    *smtp.Conn
	cur  receivedMail
	user string
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "patchway" || pass != "mail-s3cret" {
			return errors.New("invalid credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.user == "" {
		return &smtp.SMTPError{Code: 530, Message: "authentication required"}
	}
	s.cur.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.cur.tls = s.c.TLSConnectionState()
	s.cur.data, s.cur.user = b, s.user
	s.r.mu.Lock()
	s.r.mails = append(s.r.mails, s.cur)
	s.r.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.cur = receivedMail{} }
func (s *smtpSession) Logout() error { return nil }

func newSMTPReceiver(t *testing.T, offerTLS bool) *smtpReceiver {
	t.Helper()
	r := &smtpReceiver{}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &smtpSession{r: r, c: c}, nil
	}))
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if offerTLS {
		cert, roots := testCertificate(t)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		r.roots = roots
	} else {
		srv.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	r.addr = l.Addr().String()
	return r
}

// testCertificate makes a CA and a server certificate for 127.0.0.1.
func testCertificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test mail CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, roots
}

func (r *smtpReceiver) received() []receivedMail {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]receivedMail(nil), r.mails...)
}

func mailChannel(r *smtpReceiver, roots *x509.CertPool) activities.StaticChannels {
	return activities.StaticChannels{"mail": {SMTP: activities.SMTPConfig{
		Addr: r.addr, From: "patchway@corp.example", To: []string{"secops@corp.example"},
		Username: "patchway", Password: "mail-s3cret", Security: activities.SMTPStartTLS, RootCAs: roots,
	}}}
}

func TestEmailGoesOverVerifiedSTARTTLSWithBothRenderingsAndAStableMessageID(t *testing.T) {
	r := newSMTPReceiver(t, true)
	n := &activities.Notifier{Channels: mailChannel(r, r.roots)}
	ev := testEvent("mail")
	res, err := n.Notify(context.Background(), contract.NotifyInput{Event: ev, Channels: testChannels})
	if err != nil || len(res.Failed) > 0 {
		t.Fatalf("notify: %v %+v", err, res)
	}
	got := r.received()
	if len(got) != 1 {
		t.Fatalf("%d mails received, want 1", len(got))
	}
	m := got[0]
	if !m.tls || m.user != "patchway" || m.from != "patchway@corp.example" {
		t.Errorf("mail tls=%t user=%q from=%q, want STARTTLS, authenticated, from patchway@", m.tls, m.user, m.from)
	}
	// The channel's address plus the contact that is an address; the
	// group name "security-team" is not a recipient.
	if strings.Join(m.to, ",") != "secops@corp.example,ciso@corp.example" {
		t.Errorf("recipients %v", m.to)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(m.data))
	if err != nil {
		t.Fatal(err)
	}
	if id := msg.Header.Get("Message-ID"); id != activities.MessageID(ev.Key) {
		t.Errorf("Message-ID %q, want %q", id, activities.MessageID(ev.Key))
	}
	subject, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if subject != "[Patchway] SLA breached: KB958644" {
		t.Errorf("subject %q", subject)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatal(err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var parts []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p) // multipart decodes quoted-printable
		parts = append(parts, p.Header.Get("Content-Type")+"|"+strings.ReplaceAll(string(b), "\r\n", "\n"))
	}
	want := []string{
		"text/plain; charset=utf-8|" + ev.Text,
		"text/markdown; charset=utf-8; variant=CommonMark|" + ev.Markdown,
	}
	if strings.Join(parts, "\n--\n") != strings.Join(want, "\n--\n") {
		t.Errorf("parts\n%s\nwant\n%s", strings.Join(parts, "\n--\n"), strings.Join(want, "\n--\n"))
	}
}

func TestEmailIsRefusedRatherThanSentInClearOrToAnUnverifiedRelay(t *testing.T) {
	t.Run("a relay without STARTTLS", func(t *testing.T) {
		r := newSMTPReceiver(t, false)
		n := &activities.Notifier{Channels: mailChannel(r, nil)}
		res, err := n.Notify(context.Background(), contract.NotifyInput{Event: testEvent("mail"), Channels: testChannels})
		if err != nil || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "does not offer STARTTLS; refusing to send in clear text") {
			t.Fatalf("err %v, result %+v", err, res)
		}
		if len(r.received()) != 0 {
			t.Error("a mail was sent in clear text")
		}
	})
	t.Run("a relay whose certificate another CA signed", func(t *testing.T) {
		r := newSMTPReceiver(t, true)
		_, otherRoots := testCertificate(t)
		n := &activities.Notifier{Channels: mailChannel(r, otherRoots)}
		res, err := n.Notify(context.Background(), contract.NotifyInput{Event: testEvent("mail"), Channels: testChannels})
		if err != nil || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "STARTTLS: tls: failed to verify certificate") {
			t.Fatalf("err %v, result %+v", err, res)
		}
		if strings.Contains(strings.Join(res.Errors, ""), "mail-s3cret") {
			t.Error("the error quotes the SMTP password")
		}
	})
}
