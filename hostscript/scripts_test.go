package hostscript

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// TestScriptsRenderAndParseBack checks each embedded script renders with
// its parameters, carries its header, parses back to the same operation and
// parameters (what the simulated fleet does), and stays small.
func TestScriptsRenderAndParseBack(t *testing.T) {
	tests := []struct {
		op     Op
		params any
	}{
		{OpScan, ScanParams{KB: "KB958644", Files: []FileCheck{{Path: `%SystemRoot%\System32\netapi32.dll`}}}},
		{OpInstall, InstallParams{RolloutID: "ms08-067", KB: "KB958644", Source: `\\dp\patches\kb958644.msu`, SHA256: strings.Repeat("ab", 32), Type: "msu"}},
		{OpReboot, RebootParams{RolloutID: "ms08-067", DelaySeconds: 30}},
		{OpUninstall, UninstallParams{RolloutID: "ms08-067", KB: "KB958644"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			body, err := Body(tt.op)
			if err != nil {
				t.Fatalf("Body: %v", err)
			}
			if first, _, _ := strings.Cut(body, "\n"); first != Header(tt.op) {
				t.Errorf("first line of %s.ps1 = %q, want %q", tt.op, first, Header(tt.op))
			}
			s, err := Script(tt.op, tt.params)
			if err != nil {
				t.Fatalf("Script: %v", err)
			}
			if strings.Count(s, HeaderPrefix) != 1 {
				t.Errorf("rendered script carries %d header lines, want 1", strings.Count(s, HeaderPrefix))
			}
			op, raw, err := Parse(s)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if op != tt.op {
				t.Errorf("Parse op = %q, want %q", op, tt.op)
			}
			want, _ := json.Marshal(tt.params)
			if string(raw) != string(want) {
				t.Errorf("Parse params = %s, want %s", raw, want)
			}
			if len(s) > 16<<10 {
				t.Errorf("rendered %s script is %d bytes; keep scripts under 16 KiB", tt.op, len(s))
			}
		})
	}
}

func TestScriptRefusesUnknownOperationAndRunawayParameters(t *testing.T) {
	if _, err := Script(Op("format_c"), nil); err == nil {
		t.Error("Script accepted an unknown operation")
	}
	files := make([]FileCheck, 20000)
	for i := range files {
		files[i].Path = `C:\Windows\System32\some-very-long-file-name.dll`
	}
	if _, err := Script(OpScan, ScanParams{KB: "KB1", Files: files}); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("Script with 20000 files: err = %v, want the size limit", err)
	}
}

// TestScriptsPrintEveryResultField checks that each script writes every
// JSON key of its result type, so a renamed Go field cannot silently drop
// evidence.
func TestScriptsPrintEveryResultField(t *testing.T) {
	// Keys the worker fills from what it observed itself, never from the
	// host's word.
	workerSet := map[string]bool{"tls_cert_sha256": true}
	tests := []struct {
		op     Op
		result any
	}{
		{OpScan, ScanResult{}},
		{OpInstall, InstallResult{}},
		{OpReboot, RebootResult{}},
		{OpUninstall, UninstallResult{}},
	}
	for _, tt := range tests {
		t.Run(string(tt.op), func(t *testing.T) {
			body, err := Body(tt.op)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range jsonKeys(reflect.TypeOf(tt.result)) {
				if workerSet[key] {
					continue
				}
				re := regexp.MustCompile(`(?m)(^|[\s{;.])` + regexp.QuoteMeta(key) + `\s*=`)
				if !re.MatchString(body) {
					t.Errorf("%s.ps1 never sets result key %q", tt.op, key)
				}
			}
		})
	}
}

