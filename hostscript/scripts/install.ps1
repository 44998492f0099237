# patchway-op: install/1
# Fetches the package, checks its SHA-256, runs the installer quietly without
# restarting, and maps the installer's exit code to an outcome.
# Input: $PatchwayParams = { rollout_id, kb, source, sha256, type }.
# Output: one JSON object (hostscript.InstallResult). The script exits 0
# whenever it printed a result, including failed installs: the installer's
# own code travels in exit_code. It exits non-zero only when it could not
# run at all (message on stderr).
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

function ConvertTo-PatchwayTime([object]$t) {
    return ([datetime]$t).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ')
}

function Write-PatchwayResult([string]$outcome, [int64]$code, [bool]$reboot, [string]$message, [int64]$bytes, [bool]$installed) {
    $r = [ordered]@{
        kb               = [string]$PatchwayParams.kb
        outcome          = $outcome
        exit_code        = $code
        reboot_required  = $reboot
        downloaded_bytes = $bytes
    }
    if ($installed) { $r.installed_at = ConvertTo-PatchwayTime (Get-Date) }
    if ($message -ne '') { $r.message = $message }
    [Console]::Out.WriteLine(($r | ConvertTo-Json -Compress))
}

try {
    $p = $PatchwayParams
    $type = ([string]$p.type).ToLowerInvariant()
    $source = [string]$p.source
    $leaf = Split-Path -Path ($source -replace '/', '\') -Leaf
    $dir = Join-Path -Path $env:TEMP -ChildPath ('patchway\{0}' -f $p.kb)
    New-Item -ItemType Directory -Path $dir -Force | Out-Null
    $local = Join-Path -Path $dir -ChildPath $leaf

    # Fetch from the site's distribution point: HTTP(S) or a file/UNC path.
    try {
        if ($source -match '^https?://') {
            [Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12
            Invoke-WebRequest -Uri $source -OutFile $local -UseBasicParsing
        } else {
            Copy-Item -LiteralPath $source -Destination $local -Force
        }
    } catch {
        Write-PatchwayResult 'download_failed' 0 $false ('fetch {0}: {1}' -f $source, $_.Exception.Message) 0 $false
        exit 0
    }
    $bytes = (Get-Item -LiteralPath $local).Length

    # Never run a package whose SHA-256 differs from the rollout's: a
    # corrupted or substituted download stops here (Get-FileHash returns
    # upper-case hex; compare case-insensitively).
    $hash = (Get-FileHash -LiteralPath $local -Algorithm SHA256).Hash
    if ($hash -ine [string]$p.sha256) {
        Remove-Item -LiteralPath $local -Force -ErrorAction SilentlyContinue
        Write-PatchwayResult 'checksum_mismatch' 0 $false ('package SHA-256 is {0}, want {1}' -f $hash.ToLowerInvariant(), ([string]$p.sha256).ToLowerInvariant()) $bytes $false
        exit 0
    }

    # Run the installer for the package type, never letting it restart the
    # host: the reboot is a separate, policy-decided step.
    # - msu: wusa.exe <file> /quiet /norestart (Windows Update Standalone
    #   Installer), or with installer = dism, dism.exe /Online /Add-Package
    #   /PackagePath:<file> /Quiet /NoRestart (checkpoint cumulative
    #   updates).
    # - msi: msiexec.exe /i <file> /qn /norestart.
    # - cab: Add-WindowsPackage -Online -NoRestart (DISM); RestartNeeded
    #   stands in for 3010.
    # - exe: the vendor package with /quiet /norestart.
    switch ($type) {
        'msu' {
            if ([string]$p.installer -eq 'dism') {
                $code = (Start-Process -FilePath "$env:SystemRoot\System32\dism.exe" -ArgumentList @('/Online', '/Add-Package', "/PackagePath:`"$local`"", '/Quiet', '/NoRestart') -Wait -PassThru -WindowStyle Hidden).ExitCode
            } else {
                $code = (Start-Process -FilePath "$env:SystemRoot\System32\wusa.exe" -ArgumentList @("`"$local`"", '/quiet', '/norestart') -Wait -PassThru -WindowStyle Hidden).ExitCode
            }
        }
        'msi' { $code = (Start-Process -FilePath "$env:SystemRoot\System32\msiexec.exe" -ArgumentList @('/i', "`"$local`"", '/qn', '/norestart') -Wait -PassThru -WindowStyle Hidden).ExitCode }
        'cab' {
            $code = 0
            $pkg = Add-WindowsPackage -Online -PackagePath $local -NoRestart
            if ($pkg.RestartNeeded) { $code = 3010 }
        }
        'exe' { $code = (Start-Process -FilePath $local -ArgumentList @('/quiet', '/norestart') -Wait -PassThru -WindowStyle Hidden).ExitCode }
        default { throw ('unknown package type "{0}" (want msu, msi, cab or exe)' -f $type) }
    }

    # Process exit codes are Int32; HRESULTs such as 0x80240017 come back
    # negative. Report the unsigned 32-bit value so it reads as documented.
    $code = [int64]$code
    if ($code -lt 0) { $code += 4294967296 }

    # Exit codes (wusa.exe and Windows Installer):
    #   0          installed
    #   3010       installed, restart required (ERROR_SUCCESS_REBOOT_REQUIRED)
    #   1641       installed, restart initiated (ERROR_SUCCESS_REBOOT_INITIATED)
    #   2359302    0x00240006 WU_S_ALREADY_INSTALLED: the update is already installed
    #   2149842967 0x80240017 WU_E_NOT_APPLICABLE: the update does not apply to this host
    #   2148468766 0x800F081E CBS_E_NOT_APPLICABLE (DISM): the package does not apply to this image
    #   2148468771 0x800F0823 CBS_E_NEW_SERVICING_STACK_REQUIRED: install the servicing-stack update first
    #   anything else is a failure that carries its code.
    switch ($code) {
        0 { Write-PatchwayResult 'installed' $code $false '' $bytes $true }
        3010 { Write-PatchwayResult 'installed_reboot_required' $code $true '' $bytes $true }
        1641 { Write-PatchwayResult 'installed_reboot_required' $code $true 'the installer initiated a restart' $bytes $true }
        2359302 { Write-PatchwayResult 'already_installed' $code $false '' $bytes $false }
        2149842967 { Write-PatchwayResult 'not_applicable' $code $false 'the update does not apply to this host' $bytes $false }
        2148468766 { Write-PatchwayResult 'not_applicable' $code $false 'the package is not applicable to this image' $bytes $false }
        2148468771 { Write-PatchwayResult 'failed' $code $false 'the package needs a newer servicing stack: install its servicing-stack update first' $bytes $false }
        default { Write-PatchwayResult 'failed' $code $false ('installer exit code {0} (0x{0:X8})' -f $code) $bytes $false }
    }
    Remove-Item -LiteralPath $local -Force -ErrorAction SilentlyContinue
} catch {
    [Console]::Error.WriteLine(('install failed: {0}' -f $_.Exception.Message))
    exit 1
}
