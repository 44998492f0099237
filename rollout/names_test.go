package rollout

import (
	"strings"
	"testing"
)

func TestNamesAreWhatWindowsAndDNSAllow(t *testing.T) {
	for _, tc := range []struct {
		what, value, want string // want "" for valid
	}{
		{"host", "dc01", ""},
		{"host", "par-dc01.corp.example", ""},
		{"host", "WS\u202e01", `host name "WS\u202e01" has U+202E (RIGHT-TO-LEFT OVERRIDE) at character 3: host names are letters, digits, hyphens and dots`},
		{"host", "ws\x0001", `host name "ws\x0001" has U+0000 (NUL) at character 3`},
		{"host", "ws-😀", `host name "ws-\U0001f600" has U+1F600 at character 4`},
		{"host", "ws\xff", `has U+FFFD (REPLACEMENT CHARACTER) at character 3`},
		{"host", "ws 01", `has U+0020 (SPACE) at character 3`},
		{"host", "ws..corp", `has an empty label at character 4`},
		{"host", "-ws", `a label starting with a hyphen at character 1`},
		{"host", "ws-.corp", `a label ending with a hyphen at character 3`},
		{"host", strings.Repeat("a", 64), `has a label of 64 characters at character 1: a label is at most 63`},
		{"host", "ws.corp.", `has an empty label at character 9`},
		{"host", strings.Repeat("abc.", 64) + "a", `is 257 characters long: a host name is at most 255`},
		{"id", "ms08-067", ""},
		{"id", "kb953733_ipsec.v2", ""},
		{"id", "ms08\u202e067", `rollout id "ms08\u202e067" has U+202E (RIGHT-TO-LEFT OVERRIDE) at character 5`},
		{"id", "a/b", `has '/' at character 2`},
		{"id", ".hidden", `starts with '.'`},
		{"id", strings.Repeat("a", 129), `is 129 characters long: an id is at most 128`},
		{"address", "dc01.corp.example:5986", ""},
		{"address", "10.0.0.1:5985", ""},
		{"address", "[2001:db8::1]:5986", ""},
		{"address", "2001:db8::1:5986", `is not host:port`},
		{"address", "[10.0.0.1]:5986", `which is not an IPv6 address`},
		{"address", "dc\u202e01:5986", `in the address "dc\u202e01:5986", host name "dc\u202e01" has U+202E (RIGHT-TO-LEFT OVERRIDE) at character 3`},
		{"address", "dc01:+5986", `has no valid port`},
		{"address", strings.Repeat("a", 20<<20) + ":5986", `is 20971525 characters long`},
	} {
		var err error
		switch tc.what {
		case "host":
			err = checkHostName(tc.value)
		case "id":
			err = checkRolloutID(tc.value)
		case "address":
			err = checkAddress(tc.value)
		}
		name := tc.what + " " + quoteName(tc.value)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", name, err)
		case tc.want != "" && err == nil:
			t.Errorf("%s: valid, want %q", name, tc.want)
		case err != nil && !strings.Contains(err.Error(), tc.want):
			t.Errorf("%s: %q, want it to contain %q", name, err, tc.want)
		case err != nil && len(err.Error()) > 400:
			t.Errorf("%s: a message of %d bytes", name, len(err.Error()))
		}
	}
}
