package fleetsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/rollout"
)

// TestAnsibleReachesSimulatedHosts runs the real Ansible (Debian's
// ansible-core with the ansible.windows collection), connection winrm
// over HTTP with Basic auth on loopback, against two simulated hosts:
// win_ping (a module streamed on stdin behind Ansible's exec wrapper)
// and raw (a command wrapped in -EncodedCommand).
func TestAnsibleReachesSimulatedHosts(t *testing.T) {
	ansible, err := exec.LookPath("ansible")
	if err != nil {
		t.Skip("ansible is not installed: make test installs Debian's ansible (make testdeps)")
	}
	sc := &Scenario{Name: "ansible", Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}}}
	for _, name := range []string{"par-ws001", "par-ws002"} {
		sc.Hosts = append(sc.Hosts, HostSpec{Host: rollout.Host{Name: name, OS: "windows-xp-sp3", Site: "paris", Region: "emea", Tier: "lab", Role: "workstation"}})
	}
	f, err := Start(context.Background(), sc, Options{Password: testPassword, Plain: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })

	dir := t.TempDir()
	var inv strings.Builder
	inv.WriteString("[windows]\n")
	for _, h := range f.Inventory().Hosts {
		host, port, _ := net.SplitHostPort(h.Address)
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_port=%s\n", h.Name, host, port)
	}
	fmt.Fprintf(&inv, "[windows:vars]\nansible_connection=winrm\nansible_winrm_scheme=http\nansible_winrm_transport=basic\nansible_user=patchway\nansible_password=%s\n", testPassword)
	invPath := filepath.Join(dir, "inventory.ini")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "ansible.cfg")
	if err := os.WriteFile(cfg, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) map[string]map[string]any {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, ansible, append([]string{"-i", invPath, "all"}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ANSIBLE_CONFIG="+cfg, "ANSIBLE_HOME="+dir, "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"),
			"ANSIBLE_LOAD_CALLBACK_PLUGINS=1", "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_NOCOLOR=1", "NO_PROXY=127.0.0.1", "no_proxy=127.0.0.1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		runErr := cmd.Run() // non-zero when a host fails; the JSON says which
		t.Logf("ansible %s: %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
		var out struct {
			Plays []struct {
				Tasks []struct {
					Hosts map[string]map[string]any `json:"hosts"`
				} `json:"tasks"`
			} `json:"plays"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || len(out.Plays) != 1 || len(out.Plays[0].Tasks) != 1 {
			if strings.Contains(stdout.String()+stderr.String(), "couldn't resolve module/action 'win_ping'") {
				t.Skip("ansible has no win_ping: make test installs Debian's ansible, which brings the ansible.windows collection")
			}
			t.Fatalf("ansible %v (%v):\n%s\n%s", args, runErr, stdout.String(), stderr.String())
		}
		hosts := out.Plays[0].Tasks[0].Hosts
		for _, r := range hosts {
			if strings.Contains(fmt.Sprint(r["msg"]), "winrm or requests is not installed") {
				t.Skipf("this ansible's Python lacks pywinrm: %v", r["msg"])
			}
		}
		return hosts
	}
	t.Run("win_ping answers pong", func(t *testing.T) {
		hosts := run(t, "-m", "win_ping")
		for _, h := range f.Hosts() {
			r := hosts[h.Name()]
			if r["ping"] != "pong" || r["changed"] != false || r["failed"] == true {
				t.Errorf("%s: %v", h.Name(), r)
			}
		}
	})
	t.Run("win_ping echoes data", func(t *testing.T) {
		hosts := run(t, "-m", "win_ping", "-a", "data=hello")
		if r := hosts["par-ws001"]; r["ping"] != "hello" {
			t.Errorf("%v", r)
		}
	})
	t.Run("win_ping data=crash fails", func(t *testing.T) {
		hosts := run(t, "-m", "win_ping", "-a", "data=crash")
		if r := hosts["par-ws002"]; r["failed"] != true || !strings.Contains(fmt.Sprint(r["msg"]), "boom") {
			t.Errorf("%v", r)
		}
	})
	t.Run("raw runs echo", func(t *testing.T) {
		hosts := run(t, "-m", "raw", "-a", "echo hi")
		for _, h := range f.Hosts() {
			if r := hosts[h.Name()]; r["stdout"] != "hi\r\n" || r["rc"] != float64(0) {
				t.Errorf("%s: %v", h.Name(), r)
			}
		}
	})
	t.Run("raw hostname agrees with the host", func(t *testing.T) {
		hosts := run(t, "-m", "raw", "-a", "hostname")
		if r := hosts["par-ws002"]; r["stdout"] != "PAR-WS002\r\n" {
			t.Errorf("%v", r)
		}
	})
	for _, h := range f.Hosts() {
		if n := h.Snapshot().ShellsInFlight; n != 0 {
			t.Errorf("%s: %d shells left open by Ansible", h.Name(), n)
		}
	}
}
