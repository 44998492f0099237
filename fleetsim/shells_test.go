package fleetsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/patchway/patchway/hostscript"
)

// wsman posts hand-written WS-Management requests, for what
// masterzen/winrm never sends (odd requests) or hides (CommandIds).
type wsman struct {
	t   *testing.T
	hc  *http.Client
	url string
	mu  sync.Mutex
	n   int
}

func newWSMan(t *testing.T, f *Fleet, name string) *wsman {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.CAPEM())
	return &wsman{t: t, url: "https://" + f.Inventory().Hosts[indexOf(f, name)].Address + "/wsman",
		hc: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}}
}

// raw posts body as it is and returns the status and the answer.
func (w *wsman) raw(body string) (int, string) {
	w.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, w.url, strings.NewReader(body))
	req.SetBasicAuth("patchway", testPassword)
	resp, err := w.hc.Do(req)
	if err != nil {
		w.t.Fatalf("the host stopped answering: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// post sends action to shell with body in an envelope.
func (w *wsman) post(action, shellID, body string) (int, string) {
	w.t.Helper()
	w.mu.Lock()
	w.n++
	id := w.n
	w.mu.Unlock()
	sel := ""
	if shellID != "" {
		sel = `<w:SelectorSet><w:Selector Name="ShellId">` + shellID + `</w:Selector></w:SelectorSet>`
	}
	return w.raw(fmt.Sprintf(`<s:Envelope><s:Header><a:Action>%s</a:Action><a:MessageID>uuid:t-%d</a:MessageID>%s<w:OperationTimeout>PT1S</w:OperationTimeout></s:Header><s:Body>%s</s:Body></s:Envelope>`, action, id, sel, body))
}

var (
	reShellIDOut   = regexp.MustCompile(`<rsp:ShellId>([^<]+)</rsp:ShellId>`)
	reCommandIDOut = regexp.MustCompile(`<rsp:CommandId>([^<]+)</rsp:CommandId>`)
	reStdoutOut    = regexp.MustCompile(`<rsp:Stream Name="stdout" CommandId="[^"]+">([^<]*)</rsp:Stream>`)
	reFaultCode    = regexp.MustCompile(`WSManFault Code="([0-9]+)"`)
	reGUID         = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$`)
)

func (w *wsman) create() string {
	w.t.Helper()
	code, body := w.post(actCreate, "", `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams></rsp:Shell>`)
	m := reShellIDOut.FindStringSubmatch(body)
	if code != 200 || m == nil {
		w.t.Fatalf("create: %d %s", code, body)
	}
	return m[1]
}

func (w *wsman) command(shellID, line string) string {
	w.t.Helper()
	code, body := w.post(actCommand, shellID, `<rsp:CommandLine><rsp:Command>`+xmlEscape(line)+`</rsp:Command></rsp:CommandLine>`)
	m := reCommandIDOut.FindStringSubmatch(body)
	if code != 200 || m == nil {
		w.t.Fatalf("command %q: %d %s", line, code, body)
	}
	return m[1]
}

func (w *wsman) receive(shellID, cmdID string) (int, string) {
	w.t.Helper()
	return w.post(actReceive, shellID, `<rsp:Receive><rsp:DesiredStream CommandId="`+cmdID+`">stdout stderr</rsp:DesiredStream></rsp:Receive>`)
}

func (w *wsman) stdout(shellID, cmdID string) string {
	w.t.Helper()
	code, body := w.receive(shellID, cmdID)
	m := reStdoutOut.FindStringSubmatch(body)
	if code != 200 || m == nil {
		w.t.Fatalf("receive %s: %d %s", cmdID, code, body)
	}
	b, _ := base64.StdEncoding.DecodeString(m[1])
	return string(b)
}

func (w *wsman) signal(shellID, cmdID string) (int, string) {
	w.t.Helper()
	return w.post(actSignal, shellID, `<rsp:Signal CommandId="`+cmdID+`"><rsp:Code>`+signalTerminate+`</rsp:Code></rsp:Signal>`)
}

func (w *wsman) send(shellID, cmdID, stdin string) (int, string) {
	w.t.Helper()
	return w.post(actSend, shellID, `<rsp:Send><rsp:Stream Name="stdin" CommandId="`+cmdID+`" End="true">`+base64.StdEncoding.EncodeToString([]byte(stdin))+`</rsp:Stream></rsp:Send>`)
}

// wantFault checks an answer is a SOAP fault with the WSManFault code,
// related to the request when it had a MessageID.
func wantFault(t *testing.T, what string, status int, body, code string) {
	t.Helper()
	m := reFaultCode.FindStringSubmatch(body)
	if status != http.StatusInternalServerError || m == nil || m[1] != code || strings.Contains(body, "<a:RelatesTo></a:RelatesTo>") {
		t.Errorf("%s: got %d %s, want a fault with code %s", what, status, body, code)
	}
}

func TestSeveralCommandsInOneShell(t *testing.T) {
	f := startFleet(t, Options{})
	t.Run("each command has its own CommandId and output", func(t *testing.T) {
		w := newWSMan(t, f, "clean")
		sh := w.create()
		seen := map[string]bool{}
		for _, tc := range []struct{ line, out string }{{"echo one", "one\r\n"}, {"hostname", "CLEAN\r\n"}, {"echo three", "three\r\n"}} {
			id := w.command(sh, tc.line)
			if !reGUID.MatchString(id) || seen[id] || strings.HasPrefix(id, sh) {
				t.Errorf("command id %q: want a fresh upper-case GUID (shell %s, earlier %v)", id, sh, seen)
			}
			seen[id] = true
			if got := w.stdout(sh, id); got != tc.out {
				t.Errorf("%s: stdout %q, want %q", tc.line, got, tc.out)
			}
			if code, body := w.signal(sh, id); code != 200 || !strings.Contains(body, "SignalResponse") {
				t.Errorf("signal: %d %s", code, body)
			}
		}
	})
	t.Run("commands started together answer separately", func(t *testing.T) {
		w := newWSMan(t, f, "clean")
		sh := w.create()
		// The second waits for its script on stdin; the first runs now.
		bootstrap := w.command(sh, hostscript.CommandLine())
		echo := w.command(sh, "echo first")
		script, _ := hostscript.Render(hostscript.OpScan, hostscript.ScanParams{}, "")
		if code, body := w.send(sh, bootstrap, script); code != 200 {
			t.Fatalf("send: %d %s", code, body)
		}
		if got := w.stdout(sh, bootstrap); !strings.Contains(got, `"hostname":"CLEAN"`) {
			t.Errorf("scan in the shell: %q", got)
		}
		if got := w.stdout(sh, echo); got != "first\r\n" {
			t.Errorf("echo in the shell: %q", got)
		}
	})
	t.Run("masterzen/winrm runs commands one after another in a shell", func(t *testing.T) {
		c := client(t, f, "clean", testPassword, nil)
		sh, err := c.CreateShell()
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		for i, line := range []string{"echo a", "whoami", "echo c"} {
			out, exit := runInShell(t, sh, line)
			want := []string{"a\r\n", "clean\\patchway\r\n", "c\r\n"}[i]
			if out != want || exit != 0 {
				t.Errorf("%s: %q exit %d, want %q", line, out, exit, want)
			}
		}
	})
	t.Run("masterzen/winrm runs commands at once in a shell", func(t *testing.T) {
		c := client(t, f, "clean", testPassword, nil)
		sh, err := c.CreateShell()
		if err != nil {
			t.Fatal(err)
		}
		defer sh.Close()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				line := fmt.Sprintf("echo %d", i)
				if out, exit := runInShell(t, sh, line); out != fmt.Sprintf("%d\r\n", i) || exit != 0 {
					t.Errorf("%s: %q exit %d", line, out, exit)
				}
			}()
		}
		wg.Wait()
	})
	if n := f.Host("clean").Snapshot().ShellsInFlight; n != 2 {
		t.Errorf("%d shells open after the masterzen shells closed, want the 2 hand-made ones", n)
	}
}

// runInShell runs one command in an open shell and waits for it.
func runInShell(t *testing.T, sh *winrm.Shell, line string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd, err := sh.ExecuteWithContext(ctx, line)
	if err != nil {
		t.Error(err)
		return "", -1
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&out, cmd.Stdout); close(done) }()
	_, _ = io.Copy(io.Discard, cmd.Stderr)
	cmd.Wait()
	<-done
	_ = cmd.Close()
	return out.String(), cmd.ExitCode()
}

func TestOddRequestsKeepTheHostServing(t *testing.T) {
	f := startFleet(t, Options{ReceiveTimeout: 300 * time.Millisecond})
	w := newWSMan(t, f, "clean")
	sh := w.create()
	t.Run("bad XML", func(t *testing.T) {
		status, body := w.raw("<s:Envelope><a:Action>" + actCommand + "<<<")
		wantFault(t, "bad XML", status, body, codeInvalidHeader)
		status, body = w.raw("")
		wantFault(t, "empty body", status, body, codeInvalidHeader)
		status, body = w.raw(strings.Repeat("\x00\xff<", 1<<16))
		wantFault(t, "binary noise", status, body, codeInvalidHeader)
	})
	t.Run("unknown action", func(t *testing.T) {
		status, body := w.post("http://schemas.xmlsoap.org/ws/2004/09/transfer/Get", sh, "")
		wantFault(t, "Get", status, body, codeActionNotSupp)
	})
	t.Run("unknown shell", func(t *testing.T) {
		status, body := w.post(actCommand, "NO-SUCH-SHELL", `<rsp:CommandLine><rsp:Command>echo hi</rsp:Command></rsp:CommandLine>`)
		wantFault(t, "command in an unknown shell", status, body, codeShellNotFound)
		status, body = w.receive("NO-SUCH-SHELL", "C")
		wantFault(t, "receive in an unknown shell", status, body, codeShellNotFound)
	})
	t.Run("unknown command id", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			do   func() (int, string)
		}{
			{"receive", func() (int, string) { return w.receive(sh, "00000000-0000-4000-8000-000000000000") }},
			{"send", func() (int, string) { return w.send(sh, "NOPE", "x") }},
			{"signal", func() (int, string) { return w.signal(sh, "NOPE") }},
			{"receive without a CommandId", func() (int, string) {
				return w.post(actReceive, sh, `<rsp:Receive><rsp:DesiredStream>stdout</rsp:DesiredStream></rsp:Receive>`)
			}},
		} {
			status, body := tc.do()
			wantFault(t, tc.name, status, body, codeInvalidSelectors)
		}
	})
	t.Run("signal twice", func(t *testing.T) {
		id := w.command(sh, "echo hi")
		if status, body := w.signal(sh, id); status != 200 {
			t.Fatalf("first signal: %d %s", status, body)
		}
		status, body := w.signal(sh, id)
		wantFault(t, "second signal", status, body, codeInvalidSelectors)
		status, body = w.receive(sh, id)
		wantFault(t, "receive after terminate", status, body, codeInvalidSelectors)
	})
	t.Run("receive twice gives the output once", func(t *testing.T) {
		id := w.command(sh, "echo once")
		if got := w.stdout(sh, id); got != "once\r\n" {
			t.Errorf("first receive %q", got)
		}
		if got := w.stdout(sh, id); got != "" {
			t.Errorf("second receive %q, want no output again", got)
		}
	})
	t.Run("receive for a command waiting on stdin times out", func(t *testing.T) {
		id := w.command(sh, hostscript.CommandLine())
		status, body := w.receive(sh, id)
		wantFault(t, "receive", status, body, codeTimedOut)
	})
	t.Run("receive after delete", func(t *testing.T) {
		other := w.create()
		id := w.command(other, "echo hi")
		if status, body := w.post(actDelete, other, ""); status != 200 {
			t.Fatalf("delete: %d %s", status, body)
		}
		status, body := w.receive(other, id)
		wantFault(t, "receive after delete", status, body, codeShellNotFound)
	})
	t.Run("two commands in one shell concurrently", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := w.command(sh, fmt.Sprintf("echo %d", i))
				if got := w.stdout(sh, id); got != fmt.Sprintf("%d\r\n", i) {
					t.Errorf("command %d: %q", i, got)
				}
				w.signal(sh, id)
			}()
		}
		wg.Wait()
	})
	t.Run("commands a shell holds are bounded", func(t *testing.T) {
		full := w.create()
		for range maxCommandsPerShell {
			w.command(full, "echo x")
		}
		status, body := w.post(actCommand, full, `<rsp:CommandLine><rsp:Command>echo x</rsp:Command></rsp:CommandLine>`)
		wantFault(t, "one command too many", status, body, codeMaxCommands)
	})
	t.Run("the host still serves", func(t *testing.T) {
		if s := scanOf(t, client(t, f, "clean", testPassword, nil)); s.Hostname != "CLEAN" {
			t.Errorf("scan after the odd requests: %+v", s)
		}
	})
}

// panicWriter panics on its first Write, as a bug in answering would.
type panicWriter struct {
	*httptest.ResponseRecorder
	panicked bool
}

func (p *panicWriter) Write(b []byte) (int, error) {
	if !p.panicked {
		p.panicked = true
		panic("simulated bug")
	}
	return p.ResponseRecorder.Write(b)
}

func TestPanicsFailTheRequestNotTheProcess(t *testing.T) {
	var logs bytes.Buffer
	f := startFleet(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	h := f.Host("clean")
	t.Run("a panic answering a request is a fault", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, "/wsman", strings.NewReader(`<a:Action>`+actCreate+`</a:Action><a:MessageID>uuid:p-1</a:MessageID>`))
		req.SetBasicAuth("patchway", testPassword)
		rec := &panicWriter{ResponseRecorder: httptest.NewRecorder()}
		h.srv.ServeHTTP(rec, req)
		if !strings.Contains(rec.Body.String(), `Code="`+codeInternal+`"`) || !strings.Contains(rec.Body.String(), "simulated bug") {
			t.Errorf("answer %q, want an InternalError fault", rec.Body.String())
		}
	})
	t.Run("a panic running a command fails that command", func(t *testing.T) {
		w := newWSMan(t, f, "clean")
		sh := w.create()
		h.srv.mu.Lock()
		s := h.srv.shells[sh]
		h.srv.mu.Unlock()
		c := &command{id: newCommandID(), done: make(chan struct{}), started: true,
			proc: process{run: func(string) output { panic("command bug") }}}
		s.mu.Lock()
		s.commands[c.id] = c
		s.mu.Unlock()
		h.srv.run(c, "")
		status, body := w.receive(sh, c.id)
		wantFault(t, "receive of a command that panicked", status, body, codeInternal)
		if !strings.Contains(body, "command bug") {
			t.Errorf("fault does not say what failed: %s", body)
		}
		if got := w.stdout(sh, w.command(sh, "echo still")); got != "still\r\n" {
			t.Errorf("the shell no longer runs commands: %q", got)
		}
	})
	t.Run("a panic in fleet work is logged", func(t *testing.T) {
		f.guard("test work", func() { panic("timer bug") })()
	})
	for _, want := range []string{"simulated bug", "command bug", "timer bug", "in=\"test work\""} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs.String())
		}
	}
}
