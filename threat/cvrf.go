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

// Advisory is what an advisory (CVRF XML or JSON, CSAF) says, per KB.
type Advisory struct {
	// Format names the document's format (MSRC CVRF 1.1, MSRC CVRF v3
	// JSON, CSAF 2.0), for the drafts' header.
	Format  string
	Title   string
	Fixes   []Fix
	Unfixed []Unfixed
}

// The CVRF 1.1 model below, with its vocabulary (Threat Type "Exploit
// Status" and "Severity", Remediation Type "Vendor Fix", RestartRequired
// "Yes" and "Maybe"), is the one the three readers share: the CVRF JSON and
// CSAF readers translate their documents into it, so the rules that turn a
// vulnerability into fixes are written once, in advisoryBuilder.

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
	b := newAdvisoryBuilder(products, "Vendor Fix")
	rootSeen := false
	ordinal := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lr.N <= 0 {
				return fail("%s", errTooLarge)
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
			b.adv.Title = strings.TrimSpace(s)
		case "InitialReleaseDate":
			var s string
			if err := dec.DecodeElement(&s, &se); err != nil {
				return fail("InitialReleaseDate: %v", err)
			}
			if err := b.setReleased(s); err != nil {
				return fail("InitialReleaseDate %v", err)
			}
		case "FullProductName":
			var p cvrfProduct
			if err := dec.DecodeElement(&p, &se); err != nil {
				return fail("FullProductName: %v", err)
			}
			b.productName[p.ID] = strings.TrimSpace(p.Name)
		case "Vulnerability":
			ordinal++
			var v cvrfVulnerability
			if err := dec.DecodeElement(&v, &se); err != nil {
				return fail("not well-formed XML in Vulnerability %d: %v", ordinal, err)
			}
			if err := b.add(v); err != nil {
				return fail("Vulnerability %d (%s): %v", ordinal, cmp.Or(strings.TrimSpace(v.CVE), "no CVE"), err)
			}
		}
	}
	if !rootSeen {
		return fail("not a CVRF document: no <cvrfdoc> element")
	}
	adv, err := b.finish()
	if err != nil {
		return fail("%v", err)
	}
	adv.Format = "MSRC CVRF 1.1"
	return adv, nil
}

// errTooLarge is what every reader says of a document over
// MaxAdvisorySize.
var errTooLarge = fmt.Errorf("over %d MiB; not an advisory this reader takes", MaxAdvisorySize>>20)

// advisoryBuilder folds vulnerabilities, in the CVRF 1.1 model whatever
// format they were read from, into fixes per KB. It holds what a reader
// keeps between vulnerabilities: the product tree and the fixes so far.
type advisoryBuilder struct {
	adv   Advisory
	fixes map[string]*Fix
	// released is the document's initial release, which dates every fix
	// when the document gives it.
	released time.Time
	// productName maps the document's product IDs to its product names,
	// and products those names to inventory OS names.
	productName map[string]string
	products    map[string]string
	// fixLabel names a vendor fix in the document's own words ("Vendor
	// Fix", "vendor_fix"), for messages.
	fixLabel string
}

func newAdvisoryBuilder(products map[string]string, fixLabel string) *advisoryBuilder {
	return &advisoryBuilder{fixes: map[string]*Fix{}, productName: map[string]string{}, products: products, fixLabel: fixLabel}
}

// setReleased reads the document's initial release date.
func (b *advisoryBuilder) setReleased(s string) error {
	t, err := parseCVRFTime(s)
	if err != nil {
		return fmt.Errorf("%q is not a date and time", strings.TrimSpace(s))
	}
	b.released = t
	return nil
}

// finish returns the advisory, its fixes in KB order, or refuses a
// document with nothing to roll out.
func (b *advisoryBuilder) finish() (Advisory, error) {
	if len(b.fixes) == 0 {
		return Advisory{}, fmt.Errorf("no %s remediation names a KB for a product in the document: nothing to roll out", b.fixLabel)
	}
	adv := b.adv
	for _, kb := range slices.Sorted(maps.Keys(b.fixes)) {
		f := b.fixes[kb]
		if !b.released.IsZero() {
			f.Published = b.released
		}
		adv.Fixes = append(adv.Fixes, *f)
	}
	return adv, nil
}

