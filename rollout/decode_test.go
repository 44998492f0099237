package rollout

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

func TestDecodeValidRollout(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "valid.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	r, ranges, diags := DecodeRolloutRanges("valid.hcl", src)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if r.ID != "valid" || r.Patch.KB != "KB958644" || r.Patch.Severity != SeverityCritical || r.Patch.Reboot != RebootRequired {
		t.Errorf("patch decoded as %+v", r.Patch)
	}
	if want := time.Date(2008, 10, 23, 17, 0, 0, 0, time.UTC); !r.Patch.Published.Equal(want) {
		t.Errorf("published %v, want %v", r.Patch.Published, want)
	}
	if got := r.Stages[0].Soak; got != 2*time.Hour {
		t.Errorf("soak %v, want 2h", got)
	}
	emea := r.Waves[0]
	if emea.MaxFailures != (Threshold{Percent: 10}) || emea.MaxParallel != DefaultMaxParallel {
		t.Errorf("emea limits %+v / %d", emea.MaxFailures, emea.MaxParallel)
	}
	if w := emea.Window; w == nil || w.Start != 22*60 || w.End != 6*60 || !reflect.DeepEqual(w.Days, []time.Weekday{time.Sunday, time.Saturday}) || w.TimeZone != "Europe/Paris" {
		t.Errorf("emea window %+v", emea.Window)
	}
	if got := r.Waves[1].Window.Days; len(got) != 5 || got[0] != time.Monday || got[4] != time.Friday {
		t.Errorf("mon-fri decoded as %v", got)
	}
	if got := r.Escalation[0]; got.AtPercent != 50 || got.Channels[0] != "chat" {
		t.Errorf("escalation %+v", got)
	}
	rng, ok := ranges.Lookup("wave[emea].window.hours")
	if !ok || rng.Start.Line != 31 || rng.Start.Column != 19 {
		t.Errorf("range of wave[emea].window.hours = %v, %v; want line 31 column 19", rng, ok)
	}
	// A key never written falls back to its block.
	if rng, ok := ranges.Lookup("wave[apac].max_parallel"); !ok || rng.Start.Line != 35 {
		t.Errorf("fallback range %v, %v; want the wave's header on line 35", rng, ok)
	}
}

// rolloutWith is a minimal valid rollout with body appended inside it.
func rolloutWith(body string) string {
	return `rollout "r" {
  patch {
    kb        = "KB958644"
    severity  = "critical"
    published = "2008-10-23T17:00:00Z"
    reboot    = "never"
    package "windows-xp-sp3" {
      source = "x.exe"
      sha256 = "475c9d945d7d41a5335b5751bf46e7078a67256fd75d906bffb858edc17cdf37"
      type   = "exe"
    }
    evidence {
      file {
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.1.2600.5694"
      }
    }
  }
  wave "w" {
    hosts = "all"
  }
` + body + "}\n"
}

