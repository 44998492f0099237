# Patch Tuesday, May 2022: KB5013944, the cumulative update (LCU) for
# Windows Server 2022. It brings OS build 10.0.20348.707 and supersedes
# April's KB5012604; since 2021 the servicing-stack update for Server 2022
# ships inside the same package. Its fixes include CVE-2022-26937, the
# Network File System remote code execution (CVSS 9.8, critical), and
# CVE-2022-26925, the LSA spoofing flaw CISA added to its Known Exploited
# Vulnerabilities catalogue. A host is compliant on its build: a
# cumulative update replaces thousands of files, and CurrentBuild.UBR says
# which one is in effect. A host already at a later build (June's
# KB5014678 brings 20348.768) is compliant, named after that update.
#
# The stages select Server 2022 hosts only, so the same file runs over a
# mixed fleet. Try it on the demo fleet (its 13 Server 2022 hosts):
#   PATCHWAY_DEMO_ROLLOUT=kb5013944 make demo
# or, by hand:
#   patchway dev
#   patchway submit examples/kb5013944.hcl --inventory ~/.local/state/patchway/fleet/inventory.hcl   (signed in: patchway login)
rollout "kb5013944" {
  filed_by  = "alice.martin"
  inventory = "inventory-modern.hcl"

  patch {
    kb         = "KB5013944"
    title      = "2022-05 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems"
    cves       = ["CVE-2022-26937", "CVE-2022-26925", "CVE-2022-26923"]
    severity   = "critical"
    published  = "2022-05-10T17:00:00Z"
    reboot     = "required"
    supersedes = ["KB5012604"]

    # The sha256 here is the simulated distribution point's; take the real
    # one from the Microsoft Update Catalog before a real rollout.
    package "windows-server-2022" {
      source = "KB5013944/windows10.0-kb5013944-x64.msu"
      sha256 = "5d1a6b2e7c3f4a8b9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f"
      type   = "msu"
    }

    evidence {
      hotfix = "KB5013944"
      build {
        os        = "windows-server-2022"
        min_build = "10.0.20348.707"
      }
    }
  }

  risk {
    exploit_public   = true
    worm_in_the_wild = false
    exposure         = "internal"
    workaround       = "Disable NFSv4.1 on servers that do not need it (PowerShell: Set-NfsServerConfiguration -EnableNFSV4 $false) until patched."
    scanners         = ["Microsoft Defender Vulnerability Management", "Nessus plugin 160928"]
    side_effects     = ["Microsoft documented authentication failures on domain controllers with certificate mapping (KB5014754) after this update."]
  }

  stage "lab" {
    hosts          = "tier:lab and os:windows-server-2022"
    soak           = "2h"
    approval_group = "security-team"
  }

  stage "prodlike" {
    hosts          = "tier:prodlike and os:windows-server-2022"
    soak           = "4h"
    approval_group = "infrastructure-leads"
  }

  wave "domain-controllers" {
    hosts                = "tier:production and role:domain_controller and os:windows-server-2022"
    max_parallel         = 1
    max_failures         = 0
    download_concurrency = 1
    approval_group       = "identity-team"
  }

  wave "servers" {
    hosts                = "tier:production and not role:domain_controller and os:windows-server-2022"
    after                = ["domain-controllers"]
    max_parallel         = 20
    max_failures         = 1 # one host may fail before the wave halts
    download_concurrency = 5
  }

  escalation {
    at       = "breach"
    contacts = ["ciso@corp.example"]
    channels = ["security-chat"]
  }

  channel "security-chat" {
    type = "slack"
  }
}
