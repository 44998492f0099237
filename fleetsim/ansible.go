package fleetsim

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// Ansible runs a Windows module (connection winrm) as
//
//	PowerShell -NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand <A>
//
// where A decodes to the same command line again around its
// bootstrap_wrapper.ps1, and streams on stdin its exec_wrapper.ps1, four
// NUL characters, and a JSON payload: the module's source (module_entry,
// base64), its arguments (module_args), and the wrapper actions to run
// (actions, each one's script base64 under its own name). The simulator
// recognises that structure and answers win_ping, the module people use
// to check that Ansible reaches a host; other modules fail with a message
// that says they were not run.

// ansiblePayloadSeparator splits the exec wrapper from its JSON payload.
const ansiblePayloadSeparator = "\x00\x00\x00\x00"

// squash is text in lower case without blanks, to recognise scripts by
// their statements whatever their layout (Ansible strips lines).
func squash(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, strings.ToLower(s))
}

// isAnsibleBootstrap recognises bootstrap_wrapper.ps1: it reads all of
// stdin, splits it at four NULs, and runs the first part as a script
// block with the second as $json_raw.
func isAnsibleBootstrap(script string) bool {
	s := squash(script)
	return strings.Contains(s, "$input|out-string") &&
		strings.Contains(s, ".split(@(\"`0`0`0`0\")") &&
		strings.Contains(s, "-namejson_raw") &&
		strings.Contains(s, "[scriptblock]::create($split_parts[0])")
}

// isAnsibleExecWrapper recognises exec_wrapper.ps1: it converts $json_raw
// to the payload and runs the payload's first action.
func isAnsibleExecWrapper(script string) bool {
	s := squash(script)
	return strings.Contains(s, "convertfrom-ansiblejson-inputobject$json_raw") &&
		strings.Contains(s, "$action=$payload.actions[0]") &&
		strings.Contains(s, "frombase64string($payload.($action))")
}

// isWinPing recognises the win_ping module (ansible.windows) by what it
// does: an AnsibleModule whose only option is data (default "pong"),
// that throws on "crash" and returns ping = data.
func isWinPing(module string) bool {
	s := squash(module)
	return strings.Contains(s, "[ansible.basic.ansiblemodule]::create(") &&
		strings.Contains(s, `data=@{type="str";default="pong"}`) &&
		strings.Contains(s, `if($data-eq"crash"){throw"boom"}`) &&
		strings.Contains(s, "$module.result.ping=$data")
}

// ansibleExec runs what the bootstrap read from stdin.
func (s session) ansibleExec(stdin string) output {
	// $input | Out-String; Split("`0`0`0`0", 2, RemoveEmptyEntries)
	var parts []string
	for _, p := range strings.SplitN(stdin, ansiblePayloadSeparator, 2) {
		if p != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) != 2 {
		return output{stderr: "invalid payload\r\n    + CategoryInfo          : OperationStopped: (invalid payload:String) [], RuntimeException\r\n    + FullyQualifiedErrorId : invalid payload\r\n", exit: 1}
	}
	if !isAnsibleExecWrapper(parts[0]) {
		first, _, _ := strings.Cut(strings.TrimSpace(parts[0]), "\n")
		return psNotRecognized(strings.TrimSpace(first))
	}
	var payload map[string]json.RawMessage
	if err := json.Unmarshal([]byte(strings.TrimSpace(parts[1])), &payload); err != nil {
		return output{stderr: fmt.Sprintf("ConvertFrom-Json : Invalid JSON primitive: %s\r\n", err), exit: 1}
	}
	var actions []string
	var entry string
	var args map[string]any
	_ = json.Unmarshal(payload["actions"], &actions)
	_ = json.Unmarshal(payload["module_entry"], &entry)
	_ = json.Unmarshal(payload["module_args"], &args)
	if len(actions) == 0 {
		return ansibleFailed("internal error: the exec wrapper payload names no action", nil)
	}
	if actions[0] != "module_powershell_wrapper" || payload[actions[0]] == nil {
		// become, async and script wrappers start other processes.
		return ansibleFailed(fmt.Sprintf("internal error: failed to run exec_wrapper action %s: the simulated Windows host runs only win_ping, through module_powershell_wrapper", actions[0]), nil)
	}
	module, err := base64.StdEncoding.DecodeString(entry)
	if err != nil {
		return ansibleFailed("internal error: module_entry is not base64: "+err.Error(), nil)
	}
	name, _ := args["_ansible_module_name"].(string)
	if !isWinPing(string(module)) {
		return ansibleFailed(fmt.Sprintf("the simulated Windows host runs no Ansible module but win_ping; module %s was not run", cmp.Or(name, "(unnamed)")), nil)
	}
	return winPing(cmp.Or(name, "win_ping"), args)
}

// winPing is what win_ping prints: ping is its data argument ("pong" by
// default), and data=crash makes the module throw.
func winPing(name string, args map[string]any) output {
	data := "pong"
	var unsupported []string
	for _, k := range sortedKeys(args) {
		switch {
		case strings.HasPrefix(k, "_ansible_"):
		case k == "data":
			if args[k] != nil {
				data = fmt.Sprint(args[k])
			}
		default:
			unsupported = append(unsupported, k)
		}
	}
	params := map[string]any{"data": data}
	if len(unsupported) > 0 {
		return ansibleFailed(fmt.Sprintf("Unsupported parameters for (%s) module: %s. Supported parameters include: data", name, strings.Join(unsupported, ", ")), params)
	}
	if data == "crash" {
		return ansibleFailed("Unhandled exception while executing module: boom", nil)
	}
	b, _ := json.Marshal(map[string]any{"changed": false, "invocation": map[string]any{"module_args": params}, "ping": data})
	return output{stdout: string(b) + "\r\n"}
}

// ansibleFailed is a failure as Ansible's wrappers print it: JSON on
// stdout, exit code 1.
func ansibleFailed(msg string, params map[string]any) output {
	res := map[string]any{"failed": true, "msg": msg}
	if params != nil {
		res["changed"] = false
		res["invocation"] = map[string]any{"module_args": params}
	}
	b, _ := json.Marshal(res)
	return output{stdout: string(b) + "\r\n", exit: 1}
}
