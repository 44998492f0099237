package fleetsim

import (
	"fmt"
	"strings"

	"github.com/patchway/patchway/hostscript"
)

// What a simulated host runs for a command line. A WinRM shell hands the
// line to cmd.exe; the simulator knows the commands people use to check
// that a host answers (echo, hostname, whoami), powershell.exe's command
// line (-Command, and -EncodedCommand nested as pywinrm's run_ps and
// Ansible send it, with the flags they put around it), Patchway's scripts
// and bootstrap, and Ansible's exec wrapper for win_ping (ansible.go).
// Anything else gets the error Windows gives for a command it does not
// know: the simulator runs no arbitrary PowerShell.

// output is what a process leaves: its streams and its exit code.
type output struct {
	stdout, stderr string
	exit           int
}

// process is what a command line runs: at once, or, when it reads stdin,
// once its stdin has been sent to the end.
type process struct {
	readsStdin bool
	run        func(stdin string) output
}

// ran is a process whose output is already known.
func ran(o output) process { return process{run: func(string) output { return o }} }

// session is who runs commands on which host (whoami's answer).
type session struct {
	host *Host
	user string
}

// maxNesting bounds powershell.exe started from powershell.exe (Ansible's
// module runs nest two levels).
const maxNesting = 8

var tooDeep = output{stderr: "The simulated host does not nest powershell.exe or cmd.exe this deeply.\r\n", exit: 1}

// commandLine is what cmd.exe runs for line.
func (s session) commandLine(line string, depth int) process {
	line = strings.TrimSpace(line)
	if depth > maxNesting {
		return ran(tooDeep)
	}
	if line == "" {
		return ran(output{})
	}
	if o, ok := cmdEcho(line); ok {
		return ran(o)
	}
	name, rest := nextToken(line)
	switch exeName(name) {
	case "powershell", "pwsh":
		return s.powershellCLI(rest, depth+1)
	case "cmd":
		return s.cmdCLI(rest, depth+1)
	case "hostname":
		return ran(s.hostname(rest))
	case "whoami":
		return ran(s.whoami(rest))
	}
	return ran(output{stderr: fmt.Sprintf("'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", name), exit: 1})
}

// cmdEcho is cmd.exe's echo: the rest of the line after one delimiter, as
// typed ("echo." and "echo(" print an empty line; a bare echo reports the
// echo state).
func cmdEcho(line string) (output, bool) {
	if len(line) < 4 || !strings.EqualFold(line[:4], "echo") {
		return output{}, false
	}
	if len(line) == 4 {
		return output{stdout: "ECHO is on.\r\n"}, true
	}
	text := line[5:]
	switch line[4] {
	case ' ', '\t':
		switch strings.ToLower(strings.TrimSpace(text)) {
		case "":
			return output{stdout: "ECHO is on.\r\n"}, true
		case "on", "off":
			return output{}, true
		}
	case '.', ',', ';', '=', ':', '(', '/', '[', ']', '+':
	default:
		return output{}, false // another command, such as echoargs
	}
	return output{stdout: text + "\r\n"}, true
}

// cmdCLI is cmd.exe's own command line: /c or /k runs the rest; without
// them cmd.exe reads its commands from stdin.
func (s session) cmdCLI(args string, depth int) process {
	for {
		tok, rest := nextToken(args)
		switch {
		case tok == "":
			return process{readsStdin: true, run: func(stdin string) output {
				var all output
				for _, line := range strings.Split(stdin, "\n") {
					o := s.commandLine(strings.TrimRight(line, "\r"), depth).run("")
					all.stdout += o.stdout
					all.stderr += o.stderr
					all.exit = o.exit
				}
				return all
			}}
		case strings.EqualFold(tok, "/c"), strings.EqualFold(tok, "/k"):
			rest = strings.TrimSpace(rest)
			if strings.Count(rest, `"`) == 2 && strings.HasPrefix(rest, `"`) && strings.HasSuffix(rest, `"`) {
				rest = rest[1 : len(rest)-1] // cmd /c "..." drops the outer quotes
			}
			return s.commandLine(rest, depth)
		case strings.HasPrefix(tok, "/"):
			args = rest // /q, /d, /s, /u, /a, ...
		default:
			return s.commandLine(args, depth)
		}
	}
}

// hostname is hostname.exe: the computer name scans report (CSName).
func (s session) hostname(args string) output {
	if strings.TrimSpace(args) != "" {
		return output{stderr: "sethostname: Use the Network Control Panel Applet to set hostname.\r\n", exit: 1}
	}
	return output{stdout: s.host.computerName() + "\r\n"}
}

