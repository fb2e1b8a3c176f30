package activities

import (
	"context"
	"net"
	"net/url"
	"sync"
)

// hostSlots caps the attempts in flight to one receiver host. Waiting here happens
// before the attempt is counted and before WEBHOOK_HTTP_TIMEOUT starts, so queueing
// behind a slow receiver is never charged to the receiver; the cap still keeps one slow
// receiver from taking the connections the others need.
type hostSlots struct {
	per   int
	mu    sync.Mutex
	hosts map[string]*hostSlot
}

type hostSlot struct {
	sem   chan struct{}
	users int // waiting or holding; the entry goes when it drops to zero
}

func newHostSlots(per int) *hostSlots {
	return &hostSlots{per: per, hosts: map[string]*hostSlot{}}
}

// acquire waits for a slot to rawURL's scheme and host until ctx ends.
func (h *hostSlots) acquire(ctx context.Context, rawURL string) (release func(), err error) {
	h.mu.Lock()
	key := slotKey(rawURL)
	s := h.hosts[key]
	if s == nil {
		s = &hostSlot{sem: make(chan struct{}, h.per)}
		h.hosts[key] = s
	}
	s.users++
	h.mu.Unlock()
	select {
	case s.sem <- struct{}{}:
		return func() { <-s.sem; h.leave(key, s) }, nil
	case <-ctx.Done():
		h.leave(key, s)
		return nil, ctx.Err()
	}
}

func (h *hostSlots) leave(key string, s *hostSlot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.users--
	if s.users == 0 {
		delete(h.hosts, key)
	}
}

// slotKey is the scheme, host and port of rawURL, the default port filled in, as the
// HTTP client keys its connections: http://h and http://h:80 share one pool, so they
// share one set of slots.
func slotKey(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port)
}
