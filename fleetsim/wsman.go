package fleetsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patchway/patchway/hostscript"
)

// WS-Management actions the shell protocol uses.
const (
	actCreate  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
	actDelete  = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
	shellNS    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	actCommand = shellNS + "/Command"
	actSend    = shellNS + "/Send"
	actReceive = shellNS + "/Receive"
	actSignal  = shellNS + "/Signal"
	stateDone  = shellNS + "/CommandState/Done"
)

// request is what the simulator reads from a SOAP envelope. Parsing is by
// pattern, not by a full XML decoder: the envelopes are small and of known
// shape, and anything that does not match is answered with a fault.
type request struct {
	action, messageID, shellID, commandID string
	command, arguments                    string
	signal                                string
	stdin                                 []byte
	stdinEnd                              bool
	timeout                               time.Duration
}

var (
	reAction    = regexp.MustCompile(`<(?:\w+:)?Action[^>]*>\s*([^<\s]+)\s*</(?:\w+:)?Action>`)
	reMessageID = regexp.MustCompile(`<(?:\w+:)?MessageID[^>]*>\s*([^<\s]+)\s*</(?:\w+:)?MessageID>`)
	reShellID   = regexp.MustCompile(`<(?:\w+:)?Selector[^>]*Name="ShellId"[^>]*>\s*([^<\s]+)\s*</(?:\w+:)?Selector>`)
	reCommandID = regexp.MustCompile(`CommandId="([^"]+)"`)
	reCommand   = regexp.MustCompile(`(?s)<(?:\w+:)?Command>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</(?:\w+:)?Command>`)
	reArguments = regexp.MustCompile(`(?s)<(?:\w+:)?Arguments>(?:<!\[CDATA\[)?(.*?)(?:\]\]>)?</(?:\w+:)?Arguments>`)
	reStdin     = regexp.MustCompile(`(?s)<(?:\w+:)?Stream([^>]*Name="stdin"[^>]*?)(?:/>|>([^<]*)</(?:\w+:)?Stream>)`)
	reSignal    = regexp.MustCompile(`<(?:\w+:)?Code>\s*([^<\s]+)\s*</(?:\w+:)?Code>`)
	reTimeout   = regexp.MustCompile(`<(?:\w+:)?OperationTimeout[^>]*>\s*PT([0-9.]+)S\s*</`)
)

// parseRequest reads a WS-Management request. It never panics on any
// input (FuzzParseRequest).
func parseRequest(body string) (request, error) {
	var r request
	m := reAction.FindStringSubmatch(body)
	if m == nil {
		return r, fmt.Errorf("no a:Action header")
	}
	r.action = m[1]
	if m := reMessageID.FindStringSubmatch(body); m != nil {
		r.messageID = m[1]
	}
	if m := reShellID.FindStringSubmatch(body); m != nil {
		r.shellID = m[1]
	}
	if m := reCommandID.FindStringSubmatch(body); m != nil {
		r.commandID = m[1]
	}
	if m := reTimeout.FindStringSubmatch(body); m != nil {
		if f, err := strconv.ParseFloat(m[1], 64); err == nil && f > 0 && f < 3600 {
			r.timeout = time.Duration(f * float64(time.Second))
		}
	}
	switch r.action {
	case actCommand:
		m := reCommand.FindStringSubmatch(body)
		if m == nil {
			return r, fmt.Errorf("Command without rsp:Command")
		}
		r.command = strings.TrimSpace(m[1])
		for _, a := range reArguments.FindAllStringSubmatch(body, -1) {
			r.arguments += " " + strings.TrimSpace(a[1])
		}
	case actSend:
		m := reStdin.FindStringSubmatch(body)
		if m == nil {
			return r, fmt.Errorf("Send without a stdin stream")
		}
		r.stdinEnd = strings.Contains(m[1], `End="true"`) || strings.Contains(m[1], `End="TRUE"`)
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(m[2]))
		if err != nil {
			return r, fmt.Errorf("stdin is not base64: %w", err)
		}
		r.stdin = b
	case actSignal:
		if m := reSignal.FindStringSubmatch(body); m != nil {
			r.signal = m[1]
		}
	}
	if r.action != actCreate && r.shellID == "" {
		return r, fmt.Errorf("%s without a ShellId selector", r.action)
	}
	return r, nil
}

