# A modern simulated fleet for examples/kb5013944.hcl: Windows Server 2022
# hosts on April's cumulative update (build 20348.643), one already on
# June's (20348.768), one that waits for an earlier update's reboot, and a
# host whose servicing reverts the update at boot. Builds move at reboot.
fleet "modern" {
  patches_from = ["kb5013944.hcl"]
  credential   = "fleet"

  site "paris" {
    region    = "emea"
    time_zone = "Europe/Paris"
  }
  site "dallas" {
    region    = "na"
    time_zone = "America/Chicago"
  }

  population "lab" {
    site         = "paris"
    tier         = "lab"
    role         = "server"
    count        = 2
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-lab@corp.example"
  }
  population "prodlike" {
    site         = "dallas"
    tier         = "prodlike"
    role         = "file"
    count        = 2
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-na@corp.example"
  }
  population "dc" {
    site         = "paris"
    tier         = "production"
    role         = "domain_controller"
    count        = 1
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "identity@corp.example"
  }
  population "srv" {
    site         = "dallas"
    tier         = "production"
    role         = "web"
    count        = 6
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-na@corp.example"
  }
  # Already on June's update: compliant at the preflight, never touched.
  population "srv-june" {
    site         = "dallas"
    tier         = "production"
    role         = "web"
    count        = 1
    os           = ["windows-server-2022"]
    build        = "20348.768"
    installed_on = { KB5012604 = "2022-04-13", KB5014678 = "2022-06-15" }
    owner        = "it-na@corp.example"
  }
  # An earlier update waits for its reboot: pending_reboot at the preflight.
  population "srv-reboot-due" {
    site               = "paris"
    tier               = "production"
    role               = "file"
    count              = 1
    os                 = ["windows-server-2022"]
    build              = "20348.643"
    installed_on       = { KB5012604 = "2022-04-13" }
    cbs_reboot_pending = true
    owner              = "it-emea@corp.example"
  }

  fault "cbs_revert" { hosts = ["SRV-0006"] }
}
