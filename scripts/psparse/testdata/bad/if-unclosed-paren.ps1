# Deliberately broken (make psparse requires the parser to reject it): the
# if condition's parenthesis is never closed. PowerShell: "Missing closing
# ')' after expression in 'if' statement."
$ErrorActionPreference = 'Stop'
if ($env:COMPUTERNAME -eq 'host1' {
    Write-Output 'one'
}
