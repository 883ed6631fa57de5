package forwarding

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrBlockedAddress is returned when a delivery would reach a loopback,
// private, link-local or metadata address and the deployment does not allow it.
var ErrBlockedAddress = errors.New("address not allowed")

var blockedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),         // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),     // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),      // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),     // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),       // reserved
	netip.MustParsePrefix("64:ff9b::/96"),      // NAT64 can reach private IPv4
	netip.MustParsePrefix("fd00:ec2::254/128"), // AWS metadata over IPv6
}

// metadataPrefixes are link-local and cloud metadata addresses, refused in
// every mode — even where allow_private_addresses lets deliveries reach
// loopback and private networks: no legitimate receiver lives there, and
// they hand out cloud credentials.
var metadataPrefixes = []netip.Prefix{
	netip.MustParsePrefix("169.254.0.0/16"),     // IPv4 link-local; AWS, GCP, Azure, OCI metadata at 169.254.169.254
	netip.MustParsePrefix("fe80::/10"),          // IPv6 link-local
	netip.MustParsePrefix("100.100.100.200/32"), // Alibaba Cloud metadata
	netip.MustParsePrefix("fd00:ec2::254/128"),  // AWS metadata over IPv6
	netip.MustParsePrefix("168.63.129.16/32"),   // Azure platform (wireserver)
}

// metadataIP reports whether ip is link-local or a cloud metadata address.
func metadataIP(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	addr = addr.Unmap()
	if addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() {
		return true
	}
	for _, p := range metadataPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// blockedIP reports whether ip is loopback, private, link-local (which holds
// the 169.254.169.254 metadata address), unspecified, multicast or reserved.
func blockedIP(ip net.IP) bool {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return true
	}
	addr = addr.Unmap()
	if addr.IsLoopback() || addr.IsPrivate() || addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast() ||
		addr.IsInterfaceLocalMulticast() || addr.IsMulticast() || addr.IsUnspecified() {
		return true
	}
	for _, p := range blockedPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// guardedDialer checks the resolved IP in the dialer's Control hook, after
// DNS resolution and for every address tried, so a name that resolves (or
// re-resolves) to a private address cannot slip through. Link-local and
// metadata addresses are refused even when allowPrivate is set.
func guardedDialer(allowPrivate bool) *net.Dialer {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	d.Control = func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrBlockedAddress, address)
		}
		ip := net.ParseIP(host)
		if ip == nil || metadataIP(ip) {
			return fmt.Errorf("%w: %s is a link-local or cloud metadata address (refused in every mode)", ErrBlockedAddress, host)
		}
		if allowPrivate {
			return nil
		}
		if blockedIP(ip) {
			return fmt.Errorf("%w: %s is a private, loopback or link-local address (set TRIBUTARY_ALLOW_PRIVATE_ADDRESSES to allow it)", ErrBlockedAddress, host)
		}
		return nil
	}
	return d
}

// newHTTPClient is the delivery client: SSRF-guarded dialer, no proxy from
// the environment (it would bypass the guard), no redirects (a 3xx is a
// failed attempt), keep-alive pools sized to the per-endpoint cap.
func newHTTPClient(allowPrivate bool, perHost int) *http.Client {
	t := &http.Transport{
		DialContext:           guardedDialer(allowPrivate).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   perHost,
		MaxConnsPerHost:       0,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 0,
	}
	return &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
}
