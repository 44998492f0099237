package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Environment variables that carry credential sets (see the README's
// "Host operations" section).
const (
	// CredentialsFileEnv names a JSON file {"<set>": {"username",
	// "password", "tiers", "addresses", "transports"}} with mode 0600 or
	// narrower.
	CredentialsFileEnv = "PATCHWAY_CREDENTIALS_FILE"
	credEnvPrefix      = "PATCHWAY_CRED_"
)

// Credential is a resolved WinRM credential set. It never leaves the
// worker: it is not part of any activity input or result, and its String,
// GoString, LogValue and MarshalJSON forms redact the password so a stray
// log line or %v cannot leak it.
type Credential struct {
	Username string
	Password string
	// Binding says where the worker may send the set. It comes from the
	// worker's own configuration, next to the secret, never from the
	// submitted inventory; the transport policy judges it.
	Binding CredentialBinding
}

// CredentialBinding is the worker-side binding of a credential set: the
// tiers it may serve, the addresses it may be sent to (CIDRs, IP addresses,
// host globs such as *.corp.example) and the transports it may travel on
// (https, https_insecure, http). A nil list is unset: the policy's
// data.transport.credential_defaults apply (every tier, https only), and a
// set with no addresses is sent nowhere.
type CredentialBinding struct {
	Tiers      []string `json:"tiers,omitempty"`
	Addresses  []string `json:"addresses,omitempty"`
	Transports []string `json:"transports,omitempty"`
}

// String redacts the password.
func (c Credential) String() string { return fmt.Sprintf("%s:<redacted>", c.Username) }

// Binding keys of a set, after PATCHWAY_CRED_<SET> in the environment and
// as fields of the set's entry in the credentials file.
const (
	credTiersKey      = "_TIERS"
	credAddressesKey  = "_ADDRESSES"
	credTransportsKey = "_TRANSPORTS"
)

// splitList splits a comma list, trimming blanks; "" is unset (nil).
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// GoString redacts the password (for %#v).
func (c Credential) GoString() string { return c.String() }

// LogValue redacts the password in slog output.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.String("password", "<redacted>"))
}

// MarshalJSON redacts the password, so a Credential accidentally put in a
// payload or a heartbeat never carries it.
func (c Credential) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"username": c.Username, "password": "<redacted>"})
}

// CredentialResolver turns a credential set name (rollout.Host.Credential)
// into a Credential. Workers resolve from the environment or a 0600 file
// (EnvCredentials); in-process callers such as tests and `patchway dev` pass
// a StaticCredentials.
type CredentialResolver interface {
	Resolve(ctx context.Context, name string) (Credential, error)
}

// ErrCredentialNotFound is returned (wrapped) when no source defines a set.
var ErrCredentialNotFound = errors.New("credential set not found")

// StaticCredentials resolves sets from a map held in memory.
type StaticCredentials map[string]Credential

// Resolve returns the set called name.
func (s StaticCredentials) Resolve(_ context.Context, name string) (Credential, error) {
	c, ok := s[name]
	if !ok {
		return Credential{}, fmt.Errorf("credential set %q: %w", name, ErrCredentialNotFound)
	}
	return c, nil
}

// EnvCredentials resolves a set NAME from PATCHWAY_CRED_<NAME>_USER and
// PATCHWAY_CRED_<NAME>_PASSWORD (NAME upper-cased, every other character
// than A-Z and 0-9 replaced by '_'), or else from the JSON file named by
// PATCHWAY_CREDENTIALS_FILE, which is refused unless its mode is 0600 or
// narrower. The file is re-read when it changes (rotation without restart).
type EnvCredentials struct {
	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)

	mu     sync.Mutex
	cached credentialsFile
}

type credentialsFile struct {
	path    string
	modTime time.Time
	size    int64
	sets    map[string]fileCredential
}

type fileCredential struct {
	Username   string   `json:"username"`
	Password   string   `json:"password"`
	Tiers      []string `json:"tiers"`
	Addresses  []string `json:"addresses"`
	Transports []string `json:"transports"`
}

// CredentialEnvName returns the environment variable prefix for set name:
// "fleet" gives PATCHWAY_CRED_FLEET, "emea-dc" PATCHWAY_CRED_EMEA_DC.
func CredentialEnvName(name string) string { return envName(credEnvPrefix, name) }

// envName joins prefix and name upper-cased, with every character other
// than A-Z and 0-9 replaced by '_', so any HCL name maps to a valid
// environment variable.
func envName(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, r := range strings.ToUpper(name) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// Resolve returns the set called name from the environment or the file,
// with its binding: PATCHWAY_CRED_<NAME>_TIERS, _ADDRESSES and _TRANSPORTS
// (comma lists) for a set from the environment, the entry's "tiers",
// "addresses" and "transports" arrays for a set from the file.
func (e *EnvCredentials) Resolve(_ context.Context, name string) (Credential, error) {
	if name == "" {
		return Credential{}, fmt.Errorf("host names no credential set: %w", ErrCredentialNotFound)
	}
	lookup := e.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	prefix := CredentialEnvName(name)
	user, okU := lookup(prefix + "_USER")
	pass, okP := lookup(prefix + "_PASSWORD")
	switch {
	case okU && okP:
		env := func(key string) []string { v, _ := lookup(prefix + key); return splitList(v) }
		return Credential{Username: user, Password: pass, Binding: CredentialBinding{
			Tiers: env(credTiersKey), Addresses: env(credAddressesKey), Transports: env(credTransportsKey),
		}}, nil
	case okU != okP:
		return Credential{}, fmt.Errorf("credential set %q: set both %s_USER and %s_PASSWORD", name, prefix, prefix)
	}
	path, ok := lookup(CredentialsFileEnv)
	if !ok || path == "" {
		return Credential{}, fmt.Errorf("credential set %q: set %s_USER and %s_PASSWORD, or %s: %w",
			name, prefix, prefix, CredentialsFileEnv, ErrCredentialNotFound)
	}
	sets, err := e.load(path)
	if err != nil {
		return Credential{}, fmt.Errorf("credential set %q: %w", name, err)
	}
	c, ok := sets[name]
	if !ok {
		return Credential{}, fmt.Errorf("credential set %q: not in %s: %w", name, path, ErrCredentialNotFound)
	}
	if c.Username == "" {
		return Credential{}, fmt.Errorf("credential set %q in %s has no username", name, path)
	}
	return Credential{Username: c.Username, Password: c.Password, Binding: CredentialBinding{
		Tiers: c.Tiers, Addresses: c.Addresses, Transports: c.Transports,
	}}, nil
}

// load reads and caches the credentials file, refusing modes wider than
// 0600. Errors never quote the file's content.
func (e *EnvCredentials) load(path string) (map[string]fileCredential, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("credentials file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("credentials file %s has mode %04o, readable by others: refusing it; run chmod 600 %s", path, perm, path)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.cached; c.path == path && c.modTime.Equal(st.ModTime()) && c.size == st.Size() {
		return c.sets, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	var sets map[string]fileCredential
	if err := json.Unmarshal(raw, &sets); err != nil {
		// The decoder's message can quote a fragment of the input; keep
		// only where it failed.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("credentials file %s: invalid JSON at byte %d", path, se.Offset)
		}
		return nil, fmt.Errorf("credentials file %s: want {\"<set>\": {\"username\": ..., \"password\": ...}}", path)
	}
	e.cached = credentialsFile{path: path, modTime: st.ModTime(), size: st.Size(), sets: sets}
	return sets, nil
}
