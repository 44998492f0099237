package rollout

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

var (
	inventorySpec = bodySpec{what: "inventory file", blocks: map[string]int{"site": 1, "host": 1}}
	siteSpec      = bodySpec{what: "site block", attrs: []string{"region", "time_zone", "distribution_point"}}
	hostSpec      = bodySpec{
		what:   "host block",
		attrs:  []string{"address", "os", "build", "site", "region", "tier", "role", "cluster", "owner", "purpose", "credential", "tags", "computer_name", "machine_guid"},
		blocks: map[string]int{"tls": 0},
	}
	tlsSpec = bodySpec{what: "tls block", attrs: []string{"transport", "insecure", "ca_file", "server_name", "auth", "cert_sha256"}}
)

// Allowed values of the inventory's enumerated fields.
var (
	tierValues      = []string{string(TierLab), string(TierProdlike), string(TierProduction)}
	transportValues = []string{"https", "http"}
	authValues      = []string{"basic", "ntlm"}
)

// CSVColumns are the columns an inventory CSV may have, named by its header
// row in any order. name, address, os, site, tier, role and credential are
// required; tags are separated by ";". The optional time_zone,
// distribution_point columns describe the host's site (they must agree
// across the rows of a site), since a CSV has no site blocks.
var CSVColumns = []string{
	"name", "address", "os", "build", "site", "region", "tier", "role", "cluster", "owner", "purpose",
	"credential", "transport", "insecure", "ca_file", "server_name", "auth", "tags",
	"time_zone", "distribution_point", "computer_name", "machine_guid", "cert_sha256",
}

// hostSource is a decoded host with the source ranges of its fields, as
// the HCL and CSV decoders produce it for the shared inventory checks.
type hostSource struct {
	host   Host
	header hcl.Range
	// name is the range of the host's name (its label, or its CSV field).
	name   hcl.Range
	fields hostFields
}

// at is the range of a field, or of the host's header when it was left out.
func (h hostSource) at(field string) hcl.Range {
	if r, ok := h.fields.get(h.header.Filename, field); ok {
		return r
	}
	return h.header
}

// siteSource is a decoded site with its source ranges.
type siteSource struct {
	site   Site
	header hcl.Range
	fields map[string]hcl.Range
}

// DecodeInventory decodes an inventory written in HCL (site and host
// blocks), checking it whole: duplicate names and addresses, unknown sites,
// missing owners (a warning: a quarter of one company's servers had no
// known purpose or owner).
func DecodeInventory(filename string, src []byte) (*Inventory, hcl.Diagnostics) {
	inv, _, diags := DecodeInventoryRanges(filename, src)
	return inv, diags
}

// DecodeInventoryRanges is DecodeInventory that also returns where each
// host and site was written.
func DecodeInventoryRanges(filename string, src []byte) (*Inventory, *Ranges, hcl.Diagnostics) {
	body, diags := parseFile(filename, src)
	if body == nil || diags.HasErrors() {
		return nil, nil, diags
	}
	d := &decoder{diags: diags, ranges: NewRanges()}
	_, blocks := d.content(body, inventorySpec)
	var sites []siteSource
	var hosts []hostSource
	for _, b := range blocks {
		switch b.Type {
		case "site":
			sites = append(sites, d.site(b))
		case "host":
			hosts = append(hosts, d.host(b))
		}
	}
	if len(body.Blocks) == 0 {
		d.errorf(body.SrcRange, "Empty inventory", `An inventory holds site "<name>" { ... } and host "<name>" { ... } blocks; this file has none.`)
	}
	inv := d.checkInventory(sites, hosts, true)
	sortDiagnostics(d.diags)
	return inv, d.ranges, d.diags
}

func (d *decoder) site(b *hclsyntax.Block) siteSource {
	attrs, _ := d.content(b.Body, siteSpec)
	d.required(attrs, b, "site block", "region", "time_zone")
	s := siteSource{site: Site{Name: b.Labels[0]}, header: blockHeader(b), fields: map[string]hcl.Range{}}
	for name, a := range attrs {
		s.fields[name] = a.Expr.Range()
	}
	s.site.Region, _ = d.str(attrs, "region")
	s.site.TimeZone, _ = d.str(attrs, "time_zone")
	s.site.DistributionPoint, _ = d.str(attrs, "distribution_point")
	return s
}

