package hostscript

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// composedScriptsDir names the environment variable that asks
// TestWriteComposedScripts to write the scripts out; make psparse sets it.
const composedScriptsDir = "PATCHWAY_PSPARSE_OUT"

// TestWriteComposedScripts writes what PowerShell on a host actually
// parses into $PATCHWAY_PSPARSE_OUT, for make psparse to run through the
// tree-sitter PowerShell grammar: each operation's rendered script (header,
// parameter here-string, body), the same with parameters that would break
// a careless here-string, and the -EncodedCommand bootstrap as the command
// line carries it. Without the variable it is skipped.
func TestWriteComposedScripts(t *testing.T) {
	dir := os.Getenv(composedScriptsDir)
	if dir == "" {
		t.Skip(composedScriptsDir + " is not set (make psparse sets it)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Text that would end or escape the parameter here-string if the JSON
	// ever spanned lines or were expanded: a line-leading '@, "@, $( ),
	// backticks and quotes.
	hostile := "x\n'@\n\"@\n$(Remove-Item C:\\) `n ' \""
	scripts := []struct {
		name   string
		op     Op
		params any
	}{
		{"scan", OpScan, ScanParams{KB: "KB958644", Files: []FileCheck{{Path: `%SystemRoot%\System32\netapi32.dll`}}}},
		{"scan-boot-poll", OpScan, ScanParams{}},
		{"install", OpInstall, InstallParams{RolloutID: "ms08-067", KB: "KB958644", Source: `\\dp\patches\kb958644.msu`, SHA256: strings.Repeat("ab", 32), Type: "msu"}},
		{"reboot", OpReboot, RebootParams{RolloutID: "ms08-067", DelaySeconds: 30}},
		{"uninstall", OpUninstall, UninstallParams{RolloutID: "ms08-067", KB: "KB958644"}},
		{"scan-hostile-params", OpScan, ScanParams{KB: hostile, Files: []FileCheck{{Path: hostile}}}},
		{"install-hostile-params", OpInstall, InstallParams{RolloutID: hostile, KB: hostile, Source: hostile, SHA256: hostile, Type: hostile}},
		{"reboot-hostile-params", OpReboot, RebootParams{RolloutID: hostile}},
		{"uninstall-hostile-params", OpUninstall, UninstallParams{RolloutID: hostile, KB: hostile}},
	}
	for _, s := range scripts {
		text, err := Script(s.op, s.params)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		writeComposed(t, filepath.Join(dir, s.name+".ps1"), text)
	}
	// The bootstrap as the command line encodes it, decoded back: the
	// text powershell.exe parses before it reads the script from stdin.
	cmd := CommandLine()
	encoded := cmd[strings.LastIndex(cmd, " ")+1:]
	bootstrap, err := DecodeCommand(encoded)
	if err != nil {
		t.Fatalf("decode the command line's -EncodedCommand: %v", err)
	}
	if bootstrap != Bootstrap {
		t.Fatalf("command line encodes %q, want Bootstrap %q", bootstrap, Bootstrap)
	}
	writeComposed(t, filepath.Join(dir, "bootstrap.ps1"), bootstrap+"\n")
}

func writeComposed(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
