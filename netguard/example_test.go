package netguard_test

import (
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/assetsup/webhooks/netguard"
)

func ExamplePolicy_CheckURL() {
	p := netguard.NewPolicy(false, nil)
	for _, u := range []string{
		"https://example.com/hook",
		"http://0x7f.1/",
		"http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
	} {
		fmt.Println(p.CheckURL(u))
	}
	// Output:
	// <nil>
	// host 0x7f.1: forbidden address: 127.0.0.1 is loopback
	// forbidden address: 64:ff9b::a9fe:a9fe is link-local (embedded 169.254.169.254)
}

// Example_deliveryClient shows the client a delivery worker should use. The
// dial-time guard is what actually enforces the policy; CheckURL only gives
// early feedback.
func Example_deliveryClient() {
	cidrs, err := netguard.ParseCIDRs("127.0.0.0/8") // e.g. from an env var in tests
	if err != nil {
		panic(err)
	}
	p := netguard.NewPolicy(false, cidrs)
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:       nil, // a proxy would hide the real destination from the guard
			DialContext: p.DialContext(&net.Dialer{Timeout: 10 * time.Second}),
		},
	}
	resp, err := client.Post("https://example.com/hook", "application/json", nil)
	if netguard.IsForbidden(err) {
		fmt.Println("refused:", err)
		return
	}
	if err == nil {
		_ = resp.Body.Close()
	}
}
