package threat

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// csafAdvisoryCategory is the one CSAF 2.0 document category this reader
// takes: a VEX or an informational advisory names no fix to roll out.
const csafAdvisoryCategory = "csaf_security_advisory"

// msrcSeverityNamespace is the namespace MSRC's CSAF gives its
// document.aggregate_severity: text in that namespace is MSRC's own
// rating (Critical, Important, Moderate, Low), the one CVRF gives as a
// Severity threat. MSRC publishes one CVE per CSAF document, so the
// document's aggregate is that CVE's rating.
const msrcSeverityNamespace = "https://www.microsoft.com/en-us/msrc/security-update-severity-rating-system"

// cvssSeverity converts CVSS v3 baseSeverity into the MSRC vocabulary
// the rules rank. It is a conversion of the document's vocabulary for a
// publisher that gives no MSRC rating, not a rule: CVSS HIGH is not MSRC
// "Important" by any definition, only the nearest word.
var cvssSeverity = map[string]string{"CRITICAL": "Critical", "HIGH": "Important", "MEDIUM": "Moderate", "LOW": "Low"}

// csafRestart converts CSAF 2.0's restart_required.category into CVRF's
// RestartRequired words: a machine or system restart is a reboot, none is
// none, and a restart of less than the machine (a service, a component,
// a parent or connected system, a zone) may or may not mean one.
func csafRestart(category string) string {
	switch strings.TrimSpace(category) {
	case "":
		return ""
	case "none":
		return "No"
	case "machine", "system":
		return "Yes"
	}
	return "Maybe"
}

type csafDocument struct {
	Category string `json:"category"`
	Title    string `json:"title"`
	Tracking struct {
		InitialReleaseDate string `json:"initial_release_date"`
	} `json:"tracking"`
	AggregateSeverity struct {
		Namespace string `json:"namespace"`
		Text      string `json:"text"`
	} `json:"aggregate_severity"`
}

type csafProduct struct {
	Name      string `json:"name"`
	ProductID string `json:"product_id"`
}

type csafBranch struct {
	Category string       `json:"category"`
	Name     string       `json:"name"`
	Product  *csafProduct `json:"product"`
	Branches []csafBranch `json:"branches"`
}

type csafProductTree struct {
	Branches         []csafBranch  `json:"branches"`
	FullProductNames []csafProduct `json:"full_product_names"`
	Relationships    []struct {
		FullProductName csafProduct `json:"full_product_name"`
	} `json:"relationships"`
	ProductGroups []struct {
		GroupID    string   `json:"group_id"`
		ProductIDs []string `json:"product_ids"`
	} `json:"product_groups"`
}

type csafVulnerability struct {
	CVE         string `json:"cve"`
	Title       string `json:"title"`
	ReleaseDate string `json:"release_date"`
	Threats     []struct {
		Category   string   `json:"category"`
		Details    string   `json:"details"`
		ProductIDs []string `json:"product_ids"`
		GroupIDs   []string `json:"group_ids"`
	} `json:"threats"`
	Remediations []struct {
		Category        string   `json:"category"`
		Details         string   `json:"details"`
		URL             string   `json:"url"`
		ProductIDs      []string `json:"product_ids"`
		GroupIDs        []string `json:"group_ids"`
		RestartRequired *struct {
			Category string `json:"category"`
		} `json:"restart_required"`
	} `json:"remediations"`
	Scores []struct {
		Products []string `json:"products"`
		CVSSv3   *struct {
			BaseSeverity string `json:"baseSeverity"`
		} `json:"cvss_v3"`
	} `json:"scores"`
}

// csafReader holds what the CSAF reader keeps between vulnerabilities
// besides the builder's: the product groups and MSRC's severity.
type csafReader struct {
	b      *advisoryBuilder
	groups map[string][]string
	// msrcSeverity is the document's MSRC rating, "" when the document
	// gives none.
	msrcSeverity string
}

