// Package devidp is a small, real OpenID Connect issuer that `patchway
// dev` runs on loopback for its demo people. A demo then shows a real
// sign-in (the OAuth 2.0 Device Authorization Grant, RFC 8628), real
// per-action tokens (RFC 8693 token exchange) and real refusals, with the
// same verification the product applies to a production provider (Entra
// ID, Okta, Keycloak, Dex). It is for development only: passwords are
// plain, keys live in memory and it listens on loopback alone.
package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Person is one demo person who can sign in on the verification page.
type Person struct {
	Subject  string // the token's sub, e.g. "alice"
	Name     string // "Alice Martin"
	Email    string // "alice@patchway.example"
	Password string // dev only
	// Groups is the token's groups claim.
	Groups []string
	// Permissions is the token's permissions claim, in Temporal's JWT
	// claim-mapper format "namespace:role", e.g. "default:write".
	Permissions []string
}

// Client is a confidential client that obtains a service token by the
// client credentials grant (the worker's identity).
type Client struct {
	ID, Secret  string
	Subject     string
	Groups      []string
	Permissions []string
}

// Options configure an issuer. The zero value is a working demo issuer:
// every field has a default.
type Options struct {
	// Addr is the listen address; default "127.0.0.1:0". A host that is
	// not a loopback IP or "localhost" is refused: plain passwords and
	// plain HTTP must not leave the machine.
	Addr string
	// People sign in on the verification page; default DemoPeople().
	People []Person
	// Clients obtain service tokens by the client credentials grant.
	Clients []Client
	// PublicClientID is the CLI's public client id; default "patchway-cli".
	PublicClientID string
	// WebClientID is the console's public client id (authorization code
	// with PKCE, redirect to loopback); default "patchway-console".
	WebClientID string
	// Audience is the aud of login and service tokens; default "patchway".
	Audience string
	// ActionAudiencePrefix: token exchange audiences must start with it;
	// default "urn:patchway:".
	ActionAudiencePrefix string
	// LoginTTL is the lifetime of login and service tokens; default 1h.
	LoginTTL time.Duration
	// ActionTTL is the lifetime of an exchanged (action) token; default 5m.
	ActionTTL time.Duration
	// DeviceCodeTTL is how long a device code waits for approval; default 10m.
	DeviceCodeTTL time.Duration
	// PollInterval is the device flow interval; default 1s (sent as whole
	// seconds, at least 1).
	PollInterval time.Duration
	// Now is the issuer's clock; default time.Now. Tests move it.
	Now func() time.Time
}

const (
	// maxBody bounds every request body.
	maxBody = 64 << 10
	// maxPending bounds the device codes waiting for approval, so a
	// looping client cannot grow the issuer's memory without end.
	maxPending = 1000
)

// DemoPeople are the people of the demo. Each one's password is their
// subject ("alice" signs in with password "alice"): this is a dev issuer
// on loopback, never a place for real credentials.
func DemoPeople() []Person {
	people := []Person{
		{Subject: "alice", Name: "Alice Martin", Groups: []string{"security-team", "security-leads"}},
		{Subject: "bob", Name: "Bob Nguyen", Groups: []string{"security-team", "change-board", "infrastructure-leads", "identity-team"}},
		{Subject: "carol", Name: "Carol Diaz", Groups: []string{"security-team"}},
		{Subject: "dave", Name: "Dave Okafor", Groups: []string{"security-leads"}},
		{Subject: "eve", Name: "Eve Laurent", Groups: []string{"auditors"}, Permissions: []string{"default:read"}},
	}
	for k := range people {
		p := &people[k]
		p.Email = p.Subject + "@patchway.example"
		p.Password = p.Subject
		if p.Permissions == nil {
			p.Permissions = []string{"default:write"}
		}
	}
	return people
}

// Issuer is a running dev issuer. Its methods are safe for concurrent use.
type Issuer struct {
	opts     Options
	interval int64 // the device flow interval sent to clients, in seconds
	url      string
	key      *ecdsa.PrivateKey
	kid      string
	jwks     []byte

	srv      *http.Server
	served   chan struct{}
	serveErr error
	close    sync.Once
	closeErr error

	mu       sync.Mutex
	byDevice map[string]*deviceGrant
	byUser   map[string]*deviceGrant
	byCode   map[string]*codeGrant
}

// Start listens on opts.Addr and serves the issuer until Close.
func Start(opts Options) (*Issuer, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkLoopback(o.Addr); err != nil {
		return nil, err
	}
	key, kid, jwks, err := newKey()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: listen on %s: %w (choose another address, or port 0 for any free port)", o.Addr, err)
	}
	i := &Issuer{
		opts:     o,
		interval: wholeSeconds(o.PollInterval),
		url:      "http://" + ln.Addr().String(),
		key:      key,
		kid:      kid,
		jwks:     jwks,
		served:   make(chan struct{}),
		byDevice: make(map[string]*deviceGrant),
		byUser:   make(map[string]*deviceGrant),
		byCode:   make(map[string]*codeGrant),
	}
	i.srv = &http.Server{
		Handler:           i.routes(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxBody,
	}
	go func() {
		defer close(i.served)
		if err := i.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			i.serveErr = err
		}
	}()
	return i, nil
}

