package rollout

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// Input limits. HCL's parser recurses once per nested bracket and holds the
// whole syntax tree in memory, so a file is measured before it is parsed:
// a 200 KB file nested 100,000 deep overflowed the stack and killed the
// process, and 50 MB of blocks took 68 s and 5.9 GB.
const (
	// MaxHCLFileSize bounds a rollout or HCL inventory file. A generated
	// inventory takes 333 bytes a host: 100,000 hosts are 33.3 MB and load
	// in about 22 s and 2.9 GB, which is as much as an HCL file should
	// cost. The limit leaves them a quarter to spare and refuses the 50 MB
	// of blocks that took 68 s and 5.9 GB; larger fleets are written as CSV.
	MaxHCLFileSize = 40 << 20
	// MaxCSVFileSize bounds a CSV inventory, which is read row by row and
	// costs far less a byte than HCL: about 225 bytes a host, so the limit
	// holds over two million hosts.
	MaxCSVFileSize = 512 << 20
	// MaxNesting bounds the depth of brackets, braces, parentheses and
	// template interpolations. A rollout nests blocks four deep and a value
	// two or three more; 64 is far beyond any real file and far below what
	// overflows the parser.
	MaxNesting = 64
)

// maxFileSize is the size limit of a file by its name.
func maxFileSize(filename string) int64 {
	if strings.EqualFold(filepath.Ext(filename), ".csv") {
		return MaxCSVFileSize
	}
	return MaxHCLFileSize
}

// ReadInput reads a rollout or inventory file, refusing one larger than its
// limit (MaxHCLFileSize, or MaxCSVFileSize for .csv) before reading it
// whole. what names the file in messages ("rollout", "inventory").
func ReadInput(path, what string) ([]byte, hcl.Diagnostics) {
	f, err := os.Open(path)
	if err != nil {
		return nil, readError(what, err)
	}
	defer f.Close()
	limit := maxFileSize(path)
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Size() > limit {
		return nil, tooLarge(path, what, st.Size(), limit)
	}
	// Not a regular file (a pipe), or one that grew: read one byte past the
	// limit to tell (the size then reported is a lower bound).
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, readError(what, err)
	}
	if int64(len(data)) > limit {
		return nil, tooLarge(path, what, int64(len(data)), limit)
	}
	return data, nil
}

func readError(what string, err error) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Cannot read " + what,
		Detail:   fmt.Sprintf("Reading the %s file: %v.", what, err),
	}}
}

func tooLarge(filename, what string, size, limit int64) hcl.Diagnostics {
	rng := hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "File too large",
		Detail: fmt.Sprintf("The %s file is %s (%d bytes); the limit is %s (%d bytes). Split the inventory, or write a large one as CSV, which is read row by row.",
			what, mib(size), size, mib(limit), limit),
		Subject: &rng,
	}}
}

func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// CheckInput makes the checks due before HCL parses src: its size against
// the limit of its file name, and its nesting (CheckNesting). Every
// decoder makes them; callers that parse HCL themselves must too.
func CheckInput(filename string, src []byte) hcl.Diagnostics {
	if diags := checkSize(filename, src); diags.HasErrors() {
		return diags
	}
	return CheckNesting(filename, src)
}

// checkSize refuses source bytes over the limit of their file name.
func checkSize(filename string, src []byte) hcl.Diagnostics {
	if limit := maxFileSize(filename); int64(len(src)) > limit {
		return tooLarge(filename, "input", int64(len(src)), limit)
	}
	return nil
}

