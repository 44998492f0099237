package threat

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/patchway/patchway/internal/fixture"
)

// realKEV is CISA's catalogue 2025.08.25 (testdata/README.md).
func realKEV(t *testing.T) []byte {
	t.Helper()
	b, err := fixture.KEVCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReadKEVReadsCISAsCatalogue(t *testing.T) {
	k, err := ReadKEV(bytes.NewReader(realKEV(t)), "known_exploited_vulnerabilities.json")
	if err != nil {
		t.Fatal(err)
	}
	if k.CatalogVersion != "2025.08.25" || len(k.Vulnerabilities) != 1404 || k.Ransomware() != 293 || len(k.SHA256) != 64 {
		t.Errorf("catalogue %s: %d entries, %d known ransomware, sha256 %q; want 2025.08.25, 1404, 293",
			k.CatalogVersion, len(k.Vulnerabilities), k.Ransomware(), k.SHA256)
	}
	want := KEVEntry{Name: "Microsoft Windows LSA Spoofing Vulnerability", Vendor: "Microsoft", Product: "Windows",
		DateAdded: "2022-07-01", DueDate: "2022-07-22", Ransomware: "Unknown"}
	if got := k.Vulnerabilities["CVE-2022-26925"]; got != want {
		t.Errorf("CVE-2022-26925 = %+v, want %+v", got, want)
	}
	if got := k.Vulnerabilities["CVE-2022-30190"]; got.Ransomware != "Known" || got.DueDate != "2022-07-05" {
		t.Errorf("CVE-2022-30190 = %+v, want due 2022-07-05, ransomware Known", got)
	}
	data, err := k.PolicyData()
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]KEV
	if err := json.Unmarshal(data, &back); err != nil || len(back["kev"].Vulnerabilities) != 1404 {
		t.Errorf("policy data does not read back: %v", err)
	}
}

// TestReadKEVRefusesBadCatalogues: each bad file is refused with the file
// and the element named.
func TestReadKEVRefusesBadCatalogues(t *testing.T) {
	entry := `{"cveID":"CVE-2022-26925","vendorProject":"Microsoft","product":"Windows","vulnerabilityName":"LSA","dateAdded":"2022-07-01","shortDescription":"x","requiredAction":"y","dueDate":"2022-07-22","knownRansomwareCampaignUse":"Unknown"}`
	catalogue := func(count int, entries ...string) string {
		return `{"title":"t","catalogVersion":"1","dateReleased":"2025-08-25T00:00:00Z","count":` +
			itoa(count) + `,"vulnerabilities":[` + strings.Join(entries, ",") + `]}`
	}
	without := func(field string) string {
		var m map[string]any
		_ = json.Unmarshal([]byte(entry), &m)
		delete(m, field)
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"not JSON", `{"catalogVersion": "1",, }`, "kev.json: not valid JSON at byte"},
		{"cut short", catalogue(1, entry)[:120], "kev.json: not valid JSON"},
		{"an array", `[]`, "the top level is not a JSON object"},
		{"no vulnerabilities", `{"catalogVersion":"1","dateReleased":"x","count":0}`, "missing vulnerabilities, which CISA's schema requires"},
		{"an entry without its due date", catalogue(1, without("dueDate")), "kev.json: vulnerabilities[0] (CVE-2022-26925): missing dueDate"},
		{"an entry without its CVE", catalogue(1, without("cveID")), "vulnerabilities[0]: missing cveID"},
		{"a date that is not one", catalogue(1, strings.Replace(entry, "2022-07-22", "22/07/2022", 1)), `dueDate "22/07/2022" is not a date`},
		{"a field of the wrong type", catalogue(1, strings.Replace(entry, `"Windows"`, `7`, 1)), "vulnerabilities[0]: product is not a string"},
		{"a CVE twice", catalogue(2, entry, entry), "CVE-2022-26925 is listed twice"},
		{"a count that disagrees", catalogue(3, entry), "count says 3 entries, the file lists 1"},
		{"a bad ransomware value", catalogue(1, strings.Replace(entry, `"Unknown"`, `"Maybe"`, 1)), `knownRansomwareCampaignUse "Maybe"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadKEV(strings.NewReader(tc.file), "kev.json")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestReadKEVStopsAtItsSizeLimit feeds an endless array: the reader stops
// at MaxKEVSize instead of reading on.
func TestReadKEVStopsAtItsSizeLimit(t *testing.T) {
	endless := io.MultiReader(strings.NewReader(`{"catalogVersion":"1","vulnerabilities":[`), spaces{})
	_, err := ReadKEV(endless, "big.json")
	if err == nil || !strings.Contains(err.Error(), "over 64 MiB") {
		t.Errorf("error %v, want the size limit", err)
	}
}

// spaces is an endless run of JSON whitespace.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
