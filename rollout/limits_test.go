package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

// deepRollout is a file nested 100,000 deep: HCL's parser overflowed the
// stack on such a file and took the whole process down. The tests decode it
// in the test binary, which must survive.
func deepRollout(open, close string) []byte {
	return []byte("rollout \"deep\" {\n  x = " + strings.Repeat(open, 100000) + "1" + strings.Repeat(close, 100000) + "\n}\n")
}

func positioned(diags hcl.Diagnostics) []string {
	var out []string
	for _, d := range diags {
		if d.Subject == nil {
			out = append(out, d.Summary)
			continue
		}
		out = append(out, fmt.Sprintf("%s:%d:%d %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Summary))
	}
	return out
}

func TestDeepNestingIsADiagnosticNotACrash(t *testing.T) {
	// The column of the opening that reaches level 65: line 2 is "  x = "
	// then the openings; the rollout block's brace is level 1.
	for _, tc := range []struct {
		name, open, close string
		col               int
	}{
		{"tuple", "[", "]", 7 + 63},
		{"object", "{a=", "}", 7 + 63*3},
		{"parens", "(", ")", 7 + 63},
		{"interpolation", `"${`, `}"`, 7 + 63*3 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := deepRollout(tc.open, tc.close)
			want := fmt.Sprintf("deep.hcl:2:%d Nested too deep", tc.col)
			_, diags := DecodeRollout("deep.hcl", src)
			if got := positioned(diags); len(got) != 1 || got[0] != want {
				t.Fatalf("rollout diagnostics %v, want [%s]", got, want)
			}
			_, diags = DecodeInventory("deep.hcl", src)
			if got := positioned(diags); len(got) != 1 || got[0] != want {
				t.Fatalf("inventory diagnostics %v, want [%s]", got, want)
			}
		})
	}
}

func TestNestingInsideTextIsNotCounted(t *testing.T) {
	deep := strings.Repeat("{[(", 100)
	src := "# " + deep + "\n// " + deep + "\n/* " + deep + " */\n" +
		"rollout \"r\" {\n  a = \"" + deep + "\"\n  b = \"$${" + deep + "\"\n  c = <<EOT\n" + deep + "\nEOT\n  d = <<-X\n    " + deep + "\n    X\n  e = [[[\"${[[1]]}\"]]]\n}\n"
	if diags := CheckNesting("text.hcl", []byte(src)); diags.HasErrors() {
		t.Fatalf("brackets in comments, strings and heredocs counted: %v", diags)
	}
	ok := "x = " + strings.Repeat("[", MaxNesting) + strings.Repeat("]", MaxNesting) + "\n"
	if diags := CheckNesting("ok.hcl", []byte(ok)); diags.HasErrors() {
		t.Fatalf("%d levels refused: %v", MaxNesting, diags)
	}
}

func TestOversizedFileIsRefusedBeforeParsing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.hcl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse file: its size is over the limit without writing it.
	if err := f.Truncate(MaxHCLFileSize + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for name, diags := range map[string]hcl.Diagnostics{
		"rollout":   func() hcl.Diagnostics { _, d := LoadSource(path, LoadOptions{}); return d }(),
		"inventory": func() hcl.Diagnostics { _, d := LoadInventory(path); return d }(),
	} {
		got := positioned(diags)
		if len(got) != 1 || got[0] != path+":1:1 File too large" {
			t.Fatalf("%s: diagnostics %v, want one File too large at 1:1", name, got)
		}
		detail := diags[0].Detail
		for _, want := range []string{
			fmt.Sprintf("40.0 MiB (%d bytes)", MaxHCLFileSize+1),
			fmt.Sprintf("the limit is 40.0 MiB (%d bytes)", MaxHCLFileSize),
		} {
			if !strings.Contains(detail, want) {
				t.Errorf("%s: detail %q lacks %q", name, detail, want)
			}
		}
	}
	big := make([]byte, MaxHCLFileSize+1)
	if _, diags := DecodeRollout("big.hcl", big); len(diags) != 1 || diags[0].Summary != "File too large" {
		t.Fatalf("DecodeRollout of %d bytes: %v", len(big), diags)
	}
}
