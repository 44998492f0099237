package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/oidc"
)

// signIn signs user in at issuer by the device flow, submitting the
// verification form as the person would.
func signIn(t *testing.T, ctx context.Context, issuer, user string) string {
	t.Helper()
	p, err := oidc.Discover(ctx, nil, issuer)
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.DeviceLogin(ctx, defaultClientID, nil, func(c oidc.DeviceCode) {
		go func() {
			resp, err := http.PostForm(c.VerificationURI, url.Values{"user_code": {c.UserCode}, "username": {user}, "password": {user}})
			if err == nil {
				resp.Body.Close()
			}
		}()
	})
	if err != nil {
		t.Fatalf("sign %s in: %v", user, err)
	}
	return s.AccessToken
}

func authedClient(t *testing.T, addr, caFile, token string) client.Client {
	t.Helper()
	o := client.Options{HostPort: addr, Logger: testSDKLogger(io.Discard)}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	o.ConnectionOptions.TLS = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	if token != "" {
		o.Credentials = client.NewAPIKeyStaticCredentials(token)
	}
	c, err := client.NewLazyClient(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func denied(err error) bool {
	var pd *serviceerror.PermissionDenied
	return errors.As(err, &pd)
}

// TestDevAuthRefusesTheFrontendToAnyoneWithoutAToken: with --auth the
// dev server's frontend authenticates every call with Temporal's JWT
// claim mapper and default authorizer on the local provider. A client
// without a token cannot list rollouts; eve, a reader, can list but not
// start a workflow; bob, a writer, can; the worker polls with its own
// service identity.
func TestDevAuthRefusesTheFrontendToAnyoneWithoutAToken(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, &out, io.Discard, devOptions{inMemory: true, headless: true, ip: "127.0.0.1", namespace: "default", auth: true})
	}()
	frontend := regexp.MustCompile(`Temporal frontend  (127\.0\.0\.1:\d+)`)
	issuerRe := regexp.MustCompile(`identity provider  (http://127\.0\.0\.1:\d+)`)
	caRe := regexp.MustCompile(`TEMPORAL_TLS_CA=(\S+)`)
	var addr, issuer, ca string
	for deadline := time.Now().Add(time.Minute); (addr == "" || issuer == "" || ca == "") && time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("dev exited before it was ready: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if m := frontend.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
		if m := issuerRe.FindStringSubmatch(out.String()); m != nil {
			issuer = m[1]
		}
		if m := caRe.FindStringSubmatch(out.String()); m != nil {
			ca = m[1]
		}
	}
	if addr == "" || issuer == "" || ca == "" || !strings.Contains(out.String(), "frontend auth      on, over TLS") {
		t.Fatalf("dev did not print its frontend, provider and auth:\n%s", out.String())
	}
	list := func(c client.Client) error {
		_, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default"})
		return err
	}
	start := func(c client.Client) error {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "auth-probe-" + time.Now().Format("150405.000"), TaskQueue: "nobody-polls"}, "Probe")
		if err == nil {
			_ = c.TerminateWorkflow(ctx, run.GetID(), run.GetRunID(), "auth probe")
		}
		return err
	}
	if err := list(authedClient(t, addr, ca, "")); !denied(err) {
		t.Errorf("list without a token: %v, want permission denied", err)
	}
	if err := list(authedClient(t, addr, ca, "not.a.token")); !denied(err) {
		t.Errorf("list with a forged token: %v, want permission denied", err)
	}
	eve := authedClient(t, addr, ca, signIn(t, ctx, issuer, "eve"))
	if err := list(eve); err != nil {
		t.Errorf("eve (reader) lists: %v", err)
	}
	if err := start(eve); !denied(err) {
		t.Errorf("eve (reader) starts a workflow: %v, want permission denied", err)
	}
	bobToken := signIn(t, ctx, issuer, "bob")
	bob := authedClient(t, addr, ca, bobToken)
	// Patchway's own CLI: refused without a token, let through with one.
	if _, err := execute("status", "no-such-rollout", "--address", addr, "--tls-ca-path", ca); err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("status without a token: %v", err)
	}
	if _, err := execute("status", "no-such-rollout", "--address", addr, "--tls=false", "--api-key", bobToken); err == nil || strings.Contains(err.Error(), "not found") {
		t.Errorf("status in clear text to a TLS frontend: %v, want refused", err)
	}
	if _, err := execute("status", "no-such-rollout", "--address", addr, "--api-key", bobToken, "--tls-ca-path", ca); err == nil || strings.Contains(err.Error(), "unauthorized") {
		t.Errorf("status with bob's token: %v, want not found, not unauthorized", err)
	}
	if err := start(bob); err != nil {
		t.Errorf("bob (writer) starts a workflow: %v", err)
	}
	if pollers := waitForPollers(ctx, bob); pollers == 0 {
		t.Error("the worker does not poll: its service identity was refused")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev returned %v after Ctrl-C", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop within a minute")
	}
}