// add folds one vulnerability into the fixes per KB.
func (b *advisoryBuilder) add(v cvrfVulnerability) error {
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
		kb, ok := kbOf(rem.Description)
		if !ok {
			continue // a vendor fix that is not a KB (a release notes link)
		}
		names, oses, err := b.mapProducts(kb, rem.ProductIDs)
		if err != nil {
			return err
		}
		if len(names) == 0 {
			continue
		}
		fixed = true
		f := b.fixes[kb]
		if f == nil {
			f = &Fix{KB: kb, FixedBuild: map[string]string{}, Reboot: "never"}
			b.fixes[kb] = f
		}
		f.Products = sortedUnion(f.Products, names)
		f.OS = sortedUnion(f.OS, oses)
		if !slices.Contains(f.CVEs, cve) {
			i, _ := slices.BinarySearch(f.CVEs, cve)
			f.CVEs = slices.Insert(f.CVEs, i, cve)
			f.Titles = slices.Insert(f.Titles, i, strings.TrimSpace(v.Title))
		}
		f.Supersedes = sortedUnion(f.Supersedes, supersededKBs(rem.Supercedence))
		f.Reboot = mergeReboot(f.Reboot, rem.RestartRequired)
		if build := strings.TrimSpace(rem.FixedBuild); build != "" {
			for _, o := range oses {
				if compareVersions(build, f.FixedBuild[o]) > 0 {
					f.FixedBuild[o] = build
				}
			}
		}
		if s := severityFor(v.Threats, rem.ProductIDs); severityRank[s] > severityRank[f.Severity] {
			f.Severity = s
		}
		f.ExploitPublic = f.ExploitPublic || public
		f.Exploited = f.Exploited || exploited
		if !published.IsZero() && (f.Published.IsZero() || published.Before(f.Published)) {
			f.Published = published
		}
	}
	if !fixed && exploited {
		b.adv.Unfixed = append(b.adv.Unfixed, Unfixed{CVE: cve, Title: strings.TrimSpace(v.Title)})
	}
	return nil
}

// kbOf reads a vendor fix's description as a KB number ("5013944" or
// "KB5013944"); anything else is not a KB.
func kbOf(description string) (string, bool) {
	digits := strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(description)), "KB")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	return "KB" + digits, true
}

// lookupProduct finds a product name in the map, exactly or with runs of
// white space folded on both sides: MSRC writes "Windows Server 2019
// (Server Core installation)" with two spaces in some documents.
func lookupProduct(products map[string]string, name string) (string, bool) {
	if os, ok := products[name]; ok {
		return os, true
	}
	folded := strings.Join(strings.Fields(name), " ")
	for _, k := range slices.Sorted(maps.Keys(products)) {
		if strings.Join(strings.Fields(k), " ") == folded {
			return products[k], true
		}
	}
	return "", false
}

// mapProducts maps a vendor fix's product IDs to the advisory's product
// names and those to inventory OS names, refusing a product either step
// does not know: a fix silently narrowed to the known products would
// leave hosts out of the rollout.
func (b *advisoryBuilder) mapProducts(kb string, ids []string) (names, oses []string, err error) {
	for _, id := range ids {
		pn, ok := b.productName[id]
		if !ok {
			return nil, nil, fmt.Errorf("the %s %s names ProductID %s, which the product tree does not list", b.fixLabel, kb, id)
		}
		osName, ok := lookupProduct(b.products, pn)
		if !ok {
			return nil, nil, fmt.Errorf("the %s %s applies to %q, which the product map does not know: map it to an inventory OS (--product %q)", b.fixLabel, kb, pn, pn+"=OS")
		}
		names, oses = append(names, pn), append(oses, osName)
	}
	return names, oses, nil
}

// supersededKBs reads a Supercedence list ("5012604", "5012604; 5012599").
func supersededKBs(s string) []string {
	var kbs []string
	for _, sup := range strings.FieldsFunc(s, func(c rune) bool { return c == ',' || c == ';' || c == ' ' }) {
		kbs = append(kbs, "KB"+strings.TrimPrefix(strings.ToUpper(sup), "KB"))
	}
	return kbs
}

// mergeReboot raises a fix's reboot by one remediation's RestartRequired:
// "Yes" makes it required, "Maybe" may unless already required.
func mergeReboot(reboot, restartRequired string) string {
	switch strings.ToLower(strings.TrimSpace(restartRequired)) {
	case "yes":
		return "required"
	case "maybe":
		if reboot != "required" {
			return "may"
		}
	}
	return reboot
}

// severityFor is the highest Severity threat for the products a fix
// covers; a threat naming no product counts for all.
func severityFor(threats []cvrfThreat, productIDs []string) string {
	best := ""
	for _, t := range threats {
		if t.Type != "Severity" {
			continue
		}
		if len(t.ProductIDs) > 0 && !slices.ContainsFunc(t.ProductIDs, func(id string) bool { return slices.Contains(productIDs, id) }) {
			continue
		}
		if s := strings.ToLower(strings.TrimSpace(t.Description)); severityRank[s] > severityRank[best] {
			best = s
		}
	}
	return best
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
