package threat

import (
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// MaxAdvisorySize bounds an advisory file read (a whole month of MSRC's
// CVRF is a few MB).
const MaxAdvisorySize = 256 << 20

// Fix is one update an advisory names as the vendor fix (a KB) for the
// products in scope, with what the advisory says of it and of the CVEs it
// fixes: everything a rollout's patch and risk blocks need.
type Fix struct {
	KB string
	// Products are the advisory's product names the fix applies to, and
	// OS the inventory OS names they map to (sorted, unique).
	Products []string
	OS       []string
	CVEs     []string
	// Titles of the CVEs, in CVE order.
	Titles []string
	// Severity is the highest the advisory gives these CVEs for these
	// products, lower case (critical, important, moderate, low).
	Severity  string
	Published time.Time
	// Reboot is required, may or never, from RestartRequired.
	Reboot     string
	Supersedes []string
	// FixedBuild per inventory OS (the highest the advisory gives).
	FixedBuild map[string]string
	// ExploitPublic and Exploited come from "Exploit Status", read field
	// by field: "Publicly Disclosed:Yes" and "Exploited:Yes".
	ExploitPublic bool
	Exploited     bool
}

// Unfixed is a CVE the advisory marks exploited that no vendor fix covers
// for the products in scope.
type Unfixed struct {
	CVE, Title string
}

// Advisory is what a CVRF document says, per KB.
type Advisory struct {
	Title   string
	Fixes   []Fix
	Unfixed []Unfixed
}

type cvrfThreat struct {
	Type        string   `xml:"Type,attr"`
	Description string   `xml:"Description"`
	ProductIDs  []string `xml:"ProductID"`
}

type cvrfRemediation struct {
	Type            string   `xml:"Type,attr"`
	Description     string   `xml:"Description"`
	Supercedence    string   `xml:"Supercedence"`
	ProductIDs      []string `xml:"ProductID"`
	RestartRequired string   `xml:"RestartRequired"`
	FixedBuild      string   `xml:"FixedBuild"`
}

type cvrfVulnerability struct {
	Title        string            `xml:"Title"`
	CVE          string            `xml:"CVE"`
	Threats      []cvrfThreat      `xml:"Threats>Threat"`
	Remediations []cvrfRemediation `xml:"Remediations>Remediation"`
	Revisions    []string          `xml:"RevisionHistory>Revision>Date"`
}

type cvrfProduct struct {
	ID   string `xml:"ProductID,attr"`
	Name string `xml:",chardata"`
}

var severityRank = map[string]int{"low": 1, "moderate": 2, "important": 3, "critical": 4}

// ReadCVRF reads an MSRC CVRF 1.1 document from r (name is its file name,
// for messages) as a stream: one vulnerability at a time, so memory
// follows the fixes kept, not the file. products maps the advisory's
// product names to inventory OS names; a vendor fix naming a product it
// does not know is refused, as is a document with no vendor fix for any
// product in it.
func ReadCVRF(r io.Reader, name string, products map[string]string) (Advisory, error) {
	lr := &io.LimitedReader{R: r, N: MaxAdvisorySize + 1}
	dec := xml.NewDecoder(lr)
	fail := func(format string, args ...any) (Advisory, error) {
		return Advisory{}, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	var adv Advisory
	var released time.Time
	productName := map[string]string{}
	fixes := map[string]*Fix{}
	rootSeen := false
	ordinal := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return fail("over %d MiB; not an advisory this reader takes", MaxAdvisorySize>>20)
			}
			return fail("not well-formed XML: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if !rootSeen {
			if se.Name.Local != "cvrfdoc" {
				return fail("not a CVRF document: the root element is <%s>, not <cvrfdoc>", se.Name.Local)
			}
			rootSeen = true
			continue
		}
		switch se.Name.Local {
		case "DocumentTitle":
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				return fail("DocumentTitle: %v", err)
			}
			adv.Title = strings.TrimSpace(s)
		case "InitialReleaseDate":
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				return fail("InitialReleaseDate: %v", err)
			}
			t, err := parseCVRFTime(s)
			if err != nil {
				return fail("InitialReleaseDate %q is not a date and time", strings.TrimSpace(s))
			}
			released = t
		case "FullProductName":
			var p cvrfProduct
			if err := dec.DecodeElement(&p, &se); err != nil {
				return fail("FullProductName: %v", err)
			}
			productName[p.ID] = strings.TrimSpace(p.Name)
		case "Vulnerability":
			ordinal++
			var v cvrfVulnerability
			if err := dec.DecodeElement(&v, &se); err != nil {
				return fail("not well-formed XML in Vulnerability %d: %v", ordinal, err)
			}
			if err := addVulnerability(&adv, fixes, v, productName, products); err != nil {
				return fail("Vulnerability %d (%s): %v", ordinal, cmp.Or(strings.TrimSpace(v.CVE), "no CVE"), err)
			}
		}
	}
	if !rootSeen {
		return fail("not a CVRF document: no <cvrfdoc> element")
	}
	if len(fixes) == 0 {
		return fail("no Vendor Fix remediation names a KB for a product in the document: nothing to roll out")
	}
	for _, kb := range slices.Sorted(maps.Keys(fixes)) {
		f := fixes[kb]
		if !released.IsZero() {
			f.Published = released
		}
		adv.Fixes = append(adv.Fixes, *f)
	}
	return adv, nil
}

