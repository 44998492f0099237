package threat

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/patchway/patchway/rollout"
)

func readMay2022(t *testing.T, products map[string]string) (Advisory, error) {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "cvrf-2022-May.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return ReadCVRF(f, "2022-May.xml", products)
}

// TestReadCVRFReadsMay2022: MSRC's May 2022 excerpt gives KB5013944 for
// Windows Server 2022 with its build, supersedence and reboot, and
// CVE-2022-30190 as exploited with no fix.
func TestReadCVRFReadsMay2022(t *testing.T) {
	adv, err := readMay2022(t, DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	if len(adv.Fixes) != 1 {
		t.Fatalf("%d fixes, want KB5013944 alone: %+v", len(adv.Fixes), adv.Fixes)
	}
	f := adv.Fixes[0]
	want := Fix{KB: "KB5013944", Products: []string{"Windows Server 2022", "Windows Server 2022 (Server Core installation)"},
		OS: []string{"windows-server-2022"}, CVEs: []string{"CVE-2022-21972"}, Severity: "critical",
		Published: time.Date(2022, 5, 10, 7, 0, 0, 0, time.UTC), Reboot: "required", Supersedes: []string{"KB5012604"}}
	if f.KB != want.KB || fmt.Sprint(f.Products) != fmt.Sprint(want.Products) || fmt.Sprint(f.OS) != fmt.Sprint(want.OS) ||
		fmt.Sprint(f.CVEs) != fmt.Sprint(want.CVEs) || f.Severity != want.Severity || !f.Published.Equal(want.Published) ||
		f.Reboot != want.Reboot || fmt.Sprint(f.Supersedes) != fmt.Sprint(want.Supersedes) ||
		f.FixedBuild["windows-server-2022"] != "10.0.20348.707" || f.Exploited || f.ExploitPublic {
		t.Errorf("fix %+v, want %+v with FixedBuild 10.0.20348.707, neither exploited nor disclosed", f, want)
	}
	if len(adv.Unfixed) != 1 || adv.Unfixed[0].CVE != "CVE-2022-30190" {
		t.Errorf("unfixed %+v, want CVE-2022-30190", adv.Unfixed)
	}
}

// TestExploitStatusIsReadFieldByField: "Yes" elsewhere in the string (or
// "No" for the field) never makes a fact.
func TestExploitStatusIsReadFieldByField(t *testing.T) {
	for _, tc := range []struct {
		status            string
		public, exploited bool
	}{
		{"Publicly Disclosed:No;Exploited:No;Latest Software Release:Exploitation Less Likely;DOS:N/A", false, false},
		{"Publicly Disclosed:Yes;Exploited:No;Latest Software Release:Exploitation More Likely", true, false},
		{"Publicly Disclosed:No;Exploited:Yes;Latest Software Release:Exploitation Detected", false, true},
		{"Publicly Disclosed:No;Exploited:No;Note:Yes", false, false},
	} {
		p, e := exploitStatus([]cvrfThreat{{Type: "Exploit Status", Description: tc.status}})
		if p != tc.public || e != tc.exploited {
			t.Errorf("%q: disclosed %t exploited %t, want %t %t", tc.status, p, e, tc.public, tc.exploited)
		}
	}
}

func TestReadCVRFRefusesWhatItCannotUse(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "cvrf-2022-May.xml"))
	if err != nil {
		t.Fatal(err)
	}
	may := string(src)
	noFix := may[:strings.Index(may, `<vuln:Vulnerability Ordinal="8">`)] + may[strings.Index(may, `<vuln:Vulnerability Ordinal="83">`):]
	for _, tc := range []struct {
		name, doc string
		products  map[string]string
		want      string
	}{
		{"malformed XML", may[:len(may)/2] + "<<", DefaultProducts, "2022-May.xml: not well-formed XML"},
		{"not CVRF", `<?xml version="1.0"?><csaf/>`, DefaultProducts, "not a CVRF document: the root element is <csaf>"},
		{"no vendor fix", noFix, DefaultProducts, "no Vendor Fix remediation names a KB"},
		{"a product the map does not know", may, map[string]string{"Windows Server 2022": "windows-server-2022"},
			`Vulnerability 1 (CVE-2022-21972): the Vendor Fix KB5013944 applies to "Windows Server 2022 (Server Core installation)", which the product map does not know`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCVRF(strings.NewReader(tc.doc), "2022-May.xml", tc.products)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadCVRFStreamsALargeDocument reads a 50 MB CVRF document (the
// excerpt's fixed vulnerability, repeated) and samples the heap as it
// goes: it stays a fraction of the document, as a stream does.
func TestReadCVRFStreamsALargeDocument(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "cvrf-2022-May.xml"))
	if err != nil {
		t.Fatal(err)
	}
	may := string(src)
	start := strings.Index(may, `<vuln:Vulnerability Ordinal="8">`)
	end := strings.Index(may, `<vuln:Vulnerability Ordinal="83">`)
	head, vuln, tail := may[:start], may[start:end], "</cvrf:cvrfdoc>\n"
	const size = 50 << 20
	n := size/len(vuln) + 1
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, head)
		for range n {
			if _, err := io.WriteString(pw, vuln); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, tail)
		pw.Close()
	}()
	s := &heapSampler{r: pr, every: 4 << 20}
	runtime.GC()
	adv, err := ReadCVRF(s, "big.xml", DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	if len(adv.Fixes) != 1 || s.read < size {
		t.Fatalf("read %d bytes into %d fixes", s.read, len(adv.Fixes))
	}
	if s.peak > size/3 {
		t.Errorf("heap reached %d MiB reading a %d MiB document", s.peak>>20, size>>20)
	}
	t.Logf("%d MiB document, %d vulnerabilities: heap peak %d MiB", s.read>>20, n, s.peak>>20)
}