// shell is one open remote shell: the user it belongs to and its
// commands. A shell runs several commands, one after another or at once
// (pywinrm and Ansible run every command of a session in one shell), each
// addressed by its own CommandId.
type shell struct {
	id       string
	user     string
	mu       sync.Mutex
	commands map[string]*command
}

// maxCommandsPerShell is Windows' MaxProcessesPerShell default: a shell
// holds at most this many commands that have not been terminated.
const maxCommandsPerShell = 25

// command is one process in a shell: what its command line runs, the
// stdin sent to it, and its result once done.
type command struct {
	id      string
	proc    process
	mu      sync.Mutex
	stdin   bytes.Buffer
	started bool
	done    chan struct{}
	result  output
	// failure is an internal error of the simulator (a panic): Receive
	// answers it with a fault rather than an exit code.
	failure string
	sent    bool
}

// finish records the command's result; the first result wins (a Ctrl-C
// signal may finish a command before its work returns).
func (c *command) finish(r output, failure string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	c.result, c.failure = r, failure
	close(c.done)
}

// Fault codes (WSManFault Code) the simulator answers with.
const (
	codeInvalidHeader    = "2150858817" // ERROR_WSMAN_INVALID_MESSAGE_INFORMATION_HEADER
	codeActionNotSupp    = "2150858783" // ERROR_WSMAN_ACTION_NOT_SUPPORTED
	codeShellNotFound    = "2150858843" // the shell was not found on the server
	codeInvalidSelectors = "2150858813" // ERROR_WSMAN_INVALID_SELECTORS: no such command
	codeTimedOut         = "2150858793" // ERROR_WSMAN_OPERATION_TIMEDOUT
	codeMaxShells        = "2150859174" // ERROR_WSMAN_QUOTA_MAX_OPERATIONS
	codeMaxCommands      = "2150859241" // ERROR_WSMAN_QUOTA_MAX_COMMANDS_PER_SHELL_PPQ
	codeInternal         = "2147500037" // E_FAIL
)

// Signal codes.
const (
	signalTerminate = shellNS + "/signal/terminate"
	signalCtrlC     = shellNS + "/signal/ctrl_c"
	signalCtrlBreak = shellNS + "/signal/ctrl_break"
	// exitCtrlC is STATUS_CONTROL_C_EXIT, a process ended by Ctrl-C.
	exitCtrlC = 3221225786
)

// hostServer answers WS-Management for one host.
type hostServer struct {
	host   *Host
	mu     sync.Mutex
	shells map[string]*shell
	seq    int
}

