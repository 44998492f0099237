package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/patchway/patchway/rollout"
)

// manyErrors is a rollout with n unsupported arguments, so n diagnostics
// spread over a file that grows with n.
func manyErrors(n int) (map[string][]byte, hcl.Diagnostics) {
	var b strings.Builder
	b.WriteString("rollout \"many\" {\n")
	for i := range n {
		fmt.Fprintf(&b, "  bogus_%d = \"value %d, long enough to look like a real line of a rollout\"\n", i, i)
	}
	b.WriteString("}\n")
	src := []byte(b.String())
	_, diags := rollout.DecodeRollout("many.hcl", src)
	return map[string][]byte{"many.hcl": src}, diags
}

func BenchmarkWriteDiagnostics(b *testing.B) {
	for _, n := range []int{500, 2000} {
		files, diags := manyErrors(n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				var out bytes.Buffer
				if err := writeDiagnostics(&out, files, diags); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Every diagnostic, with no bound: linear in their number.
		b.Run(fmt.Sprintf("%d-all", n), func(b *testing.B) {
			src := files["many.hcl"]
			for b.Loop() {
				var out bytes.Buffer
				li := newLineIndex(src)
				for _, d := range diags {
					if err := writeDiagnosticText(&out, d, src, li, false); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// hclText is HCL's own writer on d, the layout writeDiagnosticText copies.
func hclText(t *testing.T, d *hcl.Diagnostic, src []byte, color bool) string {
	t.Helper()
	var buf bytes.Buffer
	files := map[string]*hcl.File{d.Subject.Filename: {Bytes: src}}
	if err := hcl.NewDiagnosticTextWriter(&buf, files, diagWidth, color).WriteDiagnostic(d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestDiagnosticTextIsHCLs(t *testing.T) {
	paths, _ := filepath.Glob("../../rollout/testdata/invalid/*")
	if len(paths) < 30 {
		t.Fatalf("found %d invalid files", len(paths))
	}
	checked := 0
	for _, path := range paths {
		var diags hcl.Diagnostics
		if strings.HasSuffix(path, ".csv") {
			_, diags = rollout.LoadInventory(path)
		} else if _, d := rollout.LoadSource(path, rollout.LoadOptions{}); d != nil {
			diags = d
		}
		for _, d := range diags {
			if d.Subject == nil || d.EvalContext != nil {
				continue
			}
			src, err := os.ReadFile(d.Subject.Filename)
			if err != nil {
				t.Fatal(err)
			}
			li := newLineIndex(src)
			for _, color := range []bool{false, true} {
				var got bytes.Buffer
				if err := writeDiagnosticText(&got, d, src, li, color); err != nil {
					t.Fatal(err)
				}
				if want := hclText(t, d, src, color); got.String() != want {
					t.Errorf("%s (colour %v):\ngot\n%s\nwant (HCL's writer)\n%s", path, color, got.String(), want)
				}
			}
			checked++
		}
	}
	// A subject spanning lines, one ending at a line's start, one at a
	// newline, one past the end: HCL's choice of lines is kept.
	src := []byte("a = 1\n\nb = [\n  2,\n]\nc\r\nd")
	for _, r := range [][2]int{{0, 5}, {0, 6}, {5, 6}, {8, 21}, {8, 22}, {22, 24}, {25, 26}, {26, 26}, {30, 31}} {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "S", Detail: "D", Subject: &hcl.Range{Filename: "x.hcl",
			Start: hcl.Pos{Line: 1, Column: 1, Byte: r[0]}, End: hcl.Pos{Line: 1, Column: 1, Byte: r[1]}}}
		var got bytes.Buffer
		if err := writeDiagnosticText(&got, d, src, newLineIndex(src), true); err != nil {
			t.Fatal(err)
		}
		if want := hclText(t, d, src, true); got.String() != want {
			t.Errorf("bytes %v:\ngot\n%q\nwant (HCL's writer)\n%q", r, got.String(), want)
		}
		checked++
	}
	if checked < 40 {
		t.Fatalf("compared %d diagnostics", checked)
	}
}

// TestThousandsOfDiagnosticsPrintBounded: 2,000 diagnostics of one file
// took 65 s to print (HCL's writer rescans the file for each), against
// 0.3 s with --json. The text output now shows maxTextDiagnostics and
// counts the rest.
func TestThousandsOfDiagnosticsPrintBounded(t *testing.T) {
	files, diags := manyErrors(2000)
	if len(diags) < 2000 {
		t.Fatalf("%d diagnostics, want at least 2000", len(diags))
	}
	more := len(diags) - maxTextDiagnostics
	var out bytes.Buffer
	if err := writeDiagnostics(&out, files, diags); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if n := strings.Count(text, ": Error: "); n != maxTextDiagnostics {
		t.Errorf("printed %d diagnostics, want %d", n, maxTextDiagnostics)
	}
	if want := fmt.Sprintf("... and %d more (%d errors; use --json for all)\n", more, more); !strings.HasSuffix(text, want+"\n") {
		t.Errorf("output ends %q, want %q", text[max(len(text)-200, 0):], want)
	}
	last := diags[maxTextDiagnostics-1].Subject.Start
	next := diags[maxTextDiagnostics].Subject.Start
	if !strings.Contains(text, fmt.Sprintf("many.hcl:%d:%d: ", last.Line, last.Column)) || strings.Contains(text, fmt.Sprintf("many.hcl:%d:%d: ", next.Line, next.Column)) {
		t.Errorf("the first %d diagnostics are not the ones printed", maxTextDiagnostics)
	}
}