// ReadCSAF reads a CSAF 2.0 security advisory (OASIS) from r (name is its
// file name, for messages) into the same Advisory as ReadCVRF, with the
// same rules: a vendor_fix naming a KB (its details the KB number, or
// MSRC's "FIXEDBUILD:SUBTYPE:URL" with a catalog search for the KB) is a
// fix for the products it names, mapped through products. It streams the
// vulnerabilities array one element at a time; the document and the
// product tree must come before it (CSAF's key order, and MSRC's), or
// the document is refused. Only csaf_security_advisory is taken.
//
// MSRC's CSAF files carry no supersedence (the CVRF's Supercedence has
// no CSAF field, and MSRC's files show none), so Fix.Supersedes stays
// empty for them: read the CVRF for it.
func ReadCSAF(r io.Reader, name string, products map[string]string) (Advisory, error) {
	s := newJSONStream(r)
	fail := func(format string, args ...any) (Advisory, error) {
		return Advisory{}, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...))
	}
	if err := s.openObject(); err != nil {
		return fail("not a CSAF document: %s", s.describe(err, ""))
	}
	c := &csafReader{b: newAdvisoryBuilder(products, "vendor_fix"), groups: map[string][]string{}}
	docSeen, treeSeen := false, false
	err := s.eachKey(func(key string) error {
		switch key {
		case "document":
			var d csafDocument
			if err := s.decode(&d); err != nil {
				return keyError(key, s, err)
			}
			if err := c.setDocument(d); err != nil {
				return err
			}
			docSeen = true
		case "product_tree":
			var t csafProductTree
			if err := s.decode(&t); err != nil {
				return keyError(key, s, err)
			}
			c.setProductTree(t)
			treeSeen = true
		case "vulnerabilities":
			if !docSeen || !treeSeen {
				return errors.New("the vulnerabilities array comes before the document or the product_tree: this reader streams vulnerabilities and needs both first, in CSAF's order")
			}
			return s.eachElement(key, c.add)
		default:
			if err := s.skip(); err != nil {
				return keyError(key, s, err)
			}
		}
		return nil
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return fail("%s", streamError(s, err))
	}
	if !docSeen {
		return fail(`not a CSAF document: no "document" object`)
	}
	adv, err := c.b.finish()
	if err != nil {
		return fail("%v", err)
	}
	adv.Format = "CSAF 2.0"
	return adv, nil
}

// setDocument takes the document's title, release date and MSRC rating,
// refusing any category but a security advisory.
func (c *csafReader) setDocument(d csafDocument) error {
	if d.Category != csafAdvisoryCategory {
		return fmt.Errorf("document.category is %q: this reader takes %s documents only (a VEX or informational document names no fix to roll out)", d.Category, csafAdvisoryCategory)
	}
	c.b.adv.Title = strings.TrimSpace(d.Title)
	if d.Tracking.InitialReleaseDate != "" {
		if err := c.b.setReleased(d.Tracking.InitialReleaseDate); err != nil {
			return fmt.Errorf("document.tracking.initial_release_date %w", err)
		}
	}
	if strings.TrimRight(d.AggregateSeverity.Namespace, "/") == msrcSeverityNamespace {
		if s := strings.TrimSpace(d.AggregateSeverity.Text); severityRank[strings.ToLower(s)] > 0 {
			c.msrcSeverity = s
		}
	}
	return nil
}

// setProductTree records the product names and groups. A product inside
// a branch of category product_name takes that branch's name: MSRC's
// tree names the product there ("Windows Server 2022") and its leaves by
// version ("Windows Server 2022 <10.0.20348.707"), which changes every
// month; the product_name is what the product map can know, as CVRF's
// FullProductName.
func (c *csafReader) setProductTree(t csafProductTree) {
	collectCSAFProducts(c.b.productName, t.Branches, "")
	for _, p := range t.FullProductNames {
		c.b.productName[p.ProductID] = strings.TrimSpace(p.Name)
	}
	for _, rel := range t.Relationships {
		p := rel.FullProductName
		c.b.productName[p.ProductID] = strings.TrimSpace(p.Name)
	}
	for _, g := range t.ProductGroups {
		c.groups[g.GroupID] = g.ProductIDs
	}
}

// collectCSAFProducts records the products of branches at any depth,
// named by the nearest product_name branch above them if any.
func collectCSAFProducts(productName map[string]string, branches []csafBranch, family string) {
	for _, br := range branches {
		f := family
		if br.Category == "product_name" && strings.TrimSpace(br.Name) != "" {
			f = strings.TrimSpace(br.Name)
		}
		if p := br.Product; p != nil && p.ProductID != "" {
			productName[p.ProductID] = cmp.Or(f, strings.TrimSpace(p.Name))
		}
		collectCSAFProducts(productName, br.Branches, f)
	}
}

