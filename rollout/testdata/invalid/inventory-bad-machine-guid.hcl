# want: 9:18 Invalid machine GUID
site "paris" {
  region    = "emea"
  time_zone = "Europe/Paris"
}
host "lab01" {
  address      = "lab01.corp.example:5986"
  os           = "windows-xp-sp3"
  machine_guid = "{5c1e2a77-0e8b-4c3f-9d0a-3b9e2f1c4d5e}"
  site         = "paris"
  tier         = "lab"
  role         = "workstation"
  owner        = "security-lab"
  credential   = "lab-admin"
}
