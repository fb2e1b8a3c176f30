package netguard_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/netguard"
)

func strict() *netguard.Policy { return netguard.NewPolicy(false, nil) }

// forbiddenURLs is the SSRF corpus: every address class and every literal
// spelling that must never pass CheckURL under the default policy.
var forbiddenURLs = []struct {
	name       string
	give       string
	wantReason string
}{
	// Loopback and its disguises.
	{name: "loopback dotted", give: "http://127.0.0.1/", wantReason: "loopback"},
	{name: "loopback with port and path", give: "http://127.0.0.1:8080/x?y=1", wantReason: "loopback"},
	{name: "loopback top of range", give: "http://127.255.255.254/", wantReason: "loopback"},
	{name: "loopback decimal", give: "http://2130706433/", wantReason: "loopback"},
	{name: "loopback hex", give: "http://0x7f000001/", wantReason: "loopback"},
	{name: "loopback hex upper", give: "http://0X7F000001/", wantReason: "loopback"},
	{name: "loopback octal single", give: "http://017700000001/", wantReason: "loopback"},
	{name: "loopback octal parts", give: "http://0177.0.0.1/", wantReason: "loopback"},
	{name: "loopback hex parts", give: "http://0x7f.0.0.1/", wantReason: "loopback"},
	{name: "loopback all hex parts", give: "http://0x7f.0x00.0x00.0x01/", wantReason: "loopback"},
	{name: "loopback mixed bases", give: "http://0x7f.0.00.1/", wantReason: "loopback"},
	{name: "loopback short two", give: "http://127.1/", wantReason: "loopback"},
	{name: "loopback short three", give: "http://127.0.1/", wantReason: "loopback"},
	{name: "loopback short hex", give: "http://0x7f.1/", wantReason: "loopback"},
	{name: "loopback short octal", give: "http://0177.1/", wantReason: "loopback"},
	{name: "loopback trailing dot", give: "http://127.0.0.1./", wantReason: "loopback"},
	{name: "loopback full-width", give: "http://１２７．０．０．１/", wantReason: "loopback"},
	{name: "loopback behind userinfo", give: "http://example.com@127.0.0.1/", wantReason: "loopback"},
	{name: "loopback with credentials", give: "https://user:pass@127.0.0.1:443/", wantReason: "loopback"},
	{name: "ipv6 loopback", give: "http://[::1]/", wantReason: "loopback"},
	{name: "ipv6 loopback long", give: "http://[0:0:0:0:0:0:0:1]:8080/", wantReason: "loopback"},
	{name: "v4-mapped dotted", give: "http://[::ffff:127.0.0.1]/", wantReason: "loopback"},
	{name: "v4-mapped hex", give: "http://[::ffff:7f00:1]/", wantReason: "loopback"},
	{name: "v4-compatible", give: "http://[::127.0.0.1]/", wantReason: "loopback"},
	{name: "siit translated", give: "http://[::ffff:0:7f00:1]/", wantReason: "loopback"},
	{name: "6to4 loopback", give: "http://[2002:7f00:1::1]/", wantReason: "loopback"},
	{name: "teredo loopback client", give: "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", wantReason: "loopback"},

	// localhost names.
	{name: "localhost", give: "http://localhost/", wantReason: "loopback"},
	{name: "localhost with port", give: "http://localhost:8080/hook", wantReason: "loopback"},
	{name: "localhost upper trailing dot", give: "http://LOCALHOST./", wantReason: "loopback"},
	{name: "localhost subdomain", give: "http://api.localhost/", wantReason: "loopback"},
	{name: "localhost subdomain mixed case dots", give: "http://Foo.LocalHost../", wantReason: "loopback"},

	// RFC 1918.
	{name: "10/8", give: "http://10.0.0.1/", wantReason: "RFC 1918"},
	{name: "10/8 short", give: "http://10.1/", wantReason: "RFC 1918"},
	{name: "172.16/12 low", give: "http://172.16.0.1/", wantReason: "RFC 1918"},
	{name: "172.16/12 high", give: "http://172.31.255.255/", wantReason: "RFC 1918"},
	{name: "192.168/16", give: "http://192.168.1.1/", wantReason: "RFC 1918"},
	{name: "192.168/16 decimal", give: "http://3232235777/", wantReason: "RFC 1918"},
	{name: "192.168/16 v4-mapped", give: "http://[::ffff:192.168.0.1]/", wantReason: "RFC 1918"},

	// Link-local and cloud metadata.
	{name: "metadata", give: "http://169.254.169.254/latest/meta-data", wantReason: "link-local"},
	{name: "metadata hex", give: "http://0xA9FEA9FE/", wantReason: "link-local"},
	{name: "metadata decimal", give: "http://2852039166/", wantReason: "link-local"},
	{name: "metadata octal parts", give: "http://0251.0376.0251.0376/", wantReason: "link-local"},
	{name: "metadata v4-mapped", give: "http://[::ffff:169.254.169.254]/", wantReason: "link-local"},
	{name: "metadata nat64", give: "http://[64:ff9b::a9fe:a9fe]/", wantReason: "link-local"},
	{name: "metadata 6to4", give: "http://[2002:a9fe:a9fe::]/", wantReason: "link-local"},
	{name: "ipv6 link-local", give: "http://[fe80::1]/", wantReason: "link-local"},
	{name: "ipv6 link-local zone", give: "http://[fe80::1%25eth0]/", wantReason: "link-local"},

	// Everything else that is not globally routable.
	{name: "cgnat low", give: "http://100.64.0.1/", wantReason: "carrier-grade NAT"},
	{name: "cgnat high", give: "http://100.127.255.254/", wantReason: "carrier-grade NAT"},
	{name: "unspecified v4", give: "http://0.0.0.0/", wantReason: "unspecified"},
	{name: "unspecified decimal", give: "http://0/", wantReason: "unspecified"},
	{name: "unspecified v6", give: "http://[::]/", wantReason: "unspecified"},
	{name: "this-network", give: "http://0.1.2.3/", wantReason: "this-network"},
	{name: "unique-local fd", give: "http://[fd00::1]/", wantReason: "unique-local"},
	{name: "unique-local fc", give: "http://[fc00::1]/", wantReason: "unique-local"},
	{name: "site-local", give: "http://[fec0::1]/", wantReason: "site-local"},
	{name: "multicast v4", give: "http://224.0.0.1/", wantReason: "multicast"},
	{name: "multicast ssdp", give: "http://239.255.255.250:1900/", wantReason: "multicast"},
	{name: "multicast v6", give: "http://[ff02::1]/", wantReason: "multicast"},
	{name: "broadcast", give: "http://255.255.255.255/", wantReason: "broadcast"},
	{name: "class e", give: "http://240.0.0.1/", wantReason: "reserved"},
	{name: "ietf protocol assignments", give: "http://192.0.0.8/", wantReason: "reserved"},
	{name: "benchmarking low", give: "http://198.18.0.1/", wantReason: "benchmarking"},
	{name: "benchmarking high", give: "http://198.19.255.255/", wantReason: "benchmarking"},
	{name: "test-net-1", give: "http://192.0.2.1/", wantReason: "documentation"},
	{name: "test-net-2", give: "http://198.51.100.7/", wantReason: "documentation"},
	{name: "test-net-3", give: "http://203.0.113.9/", wantReason: "documentation"},
	{name: "ipv6 documentation", give: "http://[2001:db8::1]/", wantReason: "documentation"},
	{name: "ipv6 discard-only", give: "http://[100::1]/", wantReason: "reserved"},
	{name: "ipv6 unallocated", give: "http://[4000::1]/", wantReason: "reserved"},
}

