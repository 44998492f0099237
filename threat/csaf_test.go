package threat

import (
	"io"
	"reflect"
	"strings"
	"testing"
)

const mayCSAF = "csaf-msrc-2022-May-converted.json"

func readMayCSAF(t *testing.T, doc string, products map[string]string) (Advisory, error) {
	t.Helper()
	return ReadCSAF(strings.NewReader(doc), "msrc_cve-2022-21972.json", products)
}

// TestReadCSAFReadsMSRCsLayout: CVE-2022-21972 in MSRC's CSAF layout
// (vendor_fix details "FIXEDBUILD:SUBTYPE:URL", products named by their
// product_name branch, MSRC's rating as aggregate_severity) reads to the
// Fix the CVRF XML gives, but for the supersedence MSRC's CSAF does not
// carry.
func TestReadCSAFReadsMSRCsLayout(t *testing.T) {
	fromXML, err := readMay2022(t, DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	want := fromXML.Fixes[0]
	want.Supersedes = nil
	adv, err := readMayCSAF(t, readTestdata(t, mayCSAF), DefaultProducts)
	if err != nil {
		t.Fatal(err)
	}
	if len(adv.Fixes) != 1 || !reflect.DeepEqual(adv.Fixes[0], want) {
		t.Errorf("fixes %+v\nwant [%+v]", adv.Fixes, want)
	}
	if adv.Title != "Point-to-Point Tunneling Protocol Remote Code Execution Vulnerability" || len(adv.Unfixed) != 0 {
		t.Errorf("title %q, unfixed %v", adv.Title, adv.Unfixed)
	}
}

// TestReadCSAFConvertsTheDocumentsVocabulary: restart categories, CVSS
// severities without an MSRC rating, a KB number as the details, product
// groups and the exploit status each reach the Fix as CVRF's would.
func TestReadCSAFConvertsTheDocumentsVocabulary(t *testing.T) {
	may := readTestdata(t, mayCSAF)
	restart := func(category string) string {
		return strings.Replace(may, `"category": "machine"`, `"category": "`+category+`"`, 1)
	}
	noMSRCRating := strings.Replace(may, "https://www.microsoft.com/en-us/msrc/security-update-severity-rating-system", "https://www.bsi.bund.de", 1)
	cvss := func(severity string) string {
		return strings.Replace(noMSRCRating, `"baseSeverity": "HIGH"`, `"baseSeverity": "`+severity+`"`, 1)
	}
	grouped := strings.Replace(strings.Replace(may, `"product_ids": [
            "1",
            "2"
          ],
          "restart_required"`, `"group_ids": ["CSAFGID-0001"],
          "restart_required"`, 1), `"product_tree": {`, `"product_tree": {
    "product_groups": [{"group_id": "CSAFGID-0001", "product_ids": ["1", "2"]}],`, 1)
	for _, tc := range []struct {
		name, doc string
		check     func(Fix) bool
		want      string
	}{
		{"restart none is never", restart("none"), func(f Fix) bool { return f.Reboot == "never" }, "reboot never"},
		{"a service restart may reboot", restart("service"), func(f Fix) bool { return f.Reboot == "may" }, "reboot may"},
		{"a system restart is a reboot", restart("system"), func(f Fix) bool { return f.Reboot == "required" }, "reboot required"},
		{"no restart_required is never", strings.Replace(may, `"restart_required": {
            "category": "machine"
          },`, "", 1), func(f Fix) bool { return f.Reboot == "never" }, "reboot never"},
		{"CVSS HIGH without an MSRC rating", cvss("HIGH"), func(f Fix) bool { return f.Severity == "important" }, "severity important"},
		{"CVSS CRITICAL", cvss("CRITICAL"), func(f Fix) bool { return f.Severity == "critical" }, "severity critical"},
		{"CVSS MEDIUM", cvss("MEDIUM"), func(f Fix) bool { return f.Severity == "moderate" }, "severity moderate"},
		{"CVSS LOW", cvss("LOW"), func(f Fix) bool { return f.Severity == "low" }, "severity low"},
		{"the KB number as the details", strings.Replace(may, `"details": "10.0.20348.707:Security Update:https://catalog.update.microsoft.com/v7/site/Search.aspx?q=KB5013944"`, `"details": "5013944"`, 1),
			func(f Fix) bool { return f.KB == "KB5013944" && len(f.FixedBuild) == 0 }, "KB5013944 with no fixed build"},
		{"product groups", grouped, func(f Fix) bool { return len(f.Products) == 2 && f.OS[0] == "windows-server-2022" }, "both products"},
		{"exploited", strings.Replace(may, "Publicly Disclosed:No;Exploited:No", "Publicly Disclosed:Yes;Exploited:Yes", 1),
			func(f Fix) bool { return f.Exploited && f.ExploitPublic }, "exploited and disclosed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.doc == may {
				t.Fatal("the test's edit of the document did not apply")
			}
			adv, err := readMayCSAF(t, tc.doc, DefaultProducts)
			if err != nil {
				t.Fatal(err)
			}
			if len(adv.Fixes) != 1 || !tc.check(adv.Fixes[0]) {
				t.Errorf("fixes %+v, want %s", adv.Fixes, tc.want)
			}
		})
	}
}