func (d *decoder) host(b *hclsyntax.Block) hostSource {
	attrs, blocks := d.content(b.Body, hostSpec)
	h := hostSource{host: Host{Name: b.Labels[0]}, header: blockHeader(b), name: b.LabelRanges[0]}
	for name, a := range attrs {
		h.fields.set(name, a.Expr.Range())
	}
	host := &h.host
	host.Address, _ = d.str(attrs, "address")
	host.OS, _ = d.str(attrs, "os")
	host.Build, _ = d.str(attrs, "build")
	host.Site, _ = d.str(attrs, "site")
	host.Region, _ = d.str(attrs, "region")
	tier, _ := d.str(attrs, "tier")
	host.Tier = Tier(tier)
	host.Role, _ = d.str(attrs, "role")
	host.Cluster, _ = d.str(attrs, "cluster")
	host.Owner, _ = d.str(attrs, "owner")
	host.Purpose, _ = d.str(attrs, "purpose")
	host.Credential, _ = d.str(attrs, "credential")
	host.Tags = d.strList(attrs, "tags")
	host.ComputerName, _ = d.str(attrs, "computer_name")
	host.MachineGUID, _ = d.str(attrs, "machine_guid")
	for i, tb := range blocks {
		if i > 0 {
			d.errorf(tb.TypeRange, "Duplicate tls block", "A host has one tls block; the first is at line %d.", blocks[0].TypeRange.Start.Line)
			continue
		}
		ta, _ := d.content(tb.Body, tlsSpec)
		for name, a := range ta {
			h.fields.set("tls."+name, a.Expr.Range())
		}
		host.TLS.Transport, _ = d.str(ta, "transport")
		host.TLS.Insecure = d.boolean(ta, "insecure")
		host.TLS.CAFile, _ = d.str(ta, "ca_file")
		host.TLS.ServerName, _ = d.str(ta, "server_name")
		host.TLS.Auth, _ = d.str(ta, "auth")
		host.TLS.CertSHA256, _ = d.str(ta, "cert_sha256")
		host.TLS.CertSHA256 = NormalizeFingerprint(host.TLS.CertSHA256)
	}
	return h
}

