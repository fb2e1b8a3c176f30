// Package netguard keeps user-supplied webhook URLs from turning the
// delivery service into a proxy for internal networks (SSRF).
//
// It works in two layers:
//
//   - CheckURL runs when a webhook is created or updated, so that users get
//     immediate feedback for obviously internal targets such as
//     http://localhost/, http://169.254.169.254/ or disguised literals like
//     http://0x7f.1/. Ordinary hostnames pass this layer because their
//     addresses can change after validation.
//   - Control and DialContext run inside net.Dialer after DNS resolution, on
//     the exact IP being connected to. This is the layer that actually
//     enforces the policy: it defeats DNS rebinding, hostnames that resolve
//     to private ranges and redirects, because every connection made by an
//     http.Transport using it goes through the check.
//
// The dial-time guard only sees the address the process connects to, so an
// http.Transport using it must not be configured with a proxy (Proxy must be
// nil); otherwise the proxy's address is checked instead of the target's.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrForbiddenAddress is wrapped by every refusal so that callers can tell a
// policy decision apart from an ordinary network failure with IsForbidden.
var ErrForbiddenAddress = errors.New("forbidden address")

// IsForbidden reports whether err, or any error it wraps (including the
// *net.OpError and *url.Error layers added by net and net/http), is a
// refusal by a Policy.
func IsForbidden(err error) bool {
	return errors.Is(err, ErrForbiddenAddress)
}

// Policy decides which destination addresses outbound webhook deliveries may
// reach. A nil *Policy and the zero Policy are both the strictest policy, so
// a forgotten initialisation fails closed.
type Policy struct {
	allowPrivate bool
	allowed      []netip.Prefix
}

// NewPolicy returns a Policy. allowPrivate disables all checks and is meant
// for local development and tests only. allowedCIDRs punches holes for
// specific ranges (for example 127.0.0.0/8 in integration tests) while every
// other internal range stays refused.
func NewPolicy(allowPrivate bool, allowedCIDRs []netip.Prefix) *Policy {
	allowed := make([]netip.Prefix, 0, len(allowedCIDRs))
	for _, pfx := range allowedCIDRs {
		// An invalid prefix would never match anything; dropping it keeps the
		// slice honest for anyone inspecting it in a debugger.
		if pfx.IsValid() {
			allowed = append(allowed, pfx.Masked())
		}
	}
	return &Policy{allowPrivate: allowPrivate, allowed: allowed}
}

func (p *Policy) allowsAll() bool {
	return p != nil && p.allowPrivate
}

func (p *Policy) allowListed(ip netip.Addr) bool {
	if p == nil {
		return false
	}
	for _, pfx := range p.allowed {
		if pfx.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckIP returns nil if ip may be connected to and otherwise an error
// wrapping ErrForbiddenAddress that names the class of address. IPv6
// addresses that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
// SIIT, NAT64, 6to4 and Teredo) are judged by the IPv4 address they carry,
// because that is where packets may end up.
func (p *Policy) CheckIP(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid ip", ErrForbiddenAddress)
	}
	if p.allowsAll() {
		return nil
	}
	ip = ip.WithZone("")
	inner, embedded := embeddedIPv4(ip)
	if p.allowListed(ip) || (embedded && p.allowListed(inner)) {
		return nil
	}

	target := ip
	if embedded {
		target = inner
	}
	reason := classify(target)
	if reason == "" {
		return nil
	}
	if embedded {
		reason = fmt.Sprintf("%s (embedded %s)", reason, inner)
	}
	return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, ip, reason)
}

// Control has the signature of net.Dialer.Control. The dialer calls it after
// name resolution with the literal ip:port about to be connected to, which
// is the only point where the decision cannot be raced by DNS rebinding.
// Addresses that do not parse as ip:port (for example unix socket paths) are
// refused, since webhook deliveries never need them.
func (p *Policy) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dial address %q on %s", ErrForbiddenAddress, address, network)
	}
	return p.CheckIP(ap.Addr())
}

// DialContext returns a dial function, suitable for
// http.Transport.DialContext, that dials with a copy of base (a zero Dialer
// if base is nil) guarded by p.Control. base itself is not modified.
//
// The guard is installed as ControlContext because net.Dialer ignores
// Control whenever ControlContext is set, so installing it as Control could
// be silently bypassed by a base dialer that already uses ControlContext.
// Any existing ControlContext or Control on base still runs, after the
// guard has accepted the address.
func (p *Policy) DialContext(base *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	if base != nil {
		d = *base
	}
	prevCtx, prev := d.ControlContext, d.Control
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		if err := p.Control(network, address, c); err != nil {
			return err
		}
		switch {
		case prevCtx != nil:
			return prevCtx(ctx, network, address, c)
		case prev != nil:
			return prev(network, address, c)
		}
		return nil
	}
	return d.DialContext
}
