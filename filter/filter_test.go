package filter_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/filter"
)

var limits = filter.Limits{MaxLength: 2048, CostLimit: 10000}

// events are the bodies the filter table runs against, by name.
var events = map[string]struct {
	id, event, timestamp, data string
}{
	"low stock X-1 at 3":  {"evt_1", "LOW_STOCK", "2026-11-28T12:00:00Z", `{"sku":"X-1","qty":3,"location":"WH-North","tags":["critical","consumable"]}`},
	"low stock Y-9 at 40": {"evt_2", "LOW_STOCK", "2026-11-28T13:00:00Z", `{"sku":"Y-9","qty":40,"location":"Shop","tags":[]}`},
	"transfer to dept-2":  {"evt_3", "ASSET_TRANSFERRED", "2026-11-29T08:30:00Z", `{"assetId":"a-1","from":"dept-1","to":"dept-2","value":1250.5}`},
	"transfer no data":    {"evt_4", "ASSET_TRANSFERRED", "2026-11-29T09:00:00Z", ``},
	"nested work order":   {"evt_5", "WORK_ORDER_ASSIGNED", "2026-12-01T07:00:00Z", `{"order":{"priority":"high","assignee":{"team":"field"}},"none":null}`},
}

// Every filter of the table against every event: true delivers, false does not, and
// an error (a field the filter did not guard with has()) delivers nothing either.
func TestFilterDecisions(t *testing.T) {
	tests := []struct {
		filter string
		want   map[string]bool // events not listed: false
		errs   []string        // events on which evaluation fails
	}{
		{filter: `true`, want: map[string]bool{"low stock X-1 at 3": true, "low stock Y-9 at 40": true, "transfer to dept-2": true, "transfer no data": true, "nested work order": true}},
		{filter: `event == "LOW_STOCK"`, want: map[string]bool{"low stock X-1 at 3": true, "low stock Y-9 at 40": true}},
		{filter: `event == "LOW_STOCK" && data.qty < 5`, want: map[string]bool{"low stock X-1 at 3": true}},
		{filter: `data.qty <= 3.0`, want: map[string]bool{"low stock X-1 at 3": true}, errs: []string{"transfer to dept-2", "transfer no data", "nested work order"}},
		{filter: `has(data.qty) && data.qty == 40`, want: map[string]bool{"low stock Y-9 at 40": true}},
		{filter: `has(data.location) && data.location.startsWith("WH-")`, want: map[string]bool{"low stock X-1 at 3": true}},
		{filter: `has(data.tags) && data.tags.exists(t, t == "critical")`, want: map[string]bool{"low stock X-1 at 3": true}},
		{filter: `has(data.tags) && size(data.tags) == 0`, want: map[string]bool{"low stock Y-9 at 40": true}},
		{filter: `has(data.sku) && data.sku.matches("^[A-Z]-[0-9]+$")`, want: map[string]bool{"low stock X-1 at 3": true, "low stock Y-9 at 40": true}},
		{filter: `has(data.sku) && data.sku in ["X-1", "Z-2"]`, want: map[string]bool{"low stock X-1 at 3": true}},
		{filter: `event == "ASSET_TRANSFERRED" && data.to == "dept-2" && data.value > 1000`, want: map[string]bool{"transfer to dept-2": true}, errs: []string{"transfer no data"}},
		{filter: `event.startsWith("ASSET_") && !has(data.to)`, want: map[string]bool{"transfer no data": true}},
		{filter: `has(data.order) && data.order.priority == "high" && data.order.assignee.team == "field"`, want: map[string]bool{"nested work order": true}},
		{filter: `has(data.none) && data.none == null`, want: map[string]bool{"nested work order": true}},
		{filter: `timestamp >= timestamp("2026-11-29T00:00:00Z")`, want: map[string]bool{"transfer to dept-2": true, "transfer no data": true, "nested work order": true}},
		{filter: `timestamp.getHours() < 9`, want: map[string]bool{"transfer to dept-2": true, "nested work order": true}},
		{filter: `id in ["evt_2", "evt_5"]`, want: map[string]bool{"low stock Y-9 at 40": true, "nested work order": true}},
		{filter: `event != "LOW_STOCK" ||
		          data.qty < 10`, want: map[string]bool{"low stock X-1 at 3": true, "transfer to dept-2": true, "transfer no data": true, "nested work order": true}},
	}
	for _, tt := range tests {
		t.Run(tt.filter, func(t *testing.T) {
			f, err := filter.Compile(tt.filter, limits)
			require.NoError(t, err)
			for name, e := range events {
				ev, err := filter.NewEvent(e.id, e.event, e.timestamp, []byte(e.data))
				require.NoError(t, err)
				got, err := f.Match(ev)
				if slices.Contains(tt.errs, name) {
					assert.Error(t, err, "%s: evaluation fails", name)
					assert.False(t, got, "%s: a failed evaluation delivers nothing", name)
					continue
				}
				require.NoError(t, err, name)
				assert.Equal(t, tt.want[name], got, name)
			}
		})
	}
}

