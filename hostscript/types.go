package hostscript

import (
	"fmt"
	"time"
)

// FileCheck names a file the scan must report on.
type FileCheck struct {
	Path string `json:"path"`
}

// ScanParams are the parameters of the scan script.
type ScanParams struct {
	// KB is the update being looked for (Get-HotFix, Get-WindowsPackage).
	KB string `json:"kb"`
	// Files are the verification files whose version and SHA-256 are read.
	Files []FileCheck `json:"files"`
}

// ScanResult is what the scan script prints: the host's evidence, raw,
// without judgement (the compliance policy judges).
type ScanResult struct {
	// Hostname is Win32_OperatingSystem.CSName (the NetBIOS name, at most
	// 15 characters); DNSHostName and Domain are Win32_ComputerSystem's.
	Hostname    string `json:"hostname"`
	DNSHostName string `json:"dns_host_name,omitempty"`
	Domain      string `json:"domain,omitempty"`
	// MachineGUID is HKLM\SOFTWARE\Microsoft\Cryptography MachineGuid,
	// set once per Windows installation.
	MachineGUID string `json:"machine_guid,omitempty"`
	// TLSCertSHA256 is not printed by the script: the worker records the
	// certificate the WinRM listener presented (SHA-256 of its DER, hex).
	TLSCertSHA256 string    `json:"tls_cert_sha256,omitempty"`
	OSCaption     string    `json:"os_caption"`
	OSBuild       string    `json:"os_build"`
	Hotfixes      []Hotfix  `json:"hotfixes"`
	Packages      []Package `json:"packages"`
	Files         []File    `json:"files"`
	Reboot        Reboot    `json:"reboot"`
	// LastBootUpTime is Win32_OperatingSystem.LastBootUpTime in UTC.
	LastBootUpTime time.Time `json:"last_boot_up_time"`
	// ServicingInProgress is true while TrustedInstaller is busy.
	ServicingInProgress bool  `json:"servicing_in_progress"`
	FreeDiskBytes       int64 `json:"free_disk_bytes"`
	// ScannedAt is the host's clock at the end of the scan, in UTC.
	ScannedAt time.Time `json:"scanned_at"`
}

// Hotfix is one entry of Get-HotFix (CBS updates only).
type Hotfix struct {
	ID          string    `json:"id"`
	InstalledOn time.Time `json:"installed_on,omitzero"`
}

// Package is one entry of Get-WindowsPackage that names the KB.
type Package struct {
	Name string `json:"name"`
	// State is Installed, InstallPending, UninstallPending, Staged, ...
	State string `json:"state"`
}

// File is what the scan found at one verification path.
type File struct {
	Path   string `json:"path"`
	Exists bool   `json:"exists"`
	// Version is FileMajorPart.FileMinorPart.FileBuildPart.FilePrivatePart,
	// not the FileVersion string (which can lie on Windows builds).
	Version string `json:"version,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
}

// Reboot reports each pending-reboot signal separately, because they differ
// in how much they can be trusted.
type Reboot struct {
	// CBSRebootPending: HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\
	// Component Based Servicing\RebootPending exists.
	CBSRebootPending bool `json:"cbs_reboot_pending"`
	// WURebootRequired: ...\WindowsUpdate\Auto Update\RebootRequired exists.
	WURebootRequired bool `json:"wu_reboot_required"`
	// PendingFileRename: Session Manager\PendingFileRenameOperations is
	// non-empty; other software sets it too (false positives).
	PendingFileRename bool `json:"pending_file_rename"`
}

// InstallParams are the parameters of the install script.
type InstallParams struct {
	RolloutID string `json:"rollout_id"`
	KB        string `json:"kb"`
	// Source is the full path or URL of the package (distribution point
	// already joined).
	Source string `json:"source"`
	SHA256 string `json:"sha256"`
	// Type is msu, msi or cab.
	Type string `json:"type"`
	// Installer installs an msu: wusa (empty) or dism.
	Installer string `json:"installer,omitempty"`
}

// Install outcomes, mapped from the installer's exit code.
const (
	InstallOK               = "installed"                 // 0
	InstallOKRebootRequired = "installed_reboot_required" // 3010, 1641
	InstallAlreadyInstalled = "already_installed"         // 2359302 (0x00240006)
	InstallNotApplicable    = "not_applicable"            // 0x80240017
	InstallChecksumMismatch = "checksum_mismatch"         // package SHA-256 differs
	InstallDownloadFailed   = "download_failed"
	InstallFailed           = "failed" // any other exit code
)

// InstallResult is what the install script prints.
type InstallResult struct {
	KB       string `json:"kb"`
	Outcome  string `json:"outcome"`
	ExitCode int64  `json:"exit_code"`
	// RebootRequired is true for 3010 and 1641.
	RebootRequired bool `json:"reboot_required"`
	// InstalledAt is the host's clock when the installer returned, UTC.
	InstalledAt     time.Time `json:"installed_at,omitzero"`
	DownloadedBytes int64     `json:"downloaded_bytes"`
	Message         string    `json:"message,omitempty"`
}

// RebootParams are the parameters of the reboot script.
type RebootParams struct {
	RolloutID    string `json:"rollout_id"`
	DelaySeconds int    `json:"delay_seconds"`
}

// Reboot outcomes, from shutdown.exe's exit code.
const (
	RebootScheduled        = "scheduled"         // 0
	RebootAlreadyScheduled = "already_scheduled" // 1190
	RebootInProgress       = "in_progress"       // 1115
	RebootFailed           = "failed"
)

// RebootResult is what the reboot script prints before the host goes down.
type RebootResult struct {
	Outcome  string `json:"outcome"`
	ExitCode int64  `json:"exit_code"`
	// PreviousBootTime is LastBootUpTime before the reboot; a reboot is
	// proven when a later scan reports a different one.
	PreviousBootTime time.Time `json:"previous_boot_time"`
	Message          string    `json:"message,omitempty"`
}

// UninstallParams are the parameters of the uninstall script.
type UninstallParams struct {
	RolloutID string `json:"rollout_id"`
	KB        string `json:"kb"`
}

// Uninstall outcomes.
const (
	UninstallOK               = "uninstalled"
	UninstallOKRebootRequired = "uninstalled_reboot_required"
	UninstallNotInstalled     = "not_installed"
	UninstallFailed           = "failed"
)

// UninstallResult is what the uninstall script prints.
type UninstallResult struct {
	KB             string `json:"kb"`
	Outcome        string `json:"outcome"`
	ExitCode       int64  `json:"exit_code"`
	RebootRequired bool   `json:"reboot_required"`
	Message        string `json:"message,omitempty"`
}

// InstallExitOutcome is how install.ps1 reads an installer's exit code
// (unsigned 32-bit): the outcome, whether a restart is required, and the
// message it prints. The simulated fleet plays the script with it; a
// test holds it to the script's own switch, so the two cannot drift.
func InstallExitOutcome(code int64) (outcome string, rebootRequired bool, message string) {
	switch code {
	case 0:
		return InstallOK, false, ""
	case 3010:
		return InstallOKRebootRequired, true, ""
	case 1641:
		return InstallOKRebootRequired, true, "the installer initiated a restart"
	case 2359302:
		return InstallAlreadyInstalled, false, ""
	case 2149842967:
		return InstallNotApplicable, false, "the update does not apply to this host"
	case 2148468766:
		return InstallNotApplicable, false, "the package is not applicable to this image"
	case 2148468771:
		return InstallFailed, false, "the package needs a newer servicing stack: install its servicing-stack update first"
	}
	return InstallFailed, false, fmt.Sprintf("installer exit code %d (0x%08X)", code, code)
}
