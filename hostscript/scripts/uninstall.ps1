# patchway-op: uninstall/1
# Removes an update with the Windows Update Standalone Installer, without
# restarting the host.
# Input: $PatchwayParams = { rollout_id, kb }.
# Output: one JSON object (hostscript.UninstallResult); exits non-zero only
# when it could not run at all (message on stderr).
$ErrorActionPreference = 'Stop'

function Write-PatchwayResult([string]$outcome, [int64]$code, [bool]$reboot, [string]$message) {
    $r = [ordered]@{
        kb              = [string]$PatchwayParams.kb
        outcome         = $outcome
        exit_code       = $code
        reboot_required = $reboot
    }
    if ($message -ne '') { $r.message = $message }
    [Console]::Out.WriteLine(($r | ConvertTo-Json -Compress))
}

try {
    $kb = [string]$PatchwayParams.kb
    # wusa /uninstall takes the number alone: /kb:958644.
    $number = $kb -replace '^(?i)KB', ''
    if ($number -notmatch '^[0-9]+$') { throw ('"{0}" is not a KB number' -f $kb) }

    # Get-HotFix sees CBS updates only, which are the ones wusa can remove;
    # an absent hotfix means there is nothing to uninstall (a retried
    # rollback lands here).
    if (-not (Get-HotFix -Id ('KB{0}' -f $number) -ErrorAction SilentlyContinue)) {
        Write-PatchwayResult 'not_installed' 0 $false ''
        exit 0
    }

    $code = (Start-Process -FilePath "$env:SystemRoot\System32\wusa.exe" -ArgumentList @('/uninstall', ('/kb:{0}' -f $number), '/quiet', '/norestart') -Wait -PassThru -WindowStyle Hidden).ExitCode
    $code = [int64]$code
    if ($code -lt 0) { $code += 4294967296 }

    # wusa.exe exit codes:
    #   0       uninstalled
    #   3010    uninstalled, restart required; 1641 restart initiated
    #   2359303 0x00240007 WU_S_ALREADY_UNINSTALLED: the update is not installed
    switch ($code) {
        0 { Write-PatchwayResult 'uninstalled' $code $false '' }
        3010 { Write-PatchwayResult 'uninstalled_reboot_required' $code $true '' }
        1641 { Write-PatchwayResult 'uninstalled_reboot_required' $code $true 'wusa initiated a restart' }
        2359303 { Write-PatchwayResult 'not_installed' $code $false '' }
        default { Write-PatchwayResult 'failed' $code $false ('wusa exit code {0} (0x{0:X8})' -f $code) }
    }
} catch {
    [Console]::Error.WriteLine(('uninstall failed: {0}' -f $_.Exception.Message))
    exit 1
}
