package hostscript

import (
	"embed"
	"fmt"
)

// scripts holds the PowerShell bodies, one per operation, each starting
// with its own header line for readers (Render strips it).
//
//go:embed scripts/*.ps1
var scripts embed.FS

// MaxScriptBytes bounds a rendered script. Scripts travel on stdin, so the
// bound is not cmd.exe's 8191 characters but a sanity limit: a script this
// large means a parameter list ran away (thousands of verification files).
const MaxScriptBytes = 256 << 10

// Body returns the embedded .ps1 source of op, header line included.
func Body(op Op) (string, error) {
	switch op {
	case OpScan, OpInstall, OpReboot, OpUninstall:
	default:
		return "", fmt.Errorf("no script for operation %q", op)
	}
	b, err := scripts.ReadFile("scripts/" + string(op) + ".ps1")
	if err != nil {
		return "", fmt.Errorf("read embedded %s script: %w", op, err)
	}
	return string(b), nil
}

// Script renders the complete script for op with params (the operation's
// Params type): header, parameter block, body. It is what a runner sends on
// stdin and what the simulated fleet recognises with Parse.
func Script(op Op, params any) (string, error) {
	body, err := Body(op)
	if err != nil {
		return "", err
	}
	s, err := Render(op, params, body)
	if err != nil {
		return "", err
	}
	if len(s) > MaxScriptBytes {
		return "", fmt.Errorf("%s script is %d bytes, over the %d-byte limit: too many parameters", op, len(s), MaxScriptBytes)
	}
	return s, nil
}
