package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/net/html"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/report/reporttest"
	"github.com/patchway/patchway/rollout"
)

// updateGolden rewrites the report golden files from the current code:
// go test ./report -run TestReportFormats -update
var updateGolden = flag.Bool("update", false, "rewrite the report golden files in testdata/golden")

// fixtureReport is the report of reporttest.Fixture, built by the real
// Build with the default policies.
func fixtureReport(t testing.TB) contract.Report {
	t.Helper()
	rep, err := Build(context.Background(), testPolicy(t), reporttest.Fixture())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// view is a format and its options, as the report command asks for them.
type view struct {
	format string
	Options
}

func render(t *testing.T, rep contract.Report, v view) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, rep, v.format, v.Options); err != nil {
		t.Fatalf("render %s: %v", v.format, err)
	}
	return b.String()
}

// TestReportFormats renders the fixture in every format, compares it with
// its golden file and checks what a reader must find there.
func TestReportFormats(t *testing.T) {
	rep := fixtureReport(t)
	tests := []struct {
		golden string
		opts   view
		want   []string
		not    []string
	}{
		{"report.txt", view{format: "table"},
			[]string{
				"Compliance report  ms08-067  KB958644 (critical)  generated 2026-12-02 12:00Z",
				"50.0% compliant: 6 of 12 applicable hosts proven patched (13 hosts, 1 not applicable)",
				"BY REGION", "BY SITE", "BY TIER", "BY ROLE",
				"UNKNOWN OWNER OR PURPOSE (2 hosts",
				`SRV-BER-FILE1  owner "?", no purpose`,
				"NOT COMPLIANT (6 of 12 applicable hosts",
				"evidence: " + `C:\Windows\System32\netapi32.dll 5.1.2600.3462 (expected >= 5.1.2600.5694)`,
			},
			[]string{"WS-PAR-0001", "PROVISIONAL", "WS-TYO-0002"}},
		{"report-all.txt", view{format: "table", Options: Options{All: true}},
			[]string{"HOSTS (13)", "WS-PAR-0001", "WS-TYO-0002"}, nil},
		{"report.md", view{format: "md"},
			[]string{"# Compliance report: ms08-067", "## By region", "| emea | 6 | 4 | 66.6% |", "## Unknown owner or purpose (2)", "## Not compliant (6 of 12 applicable hosts)"},
			[]string{"WS-PAR-0001"}},
		{"report.csv", view{format: "csv"},
			[]string{"name,region,site,tier,role,owner,purpose,state,reasons,evidence\n", "WS-PAR-0001,emea,paris,production,workstation"}, nil},
		{"report.json", view{format: "json"},
			[]string{`"compliance_percent": 50,`, `"unowned": [`, `"name": "WS-PAR-0001"`}, []string{"hosts_gzip"}},
		{"report.html", view{format: "html"},
			[]string{"<title>Compliance report ms08-067 (KB958644)</title>", "<svg", "50.0%", "Unknown owner or purpose (2)", "not_effective"},
			[]string{"<script", "WS-PAR-0001"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			got := render(t, rep, tt.opts)
			path := filepath.Join("testdata", "golden", tt.golden)
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden file (create it with -update): %v", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (rerun with -update if the change is intended):\n%s", tt.opts.format, path, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(got, n) {
					t.Errorf("unexpected %q", n)
				}
			}
		})
	}
}

func TestReportTableListsTheMostUrgentHostsFirst(t *testing.T) {
	got := render(t, fixtureReport(t), view{format: "table"})
	order := []string{"WS-PAR-0002", "WS-DAL-0002", "WS-TYO-0001", "WS-BER-0001", "LT-DAL-0001", "SRV-DAL-SQL1"}
	last := -1
	for _, h := range order {
		i := strings.Index(got, "\n"+h+" ")
		if i < last {
			t.Errorf("%s is listed out of order (not_effective, failed, unknown, pending_reboot, unreachable, excepted):\n%s", h, got)
		}
		last = i
	}
}

func TestReportProvisionalIsMarkedInEveryHumanFormat(t *testing.T) {
	rep := fixtureReport(t)
	rep.Provisional = "rollout still running"
	tests := []struct {
		format, want string
	}{
		{"table", "PROVISIONAL (rollout still running)"},
		{"md", "> **Provisional** (rollout still running)"},
		{"html", "<strong>Provisional</strong> (rollout still running)"},
		{"json", `"provisional": "rollout still running"`},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			if got := render(t, rep, view{format: tt.format}); !strings.Contains(got, tt.want) {
				t.Errorf("missing %q in:\n%s", tt.want, got)
			}
		})
	}
}

