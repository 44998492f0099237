// Package hostscript is the contract between Patchway's PowerShell host
// operations and anything that runs them: the WinRM activities send these
// scripts to Windows hosts, and the simulated fleet recognises them by their
// header and answers with the same JSON the real script prints.
//
// A rendered script looks like this:
//
//	# patchway-op: scan/1
//	$PatchwayParams = ConvertFrom-Json @'
//	{"kb":"KB958644","files":[...]}
//	'@
//	<body of scan.ps1>
//
// The first line names the operation and its contract version; the second
// block carries the parameters as one line of JSON in a PowerShell
// here-string (compact JSON never puts '@ at the start of a line). Scripts
// travel on stdin behind a short -EncodedCommand bootstrap, because long
// -EncodedCommand lines hit cmd.exe's 8191-character limit.
//
// This package imports neither Temporal nor WinRM, so fleetsim can use it.
package hostscript

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Op names a host operation.
type Op string

// The host operations. Each has a .ps1 body, a Params and a Result type.
const (
	OpScan      Op = "scan"
	OpInstall   Op = "install"
	OpReboot    Op = "reboot"
	OpUninstall Op = "uninstall"
)

// ReadOnly says whether running op changes nothing on the host, so that a
// run cut off at any point may simply be repeated: scan only reads.
func (op Op) ReadOnly() bool { return op == OpScan }

// OpOf returns the operation named by a script's header line ("" when the
// first line is not a Patchway header). It reads only the first line.
func OpOf(script string) Op {
	line, _, _ := strings.Cut(script, "\n")
	if m := headerRE.FindStringSubmatch(line); m != nil {
		return Op(m[1])
	}
	return ""
}

// Version is the contract version carried in every header; bump it when a
// Params or Result type changes incompatibly.
const Version = 1

// HeaderPrefix starts the first line of every Patchway script.
const HeaderPrefix = "# patchway-op: "

// paramsOpen and paramsClose delimit the parameter here-string.
const (
	paramsOpen  = "$PatchwayParams = ConvertFrom-Json @'"
	paramsClose = "'@"
)

// Bootstrap is the small script sent as -EncodedCommand: it reads the whole
// of stdin and runs it as one script block, so multi-line constructs work
// (powershell -Command - runs stdin line by line and breaks here-strings).
const Bootstrap = `$ErrorActionPreference = 'Stop'; $s = [Console]::In.ReadToEnd(); & ([ScriptBlock]::Create($s))`

// Header returns the first line of a script for op.
func Header(op Op) string {
	return fmt.Sprintf("%s%s/%d", HeaderPrefix, op, Version)
}

// Render builds the script text for op: header, parameter block, body.
// body is the .ps1 source without its own header line.
func Render(op Op, params any, body string) (string, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return "", fmt.Errorf("encode %s parameters: %w", op, err)
	}
	var b strings.Builder
	b.WriteString(Header(op))
	b.WriteString("\n")
	b.WriteString(paramsOpen)
	b.WriteString("\n")
	b.Write(raw)
	b.WriteString("\n")
	b.WriteString(paramsClose)
	b.WriteString("\n")
	b.WriteString(StripHeader(body))
	return b.String(), nil
}

// StripHeader removes a leading header line from a .ps1 body, so the
// embedded files can carry the header for readers without it appearing twice.
func StripHeader(body string) string {
	if strings.HasPrefix(body, HeaderPrefix) {
		if i := strings.IndexByte(body, '\n'); i >= 0 {
			return body[i+1:]
		}
		return ""
	}
	return body
}

var headerRE = regexp.MustCompile(`^# patchway-op: ([a-z_]+)/([0-9]+)\r?$`)

// Parse recognises a Patchway script: it returns the operation and the raw
// JSON parameters. Any other text is an error that says why.
func Parse(script string) (Op, json.RawMessage, error) {
	sc := bufio.NewScanner(strings.NewReader(script))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	if !sc.Scan() {
		return "", nil, fmt.Errorf("empty script")
	}
	m := headerRE.FindStringSubmatch(sc.Text())
	if m == nil {
		return "", nil, fmt.Errorf("not a Patchway script: first line %q lacks the %q header", Truncate(sc.Text(), 60), HeaderPrefix)
	}
	v, _ := strconv.Atoi(m[2])
	if v != Version {
		return "", nil, fmt.Errorf("script contract version %d, want %d", v, Version)
	}
	op := Op(m[1])
	if !sc.Scan() || strings.TrimRight(sc.Text(), "\r") != paramsOpen {
		return "", nil, fmt.Errorf("%s script: missing parameter block", op)
	}
	if !sc.Scan() {
		return "", nil, fmt.Errorf("%s script: parameter block ends early", op)
	}
	raw := json.RawMessage(strings.TrimRight(sc.Text(), "\r"))
	if !json.Valid(raw) {
		return "", nil, fmt.Errorf("%s script: parameters are not valid JSON", op)
	}
	if !sc.Scan() || strings.TrimRight(sc.Text(), "\r") != paramsClose {
		return "", nil, fmt.Errorf("%s script: parameter block is not closed", op)
	}
	return op, raw, nil
}

// CommandLine is the command a runner sends with the script on stdin.
func CommandLine() string {
	return "powershell.exe -NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + EncodeCommand(Bootstrap)
}

// EncodeCommand encodes a script for powershell -EncodedCommand: UTF-16LE,
// then base64.
func EncodeCommand(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		b[2*i] = byte(r)
		b[2*i+1] = byte(r >> 8)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCommand reverses EncodeCommand.
func DecodeCommand(encoded string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return "", fmt.Errorf("decode -EncodedCommand: %w", err)
	}
	if len(b)%2 != 0 {
		return "", fmt.Errorf("decode -EncodedCommand: odd byte count %d is not UTF-16LE", len(b))
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}

// Truncate shortens script text for an error message (a first line, a
// script's stderr, a host's answer) to its first n bytes, marked "..."
// when cut, without splitting a UTF-8 character: what Windows prints may
// be localized.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
