# A large fleet: 10,000 simulated hosts over 4 regions and 10 sites, for
# benchmarks (`make bench`) and scale checks. Populations are generated;
# faults are placed as shares, chosen deterministically.

fleet "large" {
  patches_from = ["ms08-067.hcl"]
  credential   = "fleet"
  site "paris" {
    region             = "emea"
    time_zone          = "Europe/Paris"
    distribution_point = "\\\\dp-paris\\patches"
  }
  site "london" {
    region             = "emea"
    time_zone          = "Europe/London"
    distribution_point = "\\\\dp-london\\patches"
  }
  site "frankfurt" {
    region             = "emea"
    time_zone          = "Europe/Berlin"
    distribution_point = "\\\\dp-frankfurt\\patches"
  }
  site "newyork" {
    region             = "na"
    time_zone          = "America/New_York"
    distribution_point = "\\\\dp-newyork\\patches"
  }
  site "chicago" {
    region             = "na"
    time_zone          = "America/Chicago"
    distribution_point = "\\\\dp-chicago\\patches"
  }
  site "saopaulo" {
    region             = "latam"
    time_zone          = "America/Sao_Paulo"
    distribution_point = "\\\\dp-saopaulo\\patches"
  }
  site "mexico" {
    region             = "latam"
    time_zone          = "America/Mexico_City"
    distribution_point = "\\\\dp-mexico\\patches"
  }
  site "tokyo" {
    region             = "apac"
    time_zone          = "Asia/Tokyo"
    distribution_point = "\\\\dp-tokyo\\patches"
  }
  site "singapore" {
    region             = "apac"
    time_zone          = "Asia/Singapore"
    distribution_point = "\\\\dp-singapore\\patches"
  }
  site "sydney" {
    region             = "apac"
    time_zone          = "Australia/Sydney"
    distribution_point = "\\\\dp-sydney\\patches"
  }
  population "lab" {
    site  = "paris"
    tier  = "lab"
    role  = "workstation"
    count = 20
    os    = ["windows-xp-sp3", "windows-server-2003-sp2", "windows-vista-sp1", "windows-server-2008"]
    owner = "it-lab@corp.example"
  }
  population "prodlike" {
    site  = "newyork"
    tier  = "prodlike"
    role  = "sql"
    count = 40
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-newyork@corp.example"
  }
  population "paris-dc" {
    site  = "paris"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-paris@corp.example"
  }
  population "paris-srv" {
    site  = "paris"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-paris@corp.example"
  }
  population "paris-ws" {
    site  = "paris"
    tier  = "production"
    role  = "workstation"
    count = 730
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-paris@corp.example"
  }
  population "paris-lt" {
    site  = "paris"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-paris@corp.example"
    tags  = ["mobile"]
  }
  population "london-dc" {
    site  = "london"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-london@corp.example"
  }
  population "london-srv" {
    site  = "london"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-london@corp.example"
  }
  population "london-ws" {
    site  = "london"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-london@corp.example"
  }
  population "london-lt" {
    site  = "london"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-london@corp.example"
    tags  = ["mobile"]
  }
  population "frankfurt-dc" {
    site  = "frankfurt"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-frankfurt@corp.example"
  }
  population "frankfurt-srv" {
    site  = "frankfurt"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-frankfurt@corp.example"
  }
  population "frankfurt-ws" {
    site  = "frankfurt"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-frankfurt@corp.example"
  }
  population "frankfurt-lt" {
    site  = "frankfurt"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-frankfurt@corp.example"
    tags  = ["mobile"]
  }
  population "newyork-dc" {
    site  = "newyork"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-newyork@corp.example"
  }
  population "newyork-srv" {
    site  = "newyork"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-newyork@corp.example"
  }
  population "newyork-ws" {
    site  = "newyork"
    tier  = "production"
    role  = "workstation"
    count = 650
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-newyork@corp.example"
  }
  population "newyork-lt" {
    site  = "newyork"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-newyork@corp.example"
    tags  = ["mobile"]
  }
  population "chicago-dc" {
    site  = "chicago"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-chicago@corp.example"
  }
  population "chicago-srv" {
    site  = "chicago"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-chicago@corp.example"
  }
  population "chicago-ws" {
    site  = "chicago"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-chicago@corp.example"
  }
  population "chicago-lt" {
    site  = "chicago"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-chicago@corp.example"
    tags  = ["mobile"]
  }
  population "saopaulo-dc" {
    site  = "saopaulo"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-saopaulo@corp.example"
  }
  population "saopaulo-srv" {
    site  = "saopaulo"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-saopaulo@corp.example"
  }
  population "saopaulo-ws" {
    site  = "saopaulo"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-saopaulo@corp.example"
  }
  population "saopaulo-lt" {
    site  = "saopaulo"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-saopaulo@corp.example"
    tags  = ["mobile"]
  }
  population "mexico-dc" {
    site  = "mexico"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-mexico@corp.example"
  }
  population "mexico-srv" {
    site  = "mexico"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-mexico@corp.example"
  }
  population "mexico-ws" {
    site  = "mexico"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-mexico@corp.example"
  }
  population "mexico-lt" {
    site  = "mexico"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-mexico@corp.example"
    tags  = ["mobile"]
  }
  population "tokyo-dc" {
    site  = "tokyo"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-tokyo@corp.example"
  }
  population "tokyo-srv" {
    site  = "tokyo"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-tokyo@corp.example"
  }
  population "tokyo-ws" {
    site  = "tokyo"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-tokyo@corp.example"
  }
  population "tokyo-lt" {
    site  = "tokyo"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-tokyo@corp.example"
    tags  = ["mobile"]
  }
  population "singapore-dc" {
    site  = "singapore"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-singapore@corp.example"
  }
  population "singapore-srv" {
    site  = "singapore"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-singapore@corp.example"
  }
  population "singapore-ws" {
    site  = "singapore"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-singapore@corp.example"
  }
  population "singapore-lt" {
    site  = "singapore"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-singapore@corp.example"
    tags  = ["mobile"]
  }
  population "sydney-dc" {
    site  = "sydney"
    tier  = "production"
    role  = "domain_controller"
    count = 10
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-sydney@corp.example"
  }
  population "sydney-srv" {
    site  = "sydney"
    tier  = "production"
    role  = "file"
    count = 94
    os    = ["windows-server-2003-sp2", "windows-server-2008"]
    owner = "it-sydney@corp.example"
  }
  population "sydney-ws" {
    site  = "sydney"
    tier  = "production"
    role  = "workstation"
    count = 690
    os    = ["windows-xp-sp3", "windows-xp-sp3", "windows-vista-sp1"]
    owner = "it-sydney@corp.example"
  }
  population "sydney-lt" {
    site  = "sydney"
    tier  = "production"
    role  = "laptop"
    count = 200
    os    = ["windows-xp-sp3"]
    owner = "it-sydney@corp.example"
    tags  = ["mobile"]
  }
  fault "registry_only" {
    share    = 0.002
    selector = "tier:production"
  }
  fault "pending_rename_noise" {
    share    = 0.01
    selector = "tier:production"
  }
  fault "flaky" {
    share    = 0.005
    selector = "tier:production"
    rate     = 0.2
  }
  fault "reverts_on_boot" {
    share    = 0.001
    selector = "tier:production"
  }
  fault "install_fails" {
    share     = 0.001
    selector  = "tier:production"
    exit_code = 1603
  }
}
