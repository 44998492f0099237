package fleetsim

import "strings"

// SetFileVersion puts version in effect for the file at path now, as a
// later update, a re-imaged disk or a restore from backup would overwrite
// a file a patch had replaced. The hotfix entry stays, so the host looks
// patched to anything that reads the registry alone; only a scan of the
// file version notices (the reason Patchway scans regularly). A version
// staged for the next boot at that path is dropped. Tests use it between
// two compliance scans.
func (h *Host) SetFileVersion(path, version string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := strings.ToLower(path)
	if _, ok := h.paths[k]; !ok {
		h.paths[k] = path
	}
	h.files[k] = version
	delete(h.staged, k)
}
