// Package models holds the bun models and the queries beside them. Queries take
// bun.IDB so they run the same on the pool and inside RunInTx.
package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
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
	sqldb := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn), pgdriver.WithResetSessionFunc(checkIdleConn)))
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

// checkIdleConn runs each time database/sql takes a used connection from the pool.
// After PostgreSQL restarts, every pooled connection is dead, yet writing a query to
// one still succeeds and only the answer fails, too late for database/sql to try
// another: the request would fail. So the connection's socket is looked at first: an
// idle connection has nothing to read, and a server that closed it has left an end of
// stream, or the FATAL notice it sent first. That is one system call and no round
// trip, so unlike a ping it can run on every checkout, restarts a moment ago included.
// driver.ErrBadConn makes database/sql drop the connection and take another, then
// dial a fresh one, so the caller never sees the dead one.
func checkIdleConn(ctx context.Context, cn *pgdriver.Conn) error {
	err := idleSocketError(cn.Conn())
	if errors.Is(err, errSocketUnchecked) {
		// Only where the socket cannot be inspected does the check cost a round trip.
		err = cn.Ping(ctx)
	}
	if err != nil {
		return driver.ErrBadConn
	}
	return nil
}

// errSocketUnchecked means the platform or the connection type offers no way to look
// at the socket without reading from it.
var errSocketUnchecked = errors.New("socket cannot be inspected")

// errUnexpectedData is data on a connection nobody asked anything of.
var errUnexpectedData = errors.New("unexpected data on an idle connection")

// scanOne runs q for one row into its model (or dest): ErrNotFound when there is none,
// any other error wrapped with what was being done.
func scanOne(ctx context.Context, q interface {
	Scan(ctx context.Context, dest ...any) error
}, what string, dest ...any) error {
	err := q.Scan(ctx, dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