// URL is the issuer identifier, "http://127.0.0.1:PORT" with no trailing
// slash: the iss of every token and the base of every endpoint.
func (i *Issuer) URL() string { return i.url }

// Close stops the issuer and waits for its server to return. Tokens it
// signed can no longer be exchanged anywhere, as its key dies with it.
func (i *Issuer) Close() error {
	i.close.Do(func() {
		err := i.srv.Close()
		<-i.served
		i.closeErr = errors.Join(err, i.serveErr)
	})
	return i.closeErr
}

// JWKS is the public JSON Web Key Set, as served at /keys, so an embedder
// can hand the keys to a verifier without a round trip.
func (i *Issuer) JWKS() []byte { return append([]byte(nil), i.jwks...) }

// withDefaults fills the zero fields of o and refuses values that cannot
// work, saying which field to fix.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if len(o.People) == 0 {
		o.People = DemoPeople()
	}
	o.People = copyPeople(o.People)
	o.Clients = copyClients(o.Clients)
	o.PublicClientID = orDefault(o.PublicClientID, "patchway-cli")
	o.WebClientID = orDefault(o.WebClientID, "patchway-console")
	o.Audience = orDefault(o.Audience, "patchway")
	o.ActionAudiencePrefix = orDefault(o.ActionAudiencePrefix, "urn:patchway:")
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"LoginTTL", &o.LoginTTL, time.Hour},
		{"ActionTTL", &o.ActionTTL, 5 * time.Minute},
		{"DeviceCodeTTL", &o.DeviceCodeTTL, 10 * time.Minute},
		{"PollInterval", &o.PollInterval, time.Second},
	} {
		if *d.v < 0 {
			return o, fmt.Errorf("dev issuer: Options.%s is %s; give a positive duration, or zero for %s", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if strings.HasPrefix(o.Audience, o.ActionAudiencePrefix) {
		return o, fmt.Errorf("dev issuer: Options.Audience %q starts with ActionAudiencePrefix %q, so an action token could be exchanged again; choose an audience outside the prefix", o.Audience, o.ActionAudiencePrefix)
	}
	return o, checkIdentities(o)
}

// checkIdentities refuses people and clients a token could not tell apart.
func checkIdentities(o Options) error {
	seen := map[string]bool{}
	for k, p := range o.People {
		if p.Subject == "" || p.Password == "" {
			return fmt.Errorf("dev issuer: Options.People[%d] needs a Subject and a Password", k)
		}
		if seen[strings.ToLower(p.Subject)] {
			return fmt.Errorf("dev issuer: two people have the subject %q; give each a distinct one", p.Subject)
		}
		seen[strings.ToLower(p.Subject)] = true
	}
	ids := map[string]bool{o.PublicClientID: true}
	for k, c := range o.Clients {
		if c.ID == "" || c.Secret == "" || c.Subject == "" {
			return fmt.Errorf("dev issuer: Options.Clients[%d] needs an ID, a Secret and a Subject", k)
		}
		if ids[c.ID] {
			return fmt.Errorf("dev issuer: the client id %q is used twice (or is the public client id); give each client a distinct one", c.ID)
		}
		ids[c.ID] = true
	}
	return nil
}

// checkLoopback refuses a listen address off the loopback interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("dev issuer: listen address %q is not host:port (e.g. 127.0.0.1:0): %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("dev issuer: listen address %q is not on loopback; the dev issuer serves plain passwords over plain HTTP, so give 127.0.0.1, ::1 or localhost", addr)
}

// newKey generates the signing key and its public key set; the key id is
// the key's RFC 7638 thumbprint, so it names the key and nothing else.
func newKey() (*ecdsa.PrivateKey, string, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", nil, fmt.Errorf("dev issuer: generate the signing key: %w", err)
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, "", nil, fmt.Errorf("dev issuer: thumbprint the signing key: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	if err != nil {
		return nil, "", nil, fmt.Errorf("dev issuer: encode the key set: %w", err)
	}
	return key, pub.KeyID, jwks, nil
}

// now is the issuer's clock.
func (i *Issuer) now() time.Time { return i.opts.Now() }

// wholeSeconds is d in whole seconds, at least 1: what JSON answers carry.
func wholeSeconds(d time.Duration) int64 {
	return max(int64(d/time.Second), 1)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func copyPeople(in []Person) []Person {
	out := make([]Person, len(in))
	for k, p := range in {
		p.Groups = copyStrings(p.Groups)
		p.Permissions = copyStrings(p.Permissions)
		out[k] = p
	}
	return out
}

func copyClients(in []Client) []Client {
	out := make([]Client, len(in))
	for k, c := range in {
		c.Groups = copyStrings(c.Groups)
		c.Permissions = copyStrings(c.Permissions)
		out[k] = c
	}
	return out
}

// copyStrings copies s, making nil an empty list so a claim is [] rather
// than null.
func copyStrings(s []string) []string {
	return append([]string{}, s...)
}

// randomBytes returns n bytes from the system's secure random source.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails; it aborts the program instead
	return b
}
