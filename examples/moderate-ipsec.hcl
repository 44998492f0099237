# A moderate-severity patch: an information disclosure in IPsec policy
# processing that needs a specific configuration to be exploited. The
# versions and the rating are illustrative. Unhurried: a week of soak,
# approval at every step, and office-hours windows in each site's local time.
rollout "kb953733-ipsec" {
  filed_by  = "carol.osei"
  inventory = "inventory.hcl"

  patch {
    kb        = "KB953733"
    title     = "Vulnerability in IPsec Policy Processing Could Allow Information Disclosure"
    cves      = ["CVE-2008-2246"]
    severity  = "moderate"
    published = "2008-08-12T17:00:00Z"
    reboot    = "may"

    package "windows-server-2003-sp2" {
      source = "KB953733/WindowsServer2003-KB953733-x86-ENU.exe"
      sha256 = "2213b5ec0a7b622a209b2e531adf49b99300e63c8a0db894c04153920d30fb14"
      type   = "exe"
    }
    package "windows-server-2008" {
      source = "KB953733/Windows6.0-KB953733-x64.msu"
      sha256 = "5b0d2a3f61c1e0f7a4d9be7c03e2f1a8c6d4b9e07f3a2c1d5e6f708192a3b4c5"
      type   = "msu"
    }

    evidence {
      hotfix = "KB953733"
      file {
        os          = "windows-server-2003-sp2"
        path        = "C:\\Windows\\System32\\oakley.dll"
        min_version = "5.2.3790.4318"
      }
      file {
        os          = "windows-server-2008"
        path        = "C:\\Windows\\System32\\polstore.dll"
        min_version = "6.0.6001.18094"
      }
    }
  }

  risk {
    exploit_public   = false
    worm_in_the_wild = false
    exposure         = "internal"
    workaround       = "None needed where IPsec policies are not pushed from Active Directory."
    side_effects     = ["None known."]
  }

  stage "lab" {
    hosts          = "tier:lab and (os:windows-server-2003* or os:windows-server-2008)"
    soak           = "7d"
    approval_group = "security-team"
  }

  stage "prodlike" {
    hosts          = "tier:prodlike and (os:windows-server-2003* or os:windows-server-2008)"
    soak           = "3d"
    approval_group = "infrastructure-leads"
  }

  wave "servers" {
    hosts                = "tier:production and (os:windows-server-2003* or os:windows-server-2008) and not role:domain_controller"
    max_parallel         = 5
    max_failures         = 1
    download_concurrency = 2
    approval_group       = "change-board"
    window {
      days  = ["tue-thu"]
      hours = "09:00-17:00"
    }
  }

  wave "domain-controllers" {
    hosts          = "tier:production and role:domain_controller and (os:windows-server-2003* or os:windows-server-2008)"
    after          = ["servers"]
    max_parallel   = 1
    max_failures   = 0
    approval_group = "identity-team"
    window {
      days  = ["wed"]
      hours = "20:00-23:00"
    }
  }

  escalation {
    at       = "75%"
    contacts = ["it-managers@corp.example"]
    channels = ["security-mail"]
  }

  channel "security-mail" {
    type = "email"
  }
}
