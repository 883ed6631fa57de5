package forwarding

import (
	"net/netip"
	"regexp"
	"strings"
)

// redactedAddress replaces IP addresses in delivery errors shown to tenants.
const redactedAddress = "<address>"

// ipCandidate matches tokens that may be an IP address, with an optional
// zone, brackets and port; each is confirmed by netip before it is replaced.
var ipCandidate = regexp.MustCompile(`\[?[0-9A-Fa-f]*[.:][0-9A-Fa-f.:]*(?:%[0-9A-Za-z]+)?\]?(?::[0-9]+)?`)

// tenantError is a delivery error as the API shows it: every IP address —
// the address a name resolved to, the resolver's ("lookup x on
// 127.0.0.53:53") — becomes "<address>", so a tenant cannot map the
// deployment's internal network through its subscriptions' errors. The
// attempt log in the database and the server log keep the full text.
func tenantError(s string) string {
	if s == "" {
		return s
	}
	out := ipCandidate.ReplaceAllStringFunc(s, func(tok string) string {
		if isIPToken(tok) {
			return redactedAddress
		}
		// "1.2.3.4:53:" — a trailing colon of the message, not a port.
		if t, ok := strings.CutSuffix(tok, ":"); ok && isIPToken(t) {
			return redactedAddress + ":"
		}
		return tok
	})
	return strings.ReplaceAll(out, " on "+redactedAddress, "")
}

func isIPToken(tok string) bool {
	if _, err := netip.ParseAddrPort(tok); err == nil {
		return true
	}
	_, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(tok, "["), "]"))
	return err == nil
}