func TestReportCSVHasOneRowPerHost(t *testing.T) {
	rep := fixtureReport(t)
	rep.Hosts = append(rep.Hosts, contract.HostReport{Name: "=HYPERLINK(\"http://evil\")", Owner: "-1+1", State: rollout.StateUnknown,
		Reasons: []string{"a, b", "line\nbreak"}})
	rows, err := csv.NewReader(strings.NewReader(render(t, rep, view{format: "csv"}))).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v", err)
	}
	byName := map[string][]string{}
	for _, r := range rows[1:] {
		byName[r[0]] = r
	}
	tests := []struct {
		name      string
		got, want string
	}{
		{"the header names the columns", strings.Join(rows[0], ","), strings.Join(csvHeader, ",")},
		{"every host has its row", fmt.Sprint(len(rows) - 1), fmt.Sprint(len(rep.Hosts))},
		{"reasons are joined in one cell", byName["WS-PAR-0002"][8], `KB958644 is present but the fix is not in effect: C:\Windows\System32\netapi32.dll is 5.1.2600.3462, below 5.1.2600.5694`},
		{"evidence lines are joined in one cell", byName["WS-PAR-0002"][9], `C:\Windows\System32\netapi32.dll 5.1.2600.3462 (expected >= 5.1.2600.5694); hotfix KB958644 present`},
		{"a cell that would run as a formula is quoted", byName[`'=HYPERLINK("http://evil")`][5], "'-1+1"},
		{"commas and line breaks stay inside their cell", byName[`'=HYPERLINK("http://evil")`][8], "a, b; line\nbreak"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestReportJSONExpandsAGzippedHostList(t *testing.T) {
	rep := fixtureReport(t)
	for i := range 1000 {
		h := rep.Hosts[i%len(rep.Hosts)]
		h.Name = fmt.Sprintf("%s-%04d", h.Name, i)
		rep.Hosts = append(rep.Hosts, h)
	}
	compact, err := rep.Compact()
	if err != nil || compact.HostsGzip == nil {
		t.Fatalf("compact: %v (gzipped %t)", err, compact.HostsGzip != nil)
	}
	expanded, err := compact.Expanded()
	if err != nil {
		t.Fatal(err)
	}
	out := render(t, expanded, view{format: "json"})
	var back contract.Report
	if err := json.Unmarshal([]byte(out), &back); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "hosts_gzip") || len(back.Hosts) != len(rep.Hosts) {
		t.Errorf("JSON holds %d hosts (want %d) and gzip %t", len(back.Hosts), len(rep.Hosts), strings.Contains(out, "hosts_gzip"))
	}
}

// TestReportHTMLIsSelfContainedAndEscaped parses the page: nothing is
// loaded from elsewhere, nothing runs, and names from an inventory stay
// text, hostile or not.
func TestReportHTMLIsSelfContainedAndEscaped(t *testing.T) {
	rep := fixtureReport(t)
	hostile := `<script>alert("owned")</script><img src=http://evil/x.png>`
	rep.Hosts[3].Name = hostile
	rep.Hosts[3].Reasons = append(rep.Hosts[3].Reasons, `"><a href="http://evil">click</a>`)
	rep.Unowned = append(rep.Unowned, contract.UnownedHost{Host: hostile, Reason: "no owner"})
	page := render(t, rep, view{format: "html", Options: Options{All: true}})
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("the page does not parse: %v", err)
	}
	var problems []string
	texts := map[string]bool{}
	rects := 0
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		switch n.Type {
		case html.ElementNode:
			switch n.Data {
			case "script", "img", "link", "iframe", "object", "embed", "a", "image", "use", "foreignObject":
				problems = append(problems, "element <"+n.Data+">")
			case "rect":
				rects++
			}
			for _, a := range n.Attr {
				switch strings.ToLower(a.Key) {
				case "src", "href", "srcset", "action", "formaction", "data", "poster", "background":
					problems = append(problems, a.Key+"="+a.Val+" on <"+n.Data+">")
				}
				if strings.HasPrefix(strings.ToLower(a.Key), "on") {
					problems = append(problems, "event handler "+a.Key)
				}
				if a.Key == "style" && strings.Contains(a.Val, "url(") {
					problems = append(problems, "style url: "+a.Val)
				}
			}
		case html.TextNode:
			texts[n.Data] = true
			if n.Parent != nil && n.Parent.Data == "style" && (strings.Contains(n.Data, "url(") || strings.Contains(n.Data, "@import")) {
				problems = append(problems, "stylesheet loads something")
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, p := range problems {
		t.Errorf("the page is not self-contained or not escaped: %s", p)
	}
	if !texts[hostile] {
		t.Errorf("the hostile host name is not shown as text")
	}
	// One segment per region and state present, plus the legend.
	if want := 3 + 4 + 3 + 4; rects < want {
		t.Errorf("the chart has %d rects, want at least %d", rects, want)
	}
}

func TestRenderRefusesAnUnknownFormatListingTheKnownOnes(t *testing.T) {
	err := Render(&bytes.Buffer{}, fixtureReport(t), "pdf", Options{})
	if err == nil || !strings.Contains(err.Error(), `"pdf"`) || !strings.Contains(err.Error(), "table, json, csv, md or html") {
		t.Errorf("error = %v, want one naming pdf and listing table, json, csv, md or html", err)
	}
	for _, f := range []string{"table", "json", "csv", "md", "html"} {
		if !Known(f) {
			t.Errorf("Known(%q) = false", f)
		}
	}
}
