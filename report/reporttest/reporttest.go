// Package reporttest holds the report inputs that the tests of report,
// activities, workflows and cmd/patchway share, so each builds its report
// from the same rollout with the real policies. Only tests import it.
package reporttest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// Fixture is the input of a small MS08-067 rollout, what a workflow
// would pass report.Build: every kind of outcome, an exception, hosts of
// unknown owner or purpose, evidence. Built with the default policies it
// is 50.0 % compliant (6 of 12 applicable hosts).
func Fixture() contract.ReportInput {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	host := func(name, region, site string, tier rollout.Tier, role, owner, purpose string) rollout.Host {
		return rollout.Host{Name: name, Region: region, Site: site, Tier: tier, Role: role, Owner: owner, Purpose: purpose, OS: "windows-xp-sp3", Credential: "fleet"}
	}
	const netapi = `C:\Windows\System32\netapi32.dll`
	proof := func(boot string) []string {
		return []string{netapi + " 5.1.2600.5694 (expected >= 5.1.2600.5694)", "hotfix KB958644 present", "booted " + boot + " after install at 2026-12-02T10:01:00Z"}
	}
	compliant := func(name, boot string) contract.HostVerdict {
		return contract.HostVerdict{Host: name, State: rollout.StateCompliant, Proof: proof(boot),
			Reasons: []string{"1 file(s) at or above expected versions, KB958644 present, no reboot pending, booted at " + boot + " after the install"}}
	}
	in := contract.ReportInput{
		Rollout: rollout.Rollout{ID: "ms08-067", Patch: rollout.Patch{KB: "KB958644", Severity: rollout.SeverityCritical}},
		Hosts: []rollout.Host{
			host("LAB-PAR-01", "emea", "paris", rollout.TierLab, "web", "it-paris", "patch test lab"),
			host("PL-PAR-DC1", "emea", "paris", rollout.TierProdlike, "domain_controller", "identity-team", "domain controller"),
			host("WS-PAR-0001", "emea", "paris", rollout.TierProduction, "workstation", "it-paris", "office desktop"),
			host("WS-PAR-0002", "emea", "paris", rollout.TierProduction, "workstation", "it-paris", "office desktop"),
			host("WS-BER-0001", "emea", "berlin", rollout.TierProduction, "workstation", "it-berlin", "office desktop"),
			host("SRV-BER-FILE1", "emea", "berlin", rollout.TierProduction, "file", "?", ""),
			host("WS-DAL-0001", "amer", "dallas", rollout.TierProduction, "workstation", "it-dallas", "office desktop"),
			host("WS-DAL-0002", "amer", "dallas", rollout.TierProduction, "workstation", "it-dallas", "office desktop"),
			host("LT-DAL-0001", "amer", "dallas", rollout.TierProduction, "laptop", "it-dallas", "sales laptop"),
			host("SRV-DAL-SQL1", "amer", "dallas", rollout.TierProduction, "sql", "dba-team", "billing database"),
			host("WS-TYO-0001", "apac", "tokyo", rollout.TierProduction, "workstation", "it-tokyo", "office desktop"),
			host("WS-TYO-0002", "apac", "tokyo", rollout.TierProduction, "workstation", "it-tokyo", "kiosk"),
			host("WS-TYO-0003", "apac", "tokyo", rollout.TierProduction, "workstation", "unknown", "office desktop"),
		},
		Verdicts: []contract.HostVerdict{
			compliant("LAB-PAR-01", "2026-12-01T09:12:40Z"),
			compliant("PL-PAR-DC1", "2026-12-01T14:03:05Z"),
			compliant("WS-PAR-0001", "2026-12-02T10:03:00Z"),
			{Host: "WS-PAR-0002", State: rollout.StateNotEffective,
				Reasons: []string{"KB958644 is present but the fix is not in effect: " + netapi + " is 5.1.2600.3462, below 5.1.2600.5694"},
				Proof:   []string{netapi + " 5.1.2600.3462 (expected >= 5.1.2600.5694)", "hotfix KB958644 present"}},
			{Host: "WS-BER-0001", State: rollout.StatePendingReboot,
				Reasons: []string{"KB958644 installed but a reboot is pending: CBS RebootPending, last boot 2026-11-30T08:00:00Z is before the install at 2026-12-02T10:01:00Z"}},
			compliant("SRV-BER-FILE1", "2026-12-02T10:05:12Z"),
			compliant("WS-DAL-0001", "2026-12-02T10:04:31Z"),
			{Host: "WS-DAL-0002", State: rollout.StateFailed, Reasons: []string{"install: wusa.exe exited 1603 (fatal error during installation)"}},
			{Host: "LT-DAL-0001", State: rollout.StateUnreachable, Reasons: []string{"host unreachable: no evidence gathered"}},
			{Host: "SRV-DAL-SQL1", State: rollout.StateExcepted, Reasons: []string{"exception by carol until 2027-01-15T00:00Z: vendor certifies the billing stack in January"}},
			{Host: "WS-TYO-0001", State: rollout.StateUnknown, Reasons: []string{"no boot time reported; cannot prove a boot after the install at 2026-12-02T10:01:00Z"}},
			{Host: "WS-TYO-0002", State: rollout.StateNotApplicable, Reasons: []string{`no package of KB958644 for OS "windows-embedded-posready"`}},
			compliant("WS-TYO-0003", "2026-12-02T10:06:59Z"),
		},
		Exceptions: []contract.HostException{{Host: "SRV-DAL-SQL1", GrantedBy: "carol", Reason: "vendor certifies the billing stack in January",
			Expires: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)}},
		GeneratedAt: at,
	}
	return in
}

