package policies

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"github.com/patchway/patchway/contract"
)

// MaxShadowBytes bounds the files of a shadow policy: they travel in the
// rollout's input, so its history holds them once per run.
const MaxShadowBytes = 256 << 10

// ReadShadow reads a candidate policy directory for a rollout's shadow
// (submit --shadow-policy DIR). It is the same kind of directory as
// --policy-dir: its files replace or extend the embedded defaults. A
// directory whose bundle does not load is refused with file:line, as the
// worker would refuse it; one over MaxShadowBytes is refused too.
func ReadShadow(ctx context.Context, dir string) (contract.ShadowPolicy, error) {
	if dir == "" {
		return contract.ShadowPolicy{}, fmt.Errorf("shadow policy: no directory")
	}
	e, err := Load(ctx, dir)
	if err != nil {
		return contract.ShadowPolicy{}, fmt.Errorf("shadow policy %s: %w", dir, err)
	}
	files, err := dirFiles(dir, isBundleFile)
	if err != nil {
		return contract.ShadowPolicy{}, fmt.Errorf("shadow policy %s: %w", dir, err)
	}
	sp := contract.ShadowPolicy{Dir: dir, Revision: e.Revision()}
	size := 0
	for _, f := range files {
		size += len(f.content)
		sp.Files = append(sp.Files, contract.PolicyFile{Name: f.name, Content: string(f.content)})
	}
	if size > MaxShadowBytes {
		return contract.ShadowPolicy{}, fmt.Errorf("shadow policy %s: its files are %d bytes, over %d: keep in it only what differs from the defaults", dir, size, MaxShadowBytes)
	}
	return sp, nil
}

// isBundleFile keeps a policy directory's production files: .rego (not
// _test.rego) and .json.
func isBundleFile(name string) bool {
	if strings.HasSuffix(name, "_test.rego") {
		return false
	}
	return strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, ".json")
}

// Shadow loads a shadow policy beside e: the embedded defaults with the
// shadow's files over them, the run-time data e was given (SetData: the
// identity provider's keys, a dev server's flags) copied, and prepared as
// a candidate (PrepareCandidate). Its revision must be the one the
// submitter's ReadShadow computed, so the rollout records what really ran.
func (e *Engine) Shadow(ctx context.Context, sp contract.ShadowPolicy) (*Engine, error) {
	var overlay []bundleFile
	size := 0
	for _, f := range sp.Files {
		if f.Name != path.Base(f.Name) || strings.Contains(f.Name, `\`) || !isBundleFile(f.Name) {
			return nil, fmt.Errorf("shadow policy: %q is not a policy file name (.rego or .json, no directory)", f.Name)
		}
		size += len(f.Content)
		overlay = append(overlay, bundleFile{name: f.Name, origin: path.Join("shadow:"+sp.Dir, f.Name), content: []byte(f.Content), user: true})
	}
	if size > MaxShadowBytes {
		return nil, fmt.Errorf("shadow policy: %d bytes, over %d", size, MaxShadowBytes)
	}
	files, err := assemble("", false, overlay...)
	if err != nil {
		return nil, err
	}
	ext := &external{values: map[string]any{}}
	e.ext.mu.Lock()
	for k, v := range e.ext.values {
		ext.values[k] = v
	}
	e.ext.mu.Unlock()
	b, err := prepare(ctx, files, ext)
	if err != nil {
		return nil, fmt.Errorf("shadow policy %s: %w", sp.Dir, err)
	}
	if sp.Revision != "" && b.revision != sp.Revision {
		return nil, fmt.Errorf("shadow policy %s: revision %s on this worker, %s when submitted (another release of the embedded defaults)", sp.Dir, b.revision, sp.Revision)
	}
	s := &Engine{cur: new(atomic.Pointer[bundle]), ext: ext}
	s.cur.Store(b)
	return s, PrepareCandidate(ctx, s)
}
