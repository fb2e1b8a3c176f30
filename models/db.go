// Package models holds the bun models and the queries beside them. Queries take
// bun.IDB so they run the same on the pool and inside RunInTx.
package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Sentinel errors the API maps to status codes.
var (
	ErrNotFound     = errors.New("not found")
	ErrLimitReached = errors.New("webhook limit reached")
)

// Open connects to PostgreSQL and checks the connection.
func Open(ctx context.Context, dsn string, maxOpenConns int) (*bun.DB, error) {
	sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn)))
	sqldb.SetMaxOpenConns(maxOpenConns)
	sqldb.SetMaxIdleConns(maxOpenConns)
	// Recycle connections so a restarted or failed-over database is picked up.
	sqldb.SetConnMaxLifetime(30 * time.Minute)
	db := bun.NewDB(sqldb, pgdialect.New())
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return db, nil
}
