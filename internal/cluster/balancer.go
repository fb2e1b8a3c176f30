package cluster

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
	"time"
)

// Balancer spreads API requests over the replicas round-robin, as the load balancer in
// front of the compose stack's API replicas (and a Kubernetes Service) does. A replica
// that refuses the connection never saw the request, so the request goes to the next
// one; any other failure is the caller's answer (a 502), never a retry that could
// apply a request twice.
type Balancer struct {
	backends  []*url.URL
	next      atomic.Uint64
	transport http.RoundTripper
	maxBody   int64
}

// NewBalancer balances over the given base URLs.
func NewBalancer(backends []string) (*Balancer, error) {
	b := &Balancer{
		maxBody: 1 << 20,
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
	}
	for _, s := range backends {
		u, err := url.Parse(s)
		if err != nil {
			return nil, err
		}
		b.backends = append(b.backends, u)
	}
	return b, nil
}

func (b *Balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Kept so the request can go to another replica when the first refuses it.
	body, err := io.ReadAll(io.LimitReader(r.Body, b.maxBody+1))
	if err != nil || int64(len(body)) > b.maxBody {
		http.Error(w, `{"error":"request_too_large"}`, http.StatusRequestEntityTooLarge)
		return
	}
	start := b.next.Add(1)
	for i := range len(b.backends) {
		target := b.backends[(start+uint64(i))%uint64(len(b.backends))]
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
		out.Host = r.Host
		// A rewindable body lets the transport resend a request that met a pooled
		// connection the replica had already closed (it was never received).
		out.Body, out.GetBody, out.ContentLength = http.NoBody, nil, 0
		if len(body) > 0 {
			out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			out.Body, _ = out.GetBody()
			out.ContentLength = int64(len(body))
		}
		if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			out.Header.Set("X-Forwarded-For", ip)
		}
		resp, err := b.transport.RoundTrip(out)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = io.WriteString(w, `{"error":"bad_gateway"}`)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		_ = resp.Body.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	_, _ = io.WriteString(w, `{"error":"no_api_replica"}`)
}
