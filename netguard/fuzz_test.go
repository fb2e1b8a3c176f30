package netguard_test

import (
	"net/netip"
	"net/url"
	"testing"

	"github.com/assetsup/webhooks/netguard"
)

func FuzzParseIPLiteral(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "127.1",
		"127.0.0.1.", "[::ffff:127.0.0.1]", "[fe80::1%25eth0]", "4294967296",
		"１２７．０．０．１", "0x", "example.com", "",
	} {
		f.Add(s)
	}
	allowAll := netguard.NewPolicy(true, nil)
	f.Fuzz(func(t *testing.T, s string) {
		ip, ok := netguard.ParseIPLiteral(s)
		if std, err := netip.ParseAddr(s); err == nil {
			// Anything the standard parser accepts must be recognised as the
			// same address, or canonical literals could slip past CheckURL.
			if !ok || ip != std.WithZone("") {
				t.Fatalf("ParseIPLiteral(%q) = %v, %v; netip says %v", s, ip, ok, std)
			}
		}
		if !ok {
			return
		}
		if !ip.IsValid() {
			t.Fatalf("ParseIPLiteral(%q) returned ok with an invalid address", s)
		}
		if ip.Zone() != "" {
			t.Fatalf("ParseIPLiteral(%q) kept zone %q", s, ip.Zone())
		}
		if err := allowAll.CheckIP(ip); err != nil {
			t.Fatalf("allow-private policy refused %v: %v", ip, err)
		}
	})
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://example.com/hook", "http://2130706433/", "http://[::ffff:7f00:1]/",
		"http://[64:ff9b::a9fe:a9fe]/", "http://LOCALHOST./", "http://0x7f.1/",
		"http://[fe80::1%25eth0]/", "http://user@[::1]:80/", "http://[::1", "",
	} {
		f.Add(s)
	}
	strictPolicy := netguard.NewPolicy(false, nil)
	allowAll := netguard.NewPolicy(true, nil)
	f.Fuzz(func(t *testing.T, s string) {
		err := strictPolicy.CheckURL(s)
		_ = allowAll.CheckURL(s)

		u, perr := url.Parse(s)
		if perr != nil || u.Hostname() == "" {
			return
		}
		// CheckURL must agree with CheckIP for every literal host, whatever
		// its spelling.
		if ip, ok := netguard.ParseIPLiteral(u.Hostname()); ok {
			ipErr := strictPolicy.CheckIP(ip)
			if (ipErr == nil) != (err == nil) {
				t.Fatalf("CheckURL(%q) = %v but CheckIP(%v) = %v", s, err, ip, ipErr)
			}
		}
		if err != nil && !netguard.IsForbidden(err) {
			t.Fatalf("CheckURL(%q) failed for a parsable URL with a host without a policy reason: %v", s, err)
		}
		if err := allowAll.CheckURL(s); err != nil {
			t.Fatalf("allow-private policy refused %q: %v", s, err)
		}
	})
}
