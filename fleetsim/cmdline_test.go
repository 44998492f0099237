package fleetsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/patchway/patchway/hostscript"
)

// ps is a command line as pywinrm's run_ps and Ansible build it:
// powershell.exe (spelled as given) with flags around -EncodedCommand.
func ps(exe, flags, script string) string {
	return strings.TrimSpace(exe+" "+flags) + " " + hostscript.EncodeCommand(script)
}

const ansibleFlags = "-NoProfile -NonInteractive -ExecutionPolicy Unrestricted -EncodedCommand"

func TestOrdinaryCommandsAnswerAsWindowsDoes(t *testing.T) {
	f := startFleet(t, Options{}, FaultImpostor)
	c := client(t, f, "clean", testPassword, nil)
	echoTwice := ps("powershell", "-encodedcommand", ps("PowerShell", ansibleFlags, "Write-Output 'nested twice'"))
	for _, tc := range []struct {
		name, cmd, stdout string
		exit              int
		stderr            string
	}{
		{"cmd echo prints the rest of the line", "echo hi", "hi\r\n", 0, ""},
		{"cmd echo keeps quotes and spacing", `echo "a  b" c`, "\"a  b\" c\r\n", 0, ""},
		{"bare echo reports the echo state", "echo", "ECHO is on.\r\n", 0, ""},
		{"echo. prints an empty line", "echo.", "\r\n", 0, ""},
		{"hostname is the computer name scans report", "hostname", "CLEAN\r\n", 0, ""},
		{"whoami is computer\\user in lower case", "whoami", "clean\\patchway\r\n", 0, ""},
		{"cmd /c runs the rest", `cmd.exe /c "echo hi"`, "hi\r\n", 0, ""},
		{"powershell -Command echo prints one line per argument", "powershell -Command echo hi there", "hi\r\nthere\r\n", 0, ""},
		{"powershell.exe -Command with a quoted script", `powershell.exe -NoProfile -Command "Write-Host 'a b' c"`, "a b c\r\n", 0, ""},
		{"pywinrm run_ps", ps("powershell", "-encodedcommand", "whoami"), "clean\\patchway\r\n", 0, ""},
		{"Ansible's flags and -EncodedCommand", ps("PowerShell", ansibleFlags, "echo hi"), "hi\r\n", 0, ""},
		{"-enc abbreviation", ps("powershell.exe", "-NoP -NonI -ep Bypass -enc", "hostname"), "CLEAN\r\n", 0, ""},
		{"-e abbreviation, upper-case flag", ps(`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "-EXECUTIONPOLICY Unrestricted -E", "Write-Output ok"), "ok\r\n", 0, ""},
		{"-EncodedCommand nested two levels", echoTwice, "nested twice\r\n", 0, ""},
		{"several plain statements run in order", ps("powershell", "-EncodedCommand", "Write-Host hello\r\nhostname; whoami # who"), "hello\r\nCLEAN\r\nclean\\patchway\r\n", 0, ""},
		{"setting a preference variable prints nothing", ps("powershell", "-EncodedCommand", "$ErrorActionPreference='Stop'; echo ok"), "ok\r\n", 0, ""},
		{"a string alone is output", ps("powershell", "-EncodedCommand", `"hi"`), "hi\r\n", 0, ""},
		{"unknown cmd command", "ipconfig /all", "", 1, "'ipconfig' is not recognized as an internal or external command"},
		{"unknown PowerShell command", ps("powershell", "-EncodedCommand", "Get-Service"), "", 1, "Get-Service : The term 'Get-Service' is not recognized"},
		{"PowerShell that needs evaluating is not run", ps("powershell", "-EncodedCommand", "$x = 1; echo $x"), "", 1, "is not recognized"},
		{"an unknown statement fails the script but not those before", ps("powershell", "-EncodedCommand", "echo a\nGet-Date"), "a\r\n", 1, "Get-Date : The term"},
		{"a failed statement before a good one", ps("powershell", "-EncodedCommand", "Get-Date\necho a"), "a\r\n", 0, "Get-Date : The term"},
		{"Write-Output with an unknown parameter", ps("powershell", "-EncodedCommand", "echo -Foo"), "", 1, "cannot be found that matches parameter name 'Foo'"},
		{"bad base64", "powershell -EncodedCommand !!!", "", 1, "not properly encoded"},
		{"-File is not there", `powershell -File C:\x.ps1`, "", 4294770688, `The argument 'C:\x.ps1' to the -File parameter does not exist`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			stdout, stderr, exit, err := c.RunCmdWithContext(ctx, tc.cmd)
			if err != nil {
				t.Fatal(err)
			}
			if stdout != tc.stdout || exit != tc.exit || !strings.Contains(stderr, tc.stderr) || (tc.stderr == "" && stderr != "") {
				t.Errorf("%s\n got stdout %q exit %d stderr %q\nwant stdout %q exit %d stderr containing %q", tc.cmd, stdout, exit, stderr, tc.stdout, tc.exit, tc.stderr)
			}
		})
	}
	t.Run("masterzen's RunPS", func(t *testing.T) {
		stdout, _, exit, err := c.RunPSWithContext(context.Background(), "echo hi")
		if err != nil || exit != 0 || stdout != "hi\r\n" {
			t.Errorf("stdout %q exit %d err %v", stdout, exit, err)
		}
	})
	t.Run("an impostor's hostname agrees with its scans", func(t *testing.T) {
		ic := client(t, f, "impostor", testPassword, nil)
		stdout, _, _, err := ic.RunCmdWithContext(context.Background(), "hostname")
		if err != nil {
			t.Fatal(err)
		}
		if s := scanOf(t, ic); stdout != s.Hostname+"\r\n" || s.Hostname != "IMPOSTOR" {
			t.Errorf("hostname %q, scan hostname %q", stdout, s.Hostname)
		}
	})
	t.Run("a Patchway script nested in Ansible's wrapping still runs", func(t *testing.T) {
		script, err := hostscript.Render(hostscript.OpScan, hostscript.ScanParams{}, "")
		if err != nil {
			t.Fatal(err)
		}
		stdout, stderr, exit, err := c.RunWithContextWithString(context.Background(), ps("PowerShell", ansibleFlags, hostscript.CommandLine()), script)
		var s hostscript.ScanResult
		if err != nil || exit != 0 || json.Unmarshal([]byte(stdout), &s) != nil || s.Hostname != "CLEAN" {
			t.Errorf("exit %d err %v stdout %q stderr %q", exit, err, stdout, stderr)
		}
	})
}

func TestWhoamiNamesTheDomainOfADomainAccount(t *testing.T) {
	for user, want := range map[string]string{`CORP\Svc-Patchway`: `corp\svc-patchway`, "svc@corp.example": `corp\svc`, "Admin": `clean\admin`} {
		f := startFleet(t, Options{Username: user})
		host, port, _ := net.SplitHostPort(f.Inventory().Hosts[0].Address)
		p, _ := strconv.Atoi(port)
		c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, p, true, false, f.CAPEM(), nil, nil, 10*time.Second), user, testPassword, winrm.NewParameters("PT2S", "en-US", 153600))
		if err != nil {
			t.Fatal(err)
		}
		stdout, _, _, err := c.RunCmdWithContext(context.Background(), "whoami")
		if err != nil || stdout != want+"\r\n" {
			t.Errorf("whoami as %s = %q, %v; want %q", user, stdout, err, want)
		}
	}
}

// ansiblePayload is what Ansible streams on stdin for a module: a stand-in
// for exec_wrapper.ps1 with the statements the simulator recognises it by,
// four NULs, and the JSON manifest.
func ansiblePayload(t *testing.T, module string, args map[string]any, actions ...string) string {
	t.Helper()
	wrapper := "begin {\n    $ErrorActionPreference = \"Stop\"\n} end {\n    $payload = ConvertFrom-AnsibleJson -InputObject $json_raw\n    $action = $payload.actions[0]\n" +
		"    $entrypoint = [System.Text.Encoding]::UTF8.GetString([System.Convert]::FromBase64String($payload.($action)))\n    $output = &$entrypoint -Payload $payload\n}\n\n"
	if len(actions) == 0 {
		actions = []string{"module_powershell_wrapper"}
	}
	manifest := map[string]any{
		"module_entry": base64.StdEncoding.EncodeToString([]byte(module)),
		"module_args":  args, "actions": actions, "environment": map[string]any{}, "encoded_output": false,
		"powershell_modules": map[string]any{}, "csharp_utils": map[string]any{}, "csharp_utils_module": []string{},
	}
	for _, a := range actions {
		manifest[a] = base64.StdEncoding.EncodeToString([]byte("param($Payload)\n# " + a))
	}
	b, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	return wrapper + "\x00\x00\x00\x00" + string(b)
}

// ansibleBootstrap is bootstrap_wrapper.ps1 as Ansible encodes it (lines
// stripped, blank lines dropped).
const ansibleBootstrap = "&chcp.com 65001 > $null\n" +
	"if ($PSVersionTable.PSVersion -lt [Version]\"3.0\") {\n'{\"failed\":true,\"msg\":\"Ansible requires PowerShell v3.0 or newer\"}'\nexit 1\n}\n" +
	"$exec_wrapper_str = $input | Out-String\n" +
	"$split_parts = $exec_wrapper_str.Split(@(\"`0`0`0`0\"), 2, [StringSplitOptions]::RemoveEmptyEntries)\n" +
	"If (-not $split_parts.Length -eq 2) { throw \"invalid payload\" }\n" +
	"Set-Variable -Name json_raw -Value $split_parts[1]\n" +
	"$exec_wrapper = [ScriptBlock]::Create($split_parts[0])\n" +
	"&$exec_wrapper"

// winPingModule is the shape of ansible.windows' win_ping.ps1.
const winPingModule = "#!powershell\n#AnsibleRequires -CSharpUtil Ansible.Basic\n$spec = @{\n    options = @{\n        data = @{ type = \"str\"; default = \"pong\" }\n    }\n    supports_check_mode = $true\n}\n" +
	"$module = [Ansible.Basic.AnsibleModule]::Create($args, $spec)\n$data = $module.Params.data\n\nif ($data -eq \"crash\") {\n    throw \"boom\"\n}\n\n$module.Result.ping = $data\n$module.ExitJson()\n"

func TestAnsibleWinPingOverStdin(t *testing.T) {
	f := startFleet(t, Options{})
	c := client(t, f, "clean", testPassword, nil)
	// Ansible's exec_command encodes the module command (itself an
	// encoded bootstrap) once more.
	cmd := ps("PowerShell", ansibleFlags, ps("PowerShell", ansibleFlags, ansibleBootstrap))
	meta := map[string]any{"_ansible_check_mode": false, "_ansible_module_name": "win_ping", "_ansible_verbosity": 0}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range meta {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name, stdin string
		want        map[string]any
		exit        int
	}{
		{"data defaults to pong", ansiblePayload(t, winPingModule, with()),
			map[string]any{"changed": false, "ping": "pong", "invocation": map[string]any{"module_args": map[string]any{"data": "pong"}}}, 0},
		{"data is echoed", ansiblePayload(t, winPingModule, with("data", "hello")),
			map[string]any{"changed": false, "ping": "hello", "invocation": map[string]any{"module_args": map[string]any{"data": "hello"}}}, 0},
		{"data=crash makes the module throw", ansiblePayload(t, winPingModule, with("data", "crash")),
			map[string]any{"failed": true, "msg": "Unhandled exception while executing module: boom"}, 1},
		{"an unknown option is refused", ansiblePayload(t, winPingModule, with("colour", "red")),
			map[string]any{"failed": true, "changed": false, "msg": "Unsupported parameters for (win_ping) module: colour. Supported parameters include: data",
				"invocation": map[string]any{"module_args": map[string]any{"data": "pong"}}}, 1},
		{"another module is not run", ansiblePayload(t, "#!powershell\nGet-Service\n", map[string]any{"_ansible_module_name": "win_service"}),
			map[string]any{"failed": true, "msg": "the simulated Windows host runs no Ansible module but win_ping; module win_service was not run"}, 1},
		{"become is not simulated", ansiblePayload(t, winPingModule, with(), "become_wrapper", "module_powershell_wrapper"),
			map[string]any{"failed": true, "msg": "internal error: failed to run exec_wrapper action become_wrapper: the simulated Windows host runs only win_ping, through module_powershell_wrapper"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, exit, err := c.RunWithContextWithString(context.Background(), cmd, tc.stdin)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if exit != tc.exit || json.Unmarshal([]byte(stdout), &got) != nil || !jsonEqual(got, tc.want) {
				t.Errorf("exit %d stdout %q stderr %q\nwant exit %d and %v", exit, stdout, stderr, tc.exit, tc.want)
			}
		})
	}
	t.Run("a payload without the separator is invalid", func(t *testing.T) {
		_, stderr, exit, err := c.RunWithContextWithString(context.Background(), cmd, "Write-Output hi")
		if err != nil || exit != 1 || !strings.Contains(stderr, "invalid payload") {
			t.Errorf("exit %d err %v stderr %q", exit, err, stderr)
		}
	})
	t.Run("another wrapper script is not run", func(t *testing.T) {
		_, stderr, exit, err := c.RunWithContextWithString(context.Background(), cmd, "Remove-Item C:\\ -Recurse\x00\x00\x00\x00{}")
		if err != nil || exit != 1 || !strings.Contains(stderr, "is not recognized") {
			t.Errorf("exit %d err %v stderr %q", exit, err, stderr)
		}
	})
}

func jsonEqual(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// FuzzCommandLine runs any command line with any stdin: the interpreter
// never panics and always ends (a panic would only fail the command, but
// it is a bug all the same).
func FuzzCommandLine(f *testing.F) {
	fleet := startFleet(f, Options{})
	sess := session{host: fleet.Host("clean"), user: "patchway"}
	f.Add("echo hi", "")
	f.Add(ps("PowerShell", ansibleFlags, ps("PowerShell", ansibleFlags, ansibleBootstrap)), "x\x00\x00\x00\x00{\"actions\":[]}")
	f.Add(ps("powershell", "-enc", "Write-Host -NoNewline 'a''b' \"c\"; echo -InputObject x # y"), "")
	f.Add("cmd /c \"powershell -Command -\"", "whoami\r\nhostname\r\n")
	f.Add(hostscript.CommandLine(), "Write-Output 'body'\n")
	f.Fuzz(func(t *testing.T, line, stdin string) {
		_ = sess.commandLine(line, 0).run(stdin)
	})
}