func TestDecodeRolloutDiagnostics(t *testing.T) {
	// Line 22 is the first line of body.
	tests := []struct {
		name, body string
		want       string // "line:col Summary"
	}{
		{"unknown attribute suggests the near one", "  filed_bi = \"a\"\n", "22:3 Unsupported argument"},
		{"unknown block", "  stagee \"x\" {\n  }\n", "22:3 Unsupported block type"},
		{"string where a bool belongs", "  risk {\n    worm_in_the_wild = \"yes\"\n  }\n", "23:24 Incorrect attribute value type"},
		{"single string where a list belongs", "  risk {\n    scanners = \"nmap\"\n  }\n", "23:16 Incorrect attribute value type"},
		{"unknown exposure", "  risk {\n    exposure = \"dmz\"\n  }\n", "23:16 Unknown exposure"},
		{"bad duration", "  stage \"s\" {\n    hosts = \"all\"\n    soak = \"5 minutes\"\n  }\n", "24:12 Invalid duration"},
		{"duplicate stage and wave name", "  stage \"w\" {\n    hosts = \"all\"\n  }\n", "22:9 Duplicate stage name"},
		{"wave after a stage", "  stage \"s\" {\n    hosts = \"all\"\n  }\n  wave \"v\" {\n    hosts = \"all\"\n    after = [\"s\"]\n  }\n", "27:14 Unknown wave"},
		{"wave after itself", "  wave \"v\" {\n    hosts = \"all\"\n    after = [\"v\"]\n  }\n", "24:14 Wave after itself"},
		{"selector with && points at it", "  wave \"v\" {\n    hosts = \"role:mail && role:sql\"\n  }\n", "23:24 Invalid selector"},
		{"window opens and closes at once", "  wave \"v\" {\n    hosts = \"all\"\n    window {\n      hours = \"06:00-06:00\"\n    }\n  }\n", "25:15 Invalid window hours"},
		{"window without hours", "  wave \"v\" {\n    hosts = \"all\"\n    window {\n    }\n  }\n", "24:5 Missing required argument"},
		{"Local is not a time zone", "  wave \"v\" {\n    hosts = \"all\"\n    window {\n      hours = \"22:00-06:00\"\n      time_zone = \"Local\"\n    }\n  }\n", "26:19 Unknown time zone"},
		{"max_parallel zero", "  wave \"v\" {\n    hosts = \"all\"\n    max_parallel = 0\n  }\n", "24:20 Invalid number"},
		{"percentage above 100", "  wave \"v\" {\n    hosts = \"all\"\n    max_failures = \"150%\"\n  }\n", "24:20 Invalid failure threshold"},
		{"fractional count", "  wave \"v\" {\n    hosts = \"all\"\n    max_failures = 2.5\n  }\n", "24:20 Invalid number"},
		{"escalation at breach plus nonsense", "  escalation {\n    at = \"breach+soon\"\n    contacts = [\"a\"]\n    channels = []\n  }\n", "23:10 Invalid escalation point"},
		{"unknown channel type", "  channel \"c\" {\n    type = \"pigeon\"\n  }\n", "23:12 Unknown channel type"},
		{"api key on a channel", "  channel \"c\" {\n    type = \"webhook\"\n    api_key = \"k\"\n  }\n", "24:5 Secrets do not belong in a rollout or inventory"},
		{"duplicate patch block", "  patch {\n  }\n", "22:3 Duplicate patch block"},
		{"variables are not allowed", "  filed_by = var.me\n", "22:14 Variables not allowed"},
		{"channel without a name", "  channel {\n    type = \"email\"\n  }\n", "22:3 Missing name for channel block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, diags := DecodeRollout("r.hcl", []byte(rolloutWith(tt.body)))
			var got []string
			for _, d := range diags {
				s := d.Summary
				if d.Subject != nil {
					s = fmt.Sprintf("%d:%d %s", d.Subject.Start.Line, d.Subject.Start.Column, d.Summary)
				}
				if s == tt.want && d.Severity == hcl.DiagError {
					return
				}
				got = append(got, s+" ("+d.Detail+")")
			}
			t.Errorf("want error %q; got:\n  %s", tt.want, strings.Join(got, "\n  "))
		})
	}
}

func TestDecodeRolloutReportsEveryProblemNotOnlyTheFirst(t *testing.T) {
	_, diags := DecodeRollout("r.hcl", []byte(rolloutWith(`  stage "s" {
    hosts = "rol:mail"
    soak  = "1y"
  }
  risk {
    exposure = "moon"
  }
`)))
	if n := len(diags.Errs()); n != 3 {
		t.Errorf("got %d errors, want 3 (selector, duration, exposure): %v", n, diags)
	}
}

func TestReadableMessagesForSelectorErrors(t *testing.T) {
	tests := []struct{ expr, want string }{
		{"", "the selector is empty"},
		{"region:emea and", `ends after "and"`},
		{"(role:mail", "never closed"},
		{"role:mail)", `unexpected ")"`},
		{"reigon:emea", `did you mean "region"`},
		{"role:", "has no value"},
		{"role:mail role:sql", "join terms with and / or"},
		{"role:mail || role:sql", "write or"},
		{"mail", "not a key:value term"},
		{"and role:mail", "needs a term before it"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			_, err := ParseSelector(tt.expr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSelector(%q) = %v, want an error containing %q", tt.expr, err, tt.want)
			}
		})
	}
}

func TestSelectorMatches(t *testing.T) {
	dc := Host{Name: "par-dc01", Region: "emea", Site: "paris", Role: "domain_controller", Tier: TierProduction, OS: "windows-server-2003-sp2", Tags: []string{"tier0"}}
	lt := Host{Name: "tyo-lt01", Region: "apac", Site: "tokyo", Role: "laptop", Tier: TierProduction, OS: "windows-xp-sp3", Tags: []string{"mobile", "sales"}, Owner: "apac-desktop"}
	tests := []struct {
		expr     string
		dc, lapt bool
	}{
		{"all", true, true},
		{"region:emea", true, false},
		{"region:emea and not role:laptop", true, false},
		{"not region:emea", false, true},
		{"tier:production and (role:laptop or tag:tier0)", true, true},
		{"role:laptop or role:mail and region:emea", false, true}, // and binds tighter
		{"name:*-dc*", true, false},
		{"os:windows-xp*", false, true},
		{"tag:sales", false, true},
		{"owner:apac-*", false, true},
		{"name:tyo-lt0?", false, true},
		{"cluster:*", true, true}, // * matches the empty cluster too
		{"name:PAR-DC01", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			sel, err := ParseSelector(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.Match(dc); got != tt.dc {
				t.Errorf("Match(dc) = %v, want %v", got, tt.dc)
			}
			if got := sel.Match(lt); got != tt.lapt {
				t.Errorf("Match(laptop) = %v, want %v", got, tt.lapt)
			}
		})
	}
}