// checkInventory checks hosts and sites together and builds the
// inventory. requireSites says site blocks are the only source of sites
// (HCL); a CSV derives its sites from its rows.
func (d *decoder) checkInventory(sites []siteSource, hosts []hostSource, requireSites bool) *Inventory {
	inv := &Inventory{}
	siteAt := map[string]int{}
	siteNames := []string{}
	for _, s := range sites {
		if first, dup := siteAt[s.site.Name]; dup {
			d.errorf(s.header, "Duplicate site name", "A site named %q is already declared at line %d.", s.site.Name, sites[first].header.Start.Line)
			continue
		}
		if s.site.TimeZone != "" {
			if err := checkTimeZone(s.site.TimeZone); err != nil {
				d.errorf(s.fields["time_zone"], "Unknown time zone", "%s. Use an IANA zone name like \"Europe/Paris\": maintenance windows open in the site's local time.", capitalize(err.Error()))
			}
		}
		siteAt[s.site.Name] = len(inv.Sites)
		siteNames = append(siteNames, s.site.Name)
		key := blockKey("", "site", s.site.Name)
		d.ranges.Set(key, s.header)
		for f, r := range s.fields {
			d.ranges.Set(key+"."+f, r)
		}
		inv.Sites = append(inv.Sites, s.site)
	}
	// Hosts are found again by index: a hostSource is half a kilobyte.
	names := make(map[string]int, len(hosts))
	addrs := make(map[string]int, len(hosts))
	inv.Hosts = make([]Host, 0, len(hosts))
	for i, hs := range hosts {
		h := hs.host
		// A duplicate is still checked field by field (its name may be the
		// typo), but only the first host of a name joins the inventory.
		if err := checkHostName(h.Name); err != nil {
			d.errorf(hs.name, "Invalid host name", "%s. Name each host as Windows and DNS know it, like \"dc01\" or \"dc01.corp.example\".", capitalize(err.Error()))
		}
		first, dupName := names[h.Name]
		if dupName {
			d.errorf(hs.header, "Duplicate host name", "A host named %q is already declared at %s; host names identify hosts in approvals, exceptions and reports.", h.Name, lineOf(hosts[first].header))
		} else {
			names[h.Name] = i
		}
		for _, f := range []string{"address", "os", "site", "tier", "role", "credential"} {
			if _, ok := hs.fields.get(hs.header.Filename, f); !ok || fieldValue(h, f) == "" {
				if ok {
					d.errorf(hs.at(f), "Missing value", "Host %q has an empty %s.", h.Name, f)
				} else {
					d.errorf(hs.header, "Missing required argument", "The argument %q is required for host %q.%s", f, h.Name, requiredWhy(f))
				}
			}
		}
		if h.Address != "" {
			if err := checkAddress(h.Address); err != nil {
				d.errorf(hs.at("address"), "Invalid address", "%s. Write the WinRM listener as host:port, like \"dc01.corp.example:5986\".", capitalize(err.Error()))
			} else if j, dup := addrs[strings.ToLower(h.Address)]; dup {
				other := hosts[j]
				d.errorf(hs.at("address"), "Duplicate host address",
					"Host %q has the address %s, already used by host %q at %s: two inventory entries for one machine would patch and count it twice.", h.Name, h.Address, other.host.Name, lineOf(other.header))
			} else {
				addrs[strings.ToLower(h.Address)] = i
			}
		}
		if h.Tier != "" && !slices.Contains(tierValues, string(h.Tier)) {
			d.errorf(hs.at("tier"), "Unknown tier", "%q is not a tier. Use lab, prodlike or production: the staged path reaches them in that order.%s", h.Tier, onlySuggest(string(h.Tier), tierValues))
		}
		if t := h.TLS.Transport; t != "" && !slices.Contains(transportValues, t) {
			d.errorf(hs.at("tls.transport"), "Unknown transport", "%q is not a WinRM transport. Use https (the default) or http.", t)
		}
		if a := h.TLS.Auth; a != "" && !slices.Contains(authValues, a) {
			d.errorf(hs.at("tls.auth"), "Unknown authentication", "%q is not a WinRM authentication. Use basic (the default) or ntlm.", a)
		}
		d.checkIdentityPins(hs)
		if h.Owner == "" {
			d.warnf(hs.header, "Host without owner",
				"Host %q has no owner. Escalations and exceptions need someone to ask; record the owner (and purpose) of every host.", h.Name)
		}
		if h.Site != "" {
			i, known := siteAt[h.Site]
			switch {
			case known:
				site := inv.Sites[i]
				if h.Region == "" {
					h.Region = site.Region
				} else if site.Region != "" && h.Region != site.Region {
					d.errorf(hs.at("region"), "Region disagrees with site",
						"Host %q is in region %q, but its site %q is in region %q; leave region out to take the site's.", h.Name, h.Region, h.Site, site.Region)
				}
			case requireSites:
				d.errorf(hs.at("site"), "Unknown site",
					"Host %q is at site %q, but the inventory declares no such site; declare it with site %q { region = \"...\", time_zone = \"...\" }.%s", h.Name, h.Site, h.Site, didYouMean(h.Site, siteNames))
			}
		}
		if h.Region == "" && h.Site != "" && !requireSites {
			d.errorf(hs.at("site"), "Missing region", "Host %q has no region and nothing to take it from; fill the region column.", h.Name)
		}
		if dupName {
			continue
		}
		d.ranges.setHost(h.Name, hs.header, hs.fields)
		inv.Hosts = append(inv.Hosts, h)
	}
	return inv
}

