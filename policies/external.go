package policies

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/util"
)

// external is data the running worker supplies next to the bundle's (an
// identity provider's keys, fetched and refreshed at run time): written
// into every bundle's store, the one in force and each one a reload
// prepares. It is shared by the engines WithStats derives.
type external struct {
	mu     sync.Mutex
	values map[string]any
}

// SetData puts value at data.<key> (a slash-separated path, such as
// "oidc_keys" or "oidc/issuer") for the decisions that follow, over
// what the bundle's data.json says there, and keeps it across reloads. It
// is for facts the worker gathers at run time, never for rules: the
// policy decides what they mean (the identity provider's JWKS under
// data.oidc_keys is the one use).
func (e *Engine) SetData(ctx context.Context, key string, value any) error {
	e.ext.mu.Lock()
	defer e.ext.mu.Unlock()
	if err := writeData(ctx, e.cur.Load().store, key, value); err != nil {
		return err
	}
	e.ext.values[key] = value
	return nil
}

// writeAll writes the worker's data into a freshly prepared bundle. The
// caller holds x.mu until the bundle is in force, so a SetData cannot fall
// between the two.
func (x *external) writeAll(ctx context.Context, store storage.Store) error {
	for _, k := range slices.Sorted(maps.Keys(x.values)) {
		if err := writeData(ctx, store, k, x.values[k]); err != nil {
			return err
		}
	}
	return nil
}

func writeData(ctx context.Context, store storage.Store, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("set data.%s: %w", key, err)
	}
	var v any
	if err := util.UnmarshalJSON(raw, &v); err != nil {
		return fmt.Errorf("set data.%s: %w", key, err)
	}
	path, ok := storage.ParsePathEscaped("/" + key)
	if !ok || len(path) == 0 {
		return fmt.Errorf("set data.%s: not a data path", key)
	}
	if err := storage.WriteOne(ctx, store, storage.AddOp, path, v); err != nil {
		return fmt.Errorf("set data.%s: %w", key, err)
	}
	return nil
}

// DataString reads the string at data.<key> (slash-separated) of the
// bundle in force: "" when absent or not a string. The worker reads
// configuration the policy data names with it (the trusted identity
// provider's issuer, whose keys it fetches); it decides nothing by it.
func (e *Engine) DataString(ctx context.Context, key string) string {
	path, ok := storage.ParsePathEscaped("/" + key)
	if !ok {
		return ""
	}
	v, err := storage.ReadOne(ctx, e.cur.Load().store, path)
	if err != nil {
		return ""
	}
	switch s := v.(type) {
	case string:
		return s
	case ast.String:
		return string(s)
	}
	return ""
}
