package threat

import (
	"io"
	"maps"
	"reflect"
	"strings"
	"testing"
)

// TestReadAdvisoryTellsTheFormats: each real document reads through
// ReadAdvisory to what its own reader gives, also behind a byte order
// mark and white space, and a CSAF document whose first key is
// "$schema" is still CSAF.
func TestReadAdvisoryTellsTheFormats(t *testing.T) {
	may := readTestdata(t, mayCSAF)
	withSchema := `{"$schema": "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json", ` + strings.TrimPrefix(may, "{")
	for _, tc := range []struct {
		name, doc string
		read      func(string) (Advisory, error)
	}{
		{"CVRF XML", readTestdata(t, "cvrf-2022-May.xml"), func(s string) (Advisory, error) {
			return ReadCVRF(strings.NewReader(s), "doc", DefaultProducts)
		}},
		{"CVRF JSON", readTestdata(t, "cvrf-2021-Jan.json"), func(s string) (Advisory, error) {
			return ReadCVRFJSON(strings.NewReader(s), "doc", jan2021Products)
		}},
		{"CSAF", may, func(s string) (Advisory, error) { return ReadCSAF(strings.NewReader(s), "doc", DefaultProducts) }},
		{"CSAF with $schema first", withSchema, func(s string) (Advisory, error) {
			return ReadCSAF(strings.NewReader(s), "doc", DefaultProducts)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := tc.read(tc.doc)
			if err != nil {
				t.Fatal(err)
			}
			for _, prefix := range []string{"", "\xef\xbb\xbf", " \r\n\t", "\xef\xbb\xbf\n"} {
				got, err := ReadAdvisory(strings.NewReader(prefix+tc.doc), "doc", allTestProducts())
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("prefix %q: %+v, %v\nwant %+v", prefix, got, err, want)
				}
			}
		})
	}
}

func TestReadAdvisoryRefusesWhatItCannotTell(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"an empty file", "", "advisory: empty: neither XML (CVRF) nor JSON (CVRF v3, CSAF 2.0)"},
		{"white space", "  \n", "advisory: empty: neither XML (CVRF) nor JSON (CVRF v3, CSAF 2.0)"},
		{"text", "KB5013944\n", "advisory: neither XML (CVRF) nor JSON (CVRF v3, CSAF 2.0)"},
		{"a JSON array", `[{"document": {}}]`, "advisory: neither XML (CVRF) nor JSON (CVRF v3, CSAF 2.0)"},
		{"a JSON object of neither", `{"catalogVersion": "2025.08.25", "vulnerabilities_count": 1}`,
			`advisory: a JSON object with no key of CSAF 2.0 ("document") or of CVRF ("DocumentTitle", "DocumentTracking", ...)`},
		{"no known key in the first 64 KiB", `{"notes": "` + strings.Repeat("x", sniffSize) + `", "document": {}}`,
			"advisory: no top-level key of CSAF 2.0 (\"document\") or of CVRF (\"DocumentTitle\", \"DocumentTracking\", ...) in the first 64 KiB"},
		{"malformed JSON before a known key", `{"notes" 1}`, "advisory: not well-formed JSON at byte"},
		{"a truncated object", `{"notes": [1, 2`, "advisory: not well-formed JSON: the document ends at byte"},
		{"malformed XML", "<cvrf:cvrfdoc><", "advisory: not well-formed XML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadAdvisory(strings.NewReader(tc.doc), "advisory", DefaultProducts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// allTestProducts maps every product the test documents name.
func allTestProducts() map[string]string {
	m := maps.Clone(DefaultProducts)
	maps.Copy(m, jan2021Products)
	m["Microsoft Edge (Chromium-based)"] = "edge"
	m["CVRF-CSAF-Converter"] = "converter"
	return m
}

// FuzzReadAdvisory feeds ReadAdvisory the test documents, their
// truncations and whatever the fuzzer makes of them: it never panics,
// refuses with the file's name, and what it accepts is a usable
// advisory (KBs, mapped OS names, the reboot and severity vocabulary).
func FuzzReadAdvisory(f *testing.F) {
	for _, name := range []string{"cvrf-2022-May.xml", "cvrf-2021-Jan.json", mayCSAF, "csaf-msrc_cve-2025-29806.json", "csaf-bsi-2022-0001.json", "csaf-vex-2022-evd-uc-01-f-001.json"} {
		doc := readTestdata(f, name)
		f.Add([]byte(doc))
		for _, cut := range []int{1, len(doc) / 3, len(doc) / 2, len(doc) - 2} {
			f.Add([]byte(doc[:cut]))
		}
	}
	products := allTestProducts()
	oses := map[string]bool{}
	for _, os := range products {
		oses[os] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		adv, err := ReadAdvisory(strings.NewReader(string(data)), "fuzz", products)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz: ") {
				t.Fatalf("an error that does not name the file: %v", err)
			}
			return
		}
		if len(adv.Fixes) == 0 {
			t.Fatal("an advisory accepted with no fix")
		}
		for _, fx := range adv.Fixes {
			if _, ok := kbOf(fx.KB); !ok || !strings.HasPrefix(fx.KB, "KB") {
				t.Errorf("fix %q is not a KB", fx.KB)
			}
			if len(fx.OS) == 0 || len(fx.Products) == 0 || len(fx.CVEs) == 0 || len(fx.CVEs) != len(fx.Titles) {
				t.Errorf("fix %s: products %v, OS %v, CVEs %v, titles %v", fx.KB, fx.Products, fx.OS, fx.CVEs, fx.Titles)
			}
			for _, o := range fx.OS {
				if !oses[o] {
					t.Errorf("fix %s: OS %q is none the map gives", fx.KB, o)
				}
			}
			if fx.Reboot != "required" && fx.Reboot != "may" && fx.Reboot != "never" {
				t.Errorf("fix %s: reboot %q", fx.KB, fx.Reboot)
			}
			if fx.Severity != "" && severityRank[fx.Severity] == 0 {
				t.Errorf("fix %s: severity %q", fx.KB, fx.Severity)
			}
		}
	})
}

// TestReadAdvisoryKeepsTheSizeLimit feeds endless documents of each JSON
// kind through ReadAdvisory: the reader behind it stops at
// MaxAdvisorySize instead of reading on.
func TestReadAdvisoryKeepsTheSizeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: this test reads 512 MiB of white space (make test runs it)")
	}
	for _, head := range []string{`{"DocumentTitle": {"Value": "x"}, "ProductTree": {}, "Vulnerability": [`, `{"document": {"category": "csaf_security_advisory"}, "product_tree": {}, "vulnerabilities": [`} {
		_, err := ReadAdvisory(io.MultiReader(strings.NewReader(head), spaces{}), "big.json", DefaultProducts)
		if err == nil || !strings.Contains(err.Error(), "big.json: over 256 MiB") {
			t.Errorf("%s...: error %v, want the size limit", head, err)
		}
	}
}