// checkIdentityPins checks what the inventory pins of a host's identity
// (computer name, machine GUID, certificate) is well formed; whether a
// host matches them the identity policy decides on each scan.
func (d *decoder) checkIdentityPins(hs hostSource) {
	h := hs.host
	if h.ComputerName != "" {
		if err := checkHostName(h.ComputerName); err != nil {
			d.errorf(hs.at("computer_name"), "Invalid computer name", "%s. Give the host's Windows computer name, like \"WEB01\".", capitalize(err.Error()))
		}
	}
	if g := h.MachineGUID; g != "" && !isGUID(g) {
		d.errorf(hs.at("machine_guid"), "Invalid machine GUID",
			"%s is not a GUID. Copy MachineGuid from HKLM\\SOFTWARE\\Microsoft\\Cryptography, like \"5c1e2a77-0e8b-4c3f-9d0a-3b9e2f1c4d5e\" (patchway scan prints it).", quoteName(g))
	}
	if c := h.TLS.CertSHA256; c != "" && !isSHA256Hex(c) {
		d.errorf(hs.at("tls.cert_sha256"), "Invalid certificate fingerprint",
			"%s is not a SHA-256 fingerprint. Give the 64 hex digits of the SHA-256 of the listener's certificate (colons allowed); patchway scan prints it.", quoteName(c))
	}
}

// isGUID reports whether s is a GUID in its registry form: 8-4-4-4-12 hex
// digits, without braces.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}

// isSHA256Hex reports whether s is 32 bytes in hex, optionally separated
// by colons as openssl and certutil print them.
func isSHA256Hex(s string) bool {
	s = NormalizeFingerprint(s)
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !isHex(c) {
			return false
		}
	}
	return true
}

// NormalizeFingerprint is a certificate fingerprint as lower-case hex
// without separators, the form the worker records.
func NormalizeFingerprint(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
}

func isHex(c rune) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func requiredWhy(field string) string {
	switch field {
	case "credential":
		return " It names the credential set the worker resolves (credential = \"corp-admin\"); the secret itself never appears here."
	case "tier":
		return " It places the host on the staged path: lab, prodlike or production."
	}
	return ""
}

func lineOf(r hcl.Range) string {
	return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line)
}

func fieldValue(h Host, f string) string {
	switch f {
	case "address":
		return h.Address
	case "os":
		return h.OS
	case "site":
		return h.Site
	case "tier":
		return string(h.Tier)
	case "role":
		return h.Role
	case "credential":
		return h.Credential
	}
	return ""
}

// LoadInventory reads an inventory file: CSV when its name ends in .csv,
// HCL otherwise.
func LoadInventory(path string) (*Inventory, hcl.Diagnostics) {
	inv, _, _, diags := loadInventoryRanges(path)
	return inv, diags
}

// loadInventoryRanges reads and decodes an inventory file, returning its
// contents too (nil when it could not be read or was too large).
func loadInventoryRanges(path string) (*Inventory, *Ranges, []byte, hcl.Diagnostics) {
	src, diags := ReadInput(path, "inventory")
	if diags.HasErrors() {
		return nil, nil, nil, diags
	}
	var inv *Inventory
	var ranges *Ranges
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		inv, ranges, diags = DecodeInventoryCSVRanges(path, src)
	} else {
		inv, ranges, diags = DecodeInventoryRanges(path, src)
	}
	return inv, ranges, src, diags
}

// DecodeInventoryCSV decodes an inventory exported as CSV, one host per
// row; see CSVColumns. It makes the same checks as DecodeInventory, each
// diagnostic pointing at the row and column.
func DecodeInventoryCSV(filename string, src []byte) (*Inventory, hcl.Diagnostics) {
	inv, _, diags := DecodeInventoryCSVRanges(filename, src)
	return inv, diags
}

