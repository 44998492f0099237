# Deliberately broken (make psparse requires the parser to reject it): the
# function body's brace is never closed. PowerShell: "Missing closing '}'
# in statement block or type definition."
$ErrorActionPreference = 'Stop'
function Write-PatchwayResult([string]$outcome) {
    $r = [ordered]@{ outcome = $outcome }
    [Console]::Out.WriteLine(($r | ConvertTo-Json -Compress))
