// Command gen writes the example inventory, examples/inventory.hcl and the
// same hosts as examples/inventory.csv: about 200 hosts over 4 regions and
// 10 sites, with a test lab, a production-like tier, domain controllers,
// mail and SQL servers, file and web servers, workstations and laptops.
// The output is deterministic; regenerate with
//
//	go run ./examples/gen -out examples
package main

import (
	"bytes"
	"encoding/csv"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2/hclwrite"
)

type site struct {
	name, code, region, zone string
	// size is big, medium or small: it sets which servers the site has.
	size string
}

type host struct {
	name, address, os, build, site, region, tier, role, cluster, owner, purpose, credential string
	tags                                                                                    []string
}

var sites = []site{
	{"paris", "par", "emea", "Europe/Paris", "big"},
	{"london", "lon", "emea", "Europe/London", "big"},
	{"frankfurt", "fra", "emea", "Europe/Berlin", "medium"},
	{"new-york", "nyc", "na", "America/New_York", "big"},
	{"chicago", "chi", "na", "America/Chicago", "medium"},
	{"tokyo", "tyo", "apac", "Asia/Tokyo", "big"},
	{"singapore", "sin", "apac", "Asia/Singapore", "medium"},
	{"sydney", "syd", "apac", "Australia/Sydney", "small"},
	{"sao-paulo", "sao", "latam", "America/Sao_Paulo", "medium"},
	{"mexico-city", "mex", "latam", "America/Mexico_City", "small"},
}

// Operating systems of the MS08-067 era, with their build numbers.
var builds = map[string]string{
	"windows-2000-sp4":        "5.0.2195",
	"windows-xp-sp2":          "5.1.2600",
	"windows-xp-sp3":          "5.1.2600",
	"windows-server-2003-sp2": "5.2.3790",
	"windows-vista-sp1":       "6.0.6001",
	"windows-server-2008":     "6.0.6001",
}