// CheckNesting scans HCL source for brackets, braces, parentheses and
// template interpolations nested deeper than MaxNesting, outside comments
// and string and heredoc text, so that HCL's recursive parser never sees
// such a file. It returns one error at the bracket that went too deep. The
// scan is linear and allocates only its stack; it does not validate
// syntax (the parser does), and a file it misreads is at worst parsed.
func CheckNesting(filename string, src []byte) hcl.Diagnostics {
	// Each stack entry is what the scanner is inside: a bracket of code
	// ('{', '[', '('), an interpolation ('$', code until its '}'), a quoted
	// string ('"') or a heredoc ('<', with its marker in markers).
	var stack []byte
	var markers []string
	depth := 0 // brackets and interpolations on the stack
	top := func() byte {
		if len(stack) == 0 {
			return 0
		}
		return stack[len(stack)-1]
	}
	pop := func() {
		switch stack[len(stack)-1] {
		case '{', '[', '(', '$':
			depth--
		case '<':
			markers = markers[:len(markers)-1]
		}
		stack = stack[:len(stack)-1]
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch top() {
		case '"':
			switch {
			case c == '\\':
				i++
			case c == '"' || c == '\n':
				pop()
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				i++
				stack = append(stack, '$')
				if depth++; depth > MaxNesting {
					return tooDeep(filename, src, i-1)
				}
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == c:
				i++ // $${ and %%{ are escapes
			}
			continue
		case '<':
			if i == 0 || src[i-1] == '\n' {
				end := bytes.IndexByte(src[i:], '\n')
				if end < 0 {
					end = len(src) - i
				}
				if string(bytes.TrimSpace(src[i:i+end])) == markers[len(markers)-1] {
					pop()
					i += end
					continue
				}
			}
			switch {
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == '{':
				i++
				stack = append(stack, '$')
				if depth++; depth > MaxNesting {
					return tooDeep(filename, src, i-1)
				}
			case (c == '$' || c == '%') && i+1 < len(src) && src[i+1] == c:
				i++
			}
			continue
		}
		// Code.
		switch c {
		case '#':
			i = skipLine(src, i)
		case '/':
			if i+1 < len(src) && src[i+1] == '/' {
				i = skipLine(src, i)
			} else if i+1 < len(src) && src[i+1] == '*' {
				if end := bytes.Index(src[i+2:], []byte("*/")); end >= 0 {
					i += 2 + end + 1
				} else {
					i = len(src)
				}
			}
		case '"':
			stack = append(stack, '"')
		case '<':
			if m, ok := heredocMarker(src[i:]); ok {
				stack = append(stack, '<')
				markers = append(markers, m)
				i = skipLine(src, i)
			}
		case '{', '[', '(':
			stack = append(stack, c)
			if depth++; depth > MaxNesting {
				return tooDeep(filename, src, i)
			}
		case '}', ']', ')':
			if t := top(); t == '{' || t == '[' || t == '(' || t == '$' {
				pop()
			}
		}
	}
	return nil
}

// skipLine returns the index of the newline ending the line at i (or the
// end of src).
func skipLine(src []byte, i int) int {
	if end := bytes.IndexByte(src[i:], '\n'); end >= 0 {
		return i + end
	}
	return len(src)
}

// heredocMarker reads the marker of a heredoc opening at the start of b
// ("<<EOT" or "<<-EOT", then the end of the line).
func heredocMarker(b []byte) (string, bool) {
	if !bytes.HasPrefix(b, []byte("<<")) {
		return "", false
	}
	b = b[2:]
	b = bytes.TrimPrefix(b, []byte("-"))
	n := 0
	for n < len(b) && (b[n] == '_' || b[n] == '-' || b[n] >= '0' && b[n] <= '9' || b[n] >= 'a' && b[n] <= 'z' || b[n] >= 'A' && b[n] <= 'Z') {
		n++
	}
	if n == 0 {
		return "", false
	}
	rest := b[n:]
	if len(rest) > 0 && rest[0] == '\r' {
		rest = rest[1:]
	}
	if len(rest) > 0 && rest[0] != '\n' {
		return "", false
	}
	return string(b[:n]), true
}

// tooDeep is the diagnostic at the bracket at offset off.
func tooDeep(filename string, src []byte, off int) hcl.Diagnostics {
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	lineStart := bytes.LastIndexByte(src[:off], '\n') + 1
	col := 1 + utf8.RuneCount(src[lineStart:off])
	width := 1
	if src[off] == '$' || src[off] == '%' {
		width = 2
	}
	rng := hcl.Range{
		Filename: filename,
		Start:    hcl.Pos{Line: line, Column: col, Byte: off},
		End:      hcl.Pos{Line: line, Column: col + width, Byte: off + width},
	}
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  "Nested too deep",
		Detail: fmt.Sprintf("This bracket opens level %d of nesting; the limit is %d. Rollout and inventory files nest blocks a few levels deep; a file nested this deep is not one, and is refused before it is parsed.",
			MaxNesting+1, MaxNesting),
		Subject: &rng,
	}}
}
