package activities

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// misreplyHost answers the first request of one WS-Management operation
// (on: "Create", "Command", "Receive", ...) with HTTP 200 and body, and
// everything else as wsmanHost does. It runs over real HTTPS on loopback
// and is driven by the real masterzen/winrm client.
type misreplyHost struct {
	*wsmanHost
	on   string
	body []byte
}

func (h *misreplyHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	if m := actionRE.FindSubmatch(raw); m != nil && strings.HasSuffix(string(m[1]), "/"+h.on) {
		h.mu.Lock()
		if h.actions == nil {
			h.actions = map[string]int{}
		}
		h.actions[string(m[1])]++
		h.mu.Unlock()
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		w.Write(h.body)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	h.wsmanHost.ServeHTTP(w, r)
}

// receiveReply is a ReceiveResponse envelope around inner.
func receiveReply(inner string) string {
	return fmt.Sprintf(envelope, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse", inner)
}

// malformedReplies are HTTP 200 bodies no WS-Management service sends.
// Before replies were validated, the first four crashed the whole process
// inside masterzen/winrm's output goroutine (nil dereference in
// ParseSlurpOutputErrResponse); the well-formed ones of the wrong shape
// made it poll again at once until the run's deadline.
func malformedReplies() map[string]string {
	valid := receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">e30=</rsp:Stream><rsp:CommandState CommandId="CMD-1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`)
	return map[string]string{
		"ampersand":               "&",
		"empty body":              "",
		"double angle":            "<<",
		"NUL byte":                "\x00",
		"truncated envelope":      valid[:len(valid)/2],
		"wrong root element":      `<html><body><h1>502 Bad Gateway</h1></body></html>`,
		"SOAP 1.1 envelope":       strings.ReplaceAll(valid, "http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/"),
		"missing ReceiveResponse": receiveReply(`<rsp:SendResponse/>`),
		"empty Body":              receiveReply(``),
		"no Body":                 `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header/></env:Envelope>`,
		"fault in a 200":          receiveReply(`<env:Fault><env:Reason><env:Text>boom</env:Text></env:Reason></env:Fault>`),
		"huge attribute":          receiveReply(`<rsp:ReceiveResponse x="` + strings.Repeat("A", 1<<20) + `"/>`),
		"reply over the limit":    receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">` + strings.Repeat("QUFB", 5<<18) + `</rsp:Stream></rsp:ReceiveResponse>`),
		"deeply nested":           receiveReply(`<rsp:ReceiveResponse>` + strings.Repeat("<a>", 200000) + strings.Repeat("</a>", 200000) + `</rsp:ReceiveResponse>`),
		"second root":             valid + `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"/>`,
		"text before the root":    "HTTP/1.1 200 OK" + valid,
		"DTD":                     `<!DOCTYPE env:Envelope [<!ENTITY a "aaaaaaaa">]>` + valid,
		"undeclared entity":       receiveReply(`<rsp:ReceiveResponse>&lol;</rsp:ReceiveResponse>`),
		"invalid UTF-8":           receiveReply("<rsp:ReceiveResponse>\xff\xfe</rsp:ReceiveResponse>"),
		"unknown charset":         `<?xml version="1.0" encoding="x-no-such-charset"?>` + valid,
	}
}

func TestRunnerSurvivesMalformedReceiveReplies(t *testing.T) {
	for name, body := range malformedReplies() {
		t.Run(name, func(t *testing.T) {
			h := &misreplyHost{wsmanHost: &wsmanHost{answer: func(string, string) (string, int) { return `{}`, 0 }}, on: "Receive", body: []byte(body)}
			addr, ca := tlsServer(t, h)
			r := &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "u", Password: "p"}}}
			host := rollout.Host{Name: "srv-01", Address: addr, Credential: "fleet", TLS: rollout.HostTLS{CAFile: ca}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			_, err := r.Run(ctx, host, "# patchway-op: scan/1\n")
			typ := hostErrorType(err)
			if typ != contract.ScriptFailed {
				t.Fatalf("error type %q (%v), want %s", typ, err, contract.ScriptFailed)
			}
			if st := contract.StateForErrorType(typ); st != rollout.StateFailed {
				t.Errorf("host state %q, want %q", st, rollout.StateFailed)
			}
			if !strings.Contains(err.Error(), "malformed WS-Management reply") || !strings.Contains(err.Error(), "Receive") {
				t.Errorf("error %q should say a reply to Receive was malformed", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("run took %s: the malformed reply was not the end of it", d)
			}
			if n := h.count("Receive"); n != 1 {
				t.Errorf("%d Receive requests, want 1 (not retried, not polled again)", n)
			}
			if h.count("Delete") == 0 {
				t.Error("the shell was not deleted after the malformed reply")
			}
		})
	}
}

func TestRunnerSurvivesMalformedCreateAndCommandReplies(t *testing.T) {
	shellNS := "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	tests := []struct{ on, name, body string }{
		{"Create", "ampersand", "&"},
		{"Create", "empty body", ""},
		{"Create", "no ShellId", fmt.Sprintf(envelope, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", `<x:ResourceCreated/>`)},
		{"Command", "double angle", "<<"},
		{"Command", "no CommandId", fmt.Sprintf(envelope, shellNS+"/CommandResponse", `<rsp:CommandResponse/>`)},
		{"Command", "wrong action", fmt.Sprintf(envelope, shellNS+"/ReceiveResponse", `<rsp:CommandResponse><rsp:CommandId>C</rsp:CommandId></rsp:CommandResponse>`)},
		{"Send", "NUL byte", "\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.on+": "+tt.name, func(t *testing.T) {
			h := &misreplyHost{wsmanHost: &wsmanHost{answer: func(string, string) (string, int) { return `{}`, 0 }}, on: tt.on, body: []byte(tt.body)}
			addr, ca := tlsServer(t, h)
			r := &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "u", Password: "p"}}}
			host := rollout.Host{Name: "srv-01", Address: addr, Credential: "fleet", TLS: rollout.HostTLS{CAFile: ca}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := r.Run(ctx, host, "# patchway-op: scan/1\n")
			if typ := hostErrorType(err); typ != contract.ScriptFailed || !strings.Contains(err.Error(), "reply to "+tt.on) {
				t.Fatalf("err = %v (type %q), want %s naming the reply to %s", err, typ, contract.ScriptFailed, tt.on)
			}
		})
	}
}
