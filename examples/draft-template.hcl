# The staged path a team keeps for Patch Tuesday updates of Windows
# Server 2022: patchway draft --template puts it under the patch and risk
# it reads from Microsoft's advisory. Stages, waves, escalation and
# channels only; the advisory gives the rest.

stage "lab" {
  hosts          = "tier:lab and os:windows-server-2022"
  soak           = "2h"
  approval_group = "security-team"
}

stage "prodlike" {
  hosts          = "tier:prodlike and os:windows-server-2022"
  soak           = "4h"
  approval_group = "infrastructure-leads"
}

wave "domain-controllers" {
  hosts                = "tier:production and role:domain_controller and os:windows-server-2022"
  max_parallel         = 1
  max_failures         = 0
  download_concurrency = 1
  approval_group       = "identity-team"
}

wave "servers" {
  hosts                = "tier:production and not role:domain_controller and os:windows-server-2022"
  after                = ["domain-controllers"]
  max_parallel         = 20
  max_failures         = 1
  download_concurrency = 5
}

escalation {
  at       = "breach"
  contacts = ["ciso@corp.example"]
  channels = ["security-chat"]
}

channel "security-chat" {
  type = "slack"
}
