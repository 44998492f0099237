# The end-to-end tests' fleet: 48 hosts over every stage and wave of
# examples/ms08-067.hcl, with faults that a rollout must get through without
# a failure (dropped connections, slowness, other software's rename entries).
fleet "e2e" {
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
    count = 4
    os    = ["windows-xp-sp3", "windows-server-2003-sp2"]
    owner = "it-lab@corp.example"
  }
  population "prodlike" {
    site  = "new-york"
    tier  = "prodlike"
    role  = "file"
    count = 4
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-na@corp.example"
  }
  population "dc" {
    site  = "paris"
    tier  = "production"
    role  = "domain_controller"
    count = 2
    os    = ["windows-server-2003-sp2"]
    owner = "identity@corp.example"
  }
  population "emea" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 10
    os    = ["windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-emea@corp.example"
  }
  population "na" {
    site  = "new-york"
    tier  = "production"
    role  = "workstation"
    count = 10
    os    = ["windows-xp-sp3"]
    owner = "it-na@corp.example"
  }
  population "apac" {
    site  = "tokyo"
    tier  = "production"
    role  = "web"
    count = 6
    os    = ["windows-server-2003-sp2"]
    owner = "it-apac@corp.example"
  }
  population "latam" {
    site  = "sao-paulo"
    tier  = "production"
    role  = "workstation"
    count = 6
    os    = ["windows-xp-sp3"]
    owner = "it-latam@corp.example"
  }
  population "laptops" {
    site  = "new-york"
    tier  = "production"
    role  = "laptop"
    count = 6
    os    = ["windows-vista-sp1"]
    owner = "it-na@corp.example"
  }

  fault "flaky" {
    hosts = ["EMEA-0003", "NA-0004"]
    rate  = 0.3
  }
  fault "slow" {
    hosts = ["APAC-0002"]
    delay = "300ms"
  }
  fault "pending_rename_noise" {
    hosts = ["LATAM-0001"]
  }
}
