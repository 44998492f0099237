# patchway-op: scan/1
# Collects the evidence the compliance policy judges, raw and without
# judgement: who answered (computer name, DNS host name, domain, machine
# GUID), OS, hotfixes, servicing packages, verification files, each
# pending-reboot signal separately, boot time, servicing activity, free disk.
# Input: $PatchwayParams = { kb, files: [{ path }] }. Output: one JSON object
# (hostscript.ScanResult) on stdout; any unexpected error exits non-zero with
# the message on stderr. An empty kb skips the hotfix and package queries
# (WaitForBoot polls only need the boot time).
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

# Dates leave as ISO 8601 UTC strings: ConvertTo-Json in Windows PowerShell
# 5.1 would otherwise print "\/Date(ms)\/".
function ConvertTo-PatchwayTime([object]$t) {
    if ($null -eq $t) { return $null }
    return ([datetime]$t).ToUniversalTime().ToString('yyyy-MM-ddTHH:mm:ss.fffZ')
}

function Get-PatchwaySha256([string]$path) {
    # Get-FileHash (PowerShell 4.0+) returns upper-case hex; the .NET
    # fallback keeps PowerShell 3.0 hosts working.
    if (Get-Command Get-FileHash -ErrorAction SilentlyContinue) {
        return (Get-FileHash -LiteralPath $path -Algorithm SHA256).Hash.ToLowerInvariant()
    }
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $stream = [System.IO.File]::OpenRead($path)
    try {
        return ([BitConverter]::ToString($sha.ComputeHash($stream)) -replace '-', '').ToLowerInvariant()
    } finally {
        $stream.Dispose()
        $sha.Dispose()
    }
}

