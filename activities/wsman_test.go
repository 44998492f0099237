package activities

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

// wsmanHost is a minimal WS-Management responder for the runner's own
// protocol tests (stdin delivery, exit codes, cancellation clean-up,
// OperationTimeout pacing). Host behaviour is fleetsim's job; this only
// speaks the shell protocol. answer decides what a finished command prints;
// nil answer means the command never finishes (every Receive faults with
// OperationTimeout at once).
type wsmanHost struct {
	answer func(command, stdin string) (stdout string, exit int)
	// down, when it returns true, drops every request's connection (a
	// host rebooting or gone).
	down func() bool
	// loseReply, when it returns true for a finished command's stdin,
	// drops the connection instead of delivering the result: the command
	// ran but its reply was lost.
	loseReply func(stdin string) bool
	// password, when set, is the only Basic password accepted (401 else).
	password string

	mu       sync.Mutex
	actions  map[string]int
	stdin    strings.Builder
	stdinEnd bool
	command  string
}

var (
	actionRE  = regexp.MustCompile(`<a:Action[^>]*>([^<]+)</a:Action>`)
	streamRE  = regexp.MustCompile(`<rsp:Stream[^>]*Name="stdin"[^>]*?(?:/>|>([^<]*)</rsp:Stream>)`)
	commandRE = regexp.MustCompile(`<rsp:Command>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</rsp:Command>`)
)

const envelope = `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer"><env:Header><a:Action>%s</a:Action></env:Header><env:Body>%s</env:Body></env:Envelope>`

func (h *wsmanHost) count(action string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for a, c := range h.actions {
		if strings.HasSuffix(a, "/"+action) {
			n += c
		}
	}
	return n
}

func (h *wsmanHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	body := string(raw)
	m := actionRE.FindStringSubmatch(body)
	if m == nil {
		http.Error(w, "no action", http.StatusBadRequest)
		return
	}
	action := m[1]
	if _, pw, _ := r.BasicAuth(); h.password != "" && pw != h.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if h.down != nil && h.down() {
		dropConnection(w)
		return
	}
	h.mu.Lock()
	if h.actions == nil {
		h.actions = map[string]int{}
	}
	h.actions[action]++
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	shell := "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
	switch action {
	case "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create":
		h.mu.Lock()
		h.stdin.Reset()
		h.stdinEnd, h.command = false, ""
		h.mu.Unlock()
		fmt.Fprintf(w, envelope, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
			`<x:ResourceCreated><a:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)
	case shell + "Command":
		if c := commandRE.FindStringSubmatch(body); c != nil {
			h.mu.Lock()
			h.command = c[1]
			h.mu.Unlock()
		}
		fmt.Fprintf(w, envelope, shell+"CommandResponse", `<rsp:CommandResponse><rsp:CommandId>CMD-1</rsp:CommandId></rsp:CommandResponse>`)
	case shell + "Send":
		if s := streamRE.FindStringSubmatch(body); s != nil {
			b, _ := base64.StdEncoding.DecodeString(s[1])
			h.mu.Lock()
			h.stdin.Write(b)
			h.stdinEnd = h.stdinEnd || strings.Contains(s[0], `End="true"`)
			h.mu.Unlock()
		}
		fmt.Fprintf(w, envelope, shell+"SendResponse", `<rsp:SendResponse/>`)
	case shell + "Receive":
		h.mu.Lock()
		ready := h.stdinEnd && h.answer != nil
		cmd, in := h.command, h.stdin.String()
		h.mu.Unlock()
		if !ready {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, envelope, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
				`<env:Fault><env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.</env:Text></env:Reason><env:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793"/></env:Detail></env:Fault>`)
			return
		}
		out, exit := h.answer(cmd, in)
		if h.loseReply != nil && h.loseReply(in) {
			dropConnection(w)
			return
		}
		fmt.Fprintf(w, envelope, shell+"ReceiveResponse", fmt.Sprintf(
			`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">%s</rsp:Stream><rsp:CommandState CommandId="CMD-1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`,
			base64.StdEncoding.EncodeToString([]byte(out)), exit))
	default: // Signal, Delete
		fmt.Fprintf(w, envelope, action+"Response", "")
	}
}

func wsmanRunner(t *testing.T, h *wsmanHost) (*WinRMRunner, rollout.Host) {
	t.Helper()
	addr, ca := tlsServer(t, h)
	r := &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "u", Password: "p"}}}
	return r, rollout.Host{Name: "srv-01", Address: addr, Credential: "fleet", TLS: rollout.HostTLS{CAFile: ca}}
}