// whoami is whoami.exe without options: the account that authenticated,
// as DOMAIN\user in lower case (a local account's domain is the computer
// name).
func (s session) whoami(args string) output {
	if a := strings.TrimSpace(args); a != "" {
		return output{stderr: fmt.Sprintf("ERROR: the simulated host's whoami prints the user name only; %s is not simulated.\r\n", a), exit: 1}
	}
	domain, user := s.host.computerName(), s.user
	if d, u, ok := strings.Cut(s.user, `\`); ok {
		domain, user = d, u
	} else if u, d, ok := strings.Cut(s.user, "@"); ok {
		domain, user = strings.Split(d, ".")[0], u
	}
	return output{stdout: strings.ToLower(domain+`\`+user) + "\r\n"}
}

// nextToken splits the first argument off a command line as Windows'
// CommandLineToArgvW does in the cases clients produce: blanks separate
// arguments, double quotes group them (and are removed).
func nextToken(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " \t\r\n")
	var b strings.Builder
	quoted := false
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c == '"' {
			quoted = !quoted
			continue
		}
		if !quoted && (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			break
		}
		b.WriteByte(c)
	}
	return b.String(), s[i:]
}

// joinArgs is the arguments of a command line joined by single spaces, as
// powershell.exe joins what follows -Command.
func joinArgs(s string) string {
	var parts []string
	for {
		tok, rest := nextToken(s)
		if tok == "" && strings.TrimSpace(rest) == "" {
			return strings.Join(parts, " ")
		}
		parts = append(parts, tok)
		s = rest
	}
}

// exeName is a program's name without its directory and .exe, in lower
// case: C:\Windows\System32\WindowsPowerShell\v1.0\PowerShell.exe is
// "powershell".
func exeName(tok string) string {
	if i := strings.LastIndexAny(tok, `\/`); i >= 0 {
		tok = tok[i+1:]
	}
	return strings.TrimSuffix(strings.ToLower(tok), ".exe")
}

// psParams are powershell.exe's parameters: any unambiguous prefix of at
// least min letters names one, as Windows PowerShell 5.1 accepts.
var psParams = []struct {
	name  string
	min   int
	value bool
}{
	{"command", 1, false},
	{"encodedcommand", 2, false},
	{"executionpolicy", 2, true},
	{"file", 1, false},
	{"inputformat", 1, true},
	{"noexit", 3, false},
	{"nologo", 3, false},
	{"noninteractive", 4, false},
	{"noprofile", 3, false},
	{"outputformat", 1, true},
	{"psconsolefile", 1, true},
	{"version", 1, true},
	{"windowstyle", 1, true},
	{"configurationname", 4, true},
	{"sta", 3, false},
	{"mta", 3, false},
}

// psParam names the powershell.exe parameter tok is (-NoProfile, /nop,
// -enc, -e, -ep ...), and whether it takes a value.
func psParam(tok string) (name string, value, ok bool) {
	if len(tok) < 2 || (tok[0] != '-' && tok[0] != '/') {
		return "", false, false
	}
	n := strings.ToLower(tok[1:])
	switch n {
	case "e", "ec":
		return "encodedcommand", false, true
	case "ep", "ex", "exec":
		return "executionpolicy", true, true
	}
	for _, p := range psParams {
		if len(n) >= p.min && strings.HasPrefix(p.name, n) {
			return p.name, p.value, true
		}
	}
	return "", false, false
}

// powershellCLI is powershell.exe's command line: its flags, then
// -EncodedCommand, -Command (or the first argument that is no flag, which
// starts the command), -File, or nothing (commands from stdin).
func (s session) powershellCLI(args string, depth int) process {
	for {
		tok, rest := nextToken(args)
		if tok == "" {
			return s.powershellStdin(depth)
		}
		name, value, ok := psParam(tok)
		switch {
		case !ok:
			return s.powershellScript(joinArgs(args), depth)
		case name == "encodedcommand":
			enc, _ := nextToken(rest)
			script, err := hostscript.DecodeCommand(enc)
			if enc == "" || err != nil {
				return ran(output{stderr: "Cannot process the command because the value specified with -EncodedCommand is not properly encoded. The value must be Base64 encoded.\r\n", exit: 1})
			}
			return s.powershellScript(script, depth)
		case name == "command":
			text := joinArgs(rest)
			if text == "-" {
				return s.powershellStdin(depth)
			}
			if text == "" {
				return ran(output{stderr: "Cannot process the command because of a missing parameter. A command must follow -Command.\r\n", exit: 1})
			}
			return s.powershellScript(text, depth)
		case name == "file":
			path, _ := nextToken(rest)
			return ran(output{stderr: fmt.Sprintf("The argument '%s' to the -File parameter does not exist. Provide the path to an existing '.ps1' file as an argument to the -File parameter.\r\n", path), exit: 4294770688}) // -196608
		case value:
			_, rest = nextToken(rest)
		}
		args = rest
	}
}

// powershellStdin is powershell.exe reading its commands from stdin.
func (s session) powershellStdin(depth int) process {
	return process{readsStdin: true, run: func(stdin string) output {
		return s.powershellScript(stdin, depth).run("")
	}}
}

// powershellScript is what PowerShell does with a script: a Patchway
// script is applied to the host; Patchway's bootstrap and Ansible's run
// the script they read from stdin; a script of plain statements
// (echo, Write-Output, Write-Host, hostname, whoami, cmd /c, a nested
// powershell.exe) runs statement by statement; anything else is not
// recognized.
func (s session) powershellScript(script string, depth int) process {
	if depth > maxNesting {
		return ran(tooDeep)
	}
	body := strings.TrimSpace(strings.TrimPrefix(script, "\ufeff"))
	switch {
	case hostscript.OpOf(body) != "":
		h := s.host
		return process{run: func(string) output { return h.runPatchway(body) }}
	case body == hostscript.Bootstrap:
		return process{readsStdin: true, run: func(stdin string) output {
			return s.powershellScript(stdin, depth).run("")
		}}
	case isAnsibleBootstrap(body):
		return process{readsStdin: true, run: s.ansibleExec}
	}
	stmts, ok := psStatements(body)
	if !ok {
		first, _, _ := strings.Cut(body, "\n")
		return ran(psNotRecognized(hostscript.Truncate(strings.TrimSpace(first), 60)))
	}
	if len(stmts) == 1 {
		if p, ok := s.nativeShell(stmts[0], depth); ok {
			return p // a nested shell may read this one's stdin
		}
	}
	return process{run: func(string) output {
		var all output
		for _, st := range stmts {
			o := s.psStatement(st, depth)
			all.stdout += o.stdout
			all.stderr += o.stderr
			all.exit = min(o.exit, 1) // powershell -Command exits 1 when its last statement failed
		}
		return all
	}}
}

// word is one token of a PowerShell statement; quoted words are strings,
// never parameters.
type word struct {
	text   string
	quoted bool
}

// psStatements splits a script of plain statements (commands with
// literal arguments, separated by newlines or ';', '#' comments) into
// words. Anything that would need PowerShell to evaluate it (variables,
// subexpressions, pipelines, script blocks, escapes, expanding strings)
// makes it not plain: ok is false.
func psStatements(script string) (stmts [][]word, ok bool) {
	var cur []word
	var tok strings.Builder
	inTok, quoted := false, false
	endWord := func() {
		if inTok {
			cur = append(cur, word{text: tok.String(), quoted: quoted})
		}
		tok.Reset()
		inTok, quoted = false, false
	}
	plain := true
	endStmt := func() {
		endWord()
		if len(cur) > 0 && strings.HasPrefix(cur[0].text, "$") && !cur[0].quoted &&
			(len(cur) != 3 || cur[1].text != "=" || cur[1].quoted) {
			plain = false // only $...Preference = <literal>
		}
		if len(cur) > 0 {
			stmts = append(stmts, cur)
		}
		cur = nil
	}
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case c == '\n' || c == ';':
			endStmt()
		case c == ' ' || c == '\t' || c == '\r':
			endWord()
		case c == '#' && !inTok:
			for i < len(script) && script[i] != '\n' {
				i++
			}
			endStmt()
		case c == '\'' || c == '"':
			j := i + 1
			for ; j < len(script); j++ {
				if script[j] == c {
					if j+1 < len(script) && script[j+1] == c {
						tok.WriteByte(c) // '' and "" stand for the quote
						j++
						continue
					}
					break
				}
				if c == '"' && (script[j] == '$' || script[j] == '`') {
					return nil, false
				}
				tok.WriteByte(script[j])
			}
			if j >= len(script) {
				return nil, false // unterminated string
			}
			inTok, quoted = true, true
			i = j
		case c == '$' && !inTok && len(cur) == 0:
			// Setting a preference variable (masterzen/winrm's RunPS
			// starts with $ProgressPreference = 'SilentlyContinue').
			j := i + 1
			for j < len(script) && (isLetter(script[j]) || script[j] == '_') {
				j++
			}
			if !preferenceVariables[strings.ToLower(script[i+1:j])] {
				return nil, false
			}
			cur = append(cur, word{text: script[i:j]})
			i = j - 1
		case c == '=' && !inTok && len(cur) == 1 && strings.HasPrefix(cur[0].text, "$"):
			cur = append(cur, word{text: "="})
		case strings.IndexByte("$`{}()[]|&<>@,", c) >= 0:
			return nil, false
		default:
			tok.WriteByte(c)
			inTok = true
		}
	}
	endStmt()
	return stmts, plain
}

