package netguard

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

var errNoHost = errors.New("url has no host")

// CheckURL validates the host of an absolute http(s) URL when a webhook is
// created or updated. It refuses localhost names and IP literals in any
// spelling that resolvers accept (see ParseIPLiteral) when they point at a
// forbidden range. Other hostnames are accepted because only the dial-time
// guard (Control) can see what they resolve to when a delivery is made.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid url: %w", err)
	}
	host := u.Hostname()
	if host == "" {
		return errNoHost
	}
	if p.allowsAll() {
		return nil
	}

	name := strings.ToLower(strings.TrimRight(foldToASCII(host), "."))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// RFC 6761 reserves the whole .localhost tree for loopback and many
		// resolvers answer it without asking DNS.
		return fmt.Errorf("%w: %s is loopback", ErrForbiddenAddress, host)
	}

	ip, ok := ParseIPLiteral(host)
	if !ok {
		return nil
	}
	if err := p.CheckIP(ip); err != nil {
		if host != ip.String() {
			return fmt.Errorf("host %s: %w", host, err)
		}
		return err
	}
	return nil
}

// ParseIPLiteral reports whether host, with or without square brackets, is
// an IP address in any form that inet_aton, getaddrinfo or URL parsers turn
// into one, and returns that address without its zone.
//
// Besides the canonical forms it accepts what attackers use to sneak past
// naive checks: a single 32-bit number (2130706433, 0x7f000001,
// 017700000001), per-part octal and hex (0177.0.0.1, 0x7f.0.0.1), short forms
// with inet_aton semantics (127.1 is 127.0.0.1, 10.1.2 is 10.1.0.2), trailing
// dots, IPv6 zones (fe80::1%eth0, fe80::1%25eth0) and full-width digits and
// dots that IDNA folds to ASCII. Numbers that overflow their slot make host a
// name rather than an address, as they do for the resolver.
func ParseIPLiteral(host string) (netip.Addr, bool) {
	host = foldToASCII(host)
	if len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	if strings.Contains(host, ":") {
		// The zone never changes which host is reached for the ranges we
		// care about, and it may arrive URL-escaped (%25) or raw (%).
		addr, _, _ := strings.Cut(host, "%")
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			return netip.Addr{}, false
		}
		return ip, true
	}
	return parseInetAton(host)
}

// parseInetAton implements the inet_aton grammar, which is what glibc's
// getaddrinfo applies to a host name before it ever consults DNS.
func parseInetAton(s string) (netip.Addr, bool) {
	// Stripping every trailing dot, not just one, errs on the side of
	// treating the host as an address and therefore checking it.
	s = strings.TrimRight(s, ".")
	if s == "" || strings.Count(s, ".") > 3 {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	var vals [4]uint64
	for i, part := range parts {
		v, ok := parseInetNumber(part)
		if !ok {
			return netip.Addr{}, false
		}
		vals[i] = v
	}

	n := len(parts)
	for _, v := range vals[:n-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
	}
	// The last part fills all remaining bytes: 32 bits alone, 24 after
	// one part, 16 after two, 8 after three.
	if vals[n-1] > 1<<(8*(5-n))-1 {
		return netip.Addr{}, false
	}
	var u uint32
	for i, v := range vals[:n-1] {
		u |= uint32(v) << (24 - 8*i)
	}
	u |= uint32(vals[n-1])
	return netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}), true
}

// parseInetNumber parses one part in C literal syntax: 0x prefix for hex,
// leading 0 for octal, decimal otherwise.
func parseInetNumber(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base, digits := uint64(10), s
	switch {
	case len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		// A bare "0x" is zero for WHATWG URL parsers, so accept it as such.
		base, digits = 16, s[2:]
	case len(s) >= 2 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	var v uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, false
		}
		if d >= base {
			return 0, false
		}
		v = v*base + d
		// Stopping as soon as 32 bits are exceeded also keeps v from ever
		// overflowing uint64, whatever the input length.
		if v > 0xffffffff {
			return 0, false
		}
	}
	return v, true
}

// foldToASCII maps the characters that IDNA (used by net/http for the dial
// address) turns into ASCII digits, letters and dots, so that a host such as
// "１２７.０.０.１" is recognised as the loopback literal it becomes on the
// wire. Every Unicode decimal digit is folded, which may over-match exotic
// internationalised names; refusing those is the safe direction.
func foldToASCII(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r >= 0xff01 && r <= 0xff5e: // full-width ASCII
			r -= 0xfee0
		case r == 0x3002 || r == 0xff61: // ideographic and half-width full stops
			r = '.'
		case r >= utf8.RuneSelf && unicode.IsDigit(r):
			r = '0' + digitValue(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// digitValue relies on Unicode's guarantee that decimal digits are encoded
// in contiguous runs from 0 to 9.
func digitValue(r rune) rune {
	start := r
	for unicode.IsDigit(start - 1) {
		start--
	}
	return (r - start) % 10
}

// ParseCIDRs parses a comma-separated list of CIDR prefixes, as found in an
// environment variable. Bare IP addresses are accepted as single-host
// prefixes and empty entries are skipped so that trailing commas are
// harmless. An empty string yields nil.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if strings.Contains(entry, "/") {
			pfx, err := netip.ParsePrefix(entry)
			if err != nil {
				return nil, fmt.Errorf("invalid cidr %q: %w", entry, err)
			}
			out = append(out, pfx.Masked())
			continue
		}
		ip, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("invalid cidr %q: %w", entry, err)
		}
		if ip.Zone() != "" {
			// A zone is meaningless in an allow-list and would be silently
			// dropped by netip.PrefixFrom.
			return nil, fmt.Errorf("invalid cidr %q: zones are not allowed", entry)
		}
		out = append(out, netip.PrefixFrom(ip, ip.BitLen()))
	}
	return out, nil
}
