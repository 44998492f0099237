# The preflight end-to-end test's fleet: 14 hosts over every stage and wave
# of examples/ms08-067.hcl. One already has the patch (the preflight settles
# it and nothing installs there); one waits for an earlier update's reboot.
fleet "preflight" {
  patches_from = ["../../../examples/ms08-067.hcl"]
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
  site "sao-paulo" {
    region    = "latam"
    time_zone = "America/Sao_Paulo"
  }

  population "lab" {
    site  = "paris"
    tier  = "lab"
    role  = "workstation"
    count = 2
    os    = ["windows-xp-sp3", "windows-server-2003-sp2"]
    owner = "it-lab@corp.example"
  }
  population "prodlike" {
    site  = "new-york"
    tier  = "prodlike"
    role  = "file"
    count = 2
    os    = ["windows-server-2003-sp2"]
    owner = "it-na@corp.example"
  }
  population "dc" {
    site  = "paris"
    tier  = "production"
    role  = "domain_controller"
    count = 1
    os    = ["windows-server-2003-sp2"]
    owner = "identity@corp.example"
  }
  population "emea" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 2
    os    = ["windows-xp-sp3"]
    owner = "it-emea@corp.example"
  }
  # Patched last month: the preflight proves it compliant.
  population "emea-patched" {
    site         = "paris"
    tier         = "production"
    role         = "workstation"
    count        = 1
    os           = ["windows-xp-sp3"]
    installed_on = { KB958644 = "2026-11-10" }
    owner        = "it-emea@corp.example"
  }
  population "na" {
    site  = "new-york"
    tier  = "production"
    role  = "workstation"
    count = 2
    os    = ["windows-xp-sp3"]
    owner = "it-na@corp.example"
  }
  # An earlier update installed yesterday waits for its reboot.
  population "na-reboot-due" {
    site               = "new-york"
    tier               = "production"
    role               = "workstation"
    count              = 1
    os                 = ["windows-xp-sp3"]
    installed_on       = { KB950974 = "2026-12-05" }
    cbs_reboot_pending = true
    booted_ago         = "240h"
    owner              = "it-na@corp.example"
  }
  population "apac" {
    site  = "tokyo"
    tier  = "production"
    role  = "web"
    count = 1
    os    = ["windows-server-2003-sp2"]
    owner = "it-apac@corp.example"
  }
  population "latam" {
    site  = "sao-paulo"
    tier  = "production"
    role  = "workstation"
    count = 1
    os    = ["windows-xp-sp3"]
    owner = "it-latam@corp.example"
  }
  population "laptops" {
    site  = "new-york"
    tier  = "production"
    role  = "laptop"
    count = 1
    os    = ["windows-vista-sp1"]
    owner = "it-na@corp.example"
  }
}