func TestInventorySelectKeepsInventoryOrder(t *testing.T) {
	inv, diags := LoadInventory(filepath.Join("testdata", "inventory.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	sel, _ := ParseSelector("tier:production and not role:domain_controller")
	var names []string
	for _, h := range inv.Select(sel) {
		names = append(names, h.Name)
	}
	if want := []string{"par-ws01", "tyo-ws01", "tyo-lt01"}; !reflect.DeepEqual(names, want) {
		t.Errorf("Select = %v, want %v", names, want)
	}
	if inv.Hosts[0].Region != "emea" {
		t.Errorf("a host's region defaults from its site; got %q", inv.Hosts[0].Region)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30m", 30 * time.Minute, true},
		{"4h", 4 * time.Hour, true},
		{"7d", 7 * 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true},
		{"", 0, false},
		{"d", 0, false},
		{"-1h", 0, false},
		{"2w", 0, false},
		{"1.5d", 0, false},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && FormatDuration(got) != strings.TrimSuffix(tt.in, "") && tt.in != "1h30m" && tt.in != "1d12h" {
			t.Errorf("FormatDuration(%v) = %q, want %q", got, FormatDuration(got), tt.in)
		}
	}
}

func TestSecretLookingNames(t *testing.T) {
	for name, want := range map[string]bool{
		"password": true, "admin_password": true, "api_key": true, "key": true, "webhook_token": true,
		"client_secret": true, "credential": false, "kb": false, "hotfix": false, "monkey": false, "keyboard": false,
	} {
		if got := looksSecret(name); got != want {
			t.Errorf("looksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestHostWithoutOwnerIsAWarningNotAnError(t *testing.T) {
	src := `site "paris" {
  region    = "emea"
  time_zone = "Europe/Paris"
}
host "h1" {
  address    = "h1:5986"
  os         = "windows-xp-sp3"
  site       = "paris"
  tier       = "lab"
  role       = "workstation"
  credential = "lab-admin"
}
`
	inv, diags := DecodeInventory("inv.hcl", []byte(src))
	if diags.HasErrors() || len(diags) != 1 || diags[0].Summary != "Host without owner" || diags[0].Subject.Start.Line != 5 {
		t.Fatalf("want one owner warning at line 5, got %v", diags)
	}
	if len(inv.Hosts) != 1 {
		t.Errorf("the host stays in the inventory: %+v", inv)
	}
}

func TestCSVAndHCLInventoriesAgree(t *testing.T) {
	fromHCL, diags := LoadInventory(filepath.Join("..", "examples", "inventory.hcl"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	fromCSV, diags := LoadInventory(filepath.Join("..", "examples", "inventory.csv"))
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	// A CSV lists its sites in the order rows first name them.
	bySiteName := func(a, b Site) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(fromHCL.Sites, bySiteName)
	slices.SortFunc(fromCSV.Sites, bySiteName)
	if len(fromHCL.Hosts) < 190 || !reflect.DeepEqual(fromHCL, fromCSV) {
		t.Errorf("the CSV export decodes differently from the HCL inventory (%d vs %d hosts)", len(fromHCL.Hosts), len(fromCSV.Hosts))
	}
}

func TestLoadOptionsInventoryOverridesTheRolloutsOwn(t *testing.T) {
	r, inv, diags := Load(filepath.Join("testdata", "valid.hcl"), LoadOptions{InventoryPath: filepath.Join("..", "examples", "inventory.hcl")})
	if r == nil || inv == nil {
		t.Fatalf("load failed: %v", diags)
	}
	if len(inv.Hosts) != 200 {
		t.Errorf("loaded %d hosts, want the 200 of the overriding inventory", len(inv.Hosts))
	}
}

func TestFilesDeclaredForNameTheOSOrNone(t *testing.T) {
	p := Patch{Evidence: Evidence{Hotfix: "KB1", Files: []FileEvidence{
		{Path: "a", OS: "windows-xp-sp3"}, {Path: "b", OS: "windows-server-2003-sp2"}, {Path: "c"},
	}}}
	got := p.FilesDeclaredFor("windows-xp-sp3")
	if len(got) != 2 || got[0].Path != "a" || got[1].Path != "c" {
		t.Errorf("FilesDeclaredFor = %+v", got)
	}
}
