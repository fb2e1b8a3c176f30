package netguard

import "net/netip"

type rangeRule struct {
	prefix netip.Prefix
	reason string
}

func rule(cidr, reason string) rangeRule {
	return rangeRule{prefix: netip.MustParsePrefix(cidr), reason: reason}
}

const rfc1918 = "private (RFC 1918)"

// ipv4Rules lists IPv4 ranges that are not globally reachable (IANA special
// purpose registry). Order matters only where ranges overlap: the narrower
// rule must come first so that its more precise reason wins.
var ipv4Rules = []rangeRule{
	rule("0.0.0.0/32", "unspecified"),
	rule("0.0.0.0/8", "this-network (0.0.0.0/8)"),
	rule("10.0.0.0/8", rfc1918),
	rule("100.64.0.0/10", "carrier-grade NAT"),
	rule("127.0.0.0/8", "loopback"),
	rule("169.254.0.0/16", "link-local"),
	rule("172.16.0.0/12", rfc1918),
	rule("192.0.0.0/24", "reserved (IETF protocol assignments)"),
	rule("192.0.2.0/24", "documentation"),
	rule("192.88.99.0/24", "reserved (6to4 relay anycast)"),
	rule("192.168.0.0/16", rfc1918),
	rule("198.18.0.0/15", "benchmarking"),
	rule("198.51.100.0/24", "documentation"),
	rule("203.0.113.0/24", "documentation"),
	rule("224.0.0.0/4", "multicast"),
	rule("255.255.255.255/32", "broadcast"),
	rule("240.0.0.0/4", "reserved"),
}

// ipv6Rules gives precise reasons for well-known IPv6 ranges. Anything
// outside 2000::/3 is refused afterwards anyway, because that is the only
// block IANA has allocated for global unicast.
var ipv6Rules = []rangeRule{
	rule("::/128", "unspecified"),
	rule("::1/128", "loopback"),
	rule("fe80::/10", "link-local"),
	rule("fec0::/10", "site-local"),
	rule("fc00::/7", "unique-local"),
	rule("ff00::/8", "multicast"),
	rule("64:ff9b:1::/48", "local-use NAT64"),
	rule("100::/64", "reserved (discard-only)"),
	rule("2001:2::/48", "benchmarking"),
	rule("2001:db8::/32", "documentation"),
	rule("3fff::/20", "documentation"),
	rule("5f00::/16", "reserved (SRv6)"),
}

var ipv6GlobalUnicast = netip.MustParsePrefix("2000::/3")

// classify returns why ip must not be dialled, or "" if it may be.
func classify(ip netip.Addr) string {
	rules := ipv6Rules
	if ip.Is4() {
		rules = ipv4Rules
	}
	for _, r := range rules {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	if ip.Is6() && !ipv6GlobalUnicast.Contains(ip) {
		return "reserved"
	}
	return ""
}

// embeddedIPv4 extracts the IPv4 address carried by IPv6 transition
// formats. Kernels, NAT64 gateways and tunnels deliver such addresses to the
// embedded IPv4 host, so judging only the IPv6 form would let
// [::ffff:127.0.0.1] or [64:ff9b::a9fe:a9fe] through.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	if ip.Is4In6() {
		return ip.Unmap(), true
	}
	b := ip.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch {
	case allZero(b[:12]):
		// IPv4-compatible (::a.b.c.d); :: and ::1 are genuine IPv6
		// addresses, not embeddings, and have their own rules.
		if ip == netip.IPv6Unspecified() || ip == netip.IPv6Loopback() {
			return netip.Addr{}, false
		}
		return v4(12), true
	case allZero(b[:8]) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0:
		// SIIT IPv4-translated ::ffff:0:a.b.c.d (RFC 2765).
		return v4(12), true
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && allZero(b[4:12]):
		// NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
		return v4(12), true
	case b[0] == 0x20 && b[1] == 0x02:
		// 6to4 2002:AABB:CCDD::/48 (RFC 3056).
		return v4(2), true
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		// Teredo 2001::/32 (RFC 4380) carries the client's address
		// bit-inverted in the last 32 bits.
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), true
	}
	return netip.Addr{}, false
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
