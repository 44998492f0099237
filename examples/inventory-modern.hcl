# Example modern inventory for examples/kb5013944.hcl: Windows Server 2022
# hosts in two sites. Credentials are credential-set names; the worker
# resolves them from its environment.

site "paris" {
  region             = "emea"
  time_zone          = "Europe/Paris"
  distribution_point = "https://wsus.paris.corp.example/patches"
}

site "dallas" {
  region             = "na"
  time_zone          = "America/Chicago"
  distribution_point = "https://wsus.dallas.corp.example/patches"
}

host "lab-par01" {
  address    = "lab-par01.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "lab"
  role       = "server"
  owner      = "security-lab"
  purpose    = "Patch test lab, Server 2022"
  credential = "lab-admin"
}

host "lab-par02" {
  address    = "lab-par02.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "lab"
  role       = "server"
  owner      = "security-lab"
  purpose    = "Patch test lab, Server 2022 Core"
  credential = "lab-admin"
}

host "pl-dal01" {
  address    = "pl-dal01.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "prodlike"
  role       = "file"
  owner      = "it-na"
  purpose    = "Production-like file server"
  credential = "server-admin"
}

host "pl-dal02" {
  address    = "pl-dal02.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "prodlike"
  role       = "web"
  owner      = "it-na"
  purpose    = "Production-like IIS"
  credential = "server-admin"
}

host "dc-par01" {
  address    = "dc-par01.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "production"
  role       = "domain_controller"
  owner      = "identity"
  purpose    = "Domain controller, corp.example"
  credential = "dc-admin"
}

host "dc-dal01" {
  address    = "dc-dal01.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "domain_controller"
  owner      = "identity"
  purpose    = "Domain controller, corp.example"
  credential = "dc-admin"
}

host "web-dal01" {
  address    = "web-dal01.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "web-dal02" {
  address    = "web-dal02.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "web-dal03" {
  address    = "web-dal03.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "web-dal04" {
  address    = "web-dal04.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "web-dal05" {
  address    = "web-dal05.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "web-dal06" {
  address    = "web-dal06.dallas.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "dallas"
  tier       = "production"
  role       = "web"
  owner      = "it-na"
  purpose    = "Public web farm"
  credential = "server-admin"
}

host "fs-par01" {
  address    = "fs-par01.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "production"
  role       = "file"
  owner      = "it-emea"
  purpose    = "File and print"
  credential = "server-admin"
}

host "fs-par02" {
  address    = "fs-par02.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "production"
  role       = "file"
  owner      = "it-emea"
  purpose    = "File and print"
  credential = "server-admin"
}

host "fs-par03" {
  address    = "fs-par03.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "production"
  role       = "file"
  owner      = "it-emea"
  purpose    = "File and print"
  credential = "server-admin"
}

host "fs-par04" {
  address    = "fs-par04.paris.corp.example:5986"
  os         = "windows-server-2022"
  build      = "10.0.20348"
  site       = "paris"
  tier       = "production"
  role       = "file"
  owner      = "it-emea"
  purpose    = "File and print"
  credential = "server-admin"
}
