package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/rollout"
)

// A host's reason is the activity's own message, not the SDK's wrapper
// with event ids and the worker's identity.
func TestErrorReasonKeepsTheActivityMessage(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("activity error (type: PatchHost, scheduledEventID: 147): %w",
			temporal.NewNonRetryableApplicationError("host sin-ws004: host rejected the credentials (HTTP 401)", "AuthFailed", nil)),
			"host sin-ws004: host rejected the credentials (HTTP 401)"},
		{fmt.Errorf("activity error: %w", temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil)),
			"no answer in time (heartbeat timeout): the host, or the worker working on it, stopped responding"},
		{errors.New("something else"), "something else"},
	} {
		if got := errorReason(tc.err); got != tc.want {
			t.Errorf("errorReason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// A batch's PatchwayHosts value stays under the server's 2,048-byte limit
// whatever the names' length, and keeps every name when they fit.
func TestHostsAttrFitsTheSearchAttributeLimit(t *testing.T) {
	for _, width := range []int{8, 16, 17, 24, 64} {
		names := make([]string, 100)
		for i := range names {
			names[i] = fmt.Sprintf("%0*d", width, i)
		}
		got := HostsAttr(names)
		raw, _ := json.Marshal(got)
		if len(raw) > 2048 {
			t.Errorf("width %d: %d bytes of JSON, over 2048", width, len(raw))
		}
		if !slices.Equal(got, names[:len(got)]) || (len(raw)+(len(names)-len(got))*(width+3) <= hostsAttrBudget && len(got) != len(names)) {
			t.Errorf("width %d: kept %d of %d names, not the longest prefix that fits", width, len(got), len(names))
		}
	}
}

// A rollout over 10,000 hosts starts packed under the server's 2 MB
// payload limit and unpacks to the same hosts; a small one starts plain.
func TestPackStartPacksOnlyLargeInventories(t *testing.T) {
	small := RolloutInput{Hosts: []rollout.Host{{Name: "a"}}}
	if got, err := PackStart(small); err != nil || len(got.Packed) != 0 || len(got.Hosts) != 1 {
		t.Fatalf("small input: %d packed bytes, %d hosts, %v", len(got.Packed), len(got.Hosts), err)
	}
	hosts := make([]rollout.Host, 10000)
	for i := range hosts {
		hosts[i] = rollout.Host{Name: fmt.Sprintf("SAOPAULO-SRV-%05d", i), Address: fmt.Sprintf("10.1.%d.%d:5986", i/250, i%250),
			OS: "windows-server-2008", Site: "sao-paulo", Region: "latam", Tier: rollout.TierProduction, Role: "file", Credential: "prod"}
	}
	big := RolloutInput{Hosts: hosts, Sites: []rollout.Site{{Name: "sao-paulo"}}}
	plain, _ := json.Marshal(big)
	got, err := PackStart(big)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := json.Marshal(got)
	if len(got.Hosts) != 0 || len(wire) > 2<<20 {
		t.Fatalf("10,000 hosts: %d plain hosts left, %d bytes on the wire (plain %d)", len(got.Hosts), len(wire), len(plain))
	}
	back, err := unpack(got)
	if err != nil || len(back.Hosts) != len(hosts) || back.Hosts[9999].Name != hosts[9999].Name || len(back.Sites) != 1 {
		t.Fatalf("unpacked %d hosts, %v", len(back.Hosts), err)
	}
	t.Logf("10,000 hosts: %d bytes plain, %d packed", len(plain), len(wire))
}
