package threat

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

// jan2021Products maps the products KB4598230 covers in MSRC's January
// 2021 excerpt, MSRC's double space in the Server Core name included.
var jan2021Products = map[string]string{
	"Windows 10 Version 1809 for 32-bit Systems":      "windows-10-1809",
	"Windows 10 Version 1809 for x64-based Systems":   "windows-10-1809",
	"Windows 10 Version 1809 for ARM64-based Systems": "windows-10-1809",
	"Windows Server 2019":                             "windows-server-2019",
	"Windows Server 2019  (Server Core installation)": "windows-server-2019",
}

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(src)
}

// TestReadCVRFJSONReadsJanuary2021: MSRC's CVRF v3 JSON for January 2021
// gives KB4598230 for Windows 10 1809 and Server 2019 with its
// supersedence and reboot, the highest severity of its two CVEs, the
// public disclosure of one, and CVE-2021-1647 as exploited with no fix.
func TestReadCVRFJSONReadsJanuary2021(t *testing.T) {
	adv, err := ReadCVRFJSON(strings.NewReader(readTestdata(t, "cvrf-2021-Jan.json")), "2021-Jan.json", jan2021Products)
	if err != nil {
		t.Fatal(err)
	}
	want := Fix{
		KB: "KB4598230",
		Products: []string{"Windows 10 Version 1809 for 32-bit Systems", "Windows 10 Version 1809 for ARM64-based Systems",
			"Windows 10 Version 1809 for x64-based Systems", "Windows Server 2019", "Windows Server 2019  (Server Core installation)"},
		OS:         []string{"windows-10-1809", "windows-server-2019"},
		CVEs:       []string{"CVE-2021-1648", "CVE-2021-1668"},
		Titles:     []string{"Microsoft splwow64 Elevation of Privilege Vulnerability", "Microsoft DTV-DVD Video Decoder Remote Code Execution Vulnerability"},
		Severity:   "critical",
		Published:  time.Date(2021, 1, 12, 8, 0, 0, 0, time.UTC),
		Reboot:     "required",
		Supersedes: []string{"KB4592440"},
		// January 2021 predates MSRC's FixedBuild.
		FixedBuild:    map[string]string{},
		ExploitPublic: true,
	}
	if len(adv.Fixes) != 1 || !reflect.DeepEqual(adv.Fixes[0], want) {
		t.Errorf("fixes %+v\nwant [%+v]", adv.Fixes, want)
	}
	wantUnfixed := []Unfixed{{CVE: "CVE-2021-1647", Title: "Microsoft Defender Remote Code Execution Vulnerability"}}
	if !reflect.DeepEqual(adv.Unfixed, wantUnfixed) {
		t.Errorf("unfixed %+v, want %+v", adv.Unfixed, wantUnfixed)
	}
	if adv.Title != "January 2021 Security Updates" {
		t.Errorf("title %q", adv.Title)
	}
}