func main() {
	out := flag.String("out", "examples", "directory to write inventory.hcl and inventory.csv to")
	flag.Parse()
	hosts := inventory()
	if err := os.WriteFile(filepath.Join(*out, "inventory.hcl"), renderHCL(hosts), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen: write inventory.hcl:", err)
		os.Exit(1)
	}
	data, err := renderCSV(hosts)
	if err == nil {
		err = os.WriteFile(filepath.Join(*out, "inventory.csv"), data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen: write inventory.csv:", err)
		os.Exit(1)
	}
	fmt.Printf("gen: %d hosts at %d sites\n", len(hosts), len(sites))
}

func inventory() []host {
	var hs []host
	add := func(s site, name, osName, tier, role, owner, purpose string, tags ...string) *host {
		cred := s.region + "-admin"
		if tier != "production" {
			cred = "lab-admin"
		}
		hs = append(hs, host{
			name: name, address: name + "." + s.name + ".corp.example:5986", os: osName, build: builds[osName],
			site: s.name, region: s.region, tier: tier, role: role, owner: owner, purpose: purpose,
			credential: cred, tags: tags,
		})
		return &hs[len(hs)-1]
	}
	paris, nyc := sites[0], sites[3]

	// The test lab: one machine per OS family, in the two head offices.
	labOS := []string{"windows-2000-sp4", "windows-xp-sp2", "windows-xp-sp3", "windows-server-2003-sp2", "windows-vista-sp1"}
	for i, o := range labOS {
		add(paris, fmt.Sprintf("lab-par%02d", i+1), o, "lab", labRole(o), "security-lab", "Patch test lab, "+o, "lab")
	}
	labNYC := []string{"windows-xp-sp3", "windows-server-2003-sp2", "windows-server-2008", "windows-xp-sp3", "windows-2000-sp4"}
	for i, o := range labNYC {
		add(nyc, fmt.Sprintf("lab-nyc%02d", i+1), o, "lab", labRole(o), "security-lab", "Patch test lab, "+o, "lab")
	}

	// The production-like platform: the infrastructure servers the company
	// runs on, in small, at the two head offices.
	for _, s := range []site{paris, nyc} {
		code := s.code
		add(s, "pl-"+code+"-dc01", "windows-server-2003-sp2", "prodlike", "domain_controller", "identity-team", "Pre-production Active Directory", "tier0")
		add(s, "pl-"+code+"-dc02", "windows-server-2008", "prodlike", "domain_controller", "identity-team", "Pre-production Active Directory", "tier0")
		add(s, "pl-"+code+"-mail01", "windows-server-2003-sp2", "prodlike", "mail", "messaging-team", "Pre-production Exchange 2003")
		h := add(s, "pl-"+code+"-sql01", "windows-server-2003-sp2", "prodlike", "sql", "dba-team", "Pre-production SQL Server 2005 node")
		h.cluster = "pl-" + code + "-sql"
		h = add(s, "pl-"+code+"-sql02", "windows-server-2003-sp2", "prodlike", "sql", "dba-team", "Pre-production SQL Server 2005 node")
		h.cluster = "pl-" + code + "-sql"
		add(s, "pl-"+code+"-ws01", "windows-xp-sp3", "prodlike", "workstation", s.region+"-desktop", "Reference workstation image")
	}

	// Production, site by site.
	wsOS := []string{"windows-xp-sp3", "windows-xp-sp3", "windows-xp-sp2", "windows-xp-sp3", "windows-vista-sp1", "windows-xp-sp3", "windows-2000-sp4", "windows-xp-sp3"}
	ltOS := []string{"windows-xp-sp3", "windows-vista-sp1", "windows-xp-sp2"}
	for si, s := range sites {
		servers := s.region + "-server-team"
		c := s.code
		dcs, mail, sql, web, ws, lt := 1, 1, 0, 0, 9, 4
		switch s.size {
		case "big":
			dcs, sql, web, ws, lt = 2, 2, 1, 10, 5
		case "small":
			mail, ws = 0, 7
		}
		for i := range dcs {
			o := "windows-server-2003-sp2"
			if s.size == "small" {
				o = "windows-2000-sp4"
			}
			if s.name == "paris" && i == 1 {
				o = "windows-server-2008"
			}
			add(s, fmt.Sprintf("%s-dc%02d", c, i+1), o, "production", "domain_controller", "identity-team", "Active Directory domain controller, "+s.name, "tier0")
		}
		for i := range mail {
			add(s, fmt.Sprintf("%s-mail%02d", c, i+1), "windows-server-2003-sp2", "production", "mail", "messaging-team", "Exchange 2003 mailbox server, "+s.name)
		}
		for i := range sql {
			h := add(s, fmt.Sprintf("%s-sql%02d", c, i+1), "windows-server-2003-sp2", "production", "sql", "dba-team", "SQL Server 2005 cluster node (finance)", "cluster")
			h.cluster = c + "-sql"
		}
		fileOS := "windows-server-2003-sp2"
		if si%3 == 2 {
			fileOS = "windows-2000-sp4"
		}
		f := add(s, c+"-file01", fileOS, "production", "file", servers, "Departmental file shares, "+s.name)
		if s.name == "frankfurt" || s.name == "mexico-city" {
			// Kept to show the owner warning: a quarter of one company's
			// servers had no known owner or purpose.
			f.owner, f.purpose = "", ""
		}
		for i := range web {
			add(s, fmt.Sprintf("%s-web%02d", c, i+1), "windows-server-2008", "production", "web", "web-team", "Intranet IIS server, "+s.name, "dmz")
		}
		for i := range ws {
			o := wsOS[(i+si)%len(wsOS)]
			add(s, fmt.Sprintf("%s-ws%03d", c, i+1), o, "production", "workstation", s.region+"-desktop", "Office workstation")
		}
		for i := range lt {
			o := ltOS[(i+si)%len(ltOS)]
			add(s, fmt.Sprintf("%s-lt%03d", c, i+1), o, "production", "laptop", s.region+"-desktop", "Mobile sales laptop", "mobile")
		}
	}
	return hs
}

func labRole(osName string) string {
	if strings.Contains(osName, "server") {
		return "file"
	}
	return "workstation"
}

func renderHCL(hosts []host) []byte {
	var b bytes.Buffer
	b.WriteString("# Example inventory: generated by `go run ./examples/gen -out examples`; edit the generator, not this file.\n")
	b.WriteString("# Credentials are credential-set names; the worker resolves them from its environment.\n\n")
	for _, s := range sites {
		fmt.Fprintf(&b, "site %q {\nregion = %q\ntime_zone = %q\ndistribution_point = %q\n}\n\n",
			s.name, s.region, s.zone, "https://wsus."+s.name+".corp.example/patches")
	}
	for _, h := range hosts {
		fmt.Fprintf(&b, "host %q {\n", h.name)
		fmt.Fprintf(&b, "address = %q\nos = %q\nbuild = %q\nsite = %q\ntier = %q\nrole = %q\n", h.address, h.os, h.build, h.site, h.tier, h.role)
		if h.cluster != "" {
			fmt.Fprintf(&b, "cluster = %q\n", h.cluster)
		}
		if h.owner != "" {
			fmt.Fprintf(&b, "owner = %q\n", h.owner)
		}
		if h.purpose != "" {
			fmt.Fprintf(&b, "purpose = %q\n", h.purpose)
		}
		fmt.Fprintf(&b, "credential = %q\n", h.credential)
		if len(h.tags) > 0 {
			q := make([]string, len(h.tags))
			for i, t := range h.tags {
				q[i] = fmt.Sprintf("%q", t)
			}
			fmt.Fprintf(&b, "tags = [%s]\n", strings.Join(q, ", "))
		}
		b.WriteString("}\n\n")
	}
	return hclwrite.Format(bytes.TrimRight(b.Bytes(), "\n"))
}

func renderCSV(hosts []host) ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	zone := map[string]site{}
	for _, s := range sites {
		zone[s.name] = s
	}
	rows := [][]string{{"name", "address", "os", "build", "site", "region", "tier", "role", "cluster", "owner", "purpose",
		"credential", "transport", "insecure", "ca_file", "server_name", "auth", "tags", "time_zone", "distribution_point"}}
	for _, h := range hosts {
		s := zone[h.site]
		rows = append(rows, []string{h.name, h.address, h.os, h.build, h.site, h.region, h.tier, h.role, h.cluster, h.owner, h.purpose,
			h.credential, "", "", "", "", "", strings.Join(h.tags, ";"), s.zone, "https://wsus." + s.name + ".corp.example/patches"})
	}
	if err := w.WriteAll(rows); err != nil {
		return nil, fmt.Errorf("render csv: %w", err)
	}
	return b.Bytes(), nil
}
