package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/patchway/patchway/contract"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeCredFile(t *testing.T, mode os.FileMode, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredentialEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"fleet":       "PATCHWAY_CRED_FLEET",
		"emea-dc":     "PATCHWAY_CRED_EMEA_DC",
		"Lab.Hosts 2": "PATCHWAY_CRED_LAB_HOSTS_2",
	} {
		if got := CredentialEnvName(in); got != want {
			t.Errorf("CredentialEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEnvCredentialsResolve(t *testing.T) {
	good := writeCredFile(t, 0o600, `{"fleet": {"username": "fileuser", "password": "filepass", "tiers": ["lab"], "addresses": ["127.0.0.0/8", "*.lab.example"], "transports": ["https", "http"]}}`)
	wide := writeCredFile(t, 0o644, `{"fleet": {"username": "fileuser", "password": "filepass"}}`)
	broken := writeCredFile(t, 0o600, `{"fleet": {"username": "u", "password": "s3cr3t-in-broken-file"`)
	tests := []struct {
		name    string
		env     map[string]string
		set     string
		want    Credential
		wantErr string
	}{
		{"environment variables win", map[string]string{"PATCHWAY_CRED_EMEA_DC_USER": "envuser", "PATCHWAY_CRED_EMEA_DC_PASSWORD": "envpass", CredentialsFileEnv: good}, "emea-dc", Credential{Username: "envuser", Password: "envpass"}, ""},
		{"environment binding keys", map[string]string{"PATCHWAY_CRED_FLEET_USER": "u", "PATCHWAY_CRED_FLEET_PASSWORD": "p", "PATCHWAY_CRED_FLEET_TIERS": "lab, prodlike", "PATCHWAY_CRED_FLEET_ADDRESSES": "127.0.0.0/8,*.corp.example", "PATCHWAY_CRED_FLEET_TRANSPORTS": "https"}, "fleet",
			Credential{Username: "u", Password: "p", Binding: CredentialBinding{Tiers: []string{"lab", "prodlike"}, Addresses: []string{"127.0.0.0/8", "*.corp.example"}, Transports: []string{"https"}}}, ""},
		{"file with mode 0600 is read", map[string]string{CredentialsFileEnv: good}, "fleet", Credential{Username: "fileuser", Password: "filepass", Binding: CredentialBinding{Tiers: []string{"lab"}, Addresses: []string{"127.0.0.0/8", "*.lab.example"}, Transports: []string{"https", "http"}}}, ""},
		{"file readable by others is refused naming file and mode", map[string]string{CredentialsFileEnv: wide}, "fleet", Credential{}, fmt.Sprintf("credentials file %s has mode 0644", wide)},
		{"half-set environment is an error", map[string]string{"PATCHWAY_CRED_FLEET_USER": "u"}, "fleet", Credential{}, "set both PATCHWAY_CRED_FLEET_USER and PATCHWAY_CRED_FLEET_PASSWORD"},
		{"unknown set names both sources", map[string]string{}, "fleet", Credential{}, "PATCHWAY_CREDENTIALS_FILE"},
		{"set missing from file", map[string]string{CredentialsFileEnv: good}, "other", Credential{}, "not in " + good},
		{"invalid JSON is reported without its content", map[string]string{CredentialsFileEnv: broken}, "fleet", Credential{}, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &EnvCredentials{LookupEnv: envMap(tt.env)}
			got, err := r.Resolve(context.Background(), tt.set)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "filepass") {
					t.Fatalf("error leaks a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStaticCredentialsUnknownSet(t *testing.T) {
	_, err := StaticCredentials{}.Resolve(context.Background(), "fleet")
	if !errors.Is(err, ErrCredentialNotFound) {
		t.Errorf("err = %v, want ErrCredentialNotFound", err)
	}
}

func TestCredentialNeverPrintsItsPassword(t *testing.T) {
	c := Credential{Username: "patchway", Password: "hunter2-xyz"}
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("cred", "c", c)
	raw, _ := json.Marshal(c)
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), sb.String(), string(raw)} {
		if strings.Contains(s, "hunter2-xyz") {
			t.Errorf("password printed: %s", s)
		}
		if !strings.Contains(s, "patchway") {
			t.Errorf("username missing from %s", s)
		}
	}
}

// TestPreflightCredentialsNamesTheSetsTheWorkerCannotResolve: the
// preflight resolves each set the rollout's hosts name, reaches no host,
// and lists the unknown ones with their hosts; the secret never appears.
func TestPreflightCredentialsNamesTheSetsTheWorkerCannotResolve(t *testing.T) {
	const password = "preflight-pw-93d1"
	a := &HostActivities{Runner: &WinRMRunner{Credentials: StaticCredentials{"fleet": {Username: "patchway", Password: password}}}}
	res, err := a.PreflightCredentials(context.Background(), contract.PreflightCredentialsInput{RolloutID: "r1", Uses: []contract.CredentialUse{
		{Set: "emea-admin", Hosts: 60, Examples: []string{"par-dc01"}},
		{Set: "fleet", Hosts: 200},
		{Set: "", Hosts: 1, Examples: []string{"odd"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range res.Unknown {
		got = append(got, u.Set+": "+u.Reason)
		if strings.Contains(u.Reason, password) {
			t.Errorf("the reason quotes the password: %s", u.Reason)
		}
	}
	want := []string{`emea-admin: credential set "emea-admin": credential set not found`, ": the hosts name no credential set"}
	if !slices.Equal(got, want) {
		t.Errorf("unknown sets %q, want %q", got, want)
	}
	// A runner without credentials cannot vouch for any set.
	res, _ = (&HostActivities{}).PreflightCredentials(context.Background(), contract.PreflightCredentialsInput{Uses: []contract.CredentialUse{{Set: "fleet"}}})
	if len(res.Unknown) != 1 {
		t.Errorf("no runner: %d unknown, want 1", len(res.Unknown))
	}
}
