# The compliance scan test's fleet: hosts that already have MS08-067 in
# effect (compliant at the first scan) and one that never had it.
fleet "scan" {
  patches_from = ["../../../examples/ms08-067.hcl"]
  credential   = "fleet"

  site "paris" {
    region    = "emea"
    time_zone = "Europe/Paris"
  }

  population "ws" {
    site      = "paris"
    tier      = "production"
    role      = "workstation"
    count     = 4
    os        = ["windows-xp-sp3"]
    installed = ["KB958644"]
    owner     = "it-emea@corp.example"
  }
  population "srv" {
    site      = "paris"
    tier      = "production"
    role      = "file"
    count     = 2
    os        = ["windows-server-2003-sp2"]
    installed = ["KB958644"]
    owner     = "it-emea@corp.example"
  }
  population "new" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 1
    os    = ["windows-xp-sp3"]
    owner = "it-emea@corp.example"
  }
}