try {
    $kb = [string]$PatchwayParams.kb

    # Win32_OperatingSystem carries the caption and LastBootUpTime; a reboot
    # is proven only when LastBootUpTime changes (Ansible's win_reboot does
    # the same). Get-CimInstance returns it as a DateTime, unlike the DMTF
    # string Get-WmiObject gives.
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $build = [string]$os.BuildNumber
    $cv = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion' -ErrorAction SilentlyContinue
    if ($null -ne $cv -and $null -ne $cv.UBR) { $build = '{0}.{1}' -f $build, $cv.UBR }

    # Who answered, for the identity policy: Win32_ComputerSystem's DNS
    # host name (CSName is the NetBIOS name, cut to 15 characters) and
    # domain, and the MachineGuid written once per Windows installation
    # (HKLM\SOFTWARE\Microsoft\Cryptography), read in the registry's
    # native view so a 32-bit PowerShell does not see the WOW6432Node copy.
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem -ErrorAction SilentlyContinue
    $dnsName = ''
    $domain = ''
    if ($null -ne $cs) {
        $dnsName = [string]$cs.DNSHostName
        $domain = [string]$cs.Domain
    }
    $guid = ''
    try {
        $view = [Microsoft.Win32.RegistryView]::Registry64
        if (-not [Environment]::Is64BitOperatingSystem) { $view = [Microsoft.Win32.RegistryView]::Registry32 }
        $hklm = [Microsoft.Win32.RegistryKey]::OpenBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $view)
        $crypto = $hklm.OpenSubKey('SOFTWARE\Microsoft\Cryptography')
        if ($null -ne $crypto) { $guid = [string]$crypto.GetValue('MachineGuid') }
    } catch {
        $guid = [string](Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Cryptography' -Name MachineGuid -ErrorAction SilentlyContinue).MachineGuid
    }

    # Get-HotFix reads Win32_QuickFixEngineering, which lists only updates
    # installed by Component Based Servicing (CBS): MSI- and
    # Windows-Installer-based updates do not appear, so a missing hotfix is
    # evidence, not proof. InstalledOn can be empty or unparsable.
    $hotfixes = @()
    $packages = @()
    if ($kb -ne '') {
        $hotfixes = @(Get-HotFix -ErrorAction SilentlyContinue | ForEach-Object {
            $h = [ordered]@{ id = [string]$_.HotFixID }
            $on = $null
            try { $on = $_.InstalledOn } catch { $on = $null }
            if ($null -ne $on) { $h.installed_on = ConvertTo-PatchwayTime $on }
            [pscustomobject]$h
        })

        # Get-WindowsPackage -Online (DISM, Windows 8 / Server 2012 and
        # later, elevated) shows the servicing state of the package, so a
        # staged or pending install (InstallPending) is told apart from an
        # installed one. Package names embed the KB ("Package_for_KB4012212~...").
        if (Get-Command Get-WindowsPackage -ErrorAction SilentlyContinue) {
            $packages = @(Get-WindowsPackage -Online -ErrorAction SilentlyContinue |
                Where-Object { $_.PackageName -like ('*{0}*' -f $kb) } |
                ForEach-Object { [pscustomobject][ordered]@{ name = [string]$_.PackageName; state = [string]$_.PackageState } })
        }
    }

    # Verification files: the version is built from FileMajorPart,
    # FileMinorPart, FileBuildPart and FilePrivatePart, never from the
    # FileVersion string, which on Windows can carry a stale or decorated
    # value ("6.1.7601.17514 (win7sp1_rtm.101119-1850)"). SHA-256 pins the
    # exact file where the patch metadata gives one.
    $files = @(foreach ($f in @($PatchwayParams.files)) {
        if ($null -eq $f) { continue }
        $path = [Environment]::ExpandEnvironmentVariables([string]$f.path)
        $entry = [ordered]@{ path = [string]$f.path; exists = $false }
        if (Test-Path -LiteralPath $path -PathType Leaf) {
            $entry.exists = $true
            $vi = (Get-Item -LiteralPath $path -Force).VersionInfo
            $entry.version = '{0}.{1}.{2}.{3}' -f $vi.FileMajorPart, $vi.FileMinorPart, $vi.FileBuildPart, $vi.FilePrivatePart
            $entry.sha256 = Get-PatchwaySha256 $path
        }
        [pscustomobject]$entry
    })

    # Pending reboot, each signal on its own:
    # - CBS: the RebootPending key exists while Component Based Servicing
    #   waits for a restart to finish installing.
    # - Windows Update: the Auto Update\RebootRequired key exists while the
    #   Windows Update Agent waits for a restart.
    # - PendingFileRenameOperations (Session Manager, REG_MULTI_SZ) lists
    #   files MoveFileEx replaces at the next boot; other installers set it
    #   too, so it alone is weak evidence.
    $cbs = Test-Path -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\RebootPending'
    $wu = Test-Path -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update\RebootRequired'
    $sm = Get-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager' -Name PendingFileRenameOperations -ErrorAction SilentlyContinue
    $rename = ($null -ne $sm) -and (@($sm.PendingFileRenameOperations | Where-Object { $_ }).Count -gt 0)

    # Servicing in progress: TiWorker.exe is the TrustedInstaller worker
    # that runs CBS operations; the PackagesPending key exists while CBS has
    # queued package operations.
    $servicing = ($null -ne (Get-Process -Name TiWorker -ErrorAction SilentlyContinue)) -or
        (Test-Path -Path 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing\PackagesPending')

    # Free space on the system drive (Win32_LogicalDisk.FreeSpace, bytes).
    $disk = Get-CimInstance -ClassName Win32_LogicalDisk -Filter ("DeviceID='{0}'" -f $env:SystemDrive)
    $free = 0
    if ($null -ne $disk) { $free = [int64]$disk.FreeSpace }

    $result = [ordered]@{
        hostname              = [string]$os.CSName
        dns_host_name         = $dnsName
        domain                = $domain
        machine_guid          = $guid
        os_caption            = [string]$os.Caption
        os_build              = $build
        hotfixes              = $hotfixes
        packages              = $packages
        files                 = $files
        reboot                = [ordered]@{
            cbs_reboot_pending  = [bool]$cbs
            wu_reboot_required  = [bool]$wu
            pending_file_rename = [bool]$rename
        }
        last_boot_up_time     = ConvertTo-PatchwayTime $os.LastBootUpTime
        servicing_in_progress = [bool]$servicing
        free_disk_bytes       = $free
        scanned_at            = ConvertTo-PatchwayTime (Get-Date)
    }
    [Console]::Out.WriteLine(($result | ConvertTo-Json -Depth 6 -Compress))
} catch {
    [Console]::Error.WriteLine(('scan failed: {0}' -f $_.Exception.Message))
    exit 1
}
