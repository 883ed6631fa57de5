package forwarding

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

// Attack: with allow_private_addresses (the embedded default) any tenant
// could subscribe a link-local or cloud metadata address and read 4 KB of
// its answer in the attempt log. Those are refused at dial time in every
// mode; loopback and private addresses still pass where allowed.
func TestMetadataAddressesRefusedInEveryMode(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	for _, allowPrivate := range []bool{true, false} {
		d := guardedDialer(allowPrivate)
		for _, addr := range []string{"169.254.169.254:80", "169.254.1.1:8080", "[fe80::1]:80", "100.100.100.200:80",
			"[fd00:ec2::254]:80", "[::ffff:169.254.169.254]:80"} {
			_, err := d.DialContext(context.Background(), "tcp", addr)
			require.Error(t, err, addr)
			require.True(t, errors.Is(err, ErrBlockedAddress), "%s (private allowed %v): %v", addr, allowPrivate, err)
		}
		c, err := d.DialContext(context.Background(), "tcp", ln.Addr().String())
		if allowPrivate {
			require.NoError(t, err, "loopback allowed in development mode")
			_ = c.Close()
		} else {
			require.ErrorIs(t, err, ErrBlockedAddress)
		}
	}
	for _, priv := range []bool{true, false} {
		s := &Service{http: true, priv: priv}
		for _, a := range []string{"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://100.100.100.200/", "http://[fd00:ec2::254]/"} {
			require.Error(t, s.validateAddress(a), a)
		}
		require.Equal(t, !priv, s.validateAddress("http://10.0.0.1/") != nil)
	}
}
