package forwarding

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// Attack: delivery errors told a tenant which private IP its hostname
// resolved to and the resolver's address.
func TestTenantErrorHidesAddresses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{`Post "https://hooks.example.com/x": dial tcp 10.1.2.3:443: connect: connection refused`,
			`Post "https://hooks.example.com/x": dial tcp <address>: connect: connection refused`},
		{`Post "https://internal.example/x": dial tcp: lookup internal.example on 127.0.0.53:53: no such host`,
			`Post "https://internal.example/x": dial tcp: lookup internal.example: no such host`},
		{`address not allowed: 192.168.1.7 is a private, loopback or link-local address (set TRIBUTARY_ALLOW_PRIVATE_ADDRESSES to allow it)`,
			`address not allowed: <address> is a private, loopback or link-local address (set TRIBUTARY_ALLOW_PRIVATE_ADDRESSES to allow it)`},
		{`dial tcp [fd00::1]:8443: i/o timeout`, `dial tcp <address>: i/o timeout`},
		{`dial tcp [fe80::1%eth0]:80: connect: network is unreachable`, `dial tcp <address>: connect: network is unreachable`},
		{`read tcp 172.17.0.2:51234->10.0.0.9:80: read: connection reset by peer`, `read tcp <address>-><address>: read: connection reset by peer`},
		{`endpoint answered 503 at 10:23:34 after 1.5s`, `endpoint answered 503 at 10:23:34 after 1.5s`},
		{`context deadline exceeded (Client.Timeout exceeded while awaiting headers)`, `context deadline exceeded (Client.Timeout exceeded while awaiting headers)`},
		{"", ""},
	} {
		require.Equal(t, tc.want, tenantError(tc.in), tc.in)
	}
}