// preferenceVariables are the variables a plain script may set: they
// change no output the simulator prints.
var preferenceVariables = map[string]bool{
	"progresspreference": true, "erroractionpreference": true, "warningpreference": true,
	"verbosepreference": true, "informationpreference": true, "debugpreference": true, "confirmpreference": true,
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// nativeShell runs a statement that starts powershell.exe or cmd.exe; the
// child reads the parent's stdin, as a native command does.
func (s session) nativeShell(st []word, depth int) (process, bool) {
	if st[0].quoted {
		return process{}, false
	}
	switch exeName(st[0].text) {
	case "powershell", "pwsh":
		return s.powershellCLI(nativeArgs(st[1:]), depth+1), true
	case "cmd":
		return s.cmdCLI(nativeArgs(st[1:]), depth+1), true
	}
	return process{}, false
}

// nativeArgs is the command line PowerShell builds for a native command:
// arguments with blanks are quoted.
func nativeArgs(ws []word) string {
	parts := make([]string, len(ws))
	for i, w := range ws {
		parts[i] = w.text
		if strings.ContainsAny(w.text, " \t") {
			parts[i] = `"` + w.text + `"`
		}
	}
	return strings.Join(parts, " ")
}

// psStatement runs one plain statement.
func (s session) psStatement(st []word, depth int) output {
	if p, ok := s.nativeShell(st, depth); ok {
		return p.run("")
	}
	if strings.HasPrefix(st[0].text, "$") && !st[0].quoted {
		return output{} // $...Preference = <literal> (psStatements checked it)
	}
	if st[0].quoted {
		if len(st) > 1 {
			return output{stderr: fmt.Sprintf("Unexpected token '%s' in expression or statement.\r\n", st[1].text), exit: 1}
		}
		return output{stdout: st[0].text + "\r\n"} // a string alone is output
	}
	switch name := strings.ToLower(st[0].text); name {
	case "echo", "write", "write-output":
		var b strings.Builder
		for _, w := range st[1:] {
			if !w.quoted && strings.HasPrefix(w.text, "-") {
				if p := strings.ToLower(w.text[1:]); p != "" && (strings.HasPrefix("inputobject", p) || strings.HasPrefix("noenumerate", p)) {
					continue
				}
				return paramNotFound("Write-Output", w.text)
			}
			b.WriteString(w.text + "\r\n") // one line per object
		}
		return output{stdout: b.String()}
	case "write-host":
		var parts []string
		newline, sep := true, " "
		for i := 1; i < len(st); i++ {
			w := st[i]
			if w.quoted || !strings.HasPrefix(w.text, "-") {
				parts = append(parts, w.text)
				continue
			}
			switch p := strings.ToLower(w.text[1:]); {
			case p != "" && strings.HasPrefix("nonewline", p) && len(p) >= 2:
				newline = false
			case p != "" && strings.HasPrefix("object", p):
			case p != "" && strings.HasPrefix("separator", p) && i+1 < len(st):
				i++
				sep = st[i].text
			case p != "" && (strings.HasPrefix("foregroundcolor", p) || strings.HasPrefix("backgroundcolor", p)) && i+1 < len(st):
				i++
			default:
				return paramNotFound("Write-Host", w.text)
			}
		}
		out := strings.Join(parts, sep)
		if newline {
			out += "\r\n"
		}
		return output{stdout: out}
	}
	switch exeName(st[0].text) {
	case "hostname":
		return s.hostname(nativeArgs(st[1:]))
	case "whoami":
		return s.whoami(nativeArgs(st[1:]))
	}
	return psNotRecognized(st[0].text)
}

// psNotRecognized is PowerShell's error for a command it does not know.
func psNotRecognized(term string) output {
	return output{stderr: fmt.Sprintf("%s : The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.\r\n    + CategoryInfo          : ObjectNotFound: (%s:String) [], CommandNotFoundException\r\n    + FullyQualifiedErrorId : CommandNotFoundException\r\n",
		term, term, term), exit: 1}
}

func paramNotFound(cmdlet, param string) output {
	name := strings.TrimPrefix(param, "-")
	return output{stderr: fmt.Sprintf("%s : A parameter cannot be found that matches parameter name '%s'.\r\n    + CategoryInfo          : InvalidArgument: (:) [%s], ParameterBindingException\r\n    + FullyQualifiedErrorId : NamedParameterNotFound\r\n", cmdlet, name, cmdlet), exit: 1}
}
