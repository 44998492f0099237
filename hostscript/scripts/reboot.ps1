# patchway-op: reboot/1
# Records the current boot time, then schedules a restart with shutdown.exe
# and returns before the host goes down.
# Input: $PatchwayParams = { rollout_id, delay_seconds }.
# Output: one JSON object (hostscript.RebootResult); exits non-zero only when
# it could not run at all (message on stderr).
$ErrorActionPreference = 'Stop'

try {
    # LastBootUpTime before the restart: WaitForBoot proves the reboot by
    # seeing a different value (Win32_OperatingSystem, via Get-CimInstance).
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $previous = ([datetime]$os.LastBootUpTime).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ')

    $delay = [int]$PatchwayParams.delay_seconds
    if ($delay -lt 0) { $delay = 0 }
    if ($delay -gt 315360000) { $delay = 315360000 } # shutdown /t maximum (10 years)
    # /c takes at most 512 characters; the rollout id names the reason in
    # the System event log (event 1074). /d p:2:17 is "Operating System:
    # Security fix (Planned)".
    $comment = ('Patchway rollout {0}' -f $PatchwayParams.rollout_id)
    if ($comment.Length -gt 512) { $comment = $comment.Substring(0, 512) }
    $out = & "$env:SystemRoot\System32\shutdown.exe" /r /t $delay /d p:2:17 /c $comment 2>&1
    $code = [int64]$LASTEXITCODE

    # shutdown.exe exit codes:
    #   0    restart scheduled
    #   1190 ERROR_SHUTDOWN_IS_SCHEDULED: a shutdown is already scheduled
    #        (a retried activity lands here; the restart still happens)
    #   1115 ERROR_SHUTDOWN_IN_PROGRESS: the system is already shutting down
    switch ($code) {
        0 { $outcome = 'scheduled' }
        1190 { $outcome = 'already_scheduled' }
        1115 { $outcome = 'in_progress' }
        default { $outcome = 'failed' }
    }
    $r = [ordered]@{
        outcome            = $outcome
        exit_code          = $code
        previous_boot_time = $previous
    }
    if ($outcome -eq 'failed') { $r.message = ('shutdown.exe exit code {0}: {1}' -f $code, (($out | Out-String).Trim())) }
    [Console]::Out.WriteLine(($r | ConvertTo-Json -Compress))
} catch {
    [Console]::Error.WriteLine(('reboot failed: {0}' -f $_.Exception.Message))
    exit 1
}
