package fleetsim

import (
	"context"
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
	}
	if r.action != actCreate && r.shellID == "" {
		return r, fmt.Errorf("%s without a ShellId selector", r.action)
	}
	return r, nil
}

// shell is one open remote shell and its command.
type shell struct {
	id      string
	mu      sync.Mutex
	cmdID   string
	command string
	stdin   strings.Builder
	started bool
	done    chan struct{}
	stdout  string
	stderr  string
	exit    int
	sent    bool
}

// hostServer answers WS-Management for one host.
type hostServer struct {
	host   *Host
	mu     sync.Mutex
	shells map[string]*shell
	seq    int
}

func (s *hostServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, f := s.host, s.host.fleet
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
	req, err := parseRequest(string(raw))
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	if err != nil {
		fault(w, req, "w:InvalidMessageInformationHeader", "2150858817", err.Error())
		return
	}
	switch req.action {
	case actCreate:
		s.create(w, req)
	case actCommand:
		s.command(w, req)
	case actSend:
		s.send(w, req)
	case actReceive:
		s.receive(w, req)
	case actSignal:
		reply(w, req, actSignal+"Response", `<rsp:SignalResponse/>`)
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
		fault(w, req, "w:ActionNotSupported", "2150858783", "The action is not supported by the service: "+req.action)
	}
}

func (s *hostServer) create(w http.ResponseWriter, req request) {
	h := s.host
	h.mu.Lock()
	if h.shells >= h.fleet.opts.MaxShellsPerHost {
		h.mu.Unlock()
		fault(w, req, "w:QuotaLimit", "2150859174", fmt.Sprintf("The WS-Management service cannot process the request. This user is allowed a maximum number of %d concurrent shells, which has been exceeded.", h.fleet.opts.MaxShellsPerHost))
		return
	}
	h.shells++
	h.mu.Unlock()
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("%08X-0000-4000-8000-%012X", s.seq, s.seq)
	s.shells[id] = &shell{id: id, done: make(chan struct{})}
	s.mu.Unlock()
	reply(w, req, actCreate+"Response", `<x:ResourceCreated><a:Address>`+h.fleet.scheme()+`</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">`+id+`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell><rsp:ShellId>`+id+`</rsp:ShellId></rsp:Shell>`)
}

func (s *hostServer) shell(w http.ResponseWriter, req request) *shell {
	s.mu.Lock()
	sh := s.shells[req.shellID]
	s.mu.Unlock()
	if sh == nil {
		fault(w, req, "w:InvalidSelectors", "2150858843", "The request for the Windows Remote Shell with ShellId "+req.shellID+" failed because the shell was not found on the server.")
	}
	return sh
}

func (s *hostServer) command(w http.ResponseWriter, req request) {
	sh := s.shell(w, req)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	sh.cmdID = strings.ToUpper(fmt.Sprintf("%s-C", sh.id))
	sh.command = strings.TrimSpace(req.command + req.arguments)
	id := sh.cmdID
	// A command that carries its whole script runs now; the bootstrap
	// waits for its script on stdin.
	script, wantsStdin := commandScript(sh.command)
	if !wantsStdin {
		sh.started = true
		go s.run(sh, script)
	}
	sh.mu.Unlock()
	reply(w, req, actCommand+"Response", `<rsp:CommandResponse><rsp:CommandId>`+id+`</rsp:CommandId></rsp:CommandResponse>`)
}

func (s *hostServer) send(w http.ResponseWriter, req request) {
	sh := s.shell(w, req)
	if sh == nil {
		return
	}
	sh.mu.Lock()
	sh.stdin.Write(req.stdin)
	if req.stdinEnd && !sh.started {
		sh.started = true
		go s.run(sh, sh.stdin.String())
	}
	sh.mu.Unlock()
	reply(w, req, actSend+"Response", `<rsp:SendResponse/>`)
}

// receive returns the command's output when it is done, or an
// OperationTimeout fault after the operation timeout (as Windows does when
// a command has produced nothing new), which clients answer with another
// Receive.
func (s *hostServer) receive(w http.ResponseWriter, req request) {
	sh := s.shell(w, req)
	if sh == nil {
		return
	}
	wait := s.host.fleet.opts.ReceiveTimeout
	if req.timeout > 0 && req.timeout < wait {
		wait = req.timeout
	}
	select {
	case <-sh.done:
	case <-time.After(wait):
		fault(w, req, "w:TimedOut", "2150858793", "The WS-Management service cannot complete the operation within the time specified in OperationTimeout.")
		return
	}
	sh.mu.Lock()
	id, out, errOut, exit := sh.cmdID, sh.stdout, sh.stderr, sh.exit
	sh.sent = true
	sh.mu.Unlock()
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s">%s</rsp:Stream>`, id, base64.StdEncoding.EncodeToString([]byte(out)))
	if errOut != "" {
		fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s">%s</rsp:Stream>`, id, base64.StdEncoding.EncodeToString([]byte(errOut)))
	}
	fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>`, id)
	fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`, id, stateDone, exit)
	b.WriteString(`</rsp:ReceiveResponse>`)
	reply(w, req, actReceive+"Response", b.String())
}

// run executes a script against the host model.
func (s *hostServer) run(sh *shell, script string) {
	out, errOut, exit := s.host.execute(script)
	sh.mu.Lock()
	sh.stdout, sh.stderr, sh.exit = out, errOut, exit
	sh.mu.Unlock()
	close(sh.done)
}

// commandScript returns the script a command line carries, and whether it
// is the bootstrap that reads its script from stdin.
func commandScript(cmd string) (string, bool) {
	fields := strings.Fields(cmd)
	for i, f := range fields {
		if strings.EqualFold(f, "-EncodedCommand") && i+1 < len(fields) {
			s, err := hostscript.DecodeCommand(fields[i+1])
			if err != nil {
				return "", false
			}
			return s, s == hostscript.Bootstrap
		}
	}
	return cmd, false
}

// execute recognises a Patchway script and applies it; anything else is
// answered as PowerShell would answer an unknown command.
func (h *Host) execute(script string) (stdout, stderr string, exit int) {
	op, raw, err := hostscript.Parse(script)
	if err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(script), "\n")
		first = hostscript.Truncate(first, 60)
		return "", fmt.Sprintf("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.\r\n    + CategoryInfo          : ObjectNotFound: (%s:String) [], CommandNotFoundException\r\n    + FullyQualifiedErrorId : CommandNotFoundException\r\n",
			first, first, first), 1
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
		return "", fmt.Sprintf("patchway: unknown operation %q\r\n", op), 1
	}
	if err != nil {
		return "", fmt.Sprintf("ConvertFrom-Json : Invalid JSON primitive: %s\r\n", err), 1
	}
	b, _ := json.Marshal(res)
	return string(b) + "\r\n", "", 0
}

const envelopeOpen = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault">`

// reply writes a SOAP response whose a:RelatesTo is the request's
// MessageID (pywinrm checks it).
func reply(w http.ResponseWriter, req request, action, body string) {
	fmt.Fprintf(w, `%s<s:Header><a:Action>%s</a:Action><a:MessageID>uuid:%s-r</a:MessageID><a:RelatesTo>%s</a:RelatesTo><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To></s:Header><s:Body>%s</s:Body></s:Envelope>`,
		envelopeOpen, action, strings.TrimPrefix(req.messageID, "uuid:"), req.messageID, body)
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
