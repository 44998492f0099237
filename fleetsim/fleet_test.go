package fleetsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/patchway/patchway/hostscript"
	"github.com/patchway/patchway/rollout"
)

const testPassword = "fleet-test-pw-7c1d"

var testPatch = rollout.Patch{
	KB: "KB958644", Reboot: rollout.RebootRequired,
	Packages: []rollout.Package{{OS: "windows-xp-sp3", Source: "xp.exe", SHA256: strings.Repeat("ab", 32), Type: "exe"}},
	Evidence: rollout.Evidence{Hotfix: "KB958644", Files: []rollout.FileEvidence{{OS: "windows-xp-sp3", Path: `C:\Windows\System32\netapi32.dll`, MinVersion: "5.1.2600.5694"}}},
}

// startFleet starts one host per fault (and a clean one named "clean").
func startFleet(t testing.TB, opts Options, faults ...Fault) *Fleet {
	t.Helper()
	sc := &Scenario{Name: "t", Credential: "fleet", Catalog: map[string]CatalogEntry{"KB958644": CatalogFromPatch(testPatch)},
		Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}}}
	sc.Hosts = append(sc.Hosts, HostSpec{Host: rollout.Host{Name: "clean", OS: "windows-xp-sp3", Site: "paris", Region: "emea", Tier: "lab", Role: "workstation"}})
	for _, f := range faults {
		sc.Hosts = append(sc.Hosts, HostSpec{Host: rollout.Host{Name: string(f), OS: "windows-xp-sp3", Site: "paris", Region: "emea", Tier: "lab", Role: "workstation"},
			Faults: []FaultSpec{{Kind: f, ExitCode: 1603, Rate: 1, Delay: 300 * time.Millisecond}}})
	}
	opts.Password = testPassword
	f, err := Start(context.Background(), sc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// client is a real masterzen/winrm client for host name, verifying TLS
// with pool (the fleet's CA unless given).
func client(t *testing.T, f *Fleet, name, password string, pool []byte) *winrm.Client {
	t.Helper()
	host, port, _ := net.SplitHostPort(f.Inventory().Hosts[indexOf(f, name)].Address)
	p, _ := strconv.Atoi(port)
	if pool == nil {
		pool = f.CAPEM()
	}
	ep := winrm.NewEndpoint(host, p, !f.opts.Plain, false, pool, nil, nil, 10*time.Second)
	params := winrm.NewParameters("PT2S", "en-US", 153600) // a copy, never DefaultParameters
	c, err := winrm.NewClientWithParameters(ep, "patchway", password, params)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func indexOf(f *Fleet, name string) int {
	for i, h := range f.hosts {
		if h.spec.Name == name {
			return i
		}
	}
	return -1
}

// runOp renders op's script, sends it on stdin behind the bootstrap, and
// decodes the JSON answer into out.
func runOp(t *testing.T, c *winrm.Client, op hostscript.Op, params, out any) error {
	t.Helper()
	script, err := hostscript.Render(op, params, "Write-Output 'body'\n")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	exit, err := c.RunWithContextWithInput(ctx, hostscript.CommandLine(), &stdout, &stderr, strings.NewReader(script))
	if err != nil {
		return err
	}
	if exit != 0 {
		return fmt.Errorf("exit %d: %s", exit, stderr.String())
	}
	return json.Unmarshal(stdout.Bytes(), out)
}

func scanOf(t *testing.T, c *winrm.Client) hostscript.ScanResult {
	t.Helper()
	var s hostscript.ScanResult
	if err := runOp(t, c, hostscript.OpScan, hostscript.ScanParams{KB: "KB958644", Files: []hostscript.FileCheck{{Path: `C:\Windows\System32\netapi32.dll`}}}, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func install(t *testing.T, c *winrm.Client) hostscript.InstallResult {
	t.Helper()
	var r hostscript.InstallResult
	if err := runOp(t, c, hostscript.OpInstall, hostscript.InstallParams{KB: "KB958644", Source: `\\dp\xp.exe`, SHA256: strings.Repeat("ab", 32), Type: "exe"}, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// rebootAndWait reboots and waits until the boot time changes (or gives
// up after a few seconds, returning false).
func rebootAndWait(t *testing.T, f *Fleet, c *winrm.Client, name string) bool {
	t.Helper()
	var r hostscript.RebootResult
	if err := runOp(t, c, hostscript.OpReboot, hostscript.RebootParams{DelaySeconds: 5}, &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != hostscript.RebootScheduled {
		t.Fatalf("reboot outcome %q", r.Outcome)
	}
	sawDown := false
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(40 * time.Millisecond)
		if f.Host(name).Snapshot().Down {
			sawDown = true
			continue
		}
		if f.Host(name).BootTime().After(r.PreviousBootTime) {
			if !sawDown {
				t.Errorf("host never went down during its reboot")
			}
			return true
		}
	}
	return false
}

func TestCleanHostInstallsAndProvesThePatchAfterReboot(t *testing.T) {
	f := startFleet(t, Options{})
	c := client(t, f, "clean", testPassword, nil)
	before := scanOf(t, c)
	if before.Files[0].Version != "5.1.2600.5512" || len(before.Hotfixes) != 0 {
		t.Fatalf("before: %+v", before)
	}
	r := install(t, c)
	if r.Outcome != hostscript.InstallOKRebootRequired || r.ExitCode != 3010 || !r.RebootRequired {
		t.Fatalf("install = %+v", r)
	}
	mid := scanOf(t, c)
	if !mid.Reboot.CBSRebootPending || mid.Files[0].Version != "5.1.2600.5512" {
		t.Errorf("before reboot the new file must be staged, not in effect: %+v", mid)
	}
	if again := install(t, c); again.Outcome != hostscript.InstallAlreadyInstalled || again.ExitCode != 2359302 {
		t.Errorf("second install = %+v, want already installed (2359302)", again)
	}
	if !rebootAndWait(t, f, c, "clean") {
		t.Fatal("host did not come back")
	}
	after := scanOf(t, c)
	if after.Files[0].Version != "5.1.2600.5694" || after.Reboot.CBSRebootPending || !after.LastBootUpTime.After(before.LastBootUpTime) {
		t.Errorf("after reboot: %+v", after)
	}
	if n := f.Host("clean").InstallCount("KB958644"); n != 1 {
		t.Errorf("installs = %d, want 1", n)
	}
}

func TestFaultProfiles(t *testing.T) {
	f := startFleet(t, Options{}, FaultRegistryOnly, FaultNoReboot, FaultNeverReturns, FaultInstallFails, FaultRevertsOnBoot, FaultPendingRenameNoise)
	t.Run("registry_only keeps the old file", func(t *testing.T) {
		c := client(t, f, "registry_only", testPassword, nil)
		install(t, c)
		rebootAndWait(t, f, c, "registry_only")
		s := scanOf(t, c)
		if len(s.Hotfixes) != 1 || s.Files[0].Version != "5.1.2600.5512" {
			t.Errorf("scan = %+v: want the hotfix listed and the old file", s)
		}
	})
	t.Run("no_reboot never changes boot time", func(t *testing.T) {
		c := client(t, f, "no_reboot", testPassword, nil)
		install(t, c)
		if rebootAndWait(t, f, c, "no_reboot") {
			t.Fatal("boot time changed")
		}
		if s := scanOf(t, c); !s.Reboot.CBSRebootPending {
			t.Errorf("reboot flag cleared without a reboot")
		}
	})
	t.Run("never_returns stays down", func(t *testing.T) {
		c := client(t, f, "never_returns", testPassword, nil)
		install(t, c)
		if rebootAndWait(t, f, c, "never_returns") {
			t.Fatal("host came back")
		}
		var s hostscript.ScanResult
		if err := runOp(t, c, hostscript.OpScan, hostscript.ScanParams{}, &s); err == nil {
			t.Error("scan of a host that never returned succeeded")
		}
	})
	t.Run("install_fails carries the exit code", func(t *testing.T) {
		r := install(t, client(t, f, "install_fails", testPassword, nil))
		if r.Outcome != hostscript.InstallFailed || r.ExitCode != 1603 {
			t.Errorf("install = %+v", r)
		}
	})
	t.Run("reverts_on_boot loses the new file", func(t *testing.T) {
		c := client(t, f, "reverts_on_boot", testPassword, nil)
		install(t, c)
		rebootAndWait(t, f, c, "reverts_on_boot")
		if s := scanOf(t, c); s.Files[0].Version != "5.1.2600.5512" || len(s.Hotfixes) != 1 {
			t.Errorf("scan = %+v", s)
		}
	})
	t.Run("pending_rename_noise is always set", func(t *testing.T) {
		if s := scanOf(t, client(t, f, "pending_rename_noise", testPassword, nil)); !s.Reboot.PendingFileRename || s.Reboot.CBSRebootPending {
			t.Errorf("reboot flags = %+v", s.Reboot)
		}
	})
}

func TestConnectionFaults(t *testing.T) {
	f := startFleet(t, Options{}, FaultAuthFails, FaultFlaky, FaultSlow)
	var s hostscript.ScanResult
	t.Run("bad credentials are a clear error, not a hang", func(t *testing.T) {
		start := time.Now()
		err := runOp(t, client(t, f, "clean", "wrong", nil), hostscript.OpScan, hostscript.ScanParams{}, &s)
		if err == nil || !strings.Contains(err.Error(), "401") || time.Since(start) > 5*time.Second {
			t.Errorf("err = %v after %s", err, time.Since(start))
		}
	})
	t.Run("auth_fails refuses the right password", func(t *testing.T) {
		if err := runOp(t, client(t, f, "auth_fails", testPassword, nil), hostscript.OpScan, hostscript.ScanParams{}, &s); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("flaky drops connections", func(t *testing.T) {
		if err := runOp(t, client(t, f, "flaky", testPassword, nil), hostscript.OpScan, hostscript.ScanParams{}, &s); err == nil {
			t.Error("a host dropping every connection answered")
		}
	})
	t.Run("slow answers late", func(t *testing.T) {
		start := time.Now()
		if err := runOp(t, client(t, f, "slow", testPassword, nil), hostscript.OpScan, hostscript.ScanParams{}, &s); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) < 300*time.Millisecond {
			t.Errorf("slow host answered in %s", time.Since(start))
		}
	})
	t.Run("TLS with another CA is refused", func(t *testing.T) {
		other := startFleet(t, Options{})
		err := runOp(t, client(t, f, "clean", testPassword, other.CAPEM()), hostscript.OpScan, hostscript.ScanParams{}, &s)
		var unk x509.UnknownAuthorityError
		if err == nil || !(errors.As(err, &unk) || strings.Contains(err.Error(), "certificate")) {
			t.Errorf("err = %v, want a certificate error", err)
		}
	})
}

func TestLongCommandSpansReceiveRounds(t *testing.T) {
	f := startFleet(t, Options{ReceiveTimeout: 200 * time.Millisecond, InstallDuration: 900 * time.Millisecond})
	c := client(t, f, "clean", testPassword, nil)
	start := time.Now()
	if r := install(t, c); r.Outcome != hostscript.InstallOKRebootRequired {
		t.Fatalf("install = %+v", r)
	}
	if time.Since(start) < 900*time.Millisecond {
		t.Error("install returned before it finished")
	}
}

func TestUnknownCommandIsAPowerShellError(t *testing.T) {
	f := startFleet(t, Options{})
	c := client(t, f, "clean", testPassword, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stdout, stderr, exit, err := c.RunCmdWithContext(ctx, "ipconfig /all")
	if err != nil || exit != 1 || stdout != "" || !strings.Contains(stderr, "is not recognized") {
		t.Errorf("exit %d err %v stderr %q", exit, err, stderr)
	}
}

// TestShellLimit posts raw Create requests: masterzen/winrm turns a SOAP
// fault on Create into an empty shell id without an error (its Post sets
// the error in a deferred closure over unnamed results), so the quota is
// checked at the protocol level.
func TestShellLimit(t *testing.T) {
	f := startFleet(t, Options{MaxShellsPerHost: 2})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.CAPEM())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	url := "https://" + f.Inventory().Hosts[0].Address + "/wsman"
	create := func(id int) (int, string) {
		body := fmt.Sprintf(`<s:Envelope><s:Header><a:Action>%s</a:Action><a:MessageID>uuid:m-%d</a:MessageID></s:Header><s:Body/></s:Envelope>`, actCreate, id)
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.SetBasicAuth("patchway", testPassword)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for i := range 2 {
		if code, body := create(i); code != 200 || !strings.Contains(body, "<a:RelatesTo>uuid:m-"+strconv.Itoa(i)+"</a:RelatesTo>") {
			t.Fatalf("create %d: %d %s", i, code, body)
		}
	}
	code, body := create(3)
	if code != 500 || !strings.Contains(body, `Code="2150859174"`) || !strings.Contains(body, "maximum number of 2 concurrent shells") {
		t.Errorf("third shell: %d %s", code, body)
	}
}

func TestUninstallRestoresTheOldFile(t *testing.T) {
	f := startFleet(t, Options{})
	c := client(t, f, "clean", testPassword, nil)
	install(t, c)
	rebootAndWait(t, f, c, "clean")
	var u hostscript.UninstallResult
	if err := runOp(t, c, hostscript.OpUninstall, hostscript.UninstallParams{KB: "KB958644"}, &u); err != nil || u.Outcome != hostscript.UninstallOKRebootRequired {
		t.Fatalf("uninstall = %+v, %v", u, err)
	}
	rebootAndWait(t, f, c, "clean")
	if s := scanOf(t, c); s.Files[0].Version != "5.1.2600.5512" || len(s.Hotfixes) != 0 {
		t.Errorf("after uninstall: %+v", s)
	}
}

func FuzzParseRequest(f *testing.F) {
	f.Add(`<s:Envelope><s:Header><a:Action>` + actSend + `</a:Action><a:MessageID>uuid:1</a:MessageID><w:Selector Name="ShellId">S</w:Selector></s:Header><s:Body><rsp:Send><rsp:Stream Name="stdin" CommandId="C" End="true">aGk=</rsp:Stream></rsp:Send></s:Body></s:Envelope>`)
	f.Add(`<a:Action>` + actCommand + `</a:Action><w:Selector Name="ShellId">S</w:Selector><rsp:Command><![CDATA[powershell -EncodedCommand AAAA]]></rsp:Command>`)
	f.Add(`<a:Action>` + actCreate + `</a:Action><w:OperationTimeout>PT60.000S</w:OperationTimeout>`)
	f.Fuzz(func(t *testing.T, body string) {
		r, err := parseRequest(body)
		if err == nil && r.action == "" {
			t.Fatal("parsed a request without an action")
		}
		_ = session{host: &Host{spec: rollout.Host{Name: "fuzz"}}, user: "u"}.commandLine(r.command, 0)
	})
}

// refused reports whether a TCP dial to the host's port is refused (no
// listener), as dialling a machine that is down is.
func refused(t *testing.T, f *Fleet, name string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", f.Inventory().Hosts[indexOf(f, name)].Address, time.Second)
	if err == nil {
		conn.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func TestDownAndRebootingHostsRefuseConnections(t *testing.T) {
	f := startFleet(t, Options{RebootDowntime: 600 * time.Millisecond}, FaultDown, FaultServicesLate, FaultCBSRevert)
	t.Run("down refuses every connection", func(t *testing.T) {
		if !refused(t, f, "down") {
			t.Error("the port of a down host accepted a connection")
		}
		if refused(t, f, "clean") {
			t.Error("the port of an up host refused a connection")
		}
	})
	t.Run("a rebooting host refuses connections, then listens again", func(t *testing.T) {
		c := client(t, f, "clean", testPassword, nil)
		install(t, c)
		var r hostscript.RebootResult
		if err := runOp(t, c, hostscript.OpReboot, hostscript.RebootParams{DelaySeconds: 5}, &r); err != nil {
			t.Fatal(err)
		}
		sawRefused := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !f.Host("clean").BootTime().After(r.PreviousBootTime); time.Sleep(30 * time.Millisecond) {
			sawRefused = sawRefused || refused(t, f, "clean")
		}
		if !sawRefused {
			t.Error("the port never refused a connection while the host was down")
		}
		if s := scanOf(t, client(t, f, "clean", testPassword, nil)); s.Files[0].Version == "5.1.2600.5512" {
			t.Errorf("after the boot the old file is in effect: %+v", s.Files)
		}
	})
	t.Run("services_late fails scripts for a while after the boot", func(t *testing.T) {
		c := client(t, f, "services_late", testPassword, nil)
		install(t, c)
		if !rebootAndWait(t, f, c, "services_late") {
			t.Fatal("services_late never came back")
		}
		var s hostscript.ScanResult
		err := runOp(t, c, hostscript.OpScan, hostscript.ScanParams{}, &s)
		if err == nil || !strings.Contains(err.Error(), "The RPC server is unavailable") {
			t.Errorf("scan right after the boot: %v, want the RPC server unavailable", err)
		}
		time.Sleep(350 * time.Millisecond)
		if err := runOp(t, c, hostscript.OpScan, hostscript.ScanParams{}, &s); err != nil {
			t.Errorf("scan once the services are up: %v", err)
		}
	})
	t.Run("cbs_revert removes the pending install at boot", func(t *testing.T) {
		c := client(t, f, "cbs_revert", testPassword, nil)
		install(t, c)
		if !rebootAndWait(t, f, c, "cbs_revert") {
			t.Fatal("cbs_revert never came back")
		}
		s := scanOf(t, c)
		if len(s.Hotfixes) != 0 || len(s.Packages) != 0 || s.Files[0].Version != "5.1.2600.5512" || s.Reboot.CBSRebootPending {
			t.Errorf("after the revert: hotfixes %v, packages %v, file %s, CBS pending %v; want none, none, the old file, no reboot pending",
				s.Hotfixes, s.Packages, s.Files[0].Version, s.Reboot.CBSRebootPending)
		}
	})
}

func TestInstallerExitCodesReadAsTheScriptReadsThem(t *testing.T) {
	for code, want := range map[int64]string{2359302: hostscript.InstallAlreadyInstalled, 2149842967: hostscript.InstallNotApplicable, 1603: hostscript.InstallFailed} {
		sc := &Scenario{Name: "t", Credential: "fleet", Catalog: map[string]CatalogEntry{"KB958644": CatalogFromPatch(testPatch)},
			Sites: []rollout.Site{{Name: "paris", Region: "emea", TimeZone: "Europe/Paris"}},
			Hosts: []HostSpec{{Host: rollout.Host{Name: "h", OS: "windows-xp-sp3", Site: "paris", Region: "emea", Tier: "lab", Role: "workstation"},
				Faults: []FaultSpec{{Kind: FaultInstallFails, ExitCode: code}}}}}
		f, err := Start(context.Background(), sc, Options{Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		r := install(t, client(t, f, "h", testPassword, nil))
		f.Close()
		if r.Outcome != want || r.ExitCode != code {
			t.Errorf("exit code %d: install = %+v, want outcome %s", code, r, want)
		}
	}
}

// A scenario sets each host fact on its own: install dates, a KB
// Get-HotFix does not list, file versions, the OS build, each reboot
// flag, the boot age; a boot clears the flags.
func TestScenarioHostFacts(t *testing.T) {
	dir := t.TempDir()
	src := `fleet "facts" {
  site "paris" {
    region    = "emea"
    time_zone = "Europe/Paris"
  }
  population "dated" {
    site = "paris"
    tier = "production"
    role = "file"
    count = 1
    os = ["windows-xp-sp3"]
    build = "2600.5512"
    installed_on = { KB4012212 = "2017-03-14" }
    hidden_from_get_hotfix = ["KB890830"]
    files = { "C:\\Windows\\System32\\srv.sys" = "5.1.2600.7208" }
    booted_ago = "400h"
    cbs_reboot_pending = true
  }
  population "flags" {
    site = "paris"
    tier = "production"
    role = "file"
    count = 1
    os = ["windows-xp-sp3"]
    wu_reboot_required = true
    pending_rename = true
  }
}
`
	path := filepath.Join(dir, "fleet.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, diags := LoadScenario(path)
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	sc.Catalog = map[string]CatalogEntry{"KB958644": CatalogFromPatch(testPatch)}
	f, err := Start(context.Background(), sc, Options{Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b := f.Inventory().Hosts[0].Build; b != "2600.5512" {
		t.Errorf("build %q, want 2600.5512", b)
	}
	c := client(t, f, "DATED-0001", testPassword, nil)
	var s hostscript.ScanResult
	if err := runOp(t, c, hostscript.OpScan, hostscript.ScanParams{Files: []hostscript.FileCheck{{Path: `C:\Windows\System32\srv.sys`}}}, &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Hotfixes) != 1 || s.Hotfixes[0].ID != "KB4012212" || s.Hotfixes[0].InstalledOn.Format(time.DateOnly) != "2017-03-14" {
		t.Errorf("hotfixes %+v, want KB4012212 installed on 2017-03-14 and nothing else (KB890830 is hidden)", s.Hotfixes)
	}
	if len(s.Files) != 1 || s.Files[0].Version != "5.1.2600.7208" {
		t.Errorf("files %+v, want srv.sys 5.1.2600.7208", s.Files)
	}
	if age := time.Since(s.LastBootUpTime); age < 399*time.Hour || age > 401*time.Hour {
		t.Errorf("booted %s ago, want 400h", age)
	}
	if r := s.Reboot; !r.CBSRebootPending || r.WURebootRequired || r.PendingFileRename {
		t.Errorf("reboot flags %+v, want only CBS", r)
	}
	c2 := client(t, f, "FLAGS-0001", testPassword, nil)
	if err := runOp(t, c2, hostscript.OpScan, hostscript.ScanParams{}, &s); err != nil {
		t.Fatal(err)
	}
	if r := s.Reboot; r.CBSRebootPending || !r.WURebootRequired || !r.PendingFileRename {
		t.Errorf("reboot flags %+v, want WU and rename only", r)
	}
	if !rebootAndWait(t, f, c2, "FLAGS-0001") {
		t.Fatal("FLAGS-0001 never came back")
	}
	if err := runOp(t, c2, hostscript.OpScan, hostscript.ScanParams{}, &s); err != nil {
		t.Fatal(err)
	}
	if r := s.Reboot; r.CBSRebootPending || r.WURebootRequired || r.PendingFileRename {
		t.Errorf("reboot flags after the boot %+v, want none", r)
	}
}
