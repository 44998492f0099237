# MS08-067: the Server service flaw Conficker spread through (October 2008).
# Critical, worm in the wild: lab and production-like tiers soak briefly,
# then domain controllers, then the regions, laptops last (they come back
# online later and are retried until the deadline).
rollout "ms08-067" {
  filed_by  = "alice.martin"
  inventory = "inventory.hcl"

  patch {
    kb         = "KB958644"
    bulletin   = "MS08-067"
    title      = "Vulnerability in Server Service Could Allow Remote Code Execution"
    cves       = ["CVE-2008-4250"]
    severity   = "critical"
    published  = "2008-10-23T17:00:00Z"
    reboot     = "required"
    supersedes = ["KB921883"] # MS06-040

    package "windows-2000-sp4" {
      source = "KB958644/Windows2000-KB958644-x86-ENU.EXE"
      sha256 = "22820ccc1062d5ba0f65a7d45f844e60efe4d2ec84968543b3240188425953b0"
      type   = "exe"
    }
    package "windows-xp-sp2" {
      source = "KB958644/WindowsXP-KB958644-x86-ENU.exe"
      sha256 = "475c9d945d7d41a5335b5751bf46e7078a67256fd75d906bffb858edc17cdf37"
      type   = "exe"
    }
    package "windows-xp-sp3" {
      source = "KB958644/WindowsXP-KB958644-x86-ENU.exe"
      sha256 = "475c9d945d7d41a5335b5751bf46e7078a67256fd75d906bffb858edc17cdf37"
      type   = "exe"
    }
    package "windows-server-2003-sp2" {
      source = "KB958644/WindowsServer2003-KB958644-x86-ENU.exe"
      sha256 = "eb24a902e9172d5d607ee884a7174b5ea5dba88c5f017c4b3514bacfa3f06401"
      type   = "exe"
    }
    package "windows-vista-sp1" {
      source = "KB958644/Windows6.0-KB958644-x86.msu"
      sha256 = "48f2e71c74e926d732b9648b0cf4f87db5ae36893e7af04856ec7e89f7bc5d2b"
      type   = "msu"
    }
    package "windows-server-2008" {
      source = "KB958644/Windows6.0-KB958644-x64.msu"
      sha256 = "90138a76080ce7e2858203d260e1daa79bc616f17ea986db796d1b196924d77f"
      type   = "msu"
    }

    # The registry key alone proves nothing: netapi32.dll must be the new one.
    evidence {
      hotfix = "KB958644"
      file {
        os          = "windows-2000-sp4"
        path        = "C:\\WINNT\\system32\\netapi32.dll"
        min_version = "5.0.2195.7203"
      }
      file {
        os          = "windows-xp-sp2"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.1.2600.3462"
      }
      file {
        os          = "windows-xp-sp3"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.1.2600.5694"
      }
      file {
        os          = "windows-server-2003-sp2"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.2.3790.4392"
      }
      file {
        os          = "windows-vista-sp1"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "6.0.6001.18157"
      }
      file {
        os          = "windows-server-2008"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "6.0.6001.18157"
      }
    }
  }

  risk {
    exploit_public   = true
    worm_in_the_wild = true
    exposure         = "internal"
    workaround       = "Block TCP 139 and 445 at the perimeter and between sites; disable the Server and Computer Browser services where file sharing is not needed."
    scanners         = ["nmap --script smb-vuln-ms08-067", "Microsoft Baseline Security Analyzer 2.1", "Nessus plugin 34477"]
    side_effects     = ["None seen in the lab; the Server service restarts during install, dropping open SMB sessions."]
  }

  stage "lab" {
    hosts          = "tier:lab"
    soak           = "2h"
    approval_group = "security-team"
  }

  stage "prodlike" {
    hosts          = "tier:prodlike"
    soak           = "4h"
    approval_group = "infrastructure-leads"
  }

  # Domain controllers first, one at a time per site, at night.
  wave "domain-controllers" {
    hosts                = "tier:production and role:domain_controller"
    max_parallel         = 2
    max_failures         = 0
    download_concurrency = 1
    approval_group       = "identity-team"
    window {
      days  = ["mon-sun"]
      hours = "20:00-06:00"
    }
  }

  wave "emea" {
    hosts                = "tier:production and region:emea and not role:domain_controller and not role:laptop"
    after                = ["domain-controllers"]
    max_parallel         = 20
    max_failures         = "5%"
    download_concurrency = 5
  }

  wave "na" {
    hosts                = "tier:production and region:na and not role:domain_controller and not role:laptop"
    after                = ["emea"]
    max_parallel         = 20
    max_failures         = "5%"
    download_concurrency = 5
  }

  wave "apac-latam" {
    hosts                = "tier:production and (region:apac or region:latam) and not (role:domain_controller or role:laptop)"
    after                = ["emea"]
    max_parallel         = 20
    max_failures         = "5%"
    download_concurrency = 3
  }

  # Mobile PCs come back later: their own wave, retried until the deadline.
  wave "laptops" {
    hosts        = "tier:production and role:laptop"
    after        = ["na", "apac-latam"]
    max_parallel = 30
    max_failures = "20%"
  }

  escalation {
    at       = "50%"
    contacts = ["it-managers@corp.example"]
    channels = ["security-chat"]
  }
  escalation {
    at       = "breach"
    contacts = ["ciso@corp.example", "it-managers@corp.example"]
    channels = ["security-chat", "pager"]
  }
  escalation {
    at       = "breach+4h"
    contacts = ["cio@corp.example"]
    channels = ["pager"]
  }

  channel "security-chat" {
    type = "slack"
  }
  channel "pager" {
    type = "webhook"
  }
}
