package filter

import (
	"sync"

	"github.com/google/cel-go/checker"
)

// unknownSizes gives the cost estimator no size hints: the minimum it computes is then
// what a filter costs on the smallest event, which is what Compile refuses on.
type unknownSizes struct{}

func (unknownSizes) EstimateSize(checker.AstNode) *checker.SizeEstimate { return nil }

func (unknownSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}

// Cache keeps compiled filters by their text, so a worker compiles each filter once
// rather than once per delivery. It holds at most size filters; past that it forgets an
// arbitrary one, which costs only a compilation.
type Cache struct {
	limits Limits
	size   int
	mu     sync.Mutex
	byText map[string]cached
}

type cached struct {
	f   *Filter
	err error
}

// NewCache returns an empty cache compiling under l.
func NewCache(l Limits, size int) *Cache {
	return &Cache{limits: l, size: max(size, 1), byText: map[string]cached{}}
}

// Get returns text compiled, or why it does not compile under the cache's limits (a
// filter saved under other limits may not).
func (c *Cache) Get(text string) (*Filter, error) {
	c.mu.Lock()
	e, ok := c.byText[text]
	c.mu.Unlock()
	if ok {
		return e.f, e.err
	}
	f, err := Compile(text, c.limits)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byText) >= c.size {
		for k := range c.byText {
			delete(c.byText, k)
			break
		}
	}
	c.byText[text] = cached{f: f, err: err}
	return f, err
}
