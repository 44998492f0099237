# May 2022's cumulative update for Windows Server 2019 (KB5013941, build
# 10.0.17763.2928) needs that month's servicing-stack update KB5014031
# first. The sha256 values are the simulated distribution point's.
rollout "kb5013941" {
  filed_by = "alice.martin"

  patch {
    kb        = "KB5013941"
    severity  = "critical"
    published = "2022-05-10T17:00:00Z"
    reboot    = "required"

    package "windows-server-2019" {
      source    = "KB5013941/windows10.0-kb5013941-x64.msu"
      sha256    = "1111111111111111111111111111111111111111111111111111111111111111"
      type      = "msu"
      installer = "dism"
      prerequisite "KB5014031" {
        source = "KB5014031/windows10.0-kb5014031-x64.msu"
        sha256 = "2222222222222222222222222222222222222222222222222222222222222222"
        type   = "msu"
      }
    }

    evidence {
      hotfix = "KB5013941"
      build {
        os        = "windows-server-2019"
        min_build = "10.0.17763.2928"
      }
    }
  }

  stage "lab" {
    hosts = "tier:lab"
    soak  = "1h"
  }
}
