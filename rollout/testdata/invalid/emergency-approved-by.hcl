# want: 25:5 An emergency is approved by an act, not a field
rollout "valid" {
  filed_by  = "alice"
  inventory = "../inventory.hcl"
  patch {
    kb        = "KB958644"
    severity  = "critical"
    published = "2008-10-23T17:00:00Z"
    reboot    = "required"
    package "windows-xp-sp3" {
      source = "KB958644/WindowsXP-KB958644-x86-ENU.exe"
      sha256 = "475c9d945d7d41a5335b5751bf46e7078a67256fd75d906bffb858edc17cdf37"
      type   = "exe"
    }
    evidence {
      hotfix = "KB958644"
      file {
        path        = "C:\\Windows\\System32\\netapi32.dll"
        min_version = "5.1.2600.5694"
      }
    }
  }
  emergency {
    reason      = "worm in the wild"
    approved_by = "dave"
    skip_stages = ["prodlike"]
  }
  stage "lab" {
    hosts = "tier:lab"
    soak  = "2h"
  }
  wave "emea" {
    hosts        = "tier:production and region:emea"
    max_failures = "10%"
    window {
      days      = ["sat", "sun"]
      hours     = "22:00-06:00"
      time_zone = "Europe/Paris"
    }
  }
  wave "apac" {
    hosts = "tier:production and region:apac"
    window {
      days  = ["mon-fri"]
      hours = "20:00-23:00"
    }
  }
  escalation {
    at       = "50%"
    contacts = ["it-managers@corp.example"]
    channels = ["chat"]
  }
  channel "chat" {
    type = "slack"
  }
}
