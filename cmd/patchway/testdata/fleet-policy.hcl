# The policy-data tests' fleet: per region, workstations for the first
# wave and a file server for the second. In emea and na one workstation's
# installer fails and one never comes back from its reboot; apac's two are
# healthy. Each run patches its own region, so the runs share one fleet
# without seeing each other's installs.
fleet "policy" {
  patches_from = ["policy-rollout.hcl"]
  credential   = "fleet"

  site "paris" {
    region    = "emea"
    time_zone = "Europe/Paris"
  }
  site "new-york" {
    region    = "na"
    time_zone = "America/New_York"
  }
  site "tokyo" {
    region    = "apac"
    time_zone = "Asia/Tokyo"
  }

  population "emea" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 4
    os    = ["windows-xp-sp3"]
    owner = "it-emea@corp.example"
  }
  population "emea-fs" {
    site  = "paris"
    tier  = "production"
    role  = "file"
    count = 1
    os    = ["windows-xp-sp3"]
    owner = "it-emea@corp.example"
  }
  population "na" {
    site  = "new-york"
    tier  = "production"
    role  = "workstation"
    count = 4
    os    = ["windows-xp-sp3"]
    owner = "it-na@corp.example"
  }
  population "na-fs" {
    site  = "new-york"
    tier  = "production"
    role  = "file"
    count = 1
    os    = ["windows-xp-sp3"]
    owner = "it-na@corp.example"
  }
  population "apac" {
    site  = "tokyo"
    tier  = "production"
    role  = "workstation"
    count = 2
    os    = ["windows-xp-sp3"]
    owner = "it-apac@corp.example"
  }
  population "apac-fs" {
    site  = "tokyo"
    tier  = "production"
    role  = "file"
    count = 1
    os    = ["windows-xp-sp3"]
    owner = "it-apac@corp.example"
  }

  fault "install_fails" {
    hosts     = ["EMEA-0003", "NA-0003"]
    exit_code = 1603
  }
  fault "never_returns" {
    hosts = ["EMEA-0004", "NA-0004"]
  }
}
