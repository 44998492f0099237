# The demo fleet: the 200 hosts of inventory.hcl, simulated on loopback by
# `patchway fleet` / `patchway dev`, with a few hosts of each fault so the
# rollout meets what real fleets do, and 13 Windows Server 2022 hosts for
# May 2022's cumulative update (kb5013944.hcl), proven by OS build. What a
# KB installs comes from the rollout files themselves, so packages, file
# versions and builds always agree.
#
# Faults sit on named production hosts, spread so that no wave crosses its
# failure threshold by accident: the demo shows each failure mode without
# halting the rollout.

fleet "demo" {
  inventory    = "inventory.hcl"
  patches_from = ["ms08-067.hcl", "ms03-026.hcl", "moderate-ipsec.hcl", "kb5013944.hcl"]
  credential   = "fleet"

  # A crash mid-install: the hotfix is listed, netapi32.dll is old.
  fault "registry_only" {
    hosts = ["par-ws004", "sao-ws005"]
  }
  # Other software's rename entries: reported, never blocking.
  fault "pending_rename_noise" {
    hosts = ["lon-ws006", "chi-ws002", "tyo-ws007"]
  }
  # Drops 30 % of connections: succeeds through retries, installs once.
  fault "flaky" {
    hosts = ["fra-ws003", "nyc-ws007"]
    rate  = 0.3
  }
  fault "slow" {
    hosts = ["par-ws008", "syd-ws003"]
    delay = "500ms"
  }
  # A later image restores the old file at boot.
  fault "reverts_on_boot" {
    hosts = ["nyc-ws003"]
  }
  fault "install_fails" {
    hosts     = ["tyo-ws002"]
    exit_code = 1603
  }
  fault "auth_fails" {
    hosts = ["sin-ws004"]
  }
  # Mobile PCs: one never reboots, one never comes back.
  fault "no_reboot" {
    hosts = ["par-lt003"]
  }
  fault "never_returns" {
    hosts = ["mex-lt002"]
  }

  # Windows Server 2022 on April's cumulative update (build 20348.643):
  # what kb5013944.hcl patches. The rollouts for older systems find them
  # not_applicable (no package for their OS), as a real fleet would.
  population "w22-lab" {
    site         = "paris"
    tier         = "lab"
    role         = "server"
    count        = 2
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-lab@corp.example"
  }
  population "w22-prodlike" {
    site         = "chicago"
    tier         = "prodlike"
    role         = "file"
    count        = 2
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-na@corp.example"
  }
  population "w22-dc" {
    site         = "paris"
    tier         = "production"
    role         = "domain_controller"
    count        = 1
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "identity@corp.example"
  }
  population "w22-srv" {
    site         = "chicago"
    tier         = "production"
    role         = "web"
    count        = 6
    os           = ["windows-server-2022"]
    build        = "20348.643"
    installed_on = { KB5012604 = "2022-04-13" }
    owner        = "it-na@corp.example"
  }
  # Already on June's update (20348.768): compliant at the preflight,
  # superseded by KB5014678, never touched.
  population "w22-june" {
    site         = "chicago"
    tier         = "production"
    role         = "web"
    count        = 1
    os           = ["windows-server-2022"]
    build        = "20348.768"
    installed_on = { KB5012604 = "2022-04-13", KB5014678 = "2022-06-15" }
    owner        = "it-na@corp.example"
  }
  # An earlier update waits for its reboot: pending_reboot at the preflight.
  population "w22-reboot-due" {
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
  # Servicing reverts the update at boot: not_effective, its build unchanged.
  fault "cbs_revert" {
    hosts = ["W22-SRV-0006"]
  }
}
