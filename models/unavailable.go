package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/uptrace/bun/driver/pgdriver"
)

// IsUnavailable reports whether err means PostgreSQL could not be reached or dropped
// the connection, rather than refused the statement. Such a failure says nothing about
// the request, so the API answers 503 and the worker retries; anything else (a
// constraint, bad SQL, a wrong password) would fail the same way again.
func IsUnavailable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		// A cancelled caller gave up; that is no news about the database.
		return false
	}
	var pgErr pgdriver.Error
	if errors.As(err, &pgErr) {
		return unavailableState(pgErr.Field('C'))
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// Dial and read failures and timeouts, context.DeadlineExceeded included, are
	// net.Errors: the database did not answer in time.
	var netErr net.Error
	return errors.As(err, &netErr)
}

// unavailableState reports whether a SQLSTATE means the server is gone, going or not
// taking connections (https://www.postgresql.org/docs/current/errcodes-appendix.html).
func unavailableState(code string) bool {
	switch code {
	case "57P01", // admin_shutdown: a restart or failover cut the connection
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now: starting up or shutting down
		"53300": // too_many_connections
		return true
	}
	return strings.HasPrefix(code, "08") // connection_exception
}