func TestRunnerSendsTheScriptOnStdinAndReturnsExitCode(t *testing.T) {
	script, err := hostscript.Script(hostscript.OpReboot, hostscript.RebootParams{RolloutID: "r1", DelaySeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	for _, exit := range []int{0, 3} {
		t.Run(fmt.Sprint("exit ", exit), func(t *testing.T) {
			h := &wsmanHost{answer: func(cmd, in string) (string, int) {
				op, _, err := hostscript.Parse(in)
				return fmt.Sprintf(`{"op":%q,"err":%q}`, op, fmt.Sprint(err)), exit
			}}
			r, host := wsmanRunner(t, h)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := r.Run(ctx, host, script)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != exit || res.Stdout != `{"op":"reboot","err":"<nil>"}` {
				t.Errorf("result = %+v", res)
			}
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.stdin.String() != script {
				t.Errorf("stdin differs from the script (%d vs %d bytes)", h.stdin.Len(), len(script))
			}
			if h.command != hostscript.CommandLine() {
				t.Errorf("command line = %q, want hostscript.CommandLine()", h.command)
			}
			if len(h.command) > 8191 {
				t.Errorf("command line is %d characters, over cmd.exe's limit", len(h.command))
			}
		})
	}
}

func TestRunnerCancelledRunIsAnErrorAndClosesTheShell(t *testing.T) {
	h := &wsmanHost{} // never finishes
	r, host := wsmanRunner(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := r.Run(ctx, host, "# patchway-op: scan/1\n")
	if err == nil {
		t.Fatalf("cancelled run returned no error (exit code %d)", res.ExitCode)
	}
	if got := hostErrorType(err); got != contract.Unreachable {
		t.Errorf("error type = %q (%v), want %s", got, err, contract.Unreachable)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled run took %s", d)
	}
	if h.count("Signal") == 0 || h.count("Delete") == 0 {
		t.Errorf("after cancellation: %d Signal, %d Delete requests; want the command signalled and the shell deleted", h.count("Signal"), h.count("Delete"))
	}
	// Immediate OperationTimeout faults were paced, not spun on.
	if n := h.count("Receive"); n > 10 {
		t.Errorf("%d Receive requests in 300ms: OperationTimeout retries are not paced", n)
	}
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}

// A connection lost before the command reached the host is retried (the
// script never ran); one lost after it is not, so an install is never
// sent twice by the runner (PatchHost scans before it retries).
// loseFirstReply loses the reply of the first finished command only.
func loseFirstReply() func(string) bool {
	var mu sync.Mutex
	lost := false
	return func(string) bool {
		mu.Lock()
		defer mu.Unlock()
		defer func() { lost = true }()
		return !lost
	}
}

func TestRunnerRepeatsOnlyRunsThatAreSafeToRepeat(t *testing.T) {
	answer := func(string, string) (string, int) { return `{}`, 0 }
	t.Run("two dropped shell creations, then the run succeeds once", func(t *testing.T) {
		var mu sync.Mutex
		drops := 2
		h := &wsmanHost{answer: answer}
		h.down = func() bool {
			mu.Lock()
			defer mu.Unlock()
			drops--
			return drops >= 0
		}
		r, host := wsmanRunner(t, h)
		if _, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n"); err != nil {
			t.Fatalf("run after two dropped connections: %v", err)
		}
		if n := h.count("Command"); n != 1 {
			t.Errorf("%d Command requests, want 1", n)
		}
	})
	t.Run("a scan whose reply was lost is run again: it only reads", func(t *testing.T) {
		h := &wsmanHost{answer: answer, loseReply: loseFirstReply()}
		r, host := wsmanRunner(t, h)
		if _, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n"); err != nil {
			t.Fatalf("scan after one lost reply: %v", err)
		}
		if n := h.count("Command"); n != 2 {
			t.Errorf("%d Command requests, want 2 (the scan repeated once)", n)
		}
	})
	t.Run("a reply lost after the command is an error, the command sent once", func(t *testing.T) {
		h := &wsmanHost{answer: answer, loseReply: loseFirstReply()}
		r, host := wsmanRunner(t, h)
		_, err := r.Run(context.Background(), host, "# patchway-op: install/1\n")
		if got := hostErrorType(err); got != contract.Unreachable {
			t.Fatalf("error type %q (%v), want %s", got, err, contract.Unreachable)
		}
		if n := h.count("Command"); n != 1 {
			t.Errorf("%d Command requests, want exactly 1 (never re-sent)", n)
		}
	})
}
