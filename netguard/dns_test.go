package netguard_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// fakeDNS is a minimal authoritative DNS server on 127.0.0.1 so that tests
// can make arbitrary names resolve to loopback addresses, and change the
// answer between lookups the way a rebinding attacker would.
type fakeDNS struct {
	conn *net.UDPConn

	mu      sync.Mutex
	answers map[string]netip.Addr // lower-case FQDN -> address
}

func newFakeDNS(t *testing.T) *fakeDNS {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.1/udp: %v", err)
	}
	d := &fakeDNS{conn: conn, answers: map[string]netip.Addr{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.serve()
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return d
}

func (d *fakeDNS) set(name string, ip netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answers[strings.ToLower(name)] = ip
}

func (d *fakeDNS) lookup(name string) (netip.Addr, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ip, ok := d.answers[strings.ToLower(name)]
	return ip, ok
}

// resolver returns a pure-Go resolver that sends every query to d,
// whatever /etc/resolv.conf says.
func (d *fakeDNS) resolver() *net.Resolver {
	addr := d.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, "udp", addr)
		},
	}
}

func (d *fakeDNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, peer, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		resp, err := d.respond(buf[:n])
		if err != nil {
			continue
		}
		_, _ = d.conn.WriteToUDP(resp, peer)
	}
}

const (
	dnsTypeA    = 1
	dnsTypeAAAA = 28
	dnsClassIN  = 1
)

func (d *fakeDNS) respond(q []byte) ([]byte, error) {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil, errors.New("want exactly one question")
	}
	var labels []string
	off := 12
	for {
		if off >= len(q) {
			return nil, errors.New("truncated name")
		}
		l := int(q[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(q) {
			return nil, errors.New("bad label")
		}
		labels = append(labels, string(q[off:off+l]))
		off += l
	}
	if off+4 > len(q) {
		return nil, errors.New("truncated question")
	}
	qtype := binary.BigEndian.Uint16(q[off : off+2])
	question := q[12 : off+4]

	ip, known := d.lookup(strings.Join(labels, ".") + ".")
	var rcode byte
	if !known {
		rcode = 3 // NXDOMAIN
	}
	var rdata []byte
	switch {
	case known && qtype == dnsTypeA && ip.Is4():
		b := ip.As4()
		rdata = b[:]
	case known && qtype == dnsTypeAAAA && ip.Is6():
		b := ip.As16()
		rdata = b[:]
	}

	// Authoritative and recursion-available, otherwise Go's resolver treats
	// an empty answer as a lame referral.
	resp := []byte{q[0], q[1], 0x85, 0x80 | rcode, 0, 1, 0, 0, 0, 0, 0, 0}
	resp = append(resp, question...)
	if rdata != nil {
		resp[7] = 1
		resp = append(resp, 0xc0, 12) // pointer to the question name
		resp = binary.BigEndian.AppendUint16(resp, qtype)
		resp = binary.BigEndian.AppendUint16(resp, dnsClassIN)
		resp = binary.BigEndian.AppendUint32(resp, 0) // TTL 0: never cache
		resp = binary.BigEndian.AppendUint16(resp, uint16(len(rdata)))
		resp = append(resp, rdata...)
	}
	return resp, nil
}
