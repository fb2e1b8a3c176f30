package netguard_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/netguard"
)

var loopback4 = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// countingServer starts an HTTP server on exactly addr (host:port) and
// counts the requests it receives, so tests can prove a refused request
// never reached it.
func countingServer(t *testing.T, addr string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	var hits atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &hits
}

// guardedClient builds the client a delivery worker would use: every
// connection, including redirects, is dialled through the policy. Proxy is
// nil on purpose, otherwise the guard would see the proxy's address.
func guardedClient(t *testing.T, p *netguard.Policy, r *net.Resolver) *http.Client {
	t.Helper()
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       p.DialContext(&net.Dialer{Timeout: 5 * time.Second, Resolver: r}),
		DisableKeepAlives: true,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(c *http.Client, rawURL string) error {
	resp, err := c.Get(rawURL)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

func TestControl(t *testing.T) {
	tests := []struct {
		name          string
		network       string
		address       string
		wantForbidden bool
	}{
		{name: "public v4", network: "tcp4", address: "93.184.216.34:443"},
		{name: "public v6", network: "tcp6", address: "[2606:4700::1111]:443"},
		{name: "loopback", network: "tcp4", address: "127.0.0.1:80", wantForbidden: true},
		{name: "metadata", network: "tcp4", address: "169.254.169.254:80", wantForbidden: true},
		{name: "private", network: "tcp4", address: "10.0.0.1:443", wantForbidden: true},
		{name: "v6 loopback", network: "tcp6", address: "[::1]:80", wantForbidden: true},
		{name: "v4-mapped", network: "tcp6", address: "[::ffff:10.0.0.1]:80", wantForbidden: true},
		{name: "link-local with zone", network: "tcp6", address: "[fe80::1%eth0]:80", wantForbidden: true},
		{name: "hostname never reaches control", network: "tcp", address: "example.com:80", wantForbidden: true},
		{name: "unix socket", network: "unix", address: "/run/docker.sock", wantForbidden: true},
		{name: "empty", network: "tcp", address: "", wantForbidden: true},
	}
	p := netguard.NewPolicy(false, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Control(tt.network, tt.address, nil)
			if !tt.wantForbidden {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, netguard.ErrForbiddenAddress)
		})
	}
}

// TestHTTPClientThroughGuard makes real requests through net/http and checks
// that the refusal survives the *net.OpError and *url.Error wrapping.
func TestHTTPClientThroughGuard(t *testing.T) {
	srv, hits := countingServer(t, "127.0.0.1:0")
	tests := []struct {
		name          string
		policy        *netguard.Policy
		wantForbidden bool
	}{
		{name: "guard on", policy: netguard.NewPolicy(false, nil), wantForbidden: true},
		{name: "loopback allow-listed", policy: netguard.NewPolicy(false, loopback4)},
		{name: "allow private", policy: netguard.NewPolicy(true, nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			err := get(guardedClient(t, tt.policy, nil), srv.URL+"/hook")
			if !tt.wantForbidden {
				require.NoError(t, err)
				assert.Equal(t, before+1, hits.Load())
				return
			}
			require.Error(t, err)
			assert.True(t, netguard.IsForbidden(err), "got %v", err)
			var urlErr *url.Error
			assert.ErrorAs(t, err, &urlErr)
			var opErr *net.OpError
			assert.ErrorAs(t, err, &opErr)
			assert.Equal(t, before, hits.Load(), "refused request must not reach the server")
		})
	}
}

