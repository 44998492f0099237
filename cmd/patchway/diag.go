package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// diagWidth wraps diagnostic details for a terminal.
const diagWidth = 100

// diagnosticJSON is one diagnostic as `--json` prints it. Line and column
// are 1-based, and 0 when a problem has no position (an unreadable file).
type diagnosticJSON struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
}

// diagnosticsJSON converts diagnostics; fallback names the file of those
// without a position.
func diagnosticsJSON(diags hcl.Diagnostics, fallback string) []diagnosticJSON {
	out := make([]diagnosticJSON, 0, len(diags))
	for _, d := range diags {
		j := diagnosticJSON{File: fallback, Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if d.Subject != nil {
			j.File, j.Line, j.Column = d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column
		}
		out = append(out, j)
	}
	return out
}

// writeDiagnosticsJSON prints diagnostics as a JSON array (never null).
func writeDiagnosticsJSON(w io.Writer, diags []diagnosticJSON) error {
	if diags == nil {
		diags = []diagnosticJSON{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(diags); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	return nil
}

// writeDiagnostics prints diagnostics the way HCL tools do: a
// file:line:col heading an editor can jump to, then HCL's own diagnostic
// writer with the summary, the source line and a caret under the problem,
// and the detail. files holds the contents of the files read.
func writeDiagnostics(w io.Writer, files map[string][]byte, diags hcl.Diagnostics) error {
	hclFiles := make(map[string]*hcl.File, len(files))
	for name, src := range files {
		hclFiles[name] = &hcl.File{Bytes: src}
	}
	color := false
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			color = true
		}
	}
	for _, d := range diags {
		var buf bytes.Buffer
		if d.Subject != nil {
			fmt.Fprintf(&buf, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if err := hcl.NewDiagnosticTextWriter(&buf, hclFiles, diagWidth, color).WriteDiagnostic(d); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
		text := buf.String()
		if !color && d.Subject != nil {
			// Without colour HCL's writer cannot underline the subject:
			// put a caret line under it instead.
			text = addCaret(text, *d.Subject, files[d.Subject.Filename])
		}
		if _, err := io.WriteString(w, text); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
}

// addCaret inserts, under the source line HCL's writer printed for the
// subject's first line, a line of carets under the subject.
func addCaret(text string, subject hcl.Range, src []byte) string {
	if src == nil || subject.Start.Byte > len(src) {
		return text
	}
	lineStart := bytes.LastIndexByte(src[:subject.Start.Byte], '\n') + 1
	lineEnd := len(src)
	if i := bytes.IndexByte(src[subject.Start.Byte:], '\n'); i >= 0 {
		lineEnd = subject.Start.Byte + i
	}
	end := min(max(subject.End.Byte, subject.Start.Byte+1), lineEnd)
	var caret strings.Builder
	caret.WriteString("      ") // HCL's "%4d: " line-number gutter
	for _, r := range string(src[lineStart:subject.Start.Byte]) {
		if r == '\t' {
			caret.WriteByte('\t')
		} else {
			caret.WriteByte(' ')
		}
	}
	caret.WriteString(strings.Repeat("^", max(utf8.RuneCount(src[subject.Start.Byte:max(end, subject.Start.Byte)]), 1)))
	marker := fmt.Sprintf("%4d: ", subject.Start.Line)
	at := strings.Index(text, "\n"+marker)
	if at < 0 {
		return text
	}
	eol := strings.IndexByte(text[at+1:], '\n')
	if eol < 0 {
		return text
	}
	insert := at + 1 + eol + 1
	return text[:insert] + strings.TrimRight(caret.String(), " ") + "\n" + text[insert:]
}

// diagnosticCounts counts errors and warnings.
func diagnosticCounts(diags hcl.Diagnostics) (errs, warns int) {
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// sortedCounts orders a count map by count (largest first), then name.
func sortedCounts(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}
