package fleetsim

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// systemPython is Debian's interpreter, the one python3-winrm and Ansible
// install into (the python3 on PATH may be another).
const systemPython = "/usr/bin/python3"

// TestPywinrmRunsSeveralCommandsInOneShell drives a simulated host with
// an independent client, Debian's pywinrm, the way users check a host
// before a rollout: over HTTPS verified against the fleet's CA, as
// patchway dev serves it.
func TestPywinrmRunsSeveralCommandsInOneShell(t *testing.T) {
	if err := exec.Command(systemPython, "-c", "import winrm").Run(); err != nil {
		t.Skipf("%s cannot import winrm (%v): make test installs Debian's python3-winrm (make testdeps)", systemPython, err)
	}
	f := startFleet(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, filepath.Join("testdata", "pywinrm_check.py"),
		"https://"+f.Inventory().Hosts[0].Address+"/wsman", f.caFile)
	cmd.Env = append(os.Environ(), "FLEET_USER=patchway", "FLEET_PASSWORD="+testPassword, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("pywinrm_check.py: %v\n%s", err, stderr.String())
	}
	t.Logf("pywinrm ran its commands in %s", time.Since(start).Round(time.Millisecond))
	type result struct {
		Name      string `json:"name"`
		CommandID string `json:"command_id"`
		Stdout    string `json:"stdout"`
		Stderr    string `json:"stderr"`
		Exit      int    `json:"exit"`
	}
	var got struct {
		ShellID      string   `json:"shell_id"`
		Commands     []result `json:"commands"`
		SessionRunPS result   `json:"session_run_ps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("pywinrm_check.py printed %q: %v", stdout.String(), err)
	}
	want := map[string]result{
		"echo":                {Stdout: "hi\r\n"},
		"echo_args":           {Stdout: "hello world\r\n"},
		"hostname":            {Stdout: "CLEAN\r\n"},
		"whoami":              {Stdout: "clean\\patchway\r\n"},
		"run_ps_nested_twice": {Stdout: "nested twice\r\n"},
		"unknown":             {Stderr: "'ipconfig' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", Exit: 1},
		"interleaved_second":  {Stdout: "second\r\n"},
		"interleaved_first":   {Stdout: "first\r\n"},
	}
	ids := map[string]bool{}
	for _, r := range got.Commands {
		w, ok := want[r.Name]
		if !ok {
			t.Errorf("unexpected result %q", r.Name)
			continue
		}
		delete(want, r.Name)
		if r.Stdout != w.Stdout || r.Stderr != w.Stderr || r.Exit != w.Exit {
			t.Errorf("%s: stdout %q stderr %q exit %d, want %q %q %d", r.Name, r.Stdout, r.Stderr, r.Exit, w.Stdout, w.Stderr, w.Exit)
		}
		if ids[r.CommandID] || !reGUID.MatchString(r.CommandID) {
			t.Errorf("%s: CommandId %q is not a fresh upper-case GUID", r.Name, r.CommandID)
		}
		ids[r.CommandID] = true
	}
	for name := range want {
		t.Errorf("no result for %s", name)
	}
	if r := got.SessionRunPS; r.Stdout != "CLEAN\r\nclean\\patchway\r\n" || r.Exit != 0 {
		t.Errorf("Session.run_ps: %+v", r)
	}
	// The fleet still serves, and pywinrm closed what it opened.
	if s := scanOf(t, client(t, f, "clean", testPassword, nil)); s.Hostname != "CLEAN" {
		t.Errorf("scan after pywinrm: %+v", s)
	}
	if n := f.Host("clean").Snapshot().ShellsInFlight; n != 0 {
		t.Errorf("%d shells left open", n)
	}
}
