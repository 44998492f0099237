package main

import (
	"fmt"
	"os"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

func main() {
	for _, p := range os.Args[1:] {
		b, _ := os.ReadFile(p)
		out, err := format.SourceWithOpts(p, b, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			fmt.Println(err)
			continue
		}
		if string(out) != string(b) {
			fmt.Println("formatted", p)
			os.WriteFile(p, out, 0o644)
		}
	}
}
