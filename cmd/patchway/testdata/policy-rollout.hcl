# The policy-data tests' rollout: MS08-067's Windows XP SP3 package as a
# patch that "may" reboot, on the hosts of one site, in two waves. The
# tests copy it with ROLLOUT_ID and SITE_REGION replaced; the fleet of
# fleet-policy.hcl takes its patch catalogue from this file.
rollout "ROLLOUT_ID" {
  filed_by = "alice"

  patch {
    kb        = "KB958644"
    bulletin  = "MS08-067"
    title     = "Vulnerability in Server Service Could Allow Remote Code Execution"
    severity  = "critical"
    published = "2008-10-23T17:00:00Z"
    reboot    = "may"

    package "windows-xp-sp3" {
      source = "KB958644/WindowsXP-KB958644-x86-ENU.exe"
      sha256 = "475c9d945d7d41a5335b5751bf46e7078a67256fd75d906bffb858edc17cdf37"
      type   = "exe"
    }

    evidence {
      hotfix = "KB958644"
      file {
        os          = "windows-xp-sp3"
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.1.2600.5694"
      }
    }
  }

  risk {
    exploit_public   = true
    worm_in_the_wild = true
    exposure         = "internal"
  }

  wave "workstations" {
    hosts        = "tier:production and region:SITE_REGION and role:workstation"
    max_parallel = 4
    max_failures = 1
  }

  wave "file-servers" {
    hosts        = "tier:production and region:SITE_REGION and role:file"
    after        = ["workstations"]
    max_parallel = 4
    max_failures = 0
  }
}