func (s *hostServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, f := s.host, s.host.fleet
	var req request
	// No request may end the process: patchway dev runs the fleet beside
	// the Temporal server and the worker.
	defer func() {
		if p := recover(); p != nil {
			f.logPanic("request to host "+h.Name(), p)
			fault(w, req, "w:InternalError", codeInternal, fmt.Sprintf("The simulated host failed to process the request: %v", p))
		}
	}()
	if d, ok := h.faults[FaultSlow]; ok {
		time.Sleep(d.Delay)
	}
	if !h.reachable() || connDropped(r.Context(), h) {
		dropConnection(w)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || h.has(FaultAuthFails) ||
		subtle.ConstantTimeCompare([]byte(user), []byte(f.opts.Username)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(f.opts.Password)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/wsman" {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return
	}
	req, err = parseRequest(string(raw))
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	if err != nil {
		fault(w, req, "w:InvalidMessageInformationHeader", codeInvalidHeader, err.Error())
		return
	}
	switch req.action {
	case actCreate:
		s.create(w, req, user)
	case actCommand:
		s.startCommand(w, req)
	case actSend:
		s.send(w, req)
	case actReceive:
		s.receive(w, req)
	case actSignal:
		s.signal(w, req)
	case actDelete:
		s.mu.Lock()
		if _, ok := s.shells[req.shellID]; ok {
			delete(s.shells, req.shellID)
			h.mu.Lock()
			h.shells--
			h.mu.Unlock()
		}
		s.mu.Unlock()
		reply(w, req, actDelete+"Response", "")
	default:
		fault(w, req, "w:ActionNotSupported", codeActionNotSupp, "The action is not supported by the service: "+req.action)
	}
}

func (s *hostServer) create(w http.ResponseWriter, req request, user string) {
	h := s.host
	h.mu.Lock()
	if h.shells >= h.fleet.opts.MaxShellsPerHost {
		h.mu.Unlock()
		fault(w, req, "w:QuotaLimit", codeMaxShells, fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded.", h.fleet.opts.MaxShellsPerHost))
		return
	}
	h.shells++
	h.mu.Unlock()
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("%08X-0000-4000-8000-%012X", s.seq, s.seq)
	s.shells[id] = &shell{id: id, user: user, commands: map[string]*command{}}
	s.mu.Unlock()
	reply(w, req, actCreate+"Response", `<x:ResourceCreated><a:Address>`+h.fleet.scheme()+`</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">`+id+`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>`+id+`</rsp:ShellId></rsp:Shell>`)
}

func (s *hostServer) shell(w http.ResponseWriter, req request) *shell {
	s.mu.Lock()
	sh := s.shells[req.shellID]
	s.mu.Unlock()
	if sh == nil {
		fault(w, req, "w:InvalidSelectors", codeShellNotFound, "The request for the Windows Remote Shell with ShellId "+req.shellID+" failed because the shell was not found on the server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the server. Provide the correct ShellId or create a new shell and retry the operation.")
	}
	return sh
}

// command finds the shell and the command a request addresses, or answers
// with the fault Windows gives (the shell or the command is not there).
func (s *hostServer) command(w http.ResponseWriter, req request) (*shell, *command) {
	sh := s.shell(w, req)
	if sh == nil {
		return nil, nil
	}
	sh.mu.Lock()
	c := sh.commands[strings.ToUpper(req.commandID)]
	sh.mu.Unlock()
	if c == nil {
		fault(w, req, "w:InvalidSelectors", codeInvalidSelectors, fmt.Sprintf("The WS-Management service cannot process the request because the request contained invalid selectors for the resource: shell %s has no command with CommandId %q (it ended, was terminated, or never existed).", sh.id, req.commandID))
	}
	return sh, c
}

// newCommandID is a fresh CommandId, a GUID in upper case as Windows
// gives it.
func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return strings.ToUpper(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

func (s *hostServer) startCommand(w http.ResponseWriter, req request) {
	sh := s.shell(w, req)
	if sh == nil {
		return
	}
	// A client may name the command (PSRP does); otherwise it gets a
	// fresh id.
	id := strings.ToUpper(req.commandID)
	if id == "" {
		id = newCommandID()
	}
	sess := session{host: s.host, user: sh.user}
	proc := sess.commandLine(strings.TrimSpace(req.command+req.arguments), 0)
	c := &command{id: id, proc: proc, started: !proc.readsStdin, done: make(chan struct{})}
	sh.mu.Lock()
	if _, dup := sh.commands[id]; dup {
		sh.mu.Unlock()
		fault(w, req, "w:AlreadyExists", codeInvalidSelectors, "The shell already has a command with CommandId "+id+".")
		return
	}
	if len(sh.commands) >= maxCommandsPerShell {
		sh.mu.Unlock()
		fault(w, req, "w:QuotaLimit", codeMaxCommands, fmt.Sprintf("The WS-Management service cannot process the request. The maximum number of concurrent commands per shell (%d) has been exceeded: terminate finished commands (Signal) first.", maxCommandsPerShell))
		return
	}
	sh.commands[id] = c
	sh.mu.Unlock()
	// A command that carries its whole script runs now; one that reads
	// stdin (a bootstrap) runs when its stdin ends.
	if !proc.readsStdin {
		s.run(c, "")
	}
	reply(w, req, actCommand+"Response", `<rsp:CommandResponse><rsp:CommandId>`+id+`</rsp:CommandId></rsp:CommandResponse>`)
}

func (s *hostServer) send(w http.ResponseWriter, req request) {
	_, c := s.command(w, req)
	if c == nil {
		return
	}
	c.mu.Lock()
	c.stdin.Write(req.stdin)
	start := req.stdinEnd && !c.started
	c.started = c.started || start
	stdin := c.stdin.String()
	c.mu.Unlock()
	if start {
		s.run(c, stdin)
	}
	reply(w, req, actSend+"Response", `<rsp:SendResponse/>`)
}

// receive returns the command's output when it is done, or an
// OperationTimeout fault after the operation timeout (as Windows does when
// a command has produced nothing new), which clients answer with another
// Receive. Output is sent once; later Receives get the final state alone.
func (s *hostServer) receive(w http.ResponseWriter, req request) {
	_, c := s.command(w, req)
	if c == nil {
		return
	}
	wait := s.host.fleet.opts.ReceiveTimeout
	if req.timeout > 0 && req.timeout < wait {
		wait = req.timeout
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-c.done:
	case <-timer.C:
		fault(w, req, "w:TimedOut", codeTimedOut, "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
		return
	}
	c.mu.Lock()
	res, failure, sent := c.result, c.failure, c.sent
	c.sent = true
	c.mu.Unlock()
	if failure != "" {
		fault(w, req, "w:InternalError", codeInternal, "The simulated host failed to run the command: "+failure)
		return
	}
	if sent {
		res.stdout, res.stderr = "", ""
	}
	id := c.id
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s">%s</rsp:Stream>`, id, base64.StdEncoding.EncodeToString([]byte(res.stdout)))
	if res.stderr != "" {
		fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s">%s</rsp:Stream>`, id, base64.StdEncoding.EncodeToString([]byte(res.stderr)))
	}
	fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>`, id)
	fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>`, id)
	fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, id, stateDone, res.exit)
	b.WriteString(`</rsp:ReceiveResponse>`)
	reply(w, req, actReceive+"Response", b.String())
}

// signal terminates a command (its resources go, so its CommandId is
// unknown afterwards), or interrupts it with Ctrl-C.
func (s *hostServer) signal(w http.ResponseWriter, req request) {
	sh, c := s.command(w, req)
	if c == nil {
		return
	}
	switch req.signal {
	case signalCtrlC, signalCtrlBreak:
		c.finish(output{exit: exitCtrlC}, "")
	default: // terminate, and codes Windows treats alike
		sh.mu.Lock()
		delete(sh.commands, c.id)
		sh.mu.Unlock()
		c.finish(output{exit: exitCtrlC}, "")
	}
	reply(w, req, actSignal+"Response", `<rsp:SignalResponse/>`)
}

// run starts the command's work in its own goroutine; a panic there fails
// the command (its Receive gets a fault) and is logged, never more.
func (s *hostServer) run(c *command, stdin string) {
	f := s.host.fleet
	go func() {
		defer func() {
			if p := recover(); p != nil {
				f.logPanic("command on host "+s.host.Name(), p)
				c.finish(output{exit: 1}, fmt.Sprint(p))
			}
		}()
		c.finish(c.proc.run(stdin), "")
	}()
}

// runPatchway applies a Patchway script (one with a hostscript header) to
// the host and prints the JSON the real script prints.
func (h *Host) runPatchway(script string) output {
	op, raw, err := hostscript.Parse(script)
	if err != nil {
		return output{stderr: "patchway: " + err.Error() + "\r\n", exit: 1}
	}
	if (op == hostscript.OpScan || op == hostscript.OpInstall) && !h.servicesReady() {
		// WinRM is up, the services the scripts query are not yet.
		return output{stderr: "Get-HotFix : The RPC server is unavailable. (Exception from HRESULT: 0x800706BA)\r\n", exit: 1}
	}
	var res any
	switch op {
	case hostscript.OpScan:
		var p hostscript.ScanParams
		err = json.Unmarshal(raw, &p)
		res = h.scan(p)
	case hostscript.OpInstall:
		var p hostscript.InstallParams
		if err = json.Unmarshal(raw, &p); err == nil {
			time.Sleep(h.fleet.opts.InstallDuration)
			res = h.install(p)
		}
	case hostscript.OpReboot:
		var p hostscript.RebootParams
		if err = json.Unmarshal(raw, &p); err == nil {
			res = h.reboot(p)
		}
	case hostscript.OpUninstall:
		var p hostscript.UninstallParams
		if err = json.Unmarshal(raw, &p); err == nil {
			res = h.uninstall(p)
		}
	default:
		return output{stderr: fmt.Sprintf("patchway: unknown operation %q\r\n", op), exit: 1}
	}
	if err != nil {
		return output{stderr: fmt.Sprintf("ConvertFrom-Json : Invalid JSON primitive: %s\r\n", err), exit: 1}
	}
	b, _ := json.Marshal(res)
	return output{stdout: string(b) + "\r\n"}
}

const envelopeOpen = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault">`

// reply writes a SOAP response whose a:RelatesTo is the request's
// MessageID (pywinrm checks it).
func reply(w http.ResponseWriter, req request, action, body string) {
	id, relates := "uuid:"+newCommandID(), ""
	if req.messageID != "" {
		id = "uuid:" + strings.TrimPrefix(req.messageID, "uuid:") + "-r"
		relates = `<a:RelatesTo>` + xmlEscape(req.messageID) + `</a:RelatesTo>`
	}
	fmt.Fprintf(w, `%s<s:Header><a:Action>%s</a:Action><a:MessageID>%s</a:MessageID>%s<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To></s:Header><s:Body>%s</s:Body></s:Envelope>`,
		envelopeOpen, action, xmlEscape(id), relates, body)
}

// fault writes a WS-Management SOAP fault with its WSManFault code.
func fault(w http.ResponseWriter, req request, subcode, code, text string) {
	w.WriteHeader(http.StatusInternalServerError)
	reply(w, req, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
		fmt.Sprintf(`<s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason><s:Detail><f:WSManFault Code="%s" Machine="localhost"><f:Message>%s</f:Message></f:WSManFault></s:Detail></s:Fault>`,
			subcode, xmlEscape(text), code, xmlEscape(text)))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// dropConnection closes the client's connection without an answer, as a
// host that is down or drops packets does.
// connKey holds a connection's connFate in its requests' contexts.
type connKey struct{}

// connFate is decided at a connection's first request (flaky hosts).
type connFate struct {
	once sync.Once
	drop bool
}

// withConnFate gives each accepted connection its own fate (http.Server
// ConnContext).
func withConnFate(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connFate{})
}

// connDropped says whether the request's connection is one a flaky host
// drops; the first request of a connection decides for all of them.
func connDropped(ctx context.Context, h *Host) bool {
	fate, ok := ctx.Value(connKey{}).(*connFate)
	if !ok {
		return h.dropsConnection()
	}
	fate.once.Do(func() { fate.drop = h.dropsConnection() })
	return fate.drop
}

func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	w.WriteHeader(http.StatusServiceUnavailable)
}