// TestScriptsCiteTheWindowsBehaviourTheyRelyOn pins the Windows facts the
// scripts rely on: exit codes, registry keys, boot time, file versions.
func TestScriptsCiteTheWindowsBehaviourTheyRelyOn(t *testing.T) {
	want := map[Op][]string{
		OpScan: {"Get-HotFix", "Get-WindowsPackage", `Component Based Servicing\RebootPending`,
			`WindowsUpdate\Auto Update\RebootRequired`, "PendingFileRenameOperations", "LastBootUpTime",
			"Win32_OperatingSystem", "FileMajorPart", "FileMinorPart", "FileBuildPart", "FilePrivatePart",
			"Get-FileHash", "SHA256"},
		OpInstall:   {"Get-FileHash", "wusa.exe", "/quiet", "/norestart", "3010", "1641", "2359302", "0x80240017", "2149842967", "msiexec", "Add-WindowsPackage"},
		OpReboot:    {"shutdown.exe", "/r", "/t", "/c", "1190", "1115", "LastBootUpTime"},
		OpUninstall: {"wusa.exe", "/uninstall", "/kb:", "/quiet", "/norestart", "3010", "2359303"},
	}
	for op, needles := range want {
		body, err := Body(op)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			if !strings.Contains(body, n) {
				t.Errorf("%s.ps1 does not mention %q", op, n)
			}
		}
	}
}

// TestScriptsHaveBalancedDelimiters is a cheap syntax guard (no PowerShell
// here): braces, parentheses and brackets balance outside strings and
// comments, and every string is closed.
func TestScriptsHaveBalancedDelimiters(t *testing.T) {
	for _, op := range []Op{OpScan, OpInstall, OpReboot, OpUninstall} {
		body, err := Body(op)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkDelimiters(body); err != nil {
			t.Errorf("%s.ps1: %v", op, err)
		}
	}
}

func TestCheckDelimitersCatchesBrokenScripts(t *testing.T) {
	for _, src := range []string{
		"if ($a) { $b",
		"$x = 'open",
		"$x = \"open",
		"@(1, 2]",
		"}",
	} {
		if checkDelimiters(src) == nil {
			t.Errorf("checkDelimiters(%q) = nil, want an error", src)
		}
	}
	if err := checkDelimiters("$x = '{' # (\n$y = \"`\"}\"; @{ a = @(1) }"); err != nil {
		t.Errorf("checkDelimiters on valid text: %v", err)
	}
}

func checkDelimiters(src string) error {
	var stack []rune
	pairs := map[rune]rune{')': '(', '}': '{', ']': '['}
	line := 1
	rs := []rune(src)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == '\n':
			line++
		case c == '#':
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			line++
		case c == '\'':
			i++
			for ; i < len(rs) && rs[i] != '\''; i++ {
				if rs[i] == '\n' {
					return fmt.Errorf("line %d: single-quoted string spans lines", line)
				}
			}
			if i >= len(rs) {
				return fmt.Errorf("line %d: unterminated single-quoted string", line)
			}
		case c == '"':
			i++
			for ; i < len(rs) && rs[i] != '"'; i++ {
				if rs[i] == '`' {
					i++
				}
				if i < len(rs) && rs[i] == '\n' {
					return fmt.Errorf("line %d: double-quoted string spans lines", line)
				}
			}
			if i >= len(rs) {
				return fmt.Errorf("line %d: unterminated double-quoted string", line)
			}
		case c == '`':
			i++
		case c == '(' || c == '{' || c == '[':
			stack = append(stack, c)
		case c == ')' || c == '}' || c == ']':
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return fmt.Errorf("line %d: unbalanced %q", line, c)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		return fmt.Errorf("%d unclosed delimiters at end", len(stack))
	}
	return nil
}

func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Struct && ft.PkgPath() == t.PkgPath() {
			keys = append(keys, jsonKeys(ft)...)
		}
	}
	return keys
}
func TestOpOfReadsTheHeaderAndOnlyScanIsReadOnly(t *testing.T) {
	for _, tc := range []struct {
		script   string
		op       Op
		readOnly bool
	}{
		{"# patchway-op: scan/1\n$PatchwayParams = ...", OpScan, true},
		{"# patchway-op: install/1\r\n...", OpInstall, false},
		{"# patchway-op: reboot/1", OpReboot, false},
		{"Get-HotFix", "", false},
	} {
		if op := OpOf(tc.script); op != tc.op || op.ReadOnly() != tc.readOnly {
			t.Errorf("OpOf(%q) = %q (read-only %v), want %q (%v)", tc.script, op, op.ReadOnly(), tc.op, tc.readOnly)
		}
	}
}