// TestReadCVRFJSONAgreesWithTheXML: the May 2022 XML excerpt, carried
// into the JSON API's shape by the reader's own vocabulary table in
// reverse, reads to the same advisory: the rules are the XML reader's.
func TestReadCVRFJSONAgreesWithTheXML(t *testing.T) {
	fromXML, err := readMay2022(t, DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	// Threat and remediation types are the JSON's integers; the rest is
	// the XML excerpt's values.
	const doc = `{"ProductTree": {"Branch": [{"Items": [{"Items": [
	  {"ProductID": "11923", "Value": "Windows Server 2022"},
	  {"ProductID": "11924", "Value": "Windows Server 2022 (Server Core installation)"}], "Type": 1, "Name": "Windows"}], "Type": 0, "Name": "Microsoft"}]},
	 "Vulnerability": [
	  {"Title": {"Value": "Point-to-Point Tunneling Protocol Remote Code Execution Vulnerability"}, "CVE": "CVE-2022-21972",
	   "Threats": [{"Description": {"Value": "Critical"}, "ProductID": ["11923"], "Type": 3}, {"Description": {"Value": "Critical"}, "ProductID": ["11924"], "Type": 3},
	    {"Description": {"Value": "Publicly Disclosed:No;Exploited:No;Latest Software Release:Exploitation Less Likely;Older Software Release:Exploitation Less Likely;DOS:N/A"}, "Type": 1}],
	   "Remediations": [{"Description": {"Value": "5013944"}, "URL": "https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5013944", "Supercedence": "5012604",
	     "ProductID": ["11923", "11924"], "Type": 2, "RestartRequired": {"Value": "Yes"}, "SubType": "Security Update", "FixedBuild": "10.0.20348.707"},
	    {"Description": {"Value": "5013944"}, "URL": "https://support.microsoft.com/help/5013944", "ProductID": ["11923", "11924"], "Type": 5}],
	   "RevisionHistory": [{"Number": "1.0", "Date": "2022-05-10T07:00:00"}]},
	  {"Title": {"Value": "Microsoft Windows Support Diagnostic Tool (MSDT) Remote Code Execution Vulnerability"}, "CVE": "CVE-2022-30190",
	   "Threats": [{"Description": {"Value": "Publicly Disclosed:Yes;Exploited:Yes;Latest Software Release:Exploitation Detected;Older Software Release:Exploitation Detected;DOS:N/A"}, "Type": 1}],
	   "Remediations": [], "RevisionHistory": [{"Number": "1.0", "Date": "2022-05-30T07:00:00"}]}]}`
	fromJSON, err := ReadCVRFJSON(strings.NewReader(doc), "2022-May.json", DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	if fromJSON.Format != "MSRC CVRF v3 JSON" || fromXML.Format != "MSRC CVRF 1.1" {
		t.Errorf("formats %q and %q", fromJSON.Format, fromXML.Format)
	}
	fromJSON.Format = fromXML.Format
	if !reflect.DeepEqual(fromJSON, fromXML) {
		t.Errorf("from JSON %+v\nfrom XML  %+v", fromJSON, fromXML)
	}
}

func TestReadCVRFJSONRefusesWhatItCannotUse(t *testing.T) {
	jan := readTestdata(t, "cvrf-2021-Jan.json")
	second := strings.Index(jan, `"CVE": "CVE-2021-1668"`)
	fixedStart := strings.Index(jan, `,
    {
      "Title": {"Value": "Microsoft DTV-DVD`)
	onlyUnfixed := jan[:fixedStart] + "\n  ]\n}\n"
	tree, vulns := strings.Index(jan, `"ProductTree"`), strings.Index(jan, `"Vulnerability"`)
	vulnFirst := jan[:tree] + strings.TrimRight(jan[vulns:strings.LastIndex(jan, "}")], " \n") + ",\n  " + strings.TrimRight(jan[tree:vulns], ", \n") + "\n}\n"
	for _, tc := range []struct {
		name, doc string
		products  map[string]string
		want      string
	}{
		{"malformed JSON", strings.Replace(jan, `"CVE": "CVE-2021-1668",`, `"CVE": "CVE-2021-1668",,`, 1), jan2021Products, "2021-Jan.json: Vulnerability[1]: not well-formed JSON at byte"},
		{"a truncated document", jan[:second], jan2021Products, "2021-Jan.json: Vulnerability[1]: not well-formed JSON: the document ends at byte"},
		{"a string where an array is expected", strings.Replace(jan, `"ProductID": ["11569"], "Type": 0`, `"ProductID": "11569", "Type": 0`, 1), jan2021Products,
			"2021-Jan.json: Vulnerability[1] (CVE-2021-1668): Threats.ProductID is a JSON string where an array is expected"},
		{"a number where text is expected", strings.Replace(jan, `"InitialReleaseDate": "2021-01-12T08:00:00Z"`, `"InitialReleaseDate": 20210112`, 1), jan2021Products,
			"2021-Jan.json: DocumentTracking.InitialReleaseDate is a JSON number where a string is expected"},
		{"no vendor fix", onlyUnfixed, jan2021Products, "2021-Jan.json: no Vendor Fix remediation names a KB for a product in the document"},
		{"a product the map does not know", jan, DefaultProducts,
			`2021-Jan.json: Vulnerability[1] (CVE-2021-1668): the Vendor Fix KB4598230 applies to "Windows 10 Version 1809 for 32-bit Systems", which the product map does not know: map it to an inventory OS (--product "Windows 10 Version 1809 for 32-bit Systems=OS")`},
		{"vulnerabilities before the product tree", vulnFirst, jan2021Products, "2021-Jan.json: the Vulnerability array comes before the ProductTree"},
		{"an array", "[]", jan2021Products, "2021-Jan.json: not a CVRF JSON document: the document is an array, not a JSON object"},
		{"a CSAF document", readTestdata(t, "csaf-bsi-2022-0001.json"), jan2021Products, "2021-Jan.json: not a CVRF JSON document: no DocumentTracking, ProductTree or Vulnerability"},
		{"data after the document", jan + "{}", jan2021Products, "2021-Jan.json: data after the end of the document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadCVRFJSON(strings.NewReader(tc.doc), "2021-Jan.json", tc.products)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// mapWith is m with the product named from renamed to to.
func mapWith(m map[string]string, from, to string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k == from {
			k = to
		}
		out[k] = v
	}
	return out
}

// TestReadCVRFJSONStreamsALargeDocument reads a 50 MB CVRF JSON document
// (the January 2021 excerpt's CVE-2021-1668, repeated) and samples the
// heap as it goes: it stays a fraction of the document, as a stream does.
func TestReadCVRFJSONStreamsALargeDocument(t *testing.T) {
	jan := readTestdata(t, "cvrf-2021-Jan.json")
	start := strings.Index(jan, `    {
      "Title": {"Value": "Microsoft DTV-DVD`)
	end := strings.Index(jan, `,
    {
      "Title": {"Value": "Microsoft splwow64`)
	// head ends after CVE-2021-1647, the excerpt's first vulnerability.
	head, vuln := jan[:start], jan[start:end]
	assertStreams(t, head, vuln, ",\n", "\n  ]\n}\n", func(r io.Reader) (Advisory, error) {
		return ReadCVRFJSON(r, "big.json", jan2021Products)
	})
}

// assertStreams feeds read a 50 MB document made of head, element
// repeated with sep between, and tail, and checks that the heap stays a
// fraction of it and that the elements fold into one fix.
func assertStreams(t *testing.T, head, element, sep, tail string, read func(io.Reader) (Advisory, error)) {
	t.Helper()
	const size = 50 << 20
	n := size/len(element) + 1
	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, head)
		for i := range n {
			if i > 0 {
				if _, err := io.WriteString(pw, sep); err != nil {
					return
				}
			}
			if _, err := io.WriteString(pw, element); err != nil {
				return
			}
		}
		_, _ = io.WriteString(pw, tail)
		pw.Close()
	}()
	s := &heapSampler{r: pr, every: 4 << 20}
	runtime.GC()
	adv, err := read(s)
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