// Big is a realistic rollout of n hosts as finish builds it:
// the inventory, and verdicts with the compliance policy's reasons and
// the evidence lines (file versions, boot after install) that vary per
// host. A tenth is not compliant, some hosts have no owner.
func Big(n int) contract.ReportInput {
	rng := rand.New(rand.NewPCG(1, 2))
	regions := []string{"emea", "amer", "apac"}
	roles := []string{"workstation", "workstation", "workstation", "laptop", "file", "web", "sql", "mail", "domain_controller"}
	var hosts []rollout.Host
	var verdicts []contract.HostVerdict
	installed := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for i := range n {
		region := regions[i%len(regions)]
		site := fmt.Sprintf("%s-site-%02d", region, i%40)
		name := fmt.Sprintf("WS-%s-%05d", strings.ToUpper(region), i)
		owner, purpose := "it-"+site, "office desktop for the "+site+" accounting team"
		if i%4 == 0 {
			owner = "unknown"
		}
		if i%7 == 0 {
			purpose = "?"
		}
		hosts = append(hosts, rollout.Host{
			Name: name, Address: fmt.Sprintf("10.%d.%d.%d:5986", i/65536, i/256%256, i%256), OS: "windows-server-2008-r2",
			Site: site, Region: region, Tier: rollout.TierProduction, Role: roles[i%len(roles)],
			Owner: owner, Purpose: purpose, Credential: "fleet-" + region,
		})
		at := installed.Add(time.Duration(rng.IntN(36000)) * time.Second)
		boot := at.Add(time.Duration(60+rng.IntN(600)) * time.Second)
		v := contract.HostVerdict{Host: name, State: rollout.StateCompliant,
			Reasons: []string{fmt.Sprintf("1 file(s) at or above expected versions, KB958644 present, no reboot pending, booted at %s after the install", boot.Format(time.RFC3339))},
			Proof: []string{
				fmt.Sprintf(`C:\Windows\System32\netapi32.dll 6.1.7601.%d (expected >= 6.1.7601.17514) sha256 %016x`, 17514+rng.IntN(5000), rng.Uint64()),
				"hotfix KB958644 installed " + at.Format(time.RFC3339),
				fmt.Sprintf("booted %s after install at %s", boot.Format(time.RFC3339), at.Format(time.RFC3339)),
			}}
		switch i % 10 {
		case 3:
			v.State = rollout.StateNotEffective
			v.Reasons = []string{fmt.Sprintf(`KB958644 is present but the fix is not in effect: C:\Windows\System32\netapi32.dll is 6.1.7600.%d, below 6.1.7601.17514`, 16000+rng.IntN(385))}
		case 7:
			v.State = rollout.StateUnreachable
			v.Reasons, v.Proof = []string{"host unreachable: no evidence gathered", fmt.Sprintf("dial tcp %s: connect: connection timed out", hosts[i].Address)}, nil
		}
		verdicts = append(verdicts, v)
	}
	return contract.ReportInput{
		Rollout:     rollout.Rollout{ID: "ms08-067", Patch: rollout.Patch{KB: "KB958644", Severity: rollout.SeverityCritical}},
		Hosts:       hosts,
		Verdicts:    verdicts,
		GeneratedAt: time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC),
	}
}