func TestReadCSAFRefusesWhatItCannotUse(t *testing.T) {
	may := readTestdata(t, mayCSAF)
	tree, vulns := strings.Index(may, `"product_tree"`), strings.Index(may, `"vulnerabilities"`)
	vulnFirst := may[:tree] + strings.TrimRight(may[vulns:strings.LastIndex(may, "}")], " \n") + ",\n  " + strings.TrimRight(may[tree:vulns], ", \n") + "\n}\n"
	for _, tc := range []struct {
		name, file, doc string
		products        map[string]string
		want            string
	}{
		{"MSRC's Edge advisory names a version, not a KB", "csaf-msrc_cve-2025-29806.json", "", map[string]string{"Microsoft Edge (Chromium-based)": "edge"},
			"csaf-msrc_cve-2025-29806.json: no vendor_fix remediation names a KB for a product in the document: nothing to roll out"},
		{"BSI's advisory names a release, not a KB", "csaf-bsi-2022-0001.json", "", map[string]string{"CVRF-CSAF-Converter": "converter"},
			"csaf-bsi-2022-0001.json: no vendor_fix remediation names a KB"},
		{"a VEX document", "csaf-vex-2022-evd-uc-01-f-001.json", "", DefaultProducts,
			`csaf-vex-2022-evd-uc-01-f-001.json: document.category is "csaf_vex": this reader takes csaf_security_advisory documents only`},
		{"a product the map does not know", mayCSAF, may, map[string]string{"Windows Server 2022": "windows-server-2022"},
			`vulnerabilities[0] (CVE-2022-21972): the vendor_fix KB5013944 applies to "Windows Server 2022 (Server Core installation)", which the product map does not know: map it to an inventory OS (--product "Windows Server 2022 (Server Core installation)=OS")`},
		{"a string where an array is expected", mayCSAF, strings.Replace(may, `"product_ids": [
            "1",
            "2"
          ],
          "restart_required"`, `"product_ids": "1",
          "restart_required"`, 1), DefaultProducts,
			"vulnerabilities[0] (CVE-2022-21972): remediations.product_ids is a JSON string where an array is expected"},
		{"malformed JSON", mayCSAF, strings.Replace(may, `"cve": "CVE-2022-21972",`, `"cve": "CVE-2022-21972"`, 1), DefaultProducts,
			"vulnerabilities[0]: not well-formed JSON at byte"},
		{"a truncated document", mayCSAF, may[:len(may)/2], DefaultProducts, "not well-formed JSON: the document ends at byte"},
		{"vulnerabilities before the product tree", mayCSAF, vulnFirst, DefaultProducts, "the vulnerabilities array comes before the document or the product_tree"},
		{"a CVRF JSON document", "cvrf-2021-Jan.json", "", jan2021Products, `cvrf-2021-Jan.json: not a CSAF document: no "document" object`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.doc
			if doc == "" {
				doc = readTestdata(t, tc.file)
			}
			_, err := ReadCSAF(strings.NewReader(doc), tc.file, tc.products)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestReadCSAFStreamsALargeDocument reads a 50 MB CSAF document (the
// converted CVE-2022-21972, repeated) in bounded memory.
func TestReadCSAFStreamsALargeDocument(t *testing.T) {
	may := readTestdata(t, mayCSAF)
	open := strings.Index(may, `"vulnerabilities": [`) + len(`"vulnerabilities": [`)
	end := strings.LastIndex(may, "]")
	assertStreams(t, may[:open], may[open:end], ",", "]\n}\n", func(r io.Reader) (Advisory, error) {
		return ReadCSAF(r, "big.json", DefaultProducts)
	})
}
