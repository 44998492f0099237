# want: 15:19 Invalid certificate fingerprint
site "paris" {
  region    = "emea"
  time_zone = "Europe/Paris"
}
host "lab01" {
  address    = "lab01.corp.example:5986"
  os         = "windows-xp-sp3"
  site       = "paris"
  tier       = "lab"
  role       = "workstation"
  owner      = "security-lab"
  credential = "lab-admin"
  tls {
    cert_sha256 = "sha1:0b:ad"
  }
}