func TestCheckURLForbidden(t *testing.T) {
	require.GreaterOrEqual(t, len(forbiddenURLs), 40)
	p := strict()
	for _, tt := range forbiddenURLs {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckURL(tt.give)
			require.Error(t, err)
			assert.True(t, netguard.IsForbidden(err), "error %q should wrap ErrForbiddenAddress", err)
			assert.Contains(t, err.Error(), tt.wantReason)
		})
	}
}

func TestCheckURLAllowed(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "public hostname", give: "https://example.com/hook"},
		{name: "public v4", give: "http://93.184.216.34/"},
		{name: "public v6", give: "https://[2606:4700::1111]/"},
		{name: "public v4 with port", give: "http://8.8.8.8:8080/x"},
		{name: "public v4 trailing dot", give: "http://1.1.1.1."},
		{name: "public v6 google", give: "http://[2001:4860:4860::8888]/"},
		{name: "public hex literal", give: "http://0x08080808/"},
		{name: "public decimal literal", give: "http://134744072/"},
		{name: "public v4-mapped", give: "http://[::ffff:8.8.8.8]/"},
		{name: "public 6to4", give: "http://[2002:5db8:d822::1]/"},
		{name: "just above rfc1918 172", give: "http://172.32.0.1/"},
		{name: "just above cgnat", give: "http://100.128.0.1/"},
		{name: "localhost as a label", give: "https://localhost.example.com/"},
		{name: "localhost as a prefix", give: "https://mylocalhost/"},
		{name: "overflowing part is a name", give: "http://256.1.1.1/"},
		{name: "overflowing number is a name", give: "http://4294967296/"},
		{name: "invalid octal is a name", give: "http://08.1.2.3/"},
		{name: "too many parts is a name", give: "http://1.2.3.4.5/"},
	}
	p := strict()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, p.CheckURL(tt.give))
		})
	}
}

