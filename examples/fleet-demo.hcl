# The demo fleet: the 200 hosts of inventory.hcl, simulated on loopback by
# `patchway fleet` / `patchway dev`, with a few hosts of each fault so the
# rollout meets what real fleets do. What a KB installs comes from the
# rollout files themselves, so packages and file versions always agree.
#
# Faults sit on named production hosts, spread so that no wave crosses its
# failure threshold by accident: the demo shows each failure mode without
# halting the rollout.

fleet "demo" {
  inventory    = "inventory.hcl"
  patches_from = ["ms08-067.hcl", "ms03-026.hcl", "moderate-ipsec.hcl"]
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
}
