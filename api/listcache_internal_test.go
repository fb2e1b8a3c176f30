package api

import (
	"bytes"
	"fmt"
	"math/rand"
	"testing"
)

func TestListCacheStaysWithinItsBudget(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int
		puts     int
		size     int
	}{
		{"disabled", 0, 5, 10},
		{"room for three", 30, 10, 10},
		{"body larger than the budget", 5, 3, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newListCache(tt.maxBytes)
			for i := range tt.puts {
				c.put(fmt.Sprint("user-", i), "v1", bytes.Repeat([]byte{'x'}, tt.size))
				total := 0
				for _, e := range c.entries {
					total += len(e.body)
				}
				if total != c.bytes || c.bytes > tt.maxBytes {
					t.Fatalf("after %d puts: %d bytes held, %d counted, budget %d", i+1, total, c.bytes, tt.maxBytes)
				}
			}
			last := fmt.Sprint("user-", tt.puts-1)
			_, ok := c.get(last, "v1")
			if want := tt.size <= tt.maxBytes; ok != want {
				t.Fatalf("the newest entry cached: %t, want %t", ok, want)
			}
		})
	}
}

func TestListCacheServesOnlyTheSameVersion(t *testing.T) {
	c := newListCache(1 << 10)
	c.put("u", "v1", []byte("[1]"))
	c.put("u", "v2", []byte("[1,2]")) // replaces, and the byte count follows
	if _, ok := c.get("u", "v1"); ok {
		t.Fatal("an older version was served")
	}
	if b, ok := c.get("u", "v2"); !ok || string(b) != "[1,2]" {
		t.Fatalf("got %q %t", b, ok)
	}
	if _, ok := c.get("other", "v2"); ok {
		t.Fatal("another user's entry was served")
	}
	if c.bytes != len("[1,2]") {
		t.Fatalf("bytes %d after a replace", c.bytes)
	}
}

// TestListCacheAccountingUnderReplacement replaces and evicts entries in many seeded
// random orders, checking after every put that the byte count is the bodies' true
// total and within budget. A replaced entry's bytes were once subtracted twice when
// the eviction that made room for its successor picked the entry itself.
func TestListCacheAccountingUnderReplacement(t *testing.T) {
	tests := []struct {
		name     string
		maxBytes int
		users    int
		maxSize  int // bodies are 0 to maxSize bytes
	}{
		{name: "few users, bodies near the budget", maxBytes: 100, users: 3, maxSize: 100},
		{name: "many users, small bodies", maxBytes: 100, users: 50, maxSize: 30},
		{name: "some bodies over the budget", maxBytes: 64, users: 8, maxSize: 80},
		{name: "one user", maxBytes: 50, users: 1, maxSize: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range int64(200) {
				rng := rand.New(rand.NewSource(seed))
				c := newListCache(tt.maxBytes)
				for op := range 200 {
					user := fmt.Sprint("user-", rng.Intn(tt.users))
					version := fmt.Sprint("v", op)
					body := bytes.Repeat([]byte{'x'}, rng.Intn(tt.maxSize+1))
					c.put(user, version, body)

					total := 0
					for _, e := range c.entries {
						total += len(e.body)
					}
					if total != c.bytes || c.bytes > tt.maxBytes {
						t.Fatalf("seed %d, put %d (%s, %d bytes): %d bytes held, %d counted, budget %d",
							seed, op, user, len(body), total, c.bytes, tt.maxBytes)
					}
					if got, ok := c.get(user, version); len(body) <= tt.maxBytes && (!ok || !bytes.Equal(got, body)) {
						t.Fatalf("seed %d, put %d: the body just stored is not served", seed, op)
					}
				}
			}
		})
	}
}
