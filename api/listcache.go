package api

import "sync"

// listCache keeps each user's rendered GET /webhooks body beside the version of the
// rows it was rendered from (models.WebhookListVersion). A hit still asks the database
// for the current version, so it is never stale and needs no invalidation, across
// replicas too; what it saves is reading every row and encoding it again, most of the
// list's cost. It holds at most maxBytes of bodies; 0 disables it.
type listCache struct {
	mu       sync.Mutex
	entries  map[string]listEntry
	bytes    int
	maxBytes int
}

type listEntry struct {
	version string
	body    []byte
}

func newListCache(maxBytes int) *listCache {
	return &listCache{entries: map[string]listEntry{}, maxBytes: maxBytes}
}

// get returns user's body if it was rendered from version.
func (c *listCache) get(user, version string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[user]
	if !ok || e.version != version {
		return nil, false
	}
	return e.body, true
}

// put stores user's body. When the cache is full, arbitrary entries go: map iteration
// order is random, which is as good as LRU for a cache any request can refill cheaply.
func (c *listCache) put(user, version string, body []byte) {
	if len(body) > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// The old entry leaves the map with its bytes, so the eviction below cannot find
	// it and subtract them a second time.
	if old, ok := c.entries[user]; ok {
		delete(c.entries, user)
		c.bytes -= len(old.body)
	}
	for k, e := range c.entries {
		if c.bytes+len(body) <= c.maxBytes {
			break
		}
		delete(c.entries, k)
		c.bytes -= len(e.body)
	}
	c.entries[user] = listEntry{version: version, body: body}
	c.bytes += len(body)
}
