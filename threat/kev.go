// Package threat reads threat intelligence into what the policies weigh:
// CISA's catalogue of Known Exploited Vulnerabilities (KEV) becomes policy
// data, whose due dates and ransomware use the sla and plan policies
// apply. It decides nothing itself.
package threat

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
)

// MaxKEVSize bounds the catalogue file read (CISA's is about 1.3 MB).
const MaxKEVSize = 64 << 20

// KEVEntry is what the policies need of one catalogue entry.
type KEVEntry struct {
	Name      string `json:"name"`
	Vendor    string `json:"vendor"`
	Product   string `json:"product"`
	DateAdded string `json:"date_added"`
	DueDate   string `json:"due_date"`
	// Ransomware is knownRansomwareCampaignUse: "Known" or "Unknown".
	Ransomware string `json:"ransomware"`
}

// KEV is the catalogue as policy data (data.kev), keyed by CVE.
type KEV struct {
	CatalogVersion  string              `json:"catalog_version"`
	DateReleased    string              `json:"date_released"`
	SHA256          string              `json:"sha256"`
	Vulnerabilities map[string]KEVEntry `json:"vulnerabilities"`
}

// Ransomware counts the entries with known ransomware campaign use.
func (k KEV) Ransomware() int {
	n := 0
	for _, e := range k.Vulnerabilities {
		if e.Ransomware == "Known" {
			n++
		}
	}
	return n
}

