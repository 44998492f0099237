package scan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchway/patchway/rollout"
)

var (
	ms08067 = filepath.Join("..", "examples", "ms08-067.hcl")
	ms03026 = filepath.Join("..", "examples", "ms03-026.hcl")
)

func TestDefinitionsComeFromRolloutFiles(t *testing.T) {
	d, diags, err := LoadDefinitions([]string{ms08067, ms03026})
	if err != nil || diags.HasErrors() {
		t.Fatalf("load: %v %v", err, diags)
	}
	if len(d.Files) != 2 {
		t.Errorf("files kept for diagnostics: %d, want 2", len(d.Files))
	}
	patches, err := d.Patches([]string{"kb823980", " KB958644 "})
	if err != nil {
		t.Fatal(err)
	}
	if got := (Input{Patches: patches}).KBs(); strings.Join(got, ",") != "KB823980,KB958644" {
		t.Errorf("patches %v, want KB823980 then KB958644, as asked", got)
	}
	channels, err := d.Channels([]string{"pager", "security-chat", "pager"})
	if err != nil {
		t.Fatal(err)
	}
	if len(channels) != 2 || channels[0].Name != "pager" || channels[1].Name != "security-chat" {
		t.Errorf("channels %+v, want pager and security-chat once each", channels)
	}
	if got, _ := d.Channels(nil); len(got) != 0 {
		t.Errorf("no channel asked, got %+v", got)
	}
}

func TestDefinitionsRefuseWhatTheFilesDoNotDefine(t *testing.T) {
	d, _, err := LoadDefinitions([]string{ms08067, ms03026})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Patches([]string{"KB958644", "kb000001"})
	if want := "patch KB000001 is not defined by the rollout files searched: " + ms08067 + " (KB958644), " + ms03026 + " (KB823980)"; err == nil || err.Error() != want {
		t.Errorf("unknown KB: %v, want %q", err, want)
	}
	d, _, err = LoadDefinitions([]string{ms08067})
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.Channels([]string{"nowhere"})
	if want := `channel "nowhere" is not declared by the rollout files searched (` + ms08067 + `); declared: pager, security-chat`; err == nil || err.Error() != want {
		t.Errorf("unknown channel: %v, want %q", err, want)
	}

	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.hcl")
	if err := os.WriteFile(broken, []byte("rollout {"), 0o600); err != nil {
		t.Fatal(err)
	}
	d, diags, err := LoadDefinitions([]string{broken, ms08067})
	if err != nil || !diags.HasErrors() {
		t.Fatalf("a file that does not parse: %v, diagnostics %v; want diagnostics", err, diags)
	}
	if _, err := d.Patches([]string{"KB1"}); err == nil || !strings.Contains(err.Error(), broken+" (invalid), "+ms08067+" (KB958644)") {
		t.Errorf("unknown KB after an invalid file: %v", err)
	}
	none, _, _ := LoadDefinitions(nil)
	if _, err := none.Channels([]string{"pager"}); err == nil || !strings.HasSuffix(err.Error(), "declared: none") {
		t.Errorf("no channel declared: %v", err)
	}

	if _, _, err := LoadDefinitions([]string{"no-such.hcl"}); err == nil || !strings.Contains(err.Error(), "read rollout file: open no-such.hcl") {
		t.Errorf("unreadable file: %v", err)
	}
	data, err := os.ReadFile(ms08067)
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "ms08-067-retitled.hcl")
	retitled := strings.Replace(string(data), "Vulnerability in Server Service", "Server service", 1)
	if err := os.WriteFile(other, []byte(retitled), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDefinitions([]string{ms08067, other}); err == nil || !strings.Contains(err.Error(), "KB958644 is defined differently in "+ms08067+" and "+other) {
		t.Errorf("two definitions of one KB: %v", err)
	}
	if _, _, err := LoadDefinitions([]string{ms08067, ms08067}); err != nil {
		t.Errorf("the same file twice: %v", err)
	}
}

func TestScanIDs(t *testing.T) {
	patches := []rollout.Patch{{KB: "kb958644"}, {KB: "KB823980"}}
	if id, err := IDFor("", patches); err != nil || id != "kb958644-kb823980" {
		t.Errorf("default id = %q, %v; want the KBs", id, err)
	}
	if id, err := IDFor("nightly.dc_1", patches); err != nil || id != "nightly.dc_1" {
		t.Errorf("id = %q, %v; want it as given", id, err)
	}
	for _, bad := range []string{"my scan", "-x", "a/b", "é"} {
		if _, err := IDFor(bad, patches); !errors.Is(err, ErrBadID) {
			t.Errorf("IDFor(%q) = %v, want ErrBadID", bad, err)
		}
	}
}
