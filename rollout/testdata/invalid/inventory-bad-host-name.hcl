# want: 20:6 Invalid host name
# A small inventory the rollout test files run on.
site "paris" {
  region    = "emea"
  time_zone = "Europe/Paris"
}
site "tokyo" {
  region    = "apac"
  time_zone = "Asia/Tokyo"
}
host "lab01" {
  address    = "lab01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "paris"
  tier       = "lab"
  role       = "workstation"
  owner      = "security-lab"
  credential = "lab-admin"
}
host "par-dc\u202e01" {
  address    = "par-dc01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "paris"
  tier       = "production"
  role       = "domain_controller"
  owner      = "identity-team"
  credential = "emea-admin"
  tags       = ["tier0"]
}
host "par-ws01" {
  address    = "par-ws01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "paris"
  tier       = "production"
  role       = "workstation"
  owner      = "emea-desktop"
  credential = "emea-admin"
}
host "tyo-ws01" {
  address    = "tyo-ws01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "tokyo"
  tier       = "production"
  role       = "workstation"
  owner      = "apac-desktop"
  credential = "apac-admin"
}
host "tyo-lt01" {
  address    = "tyo-lt01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "tokyo"
  tier       = "production"
  role       = "laptop"
  owner      = "apac-desktop"
  credential = "apac-admin"
  tags       = ["mobile"]
}
