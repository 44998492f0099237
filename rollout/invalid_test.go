package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// wantPattern is the expectation each file under testdata/invalid carries:
// `# want: LINE:COLUMN Summary`.
var wantPattern = regexp.MustCompile(`(?m)^# want: (\d+):(\d+) (.+)$`)

// rolloutBlock tells a rollout file from an inventory.
var rolloutBlock = regexp.MustCompile(`(?m)^rollout "`)

// loadAny loads a file as validate would: a rollout (with its inventory)
// or an inventory.
func loadAny(t *testing.T, path string) hcl.Diagnostics {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if rolloutBlock.Match(src) {
		_, diags := LoadSource(path, LoadOptions{})
		return diags
	}
	_, diags := LoadInventory(path)
	return diags
}

func TestInvalidFilesReportTheirProblemAtItsPosition(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 30 {
		t.Fatalf("found %d invalid files, want at least 30", len(files))
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			m := wantPattern.FindSubmatch(src)
			if m == nil {
				t.Fatalf("%s has no `# want: LINE:COL Summary` line", path)
			}
			want := fmt.Sprintf("%s:%s %s", m[1], m[2], m[3])
			diags := loadAny(t, path)
			if !diags.HasErrors() {
				t.Fatalf("no error; diagnostics: %v", diags)
			}
			var got []string
			for _, d := range diags {
				if d.Severity != hcl.DiagError || d.Subject == nil {
					continue
				}
				g := fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
				if g == want {
					return
				}
				got = append(got, g)
			}
			t.Errorf("want an error %q; got:\n  %s", want, strings.Join(got, "\n  "))
		})
	}
}

func TestValidFileHasNoDiagnostics(t *testing.T) {
	diags := loadAny(t, filepath.Join("testdata", "valid.hcl"))
	if len(diags) != 0 {
		t.Errorf("diagnostics on a valid rollout: %v", diags)
	}
}

func TestExamplesHaveNoErrors(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "examples", "*.hcl"))
	csvs, _ := filepath.Glob(filepath.Join("..", "examples", "*.csv"))
	files = append(files, csvs...)
	n := 0
	for _, path := range files {
		if strings.HasPrefix(filepath.Base(path), "fleet-") {
			continue // simulated fleet scenarios: another file kind
		}
		if src, err := os.ReadFile(path); err == nil {
			if kind, _ := DetectKind(path, src); kind == KindTemplate {
				continue // a draft template: checked in the rollouts drafted from it
			}
		}
		n++
		if diags := loadAny(t, path); diags.HasErrors() {
			t.Errorf("%s: %v", path, diags.Errs())
		}
	}
	if n < 5 {
		t.Errorf("checked %d example files, want the three rollouts and both inventories", n)
	}
}
