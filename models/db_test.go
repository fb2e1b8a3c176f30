package models_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// TestOpenSurvivesARestart restarts PostgreSQL under a pool full of used connections:
// the next statement must succeed on a fresh connection, not fail on a dead one.
func TestOpenSurvivesARestart(t *testing.T) {
	pg := testinfra.StartPrivatePostgres(t)
	tests := []struct {
		name     string
		givePool int // used connections in the pool when the server restarts
	}{
		{name: "one pooled connection", givePool: 1},
		// database/sql tries two pooled connections, then dials: every dead one must
		// be dropped on the way, however many there are.
		{name: "more dead connections than database/sql retries", givePool: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			db, err := models.Open(ctx, pg.URL("postgres"), 10)
			require.NoError(t, err)
			defer db.Close()
			fillPool(t, db, tt.givePool)
			require.Equal(t, tt.givePool, db.Stats().Idle)

			pg.Restart()

			var one int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT 1").Scan(&one), "first query after the restart")
			_, err = db.ExecContext(ctx, "SELECT 1")
			require.NoError(t, err, "second statement after the restart")
			err = db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
				_, err := tx.ExecContext(ctx, "SELECT 1")
				return err
			})
			require.NoError(t, err, "transaction after the restart")
			// Every pooled connection is taken in turn: none of them may be a dead one.
			fillPool(t, db, tt.givePool)
		})
	}

	// While the server is down, what the pool and a new Open answer is an outage, not
	// a bug; once it is back, the same pool works again.
	t.Run("stopped, then started", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := models.Open(ctx, pg.URL("postgres"), 10)
		require.NoError(t, err)
		defer db.Close()
		fillPool(t, db, 3)

		pg.Stop()
		_, err = db.ExecContext(ctx, "SELECT 1")
		require.Error(t, err)
		assert.True(t, models.IsUnavailable(err), "pool: %v", err)
		_, err = models.Open(ctx, pg.URL("postgres"), 1)
		require.Error(t, err)
		assert.True(t, models.IsUnavailable(err), "open: %v", err)

		pg.Start()
		_, err = db.ExecContext(ctx, "SELECT 1")
		require.NoError(t, err, "first statement after the start")
	})
}

// fillPool uses n connections at once, so the pool keeps n used connections.
func fillPool(t *testing.T, db *bun.DB, n int) {
	t.Helper()
	ctx := context.Background()
	conns := make([]bun.Conn, n)
	for i := range conns {
		c, err := db.Conn(ctx)
		require.NoError(t, err)
		_, err = c.ExecContext(ctx, "SELECT 1")
		require.NoError(t, err)
		conns[i] = c
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}
