# A well-formed script that uses the constructs Patchway's host scripts rely
# on: make psparse requires the parser to accept it (exit 0).
$ErrorActionPreference = 'Stop'
$PatchwayParams = ConvertFrom-Json @'
{"kb":"KB958644","files":[{"path":"%SystemRoot%\\System32\\netapi32.dll"}]}
'@

function ConvertTo-PatchwayTime([object]$t) {
    if ($null -eq $t) { return $null }
    return ([datetime]$t).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ')
}

try {
    $r = [ordered]@{ kb = [string]$PatchwayParams.kb; at = ConvertTo-PatchwayTime (Get-Date) }
    $files = @(foreach ($f in @($PatchwayParams.files)) {
        if ($null -eq $f) { continue }
        [pscustomobject]@{ path = [string]$f.path }
    })
    $r.files = $files
    switch ($r.kb) {
        'KB958644' { $code = 0 }
        default { $code = 1 }
    }
    $out = & "$env:SystemRoot\System32\shutdown.exe" /a 2>&1
    [Console]::Out.WriteLine(($r | ConvertTo-Json -Compress))
} catch {
    [Console]::Error.WriteLine(('failed: {0}' -f $_.Exception.Message))
    exit 1
}