// add decodes the i-th vulnerability and folds it into the fixes.
func (c *csafReader) add(i int, raw json.RawMessage) error {
	var v csafVulnerability
	if err := decodeElement(raw, &v); err != nil {
		return elementError("vulnerabilities", i, raw, err)
	}
	if err := c.b.add(c.cvrf(v)); err != nil {
		return elementError("vulnerabilities", i, raw, err)
	}
	return nil
}

// cvrf translates a CSAF vulnerability into the CVRF 1.1 model the rules
// read: threats keep their meaning under CVRF's names, the severity comes
// from MSRC's rating or else from CVSS, and a vendor_fix becomes a Vendor
// Fix whose description is the KB.
func (c *csafReader) cvrf(v csafVulnerability) cvrfVulnerability {
	out := cvrfVulnerability{Title: v.Title, CVE: v.CVE}
	if v.ReleaseDate != "" {
		out.Revisions = []string{v.ReleaseDate}
	}
	for _, t := range v.Threats {
		out.Threats = append(out.Threats, cvrfThreat{Type: csafThreatType(t.Category), Description: t.Details, ProductIDs: c.expand(t.ProductIDs, t.GroupIDs)})
	}
	out.Threats = append(out.Threats, c.severities(v)...)
	for _, r := range v.Remediations {
		rem := cvrfRemediation{Type: r.Category, Description: r.Details, ProductIDs: c.expand(r.ProductIDs, r.GroupIDs)}
		if r.Category == "vendor_fix" {
			rem.Type = "Vendor Fix"
			rem.Description, rem.FixedBuild = msrcVendorFix(r.Details)
		}
		if r.RestartRequired != nil {
			rem.RestartRequired = csafRestart(r.RestartRequired.Category)
		}
		out.Remediations = append(out.Remediations, rem)
	}
	return out
}

// severities gives the vulnerability's Severity threats: MSRC's rating
// for all its products when the document has one, else each CVSS v3
// score's baseSeverity for the products the score names.
func (c *csafReader) severities(v csafVulnerability) []cvrfThreat {
	if c.msrcSeverity != "" {
		return []cvrfThreat{{Type: "Severity", Description: c.msrcSeverity}}
	}
	var out []cvrfThreat
	for _, s := range v.Scores {
		if s.CVSSv3 == nil {
			continue
		}
		if word, ok := cvssSeverity[strings.ToUpper(strings.TrimSpace(s.CVSSv3.BaseSeverity))]; ok {
			out = append(out, cvrfThreat{Type: "Severity", Description: word, ProductIDs: s.Products})
		}
	}
	return out
}

// csafThreatType names CSAF's threat categories as CVRF does.
func csafThreatType(category string) string {
	switch category {
	case "exploit_status":
		return "Exploit Status"
	case "impact":
		return "Impact"
	case "target_set":
		return "Target Set"
	}
	return category
}

// expand lists product IDs with those of the product groups named.
func (c *csafReader) expand(ids, groups []string) []string {
	out := slices.Clone(ids)
	for _, g := range groups {
		out = append(out, c.groups[g]...)
	}
	return out
}

// msrcVendorFix reads a vendor_fix's details as the description the
// rules read for a KB, and the fixed build when the details give one.
// The details are either the KB number itself or MSRC's
// "FIXEDBUILD:SUBTYPE:URL" (its Edge advisories give
// "129.0.2792.52:Security Update:https://docs.microsoft.com/..."), where
// the KB, if any, is the Microsoft Update Catalog search in the URL
// (Search.aspx?q=KB5013944, the URL CVRF gives its Vendor Fix). Other
// details are returned as they are, and name no KB.
func msrcVendorFix(details string) (description, fixedBuild string) {
	if _, ok := kbOf(details); ok {
		return details, ""
	}
	parts := strings.SplitN(details, ":", 3)
	if len(parts) != 3 || !isDottedVersion(parts[0]) {
		return details, ""
	}
	fixedBuild = strings.TrimSpace(parts[0])
	if u, err := url.Parse(strings.TrimSpace(parts[2])); err == nil {
		if q := u.Query().Get("q"); q != "" {
			if _, ok := kbOf(q); ok {
				return q, fixedBuild
			}
		}
	}
	return details, fixedBuild
}

// isDottedVersion reports whether s is a version such as 10.0.20348.707.
func isDottedVersion(s string) bool {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}
