package rollout

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the names Patchway hands to Windows, DNS and Temporal.
const (
	// MaxHostName is DNS's limit on a name; each label is at most
	// MaxHostLabel.
	MaxHostName  = 255
	MaxHostLabel = 63
	// MaxRolloutID bounds a rollout id, which becomes part of workflow ids,
	// search attributes and file names.
	MaxRolloutID = 128
	// maxAddress is a host name (or a bracketed IPv6 address, shorter)
	// and ":65535".
	maxAddress = MaxHostName + len(":65535")
)

// charNames names the characters most worth recognising in a message: the
// invisible and the direction-changing, which make one name look like
// another.
var charNames = map[rune]string{
	0x00:   "NUL",
	'\t':   "TAB",
	'\n':   "LINE FEED",
	'\r':   "CARRIAGE RETURN",
	' ':    "SPACE",
	0x7f:   "DELETE",
	0xa0:   "NO-BREAK SPACE",
	0xad:   "SOFT HYPHEN",
	0x200b: "ZERO WIDTH SPACE",
	0x200c: "ZERO WIDTH NON-JOINER",
	0x200d: "ZERO WIDTH JOINER",
	0x200e: "LEFT-TO-RIGHT MARK",
	0x200f: "RIGHT-TO-LEFT MARK",
	0x2028: "LINE SEPARATOR",
	0x2029: "PARAGRAPH SEPARATOR",
	0x202a: "LEFT-TO-RIGHT EMBEDDING",
	0x202b: "RIGHT-TO-LEFT EMBEDDING",
	0x202c: "POP DIRECTIONAL FORMATTING",
	0x202d: "LEFT-TO-RIGHT OVERRIDE",
	0x202e: "RIGHT-TO-LEFT OVERRIDE",
	0x2066: "LEFT-TO-RIGHT ISOLATE",
	0x2067: "RIGHT-TO-LEFT ISOLATE",
	0x2068: "FIRST STRONG ISOLATE",
	0x2069: "POP DIRECTIONAL ISOLATE",
	0xfeff: "ZERO WIDTH NO-BREAK SPACE",
	0xfffd: "REPLACEMENT CHARACTER",
}

// describeChar is "U+202E (RIGHT-TO-LEFT OVERRIDE)", or "'_'" for a
// printable ASCII character.
func describeChar(r rune) string {
	if name, ok := charNames[r]; ok {
		return fmt.Sprintf("U+%04X (%s)", r, name)
	}
	if r > ' ' && r < 0x7f {
		return strconv.QuoteRune(r)
	}
	return fmt.Sprintf("U+%04X", r)
}

// quoteName quotes s in ASCII, cut to its first 64 characters.
func quoteName(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		i := 0
		for n := 0; n < 64; n++ {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		return strconv.QuoteToASCII(s[:i]) + "..."
	}
	return strconv.QuoteToASCII(s)
}

// badChar returns the first character of s that ok refuses, and its
// 1-based position in characters.
func badChar(s string, ok func(r rune) bool) (rune, int, bool) {
	n := 0
	for i, r := range s {
		n++
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return r, n, true // invalid UTF-8
			}
		}
		if !ok(r) {
			return r, n, true
		}
	}
	return 0, 0, false
}

func isLDH(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-'
}

// checkHostName checks a host name the way DNS and Windows read it:
// labels of letters, digits and hyphens, not starting or ending with a
// hyphen, at most 63 characters, joined by dots, at most 255 in all.
func checkHostName(name string) error {
	const rule = "host names are letters, digits, hyphens and dots"
	if r, at, bad := badChar(name, func(r rune) bool { return isLDH(r) || r == '.' }); bad {
		return fmt.Errorf("host name %s has %s at character %d: %s", quoteName(name), describeChar(r), at, rule)
	}
	if len(name) > MaxHostName {
		return fmt.Errorf("host name %s is %d characters long: a host name is at most %d", quoteName(name), len(name), MaxHostName)
	}
	at := 1
	for label := range strings.SplitSeq(name, ".") {
		switch {
		case label == "":
			return fmt.Errorf("host name %s has an empty label at character %d: dots go between labels", quoteName(name), at)
		case len(label) > MaxHostLabel:
			return fmt.Errorf("host name %s has a label of %d characters at character %d: a label is at most %d", quoteName(name), len(label), at, MaxHostLabel)
		case label[0] == '-':
			return fmt.Errorf("host name %s has a label starting with a hyphen at character %d: labels start and end with a letter or digit", quoteName(name), at)
		case label[len(label)-1] == '-':
			return fmt.Errorf("host name %s has a label ending with a hyphen at character %d: labels start and end with a letter or digit", quoteName(name), at+len(label)-1)
		}
		at += len(label) + 1
	}
	return nil
}

// checkRolloutID checks a rollout id: letters, digits, hyphens,
// underscores and dots, starting with a letter or digit, at most
// MaxRolloutID characters. Ids name workflows and files, and appear in
// approvals and reports, where invisible or look-alike characters would let
// one rollout pass for another.
func checkRolloutID(id string) error {
	const rule = "rollout ids are letters, digits, hyphens, underscores and dots"
	if r, at, bad := badChar(id, func(r rune) bool { return isLDH(r) || r == '_' || r == '.' }); bad {
		return fmt.Errorf("rollout id %s has %s at character %d: %s", quoteName(id), describeChar(r), at, rule)
	}
	if len(id) > MaxRolloutID {
		return fmt.Errorf("rollout id %s is %d characters long: an id is at most %d", quoteName(id), len(id), MaxRolloutID)
	}
	if c := id[0]; !isLDH(rune(c)) || c == '-' {
		return fmt.Errorf("rollout id %s starts with %s: an id starts with a letter or digit", quoteName(id), describeChar(rune(c)))
	}
	return nil
}

// checkAddress checks a WinRM address: a host name, an IPv4 address or an
// IPv6 address in brackets, then ":" and a port.
func checkAddress(addr string) error {
	if len(addr) > maxAddress {
		return fmt.Errorf("the address %s is %d characters long: an address is a host name of at most %d and a port", quoteName(addr), len(addr), MaxHostName)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		if r, at, bad := badChar(addr, func(r rune) bool { return r > ' ' && r < 0x7f }); bad {
			return fmt.Errorf("the address %s has %s at character %d: an address is host:port", quoteName(addr), describeChar(r), at)
		}
		return fmt.Errorf("%s is not host:port", quoteName(addr))
	}
	if host == "" {
		return fmt.Errorf("%s has no host name", quoteName(addr))
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' {
		return fmt.Errorf("%s has no valid port", quoteName(addr))
	}
	if strings.HasPrefix(addr, "[") {
		if ip := net.ParseIP(host); ip == nil || ip.To4() != nil {
			return fmt.Errorf("the address %s has %s in brackets, which is not an IPv6 address", quoteName(addr), quoteName(host))
		}
		return nil
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("the address %s has an IPv6 address without brackets: write [%s]:%s", quoteName(addr), host, port)
	}
	if ip := net.ParseIP(host); ip != nil {
		return nil
	}
	if err := checkHostName(host); err != nil {
		// Count characters from the start of the address.
		return fmt.Errorf("in the address %s, %w", quoteName(addr), err)
	}
	return nil
}