// DecodeInventoryCSVRanges is DecodeInventoryCSV that also returns where
// each host was written.
func DecodeInventoryCSVRanges(filename string, src []byte) (*Inventory, *Ranges, hcl.Diagnostics) {
	if len(src) > MaxCSVFileSize {
		return nil, nil, tooLarge(filename, "inventory", int64(len(src)), MaxCSVFileSize)
	}
	d := &decoder{ranges: NewRanges()}
	lines := newCSVLines(filename, src)
	r := csv.NewReader(bytes.NewReader(src))
	r.FieldsPerRecord = -1
	r.Comment = '#'
	header, err := r.Read()
	if err != nil {
		d.csvError(lines, err, "Reading the header row")
		return nil, nil, d.diags
	}
	col := map[string]int{}
	headerLine := 1
	for i, name := range header {
		line, column := r.FieldPos(i)
		headerLine = line
		name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")))
		rng := lines.rng(line, column, len(header[i]))
		switch {
		case looksSecret(name):
			d.errorf(rng, "Secrets do not belong in a rollout or inventory",
				"The column %q looks like a secret. Give each host a credential set name (credential column) and let the worker resolve it from its environment or a 0600 credentials file.", name)
		case !slices.Contains(CSVColumns, name):
			d.errorf(rng, "Unknown column", "The header names a column %q that an inventory does not have.%s Columns: %s.", name, didYouMean(name, CSVColumns), strings.Join(CSVColumns, ", "))
		case col[name] != 0:
			d.errorf(rng, "Duplicate column", "The header names the column %q twice.", name)
		default:
			col[name] = i + 1
		}
	}
	for _, req := range []string{"name", "address", "os", "site", "tier", "role", "credential"} {
		if col[req] == 0 {
			d.errorf(lines.rng(headerLine, 1, len(strings.Join(header, ","))), "Missing column", "The header has no %q column; an inventory needs it for every host.", req)
		}
	}
	if d.diags.HasErrors() {
		return nil, nil, d.diags
	}
	// At most one host a line, and rows are rarely under 128 bytes: sized
	// so, the slice is seldom copied as it grows.
	hosts := make([]hostSource, 0, min(len(lines.starts), len(src)/128+1))
	type siteFacts struct {
		src  siteSource
		seen bool
	}
	sites := map[string]*siteFacts{}
	var siteOrder []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			d.csvError(lines, err, "Reading a row")
			break
		}
		// A row as a whole is pointed at by its name field.
		nameLine, nameCol := r.FieldPos(min(col["name"]-1, len(rec)-1))
		hs := hostSource{header: lines.rng(nameLine, nameCol, len(rec[min(col["name"]-1, len(rec)-1)])), fields: make(hostFields, 0, len(col))}
		hs.name = hs.header
		get := func(name string) string {
			i := col[name] - 1
			if i < 0 || i >= len(rec) {
				return ""
			}
			l, c := r.FieldPos(i)
			v := strings.TrimSpace(rec[i])
			if v != "" {
				hs.fields.set(csvField(name), lines.rng(l, c, len(rec[i])))
			}
			return v
		}
		if len(rec) != len(header) {
			d.errorf(hs.header, "Wrong number of fields", "This row has %d fields; the header has %d.", len(rec), len(header))
		}
		h := &hs.host
		h.Name = get("name")
		if h.Name == "" {
			d.errorf(hs.header, "Missing host name", "Every row needs a name.")
			continue
		}
		h.Address, h.OS, h.Build = get("address"), get("os"), get("build")
		h.Site, h.Region, h.Tier, h.Role = get("site"), get("region"), Tier(get("tier")), get("role")
		h.Cluster, h.Owner, h.Purpose, h.Credential = get("cluster"), get("owner"), get("purpose"), get("credential")
		h.TLS.Transport, h.TLS.CAFile, h.TLS.ServerName, h.TLS.Auth = get("transport"), get("ca_file"), get("server_name"), get("auth")
		h.ComputerName, h.MachineGUID, h.TLS.CertSHA256 = get("computer_name"), get("machine_guid"), NormalizeFingerprint(get("cert_sha256"))
		if s := get("insecure"); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				d.errorf(hs.at("tls.insecure"), "Incorrect value type", "The insecure column holds true or false; this row has %q.", s)
			}
			h.TLS.Insecure = b
		}
		for _, t := range strings.Split(get("tags"), ";") {
			if t = strings.TrimSpace(t); t != "" {
				h.Tags = append(h.Tags, t)
			}
		}
		tz, dp := get("time_zone"), get("distribution_point")
		if h.Site != "" {
			f := sites[h.Site]
			if f == nil {
				f = &siteFacts{src: siteSource{site: Site{Name: h.Site, Region: h.Region}, header: hs.at("site"), fields: map[string]hcl.Range{}}}
				sites[h.Site] = f
				siteOrder = append(siteOrder, h.Site)
			}
			d.mergeSiteFact(f.src.site.Name, &f.src.site.TimeZone, tz, "time_zone", f.src.fields, hs)
			d.mergeSiteFact(f.src.site.Name, &f.src.site.DistributionPoint, dp, "distribution_point", f.src.fields, hs)
			if f.src.site.Region == "" {
				f.src.site.Region = h.Region
			}
		}
		hosts = append(hosts, hs)
	}
	var siteList []siteSource
	for _, name := range siteOrder {
		siteList = append(siteList, sites[name].src)
	}
	if len(hosts) == 0 && !d.diags.HasErrors() {
		d.errorf(lines.rng(headerLine, 1, 1), "Empty inventory", "The CSV has a header but no host rows.")
	}
	inv := d.checkInventory(siteList, hosts, false)
	sortDiagnostics(d.diags)
	return inv, d.ranges, d.diags
}