// PolicyData is the JSON data file the policy bundle loads: {"kev": ...}.
func (k KEV) PolicyData() ([]byte, error) {
	b, err := json.MarshalIndent(map[string]KEV{"kev": k}, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// kevVulnerability is one element of the catalogue's vulnerabilities
// array, as CISA's schema names its fields.
type kevVulnerability struct {
	CVEID                      *string `json:"cveID"`
	VendorProject              *string `json:"vendorProject"`
	Product                    *string `json:"product"`
	VulnerabilityName          *string `json:"vulnerabilityName"`
	DateAdded                  *string `json:"dateAdded"`
	ShortDescription           *string `json:"shortDescription"`
	RequiredAction             *string `json:"requiredAction"`
	DueDate                    *string `json:"dueDate"`
	KnownRansomwareCampaignUse *string `json:"knownRansomwareCampaignUse"`
}

var cvePattern = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

// ReadKEV reads CISA's known_exploited_vulnerabilities.json from r (name
// is its file name, for messages). It decodes the vulnerabilities one at a
// time, so memory follows what is kept, not the file, and refuses, naming
// the element, a file that is not JSON, lacks a field the schema requires,
// has a date that is not YYYY-MM-DD, lists a CVE twice, or whose count
// disagrees with its entries.
func ReadKEV(r io.Reader, name string) (KEV, error) {
	h := sha256.New()
	lr := &io.LimitedReader{R: r, N: MaxKEVSize + 1}
	dec := json.NewDecoder(io.TeeReader(lr, h))
	k := KEV{Vulnerabilities: map[string]KEVEntry{}}
	fail := func(format string, args ...any) (KEV, error) {
		return KEV{}, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	syntax := func(err error) (KEV, error) {
		if lr.N <= 0 {
			return fail("over %d MiB; this is not CISA's catalogue", MaxKEVSize>>20)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return fail("not valid JSON at byte %d: %v", se.Offset, err)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fail("not valid JSON: the file ends early")
		}
		return fail("not valid JSON: %v", err)
	}
	if tok, err := dec.Token(); err != nil {
		return syntax(err)
	} else if tok != json.Delim('{') {
		return fail("not a KEV catalogue: the top level is not a JSON object")
	}
	count, seen := -1, map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return syntax(err)
		}
		key, _ := tok.(string)
		seen[key] = true
		switch key {
		case "catalogVersion", "dateReleased":
			var s string
			if err := dec.Decode(&s); err != nil {
				if !isTypeError(err) {
					return syntax(err)
				}
				return fail("%s is not a string", key)
			}
			if key == "catalogVersion" {
				k.CatalogVersion = s
			} else {
				k.DateReleased = s
			}
		case "count":
			if err := dec.Decode(&count); err != nil && !isTypeError(err) {
				return syntax(err)
			} else if err != nil || count < 0 {
				return fail("count is not a whole number")
			}
		case "vulnerabilities":
			if tok, err := dec.Token(); err != nil {
				return syntax(err)
			} else if tok != json.Delim('[') {
				return fail("vulnerabilities is not an array")
			}
			for i := 0; dec.More(); i++ {
				var v kevVulnerability
				if err := dec.Decode(&v); err != nil {
					var te *json.UnmarshalTypeError
					if errors.As(err, &te) {
						return fail("vulnerabilities[%d]: %s is not a %s", i, te.Field, te.Type)
					}
					return syntax(err)
				}
				id, e, err := v.entry()
				if err != nil {
					if id != "" {
						return fail("vulnerabilities[%d] (%s): %v", i, id, err)
					}
					return fail("vulnerabilities[%d]: %v", i, err)
				}
				if _, dup := k.Vulnerabilities[id]; dup {
					return fail("vulnerabilities[%d]: %s is listed twice", i, id)
				}
				k.Vulnerabilities[id] = e
			}
			if _, err := dec.Token(); err != nil {
				return syntax(err)
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return syntax(err)
			}
		}
	}
	if _, err := dec.Token(); err != nil {
		return syntax(err)
	}
	for _, req := range []string{"catalogVersion", "dateReleased", "count", "vulnerabilities"} {
		if !seen[req] {
			return fail("missing %s, which CISA's schema requires", req)
		}
	}
	if strings.TrimSpace(k.CatalogVersion) == "" {
		return fail("catalogVersion is empty")
	}
	if count != len(k.Vulnerabilities) {
		return fail("count says %d entries, the file lists %d", count, len(k.Vulnerabilities))
	}
	k.SHA256 = hex.EncodeToString(h.Sum(nil))
	return k, nil
}

func isTypeError(err error) bool {
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// entry checks one vulnerability against the schema's required fields and
// returns its CVE and what the policies keep.
func (v kevVulnerability) entry() (string, KEVEntry, error) {
	id := ""
	if v.CVEID != nil {
		id = strings.TrimSpace(*v.CVEID)
	}
	fields := []struct {
		name string
		val  *string
	}{
		{"cveID", v.CVEID}, {"vendorProject", v.VendorProject}, {"product", v.Product},
		{"vulnerabilityName", v.VulnerabilityName}, {"dateAdded", v.DateAdded},
		{"shortDescription", v.ShortDescription}, {"requiredAction", v.RequiredAction}, {"dueDate", v.DueDate},
	}
	for _, f := range fields {
		if f.val == nil {
			return id, KEVEntry{}, fmt.Errorf("missing %s, which CISA's schema requires", f.name)
		}
	}
	if !cvePattern.MatchString(id) {
		return "", KEVEntry{}, fmt.Errorf("cveID %q is not a CVE identifier like CVE-2022-26925", id)
	}
	for _, f := range []struct{ name, val string }{{"dateAdded", *v.DateAdded}, {"dueDate", *v.DueDate}} {
		if _, err := time.Parse(time.DateOnly, f.val); err != nil {
			return id, KEVEntry{}, fmt.Errorf("%s %q is not a date like 2022-07-22", f.name, f.val)
		}
	}
	ransomware := "Unknown"
	if v.KnownRansomwareCampaignUse != nil {
		switch *v.KnownRansomwareCampaignUse {
		case "Known", "Unknown":
			ransomware = *v.KnownRansomwareCampaignUse
		default:
			return id, KEVEntry{}, fmt.Errorf("knownRansomwareCampaignUse %q is neither Known nor Unknown", *v.KnownRansomwareCampaignUse)
		}
	}
	return id, KEVEntry{Name: *v.VulnerabilityName, Vendor: *v.VendorProject, Product: *v.Product,
		DateAdded: *v.DateAdded, DueDate: *v.DueDate, Ransomware: ransomware}, nil
}
