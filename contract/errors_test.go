package contract

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestErrorTypesAreNamedAfterTheirValues keeps the list of error types
// readable: a constant's name is the string a history, a retry policy or
// a receiver sees.
func TestErrorTypesAreNamedAfterTheirValues(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST || g.Doc == nil || !strings.HasPrefix(g.Doc.Text(), "Error types:") {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			lit, ok := vs.Values[0].(*ast.BasicLit)
			if !ok {
				t.Errorf("%s is not a string literal", vs.Names[0].Name)
				continue
			}
			if v, _ := strconv.Unquote(lit.Value); v != vs.Names[0].Name {
				t.Errorf("error type %s = %q: name it after its value", vs.Names[0].Name, v)
			}
			n++
		}
	}
	if n == 0 {
		t.Fatal(`no const block documented "Error types:" in errors.go`)
	}
}
