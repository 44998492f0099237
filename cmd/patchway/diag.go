package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
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

// maxTextDiagnostics bounds how many diagnostics writeDiagnostics prints: a
// generated or corrupt file can hold thousands, which no one reads on a
// terminal. --json prints them all.
const maxTextDiagnostics = 50

// writeDiagnostics prints diagnostics the way HCL tools do: a
// file:line:col heading an editor can jump to, then HCL's own diagnostic
// layout with the summary, the source line and a caret under the problem,
// and the detail. files holds the contents of the files read. It prints
// the first maxTextDiagnostics and counts the rest.
//
// The source lines are cut from a line index built once per file: HCL's
// writer scans its file from the first byte, grapheme by grapheme, for
// every diagnostic, which made 2,000 diagnostics of one file take over a
// minute.
func writeDiagnostics(w io.Writer, files map[string][]byte, diags hcl.Diagnostics) error {
	color := false
	if f, ok := w.(*os.File); ok && os.Getenv("NO_COLOR") == "" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			color = true
		}
	}
	lines := map[string]*lineIndex{}
	shown := diags
	if len(shown) > maxTextDiagnostics {
		shown = shown[:maxTextDiagnostics]
	}
	for _, d := range shown {
		var buf bytes.Buffer
		if d.Subject != nil {
			fmt.Fprintf(&buf, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		src, haveSrc := []byte(nil), false
		if d.Subject != nil {
			src = files[d.Subject.Filename]
			haveSrc = src != nil
		}
		if !haveSrc || d.EvalContext != nil {
			// No source to show (HCL says so), or variables to print with
			// it: HCL's writer does it all.
			hclFiles := map[string]*hcl.File{}
			if haveSrc {
				hclFiles[d.Subject.Filename] = &hcl.File{Bytes: src}
			}
			if err := hcl.NewDiagnosticTextWriter(&buf, hclFiles, diagWidth, color).WriteDiagnostic(d); err != nil {
				return fmt.Errorf("write diagnostics: %w", err)
			}
		} else {
			li := lines[d.Subject.Filename]
			if li == nil {
				li = newLineIndex(src)
				lines[d.Subject.Filename] = li
			}
			if err := writeDiagnosticText(&buf, d, src, li, color); err != nil {
				return err
			}
		}
		text := buf.String()
		if !color && d.Subject != nil {
			// Without colour HCL's layout cannot underline the subject:
			// put a caret line under it instead.
			text = addCaret(text, *d.Subject, files[d.Subject.Filename])
		}
		if _, err := io.WriteString(w, text); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	if more := len(diags) - len(shown); more > 0 {
		errs, warns := diagnosticCounts(diags[len(shown):])
		if _, err := fmt.Fprintf(w, "... and %d more (%s; use --json for all)\n\n", more, strings.TrimSuffix(strings.TrimPrefix(countsSuffix(errs, warns), " ("), ")")); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
}

// writeDiagnosticText writes d as HCL's diagnostic writer does (summary,
// "on FILE line N:", the lines of the subject and context with the subject
// highlighted when in colour, the detail wrapped), taking the lines from li.
func writeDiagnosticText(buf *bytes.Buffer, d *hcl.Diagnostic, src []byte, li *lineIndex, color bool) error {
	// HCL's writer prints the summary and the wrapped detail; the snippet
	// goes between them.
	var head bytes.Buffer
	plain := *d
	plain.Subject, plain.Context, plain.Expression, plain.EvalContext = nil, nil, nil, nil
	if err := hcl.NewDiagnosticTextWriter(&head, nil, diagWidth, color).WriteDiagnostic(&plain); err != nil {
		return fmt.Errorf("write diagnostics: %w", err)
	}
	text := head.String()
	cut := strings.Index(text, "\n\n") + 2
	buf.WriteString(text[:cut])

	snip, hl := *d.Subject, *d.Subject
	if d.Context != nil {
		snip = hcl.RangeOver(snip, *d.Context)
	}
	if snip.Empty() {
		snip.End.Byte++
	}
	if hl.Empty() {
		hl.End.Byte++
	}
	var hlOn, hlOff string
	if color {
		hlOn, hlOff = "\x1b[1;4m", "\x1b[0m"
	}
	fmt.Fprintf(buf, "  on %s line %d:\n", d.Subject.Filename, d.Subject.Start.Line)
	for n := li.lineOf(snip.Start.Byte); n <= li.lineOf(snip.End.Byte) && n < len(li.starts); n++ {
		start, end := li.line(n)
		if !overlaps(start, end, snip.Start.Byte, snip.End.Byte) {
			continue
		}
		line := src[start:end]
		a, b := min(max(hl.Start.Byte, start), end), max(min(hl.End.Byte, end), start)
		if a >= b {
			fmt.Fprintf(buf, "%4d: %s\n", n+1, line)
		} else {
			fmt.Fprintf(buf, "%4d: %s%s%s%s%s\n", n+1, src[start:a], hlOn, src[a:b], hlOff, src[b:end])
		}
	}
	buf.WriteByte('\n')
	buf.WriteString(text[cut:])
	return nil
}

// overlaps is hcl.Range.Overlaps on byte offsets: which lines HCL's writer
// prints for a snippet.
func overlaps(s, e, a, b int) bool {
	in := func(off, from, to int) bool { return off >= from && off < to }
	switch {
	case s == e || a == b:
		return false
	default:
		return in(a, s, e) || in(b, s, e) || in(s, a, b) || in(e, a, b)
	}
}

// lineIndex holds the byte offset of each line of a file.
type lineIndex struct {
	src    []byte
	starts []int
}

func newLineIndex(src []byte) *lineIndex {
	li := &lineIndex{src: src, starts: []int{0}}
	for i, c := range src {
		if c == '\n' && i+1 < len(src) {
			li.starts = append(li.starts, i+1)
		}
	}
	return li
}

// lineOf is the 0-based line holding byte off.
func (li *lineIndex) lineOf(off int) int {
	n, _ := slices.BinarySearch(li.starts, off+1)
	return max(n-1, 0)
}

// line is line n's bytes without its newline (and carriage return), as
// bufio.ScanLines gives them.
func (li *lineIndex) line(n int) (start, end int) {
	start = li.starts[n]
	end = len(li.src)
	if n+1 < len(li.starts) {
		end = li.starts[n+1] - 1
	} else if end > start && li.src[end-1] == '\n' {
		end--
	}
	if end > start && li.src[end-1] == '\r' {
		end--
	}
	return start, end
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