// TestGuardActsOnResolvedAddress shows why CheckURL alone is not enough: a
// name that passes it can resolve to loopback, and only the dial-time guard
// sees that.
func TestGuardActsOnResolvedAddress(t *testing.T) {
	srv, hits := countingServer(t, "127.0.0.1:0")
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	dns := newFakeDNS(t)
	dns.set("rebind.test.", netip.MustParseAddr("127.0.0.1"))
	target := "http://rebind.test:" + strconv.Itoa(port) + "/hook"

	tests := []struct {
		name          string
		policy        *netguard.Policy
		wantForbidden bool
	}{
		{name: "resolved to loopback is refused", policy: netguard.NewPolicy(false, nil), wantForbidden: true},
		// 127.0.0.0/8 stands in for a public range: the sandbox only
		// reaches loopback, and this proves allowed resolutions are dialled.
		{name: "resolved to allowed range is dialled", policy: netguard.NewPolicy(false, loopback4)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.policy.CheckURL(target), "the hostname itself looks harmless")

			before := hits.Load()
			err := get(guardedClient(t, tt.policy, dns.resolver()), target)
			if !tt.wantForbidden {
				require.NoError(t, err)
				assert.Equal(t, before+1, hits.Load())
				return
			}
			require.Error(t, err)
			assert.True(t, netguard.IsForbidden(err), "got %v", err)
			assert.Contains(t, err.Error(), "127.0.0.1 is loopback")
			assert.Equal(t, before, hits.Load())
		})
	}
}

// TestDNSRebinding switches the DNS answer between two requests for the same
// name, from an allowed address to a forbidden one. 127.0.0.2 plays the
// public address and 127.0.0.1 the internal one.
func TestDNSRebinding(t *testing.T) {
	public, publicHits := countingServer(t, "127.0.0.2:0")
	port := strconv.Itoa(public.Listener.Addr().(*net.TCPAddr).Port)
	_, internalHits := countingServer(t, "127.0.0.1:"+port)

	dns := newFakeDNS(t)
	p := netguard.NewPolicy(false, []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")})
	client := guardedClient(t, p, dns.resolver())
	target := "http://attacker.test:" + port + "/hook"

	dns.set("attacker.test.", netip.MustParseAddr("127.0.0.2"))
	require.NoError(t, p.CheckURL(target))
	require.NoError(t, get(client, target))
	assert.Equal(t, int32(1), publicHits.Load())

	dns.set("attacker.test.", netip.MustParseAddr("127.0.0.1"))
	err := get(client, target)
	require.Error(t, err)
	assert.True(t, netguard.IsForbidden(err), "got %v", err)
	assert.Equal(t, int32(0), internalHits.Load())
}

func TestDialContextChainsExistingControl(t *testing.T) {
	srv, _ := countingServer(t, "127.0.0.1:0")
	addr := srv.Listener.Addr().String()

	tests := []struct {
		name          string
		policy        *netguard.Policy
		useCtx        bool
		wantForbidden bool
	}{
		{name: "control runs after accept", policy: netguard.NewPolicy(false, loopback4)},
		{name: "control context runs after accept", policy: netguard.NewPolicy(false, loopback4), useCtx: true},
		{name: "control skipped on refusal", policy: netguard.NewPolicy(false, nil), wantForbidden: true},
		// A base ControlContext makes net.Dialer ignore Control, so the guard
		// must still apply in that case.
		{name: "control context cannot bypass guard", policy: netguard.NewPolicy(false, nil), useCtx: true, wantForbidden: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			base := &net.Dialer{Timeout: 5 * time.Second}
			if tt.useCtx {
				base.ControlContext = func(context.Context, string, string, syscall.RawConn) error {
					calls.Add(1)
					return nil
				}
			} else {
				base.Control = func(string, string, syscall.RawConn) error {
					calls.Add(1)
					return nil
				}
			}

			conn, err := tt.policy.DialContext(base)(t.Context(), "tcp", addr)
			if tt.wantForbidden {
				require.Error(t, err)
				assert.True(t, netguard.IsForbidden(err), "got %v", err)
				assert.Zero(t, calls.Load())
			} else {
				require.NoError(t, err)
				_ = conn.Close()
				assert.Equal(t, int32(1), calls.Load())
			}
			assert.Equal(t, tt.useCtx, base.ControlContext != nil, "base dialer must not be modified")
			assert.Equal(t, !tt.useCtx, base.Control != nil, "base dialer must not be modified")
		})
	}
}

func TestDialContextNilBase(t *testing.T) {
	srv, _ := countingServer(t, "127.0.0.1:0")
	_, err := netguard.NewPolicy(false, nil).DialContext(nil)(t.Context(), "tcp", srv.Listener.Addr().String())
	assert.True(t, netguard.IsForbidden(err), "got %v", err)
}
