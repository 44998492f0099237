package hostscript

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestInstallExitOutcomeIsTheScriptsSwitch reads install.ps1's switch
// over the installer's exit code and holds InstallExitOutcome, which the
// simulated fleet plays, to every case of it and to its default.
func TestInstallExitOutcomeIsTheScriptsSwitch(t *testing.T) {
	src, err := Body(OpInstall)
	if err != nil {
		t.Fatal(err)
	}
	cases := regexp.MustCompile(`(?m)^\s*(\d+) \{ Write-PatchwayResult '(\w+)' \$code \$(true|false) '([^']*)'`).FindAllStringSubmatch(src, -1)
	if len(cases) < 5 {
		t.Fatalf("found %d exit-code cases in install.ps1, want at least 5: has its switch changed shape?", len(cases))
	}
	for _, c := range cases {
		code, _ := strconv.ParseInt(c[1], 10, 64)
		outcome, reboot, msg := InstallExitOutcome(code)
		if outcome != c[2] || fmt.Sprint(reboot) != c[3] || msg != c[4] {
			t.Errorf("exit code %d: InstallExitOutcome = (%q, %v, %q), install.ps1 says (%q, %s, %q)", code, outcome, reboot, msg, c[2], c[3], c[4])
		}
	}
	def := regexp.MustCompile(`(?m)^\s*default \{ Write-PatchwayResult '(\w+)' \$code \$false \('([^']*)' -f \$code\)`).FindStringSubmatch(src)
	if def == nil {
		t.Fatal("install.ps1 has no default case of the expected shape")
	}
	for _, code := range []int64{1, 1603, 2147944003, 2149842970} {
		outcome, reboot, msg := InstallExitOutcome(code)
		want := strings.NewReplacer("{0}", strconv.FormatInt(code, 10), "{0:X8}", fmt.Sprintf("%08X", code)).Replace(def[2])
		if outcome != def[1] || reboot || msg != want {
			t.Errorf("exit code %d: InstallExitOutcome = (%q, %v, %q), install.ps1's default says (%q, false, %q)", code, outcome, reboot, msg, def[1], want)
		}
	}
}