// A compile error says where it is, from 1.
func TestCompileErrorsPointAtTheMistake(t *testing.T) {
	tests := []struct {
		give       string
		wantLine   int
		wantColumn int
		wantMsg    string
	}{
		{give: `data.qty <`, wantLine: 1, wantColumn: 11, wantMsg: "Syntax error"},
		{give: `payload.qty < 5`, wantLine: 1, wantColumn: 1, wantMsg: "undeclared reference to 'payload'"},
		{give: "event == \"LOW_STOCK\" &&\n  data.qty <> 5", wantLine: 2, wantMsg: "Syntax error"},
		{give: `event < 5`, wantLine: 1, wantColumn: 7, wantMsg: "no matching overload"},
		{give: `data.qty`, wantMsg: "true or false, not dyn"},
		{give: `1 + 1`, wantMsg: "true or false, not int"},
		{give: ``, wantMsg: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			_, err := filter.Compile(tt.give, limits)
			var fe *filter.Error
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tt.wantLine, fe.Line)
			if tt.wantColumn != 0 {
				assert.Equal(t, tt.wantColumn, fe.Column)
			}
			assert.Contains(t, fe.Message, tt.wantMsg)
		})
	}
}

// What compiling cannot bound, the event's size, the cost limit bounds at evaluation:
// a comprehension over a large list stops at the limit, quickly, and says so.
func TestCostLimitBoundsEvaluation(t *testing.T) {
	items := make([]string, 20000)
	for i := range items {
		items[i] = fmt.Sprintf(`"item-%d"`, i)
	}
	data := `{"items":[` + strings.Join(items, ",") + `],"text":"` + strings.Repeat("ab", 100000) + `"}`
	ev, err := filter.NewEvent("evt_big", "LOW_STOCK", "2026-11-28T12:00:00Z", []byte(data))
	require.NoError(t, err)
	tests := []struct {
		name string
		give string
	}{
		{name: "pairs of a large list", give: `data.items.exists(x, data.items.exists(y, x != y && x + y == "never"))`},
		{name: "map of a large list", give: `data.items.map(x, x + x + x).size() < 0`},
		{name: "regex over a long string, many times", give: `data.items.exists(x, data.text.matches("(a|b)*c"))`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := filter.Compile(tt.give, limits)
			require.NoError(t, err, "sizes are unknown when compiling")
			start := time.Now()
			got, err := f.Match(ev)
			assert.True(t, errors.Is(err, filter.ErrCostLimit), "error %v", err)
			assert.False(t, got)
			assert.Less(t, time.Since(start), 100*time.Millisecond, "stopped at the limit")
		})
	}
}

// The cache compiles once per text and keeps a bounded number of filters.
func TestCache(t *testing.T) {
	c := filter.NewCache(limits, 2)
	a1, err := c.Get("true")
	require.NoError(t, err)
	a2, err := c.Get("true")
	require.NoError(t, err)
	assert.Same(t, a1, a2)
	_, err = c.Get("data.")
	require.Error(t, err, "a broken filter stays broken")
	for i := range 10 {
		_, err := c.Get(fmt.Sprintf("data.qty < %d", i))
		require.NoError(t, err)
	}
}

// BenchmarkFilter is what filtering costs per delivery: preparing the event (decoding
// its data once) and evaluating one typical filter. Run with make bench.
func BenchmarkFilter(b *testing.B) {
	f, err := filter.Compile(`event == "LOW_STOCK" && has(data.qty) && data.qty < 5 && data.tags.exists(t, t == "critical")`, limits)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"sku":"X-1","qty":3,"location":"WH-North","tags":["critical","consumable"],"note":"` + strings.Repeat("n", 500) + `"}`)
	b.Run("prepare+evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev, err := filter.NewEvent("evt_1", "LOW_STOCK", "2026-11-28T12:00:00Z", data)
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := f.Match(ev); err != nil || !ok {
				b.Fatalf("match: %v %v", ok, err)
			}
		}
	})
	ev, err := filter.NewEvent("evt_1", "LOW_STOCK", "2026-11-28T12:00:00Z", data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("evaluate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := f.Match(ev); err != nil || !ok {
				b.Fatalf("match: %v %v", ok, err)
			}
		}
	})
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := filter.Compile(`event == "LOW_STOCK" && has(data.qty) && data.qty < 5`, limits); err != nil {
				b.Fatal(err)
			}
		}
	})
}