func TestCheckURLMalformed(t *testing.T) {
	tests := []struct {
		name string
		give string
	}{
		{name: "unparsable", give: "http://[::1"},
		{name: "no host", give: "http:///path"},
		{name: "relative", give: "/hook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := strict().CheckURL(tt.give)
			require.Error(t, err)
			// Malformed input is the caller's validation problem, not a
			// policy decision, so it must not look like one.
			assert.False(t, netguard.IsForbidden(err))
		})
	}
}

func TestParseIPLiteral(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // empty means not an IP literal
	}{
		{name: "dotted", give: "127.0.0.1", want: "127.0.0.1"},
		{name: "decimal", give: "2130706433", want: "127.0.0.1"},
		{name: "hex", give: "0x7f000001", want: "127.0.0.1"},
		{name: "hex upper prefix", give: "0X7F000001", want: "127.0.0.1"},
		{name: "octal", give: "017700000001", want: "127.0.0.1"},
		{name: "octal parts", give: "0177.0.0.1", want: "127.0.0.1"},
		{name: "hex parts", give: "0x7f.0.0.1", want: "127.0.0.1"},
		{name: "a.b", give: "127.1", want: "127.0.0.1"},
		{name: "a.b 24-bit", give: "10.65536", want: "10.1.0.0"},
		{name: "a.b.c", give: "127.0.1", want: "127.0.0.1"},
		{name: "a.b.c 16-bit", give: "10.1.258", want: "10.1.1.2"},
		{name: "short hex", give: "0x7f.1", want: "127.0.0.1"},
		{name: "short octal", give: "0177.1", want: "127.0.0.1"},
		{name: "trailing dot", give: "127.0.0.1.", want: "127.0.0.1"},
		{name: "bare 0x is zero", give: "0x", want: "0.0.0.0"},
		{name: "zero", give: "0", want: "0.0.0.0"},
		{name: "max", give: "4294967295", want: "255.255.255.255"},
		{name: "full-width", give: "１２７．０．０．１", want: "127.0.0.1"},
		{name: "ideographic dots", give: "127。0。0。1", want: "127.0.0.1"},
		{name: "bracketed v6", give: "[::1]", want: "::1"},
		{name: "bare v6", give: "2606:4700::1111", want: "2606:4700::1111"},
		{name: "v6 zone escaped", give: "[fe80::1%25eth0]", want: "fe80::1"},
		{name: "v6 zone raw", give: "fe80::1%eth0", want: "fe80::1"},
		{name: "v4-mapped kept as is", give: "::ffff:127.0.0.1", want: "::ffff:127.0.0.1"},
		{name: "bracketed v4", give: "[127.0.0.1]", want: "127.0.0.1"},

		{name: "hostname", give: "example.com"},
		{name: "empty", give: ""},
		{name: "only dots", give: "..."},
		{name: "empty part", give: "127..1"},
		{name: "part over 255", give: "256.0.0.1"},
		{name: "last part over 8 bits", give: "1.2.3.256"},
		{name: "last part over 16 bits", give: "1.2.65536"},
		{name: "last part over 24 bits", give: "1.16777216"},
		{name: "over 32 bits", give: "4294967296"},
		{name: "huge", give: "99999999999999999999999999999999"},
		{name: "bad octal digit", give: "08"},
		{name: "bad hex digit", give: "0x7g"},
		{name: "five parts", give: "1.2.3.4.5"},
		{name: "sign", give: "+1.2.3.4"},
		{name: "space", give: " 127.0.0.1"},
		{name: "bad v6", give: "[::1::]"},
		{name: "unclosed bracket", give: "[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := netguard.ParseIPLiteral(tt.give)
			if tt.want == "" {
				assert.False(t, ok, "parsed as %s", got)
				return
			}
			require.True(t, ok)
			assert.Equal(t, netip.MustParseAddr(tt.want), got)
		})
	}
}

func TestCheckIP(t *testing.T) {
	tests := []struct {
		name       string
		give       netip.Addr
		wantReason string // empty means allowed
	}{
		{name: "invalid", give: netip.Addr{}, wantReason: "invalid"},
		{name: "public v4", give: netip.MustParseAddr("93.184.216.34")},
		{name: "public v6", give: netip.MustParseAddr("2606:4700::1111")},
		{name: "loopback", give: netip.MustParseAddr("127.0.0.1"), wantReason: "127.0.0.1 is loopback"},
		{name: "zoned link-local", give: netip.MustParseAddr("fe80::1%eth0"), wantReason: "link-local"},
		{name: "v4-compatible names embedded", give: netip.MustParseAddr("::10.0.0.1"), wantReason: "private (RFC 1918) (embedded 10.0.0.1)"},
		{name: "nat64 public", give: netip.MustParseAddr("64:ff9b::808:808")},
		{name: "local-use nat64", give: netip.MustParseAddr("64:ff9b:1::1"), wantReason: "local-use NAT64"},
		{name: "6to4 public", give: netip.MustParseAddr("2002:808:808::1")},
		{name: "6to4 private", give: netip.MustParseAddr("2002:c0a8:101::1"), wantReason: "RFC 1918"},
		{name: "ipv6 documentation 3fff", give: netip.MustParseAddr("3fff::1"), wantReason: "documentation"},
	}
	p := strict()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckIP(tt.give)
			if tt.wantReason == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, netguard.ErrForbiddenAddress)
			assert.Contains(t, err.Error(), tt.wantReason)
		})
	}
}

