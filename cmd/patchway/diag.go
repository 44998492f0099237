package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

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
	dw := hcl.NewDiagnosticTextWriter(w, hclFiles, diagWidth, color)
	for _, d := range diags {
		if d.Subject != nil {
			if _, err := fmt.Fprintf(w, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column); err != nil {
				return fmt.Errorf("write diagnostics: %w", err)
			}
		}
		if err := dw.WriteDiagnostic(d); err != nil {
			return fmt.Errorf("write diagnostics: %w", err)
		}
	}
	return nil
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