type heapSampler struct {
	r           io.Reader
	read, every int
	next        int
	peak        uint64
}

func (s *heapSampler) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	if s.read >= s.next {
		s.next += s.every
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		s.peak = max(s.peak, m.HeapAlloc)
	}
	return n, err
}

// TestDraftValidatesOnceFilledIn drafts KB5013944 from the May 2022
// excerpt with the example template: the draft fails validate on its
// placeholders alone, and validates once they are filled.
func TestDraftValidatesOnceFilledIn(t *testing.T) {
	if Placeholder != rollout.Placeholder {
		t.Fatalf("threat.Placeholder %q and rollout.Placeholder %q differ", Placeholder, rollout.Placeholder)
	}
	adv, err := readMay2022(t, DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join("..", "examples", "draft-template.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := filepath.Abs(filepath.Join("..", "examples", "inventory-modern.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := Draft(adv, adv.Fixes[0], DraftOptions{Source: "2022-May.xml", FiledBy: "alice", Inventory: inv, Template: tmpl, TemplateName: "draft-template.hcl"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	load := func(s string) (int, string) {
		path := filepath.Join(dir, "kb5013944.hcl")
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, diags := rollout.Load(path, rollout.LoadOptions{})
		var summaries []string
		for _, d := range diags {
			if d.Severity == hcl.DiagError {
				summaries = append(summaries, d.Summary+": "+d.Detail)
			}
		}
		return len(summaries), strings.Join(summaries, "\n")
	}
	if n, msg := load(string(src)); n != 2 || strings.Count(msg, "Placeholder to fill in") != 2 {
		t.Errorf("the draft has %d errors, want its 2 placeholders: %s\n%s", n, msg, src)
	}
	filled := strings.NewReplacer(
		`"FILL IN: the package's path on the distribution point (KB5013944 for windows-server-2022)"`, `"KB5013944/windows10.0-kb5013944-x64.msu"`,
		`"FILL IN: the package's SHA-256, from the Microsoft Update Catalog"`, `"`+strings.Repeat("ab", 32)+`"`).Replace(string(src))
	if n, msg := load(filled); n != 0 {
		t.Errorf("the filled draft does not validate: %s\n%s", msg, filled)
	}
	if _, err := Draft(adv, adv.Fixes[0], DraftOptions{Template: []byte("patch {\n}\n"), TemplateName: "t.hcl"}); err == nil || !strings.Contains(err.Error(), `a "patch" block is not the team's to keep`) {
		t.Errorf("a template with a patch block: %v", err)
	}
}

// TestProductNamesFoldWhiteSpace: MSRC's "Windows Server 2019
// (Server Core installation)" with two spaces maps as the one-space name
// does; a different name does not.
func TestProductNamesFoldWhiteSpace(t *testing.T) {
	if os, ok := lookupProduct(DefaultProducts, "Windows Server 2019  (Server Core installation)"); !ok || os != "windows-server-2019" {
		t.Errorf("double-spaced Server 2019 Core maps to %q, %v; want windows-server-2019", os, ok)
	}
	if os, ok := lookupProduct(DefaultProducts, "Windows Server 2019 (Server Core)"); ok {
		t.Errorf("an unknown product maps to %q", os)
	}
}

// TestReadCVRFReadsOctober2019: one CVE fixed by two KBs for Internet
// Explorer 11 on Server 2012 R2 (the Monthly Rollup and the IE
// Cumulative) drafts two rollouts, each with its own supersedence; with
// no release date in the document, the publication is the CVE's first
// revision.
func TestReadCVRFReadsOctober2019(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "cvrf-2019-Oct.xml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	adv, err := ReadAdvisory(f, "2019-Oct.xml", DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, fx := range adv.Fixes {
		got = append(got, fmt.Sprintf("%s %v %v %s %s %s %v", fx.KB, fx.OS, fx.CVEs, fx.Severity, fx.Reboot, fx.Published.Format(time.RFC3339), fx.Supersedes))
	}
	want := []string{
		"KB4519974 [windows-server-2012-r2] [CVE-2019-0608] low required 2019-10-08T07:00:00Z [KB4524135]",
		"KB4520005 [windows-server-2012-r2] [CVE-2019-0608] low required 2019-10-08T07:00:00Z [KB4524156]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || adv.Format != "MSRC CVRF 1.1" {
		t.Errorf("fixes\n%s\nwant\n%s (format %q)", strings.Join(got, "\n"), strings.Join(want, "\n"), adv.Format)
	}
}
