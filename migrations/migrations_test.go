package migrations_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/migrations"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

func tables(t *testing.T) []string {
	t.Helper()
	var names []string
	err := testinfra.DB(t).NewRaw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'
AND tablename NOT LIKE 'bun_%' ORDER BY tablename`).Scan(context.Background(), &names)
	require.NoError(t, err)
	return names
}

// schema is every table the migrations create (bun's own bookkeeping aside).
var schema = []string{"operational_events", "throttle_leases", "throttle_rates", "webhook_deliveries", "webhook_delivery_attempts",
	"webhook_delivery_stats", "webhook_failure_streaks", "webhook_recoveries", "webhooks"}

// testinfra.DB has already applied everything once: up again is a no-op, down removes
// the schema, and up restores it.
func TestUpDownUp(t *testing.T) {
	ctx := context.Background()
	db := testinfra.DB(t)
	assert.Equal(t, schema, tables(t))

	n, err := migrations.Up(ctx, db)
	require.NoError(t, err)
	assert.Zero(t, n, "a second run applies nothing")

	n, err = migrations.Down(ctx, db)
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.Empty(t, tables(t))

	n, err = migrations.Up(ctx, db)
	require.NoError(t, err)
	assert.Positive(t, n)
	assert.Equal(t, schema, tables(t))

	var indexes []string
	require.NoError(t, db.NewRaw(`SELECT indexname FROM pg_indexes WHERE tablename = 'webhooks' ORDER BY indexname`).Scan(ctx, &indexes))
	assert.Contains(t, indexes, "webhooks_subscribers_idx")
}