// mergeSiteFact records a site fact from a CSV row, reporting rows of one
// site that disagree.
func (d *decoder) mergeSiteFact(site string, have *string, v, field string, fields map[string]hcl.Range, hs hostSource) {
	if v == "" {
		return
	}
	switch {
	case *have == "":
		*have = v
		fields[field] = hs.at(field)
	case *have != v:
		d.errorf(hs.at(field), "Site facts disagree",
			"Host %q gives site %q the %s %q, but an earlier row (line %d) gave %q.", hs.host.Name, site, field, v, fields[field].Start.Line, *have)
	}
}

// csvField maps a CSV column to the Ranges field name of the HCL form.
func csvField(col string) string {
	switch col {
	case "transport", "insecure", "ca_file", "server_name", "auth", "cert_sha256":
		return "tls." + col
	}
	return col
}

// csvLines locates CSV positions (line and byte column, as encoding/csv
// reports them) as HCL ranges with byte offsets, so HCL's diagnostic
// writer can print the row under a caret.
type csvLines struct {
	filename string
	src      []byte
	starts   []int // byte offset of each line
}

func newCSVLines(filename string, src []byte) *csvLines {
	l := &csvLines{filename: filename, src: src, starts: []int{0}}
	for i, b := range src {
		if b == '\n' {
			l.starts = append(l.starts, i+1)
		}
	}
	return l
}

// rng is the range of length bytes at line and byte column col (1-based).
func (l *csvLines) rng(line, col, length int) hcl.Range {
	line = min(max(line, 1), len(l.starts))
	off := min(l.starts[line-1]+max(col, 1)-1, len(l.src))
	end := min(off+max(length, 1), len(l.src))
	startCol := utf8.RuneCount(l.src[l.starts[line-1]:off]) + 1
	endCol := startCol + utf8.RuneCount(l.src[off:end])
	return hcl.Range{
		Filename: l.filename,
		Start:    hcl.Pos{Line: line, Column: startCol, Byte: off},
		End:      hcl.Pos{Line: line, Column: endCol, Byte: end},
	}
}

func (d *decoder) csvError(lines *csvLines, err error, step string) {
	var pe *csv.ParseError
	rng := lines.rng(1, 1, 1)
	if errors.As(err, &pe) {
		rng = lines.rng(pe.Line, max(pe.Column, 1), 1)
		err = pe.Err
	}
	d.errorf(rng, "Invalid CSV", "%s: %v.", step, err)
}
