package activities

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/patchway/patchway/hostscript"
)

// wsmanOps are the operations validateReply knows, indexed by the fuzz
// input's first argument.
var wsmanOps = []string{"Create", "Command", "Send", "Receive", "Signal", "Delete", ""}

// FuzzWSManReply feeds arbitrary reply bodies to validateReply, and every
// body it accepts to masterzen/winrm's own parser for the operation: an
// accepted reply must parse without panic or error, and a ReceiveResponse
// must yield exactly the output validateReply counted (the output bound
// relies on that count).
func FuzzWSManReply(f *testing.F) {
	shellNS := "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	f.Add(uint8(0), []byte(fmt.Sprintf(envelope, "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
		`<x:ResourceCreated><a:ReferenceParameters><w:SelectorSet><w:Selector Name="ShellId">SHELL-1</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>`)))
	f.Add(uint8(1), []byte(fmt.Sprintf(envelope, shellNS+"/CommandResponse", `<rsp:CommandResponse><rsp:CommandId>CMD-1</rsp:CommandId></rsp:CommandResponse>`)))
	f.Add(uint8(2), []byte(fmt.Sprintf(envelope, shellNS+"/SendResponse", `<rsp:SendResponse/>`)))
	f.Add(uint8(3), []byte(receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C">eyJhIjoxfQ==</rsp:Stream><rsp:Stream Name="stderr" CommandId="C">ZXJy</rsp:Stream><rsp:Stream Name="stdout" CommandId="C" End="true"></rsp:Stream><rsp:CommandState CommandId="C" State="`+stateDone+`"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`)))
	f.Add(uint8(3), []byte(`<?xml version="1.0" encoding="utf-8"?>`+receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout"><![CDATA[e30=]]></rsp:Stream></rsp:ReceiveResponse>`)))
	f.Add(uint8(4), []byte(fmt.Sprintf(envelope, shellNS+"/SignalResponse", `<rsp:SignalResponse/>`)))
	f.Add(uint8(5), []byte(fmt.Sprintf(envelope, "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", ``)))
	for _, body := range []string{"&", "", "<<", "\x00", `<html/>`} {
		f.Add(uint8(3), []byte(body))
	}
	f.Fuzz(func(t *testing.T, opIndex uint8, raw []byte) {
		op := wsmanOps[int(opIndex)%len(wsmanOps)]
		info, err := validateReply(op, raw)
		if err != nil {
			return
		}
		reply := string(raw)
		switch op {
		case "Create":
			id, err := winrm.ParseOpenShellResponse(reply)
			if err != nil || id == "" {
				t.Fatalf("accepted Create reply: shell id %q, error %v", id, err)
			}
		case "Command":
			id, err := winrm.ParseExecuteCommandResponse(reply)
			if err != nil || id == "" {
				t.Fatalf("accepted Command reply: command id %q, error %v", id, err)
			}
		case "Receive":
			var stdout, stderr bytes.Buffer
			done, _, err := winrm.ParseSlurpOutputErrResponse(reply, &stdout, &stderr)
			if err != nil {
				t.Fatalf("accepted Receive reply fails to parse: %v", err)
			}
			if n := stdout.Len() + stderr.Len(); n != info.output {
				t.Fatalf("library decoded %d bytes of output, validateReply counted %d", n, info.output)
			}
			if done != info.done {
				t.Fatalf("library says done=%v, validateReply %v", done, info.done)
			}
		}
	})
}

// FuzzHostScriptOutput feeds arbitrary stdout to decodeOne, the parser of
// the one JSON object each host script prints, for every result type: it
// must never panic, and what it accepts must encode and decode again.
func FuzzHostScriptOutput(f *testing.F) {
	at := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	for _, v := range []any{
		hostscript.ScanResult{Hostname: "srv-01", OSCaption: "Microsoft Windows Server 2008", OSBuild: "6001",
			Hotfixes: []hostscript.Hotfix{{ID: "KB958644", InstalledOn: at}}, Packages: []hostscript.Package{{Name: "Package_for_KB958644", State: "Installed"}},
			Files:  []hostscript.File{{Path: `C:\Windows\System32\netapi32.dll`, Exists: true, Version: "6.0.6001.18157", SHA256: "ab"}},
			Reboot: hostscript.Reboot{CBSRebootPending: true}, LastBootUpTime: at, FreeDiskBytes: 1 << 30, ScannedAt: at},
		hostscript.InstallResult{KB: "KB958644", Outcome: hostscript.InstallOKRebootRequired, ExitCode: 3010, RebootRequired: true, InstalledAt: at},
		hostscript.RebootResult{Outcome: hostscript.RebootScheduled, PreviousBootTime: at},
		hostscript.UninstallResult{KB: "KB958644", Outcome: hostscript.UninstallNotInstalled, ExitCode: 2359303},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b) + "\r\n")
	}
	for _, s := range []string{"", "{}", "{} {}", `{"last_boot_up_time":"not a time"}`, `{"hotfixes":[{"id":1}]}`, "\x00", `{"exit_code":1e400}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stdout string) {
		for _, out := range []any{&hostscript.ScanResult{}, &hostscript.InstallResult{}, &hostscript.RebootResult{}, &hostscript.UninstallResult{}} {
			if err := decodeOne(stdout, out); err != nil {
				continue
			}
			b, err := json.Marshal(out)
			if err != nil {
				t.Fatalf("accepted output %q does not encode again: %v", stdout, err)
			}
			if err := decodeOne(string(b), out); err != nil {
				t.Fatalf("accepted output re-encoded as %s does not decode: %v", b, err)
			}
		}
	})
}