// addVulnerability folds one vulnerability into the fixes per KB.
func addVulnerability(adv *Advisory, fixes map[string]*Fix, v cvrfVulnerability, productName, products map[string]string) error {
	cve := strings.TrimSpace(v.CVE)
	if cve == "" {
		return errors.New("no CVE")
	}
	var published time.Time
	for _, d := range v.Revisions {
		if t, err := parseCVRFTime(d); err == nil && (published.IsZero() || t.Before(published)) {
			published = t
		}
	}
	public, exploited := exploitStatus(v.Threats)
	fixed := false
	for _, rem := range v.Remediations {
		if rem.Type != "Vendor Fix" {
			continue
		}
		digits := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(rem.Description)), "KB")
		if digits == "" || strings.Trim(digits, "0123456789") != "" {
			continue // a vendor fix that is not a KB (a release notes link)
		}
		kb := "KB" + digits
		var names, oses []string
		for _, id := range rem.ProductIDs {
			pn, ok := productName[id]
			if !ok {
				return fmt.Errorf("the Vendor Fix %s names ProductID %s, which the product tree does not list", kb, id)
			}
			osName, ok := products[pn]
			if !ok {
				return fmt.Errorf("the Vendor Fix %s applies to %q, which the product map does not know: map it to an inventory OS (--product %q)", kb, pn, pn+"=OS")
			}
			names, oses = append(names, pn), append(oses, osName)
		}
		if len(names) == 0 {
			continue
		}
		fixed = true
		f := fixes[kb]
		if f == nil {
			f = &Fix{KB: kb, FixedBuild: map[string]string{}, Reboot: "never"}
			fixes[kb] = f
		}
		f.Products = sortedUnion(f.Products, names)
		f.OS = sortedUnion(f.OS, oses)
		if !slices.Contains(f.CVEs, cve) {
			i, _ := slices.BinarySearch(f.CVEs, cve)
			f.CVEs = slices.Insert(f.CVEs, i, cve)
			f.Titles = slices.Insert(f.Titles, i, strings.TrimSpace(v.Title))
		}
		if s := strings.TrimSpace(rem.Supercedence); s != "" {
			for _, sup := range strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ';' || c == ' ' }) {
				f.Supersedes = sortedUnion(f.Supersedes, []string{"KB" + strings.TrimPrefix(strings.ToUpper(sup), "KB")})
			}
		}
		switch strings.ToLower(strings.TrimSpace(rem.RestartRequired)) {
		case "yes":
			f.Reboot = "required"
		case "maybe":
			if f.Reboot != "required" {
				f.Reboot = "may"
			}
		}
		if b := strings.TrimSpace(rem.FixedBuild); b != "" {
			for _, o := range oses {
				if compareVersions(b, f.FixedBuild[o]) > 0 {
					f.FixedBuild[o] = b
				}
			}
		}
		for _, t := range v.Threats {
			if t.Type != "Severity" {
				continue
			}
			s := strings.ToLower(strings.TrimSpace(t.Description))
			if len(t.ProductIDs) > 0 && !slices.ContainsFunc(t.ProductIDs, func(id string) bool { return slices.Contains(rem.ProductIDs, id) }) {
				continue
			}
			if severityRank[s] > severityRank[f.Severity] {
				f.Severity = s
			}
		}
		f.ExploitPublic = f.ExploitPublic || public
		f.Exploited = f.Exploited || exploited
		if !published.IsZero() && (f.Published.IsZero() || published.Before(f.Published)) {
			f.Published = published
		}
	}
	if !fixed && exploited {
		adv.Unfixed = append(adv.Unfixed, Unfixed{CVE: cve, Title: strings.TrimSpace(v.Title)})
	}
	return nil
}

// exploitStatus reads the "Exploit Status" threat field by field
// ("Publicly Disclosed:Yes;Exploited:No;..."): a search for "Yes" in the
// whole string would misread it.
func exploitStatus(threats []cvrfThreat) (public, exploited bool) {
	for _, t := range threats {
		if t.Type != "Exploit Status" {
			continue
		}
		for _, field := range strings.Split(t.Description, ";") {
			k, v, ok := strings.Cut(field, ":")
			if !ok {
				continue
			}
			yes := strings.EqualFold(strings.TrimSpace(v), "Yes")
			switch strings.TrimSpace(k) {
			case "Publicly Disclosed":
				public = public || yes
			case "Exploited":
				exploited = exploited || yes
			}
		}
	}
	return public, exploited
}

// parseCVRFTime reads MSRC's times, with or without a zone (UTC then).
func parseCVRFTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not a time", s)
}

// compareVersions compares dotted numeric versions part by part; an empty
// version is the lowest.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if b == "" {
		return 1
	}
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			fmt.Sscan(pa[i], &x)
		}
		if i < len(pb) {
			fmt.Sscan(pb[i], &y)
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func sortedUnion(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}
