# MS03-026: the RPC DCOM buffer overrun the Blaster worm used (August 2003).
# Only hosts still on Windows 2000 and the original Server 2003 builds need
# it here; the package sweeps them region by region in weekend windows. A
# host that reports the hotfix but still has the old rpcss.dll is
# not_effective: Windows Update's registry-only check let MSBlast in.
rollout "ms03-026" {
  filed_by  = "bob.nguyen"
  inventory = "inventory.hcl"

  patch {
    kb         = "KB823980"
    bulletin   = "MS03-026"
    title      = "Buffer Overrun In RPC Interface Could Allow Code Execution"
    cves       = ["CVE-2003-0352"]
    severity   = "critical"
    published  = "2003-07-16T17:00:00Z"
    reboot     = "required"
    supersedes = ["KB331953"] # MS03-010

    package "windows-2000-sp4" {
      source = "KB823980/Windows2000-KB823980-x86-ENU.exe"
      sha256 = "c0d2cefc21c6e44d1da23d960804337948c7363b56cf73db0619131f20fb7ae1"
      type   = "exe"
    }
    package "windows-server-2003-sp2" {
      source = "KB823980/WindowsServer2003-KB823980-x86-ENU.exe"
      sha256 = "10dbf2b303ca9076e2f3af9173e2b7922989826dd1ba5aead64d0429c0e6fa1f"
      type   = "exe"
    }

    evidence {
      hotfix = "KB823980"
      file {
        os          = "windows-2000-sp4"
        path        = "C:\\WINNT\\system32\\rpcss.dll"
        min_version = "5.0.2195.6753"
      }
      file {
        os          = "windows-server-2003-sp2"
        path        = "C:\\Windows\\System32\\rpcss.dll"
        min_version = "5.2.3790.59"
      }
    }
  }

  risk {
    exploit_public   = true
    worm_in_the_wild = true
    exposure         = "internet"
    workaround       = "Block TCP/UDP 135, 139, 445 and TCP 593 at the firewall; disable DCOM where no application needs it."
    scanners         = ["KB827363 scanning tool (kb823980scan.exe)", "Nessus plugin 11808"]
    side_effects     = ["Hosts must reboot: rpcss.dll is in use until then."]
  }

  stage "lab" {
    hosts          = "tier:lab and (os:windows-2000* or os:windows-server-2003*)"
    soak           = "1h"
    approval_group = "security-team"
  }

  stage "prodlike" {
    hosts          = "tier:prodlike and os:windows-server-2003*"
    soak           = "2h"
    approval_group = "infrastructure-leads"
  }

  wave "emea" {
    hosts                = "tier:production and region:emea and (os:windows-2000* or os:windows-server-2003*)"
    max_parallel         = 10
    max_failures         = 2
    download_concurrency = 2
    window {
      days      = ["sat", "sun"]
      hours     = "22:00-06:00"
      time_zone = "Europe/Paris"
    }
  }

  wave "americas" {
    hosts        = "tier:production and (region:na or region:latam) and (os:windows-2000* or os:windows-server-2003*)"
    after        = ["emea"]
    max_parallel = 10
    max_failures = 2
    window {
      days  = ["sat", "sun"]
      hours = "22:00-06:00"
    }
  }

  wave "apac" {
    hosts        = "tier:production and region:apac and (os:windows-2000* or os:windows-server-2003*)"
    after        = ["emea"]
    max_parallel = 10
    max_failures = 2
    window {
      days  = ["fri-sun"]
      hours = "23:00-05:00"
    }
  }

  escalation {
    at       = "75%"
    contacts = ["it-managers@corp.example"]
    channels = ["security-mail"]
  }
  escalation {
    at       = "breach"
    contacts = ["ciso@corp.example"]
    channels = ["security-mail"]
  }

  channel "security-mail" {
    type = "email"
  }
}