func TestPolicyAllowList(t *testing.T) {
	p := netguard.NewPolicy(false, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	tests := []struct {
		name      string
		give      string
		wantAllow bool
	}{
		{name: "allowed loopback", give: "http://127.0.0.1/", wantAllow: true},
		{name: "allowed other loopback", give: "http://127.0.0.2:9000/", wantAllow: true},
		{name: "allowed in disguise", give: "http://0x7f.1/", wantAllow: true},
		{name: "allowed v4-mapped", give: "http://[::ffff:127.0.0.1]/", wantAllow: true},
		{name: "private still refused", give: "http://10.0.0.1/"},
		{name: "metadata still refused", give: "http://169.254.169.254/"},
		{name: "v6 loopback not in v4 range", give: "http://[::1]/"},
		// Only allowPrivate relaxes the name check: an allow-list talks about
		// addresses, and localhost may resolve to ::1.
		{name: "localhost name still refused", give: "http://localhost/"},
		{name: "public still allowed", give: "https://example.com/", wantAllow: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckURL(tt.give)
			if tt.wantAllow {
				assert.NoError(t, err)
				return
			}
			assert.True(t, netguard.IsForbidden(err), "got %v", err)
		})
	}
}

func TestPolicyAllowPrivate(t *testing.T) {
	p := netguard.NewPolicy(true, nil)
	for _, tt := range forbiddenURLs {
		t.Run(tt.name, func(t *testing.T) {
			assert.NoError(t, p.CheckURL(tt.give))
		})
	}
	assert.Error(t, p.CheckIP(netip.Addr{}), "an invalid address can never be dialled")
}

func TestZeroAndNilPolicyAreStrict(t *testing.T) {
	var nilPolicy *netguard.Policy
	tests := []struct {
		name string
		give *netguard.Policy
	}{
		{name: "nil", give: nilPolicy},
		{name: "zero", give: &netguard.Policy{}},
		{name: "invalid prefixes ignored", give: netguard.NewPolicy(false, []netip.Prefix{{}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.True(t, netguard.IsForbidden(tt.give.CheckURL("http://127.0.0.1/")))
			assert.True(t, netguard.IsForbidden(tt.give.CheckIP(netip.MustParseAddr("10.0.0.1"))))
			assert.NoError(t, tt.give.CheckURL("https://example.com/"))
		})
	}
}

func TestParseCIDRs(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []netip.Prefix
		wantErr string
	}{
		{name: "empty", give: "", want: nil},
		{name: "blank", give: "  ", want: nil},
		{name: "single", give: "127.0.0.0/8", want: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		{
			name: "list with spaces and trailing comma",
			give: " 127.0.0.0/8 , ::1/128,",
			want: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		},
		{
			name: "bare ips",
			give: "10.1.2.3,fd00::1",
			want: []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("fd00::1/128")},
		},
		{name: "host bits masked", give: "10.1.2.3/8", want: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{name: "bad entry", give: "127.0.0.0/8, nope", wantErr: `"nope"`},
		{name: "bad prefix length", give: "10.0.0.0/33", wantErr: `"10.0.0.0/33"`},
		{name: "zone", give: "fe80::1%eth0", wantErr: `"fe80::1%eth0"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := netguard.ParseCIDRs(tt.give)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestIsForbidden(t *testing.T) {
	refusal := strict().CheckIP(netip.MustParseAddr("10.0.0.1"))
	require.Error(t, refusal)
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "nil", give: nil, want: false},
		{name: "unrelated", give: errors.New("connection refused"), want: false},
		{name: "sentinel", give: netguard.ErrForbiddenAddress, want: true},
		{name: "direct", give: refusal, want: true},
		{name: "fmt wrapped", give: fmt.Errorf("deliver: %w", refusal), want: true},
		{
			name: "net and url wrapped",
			give: &url.Error{Op: "Post", URL: "http://x/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: refusal}},
			want: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, netguard.IsForbidden(tt.give))
		})
	}
}
