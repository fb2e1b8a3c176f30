package models_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

// pgError has PostgreSQL itself raise an error with SQLSTATE code, so the test sees
// the pgdriver.Error a real failure carries.
func pgError(t *testing.T, code string) error {
	t.Helper()
	_, err := testinfra.DB(t).ExecContext(context.Background(),
		"DO $$ BEGIN RAISE EXCEPTION 'raised by the test' USING ERRCODE = '"+code+"'; END $$")
	var pgErr pgdriver.Error
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, code, pgErr.Field('C'))
	return err
}

// refused is what dialing a port nobody listens on returns.
var refused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func TestIsUnavailable(t *testing.T) {
	tests := []struct {
		name string
		give error
		want bool
	}{
		{name: "nil", give: nil, want: false},
		{name: "foreign key violation", give: pgError(t, "23503"), want: false},
		{name: "wrong password", give: pgError(t, "28P01"), want: false},
		{name: "connection failure", give: pgError(t, "08006"), want: true},
		{name: "connection failure wrapped", give: fmt.Errorf("list webhooks: %w", pgError(t, "08006")), want: true},
		{name: "admin shutdown", give: pgError(t, "57P01"), want: true},
		{name: "crash shutdown", give: pgError(t, "57P02"), want: true},
		{name: "cannot connect now", give: pgError(t, "57P03"), want: true},
		{name: "too many connections", give: pgError(t, "53300"), want: true},
		{name: "connection refused", give: refused, want: true},
		{name: "connection refused wrapped", give: fmt.Errorf("ping database: %w", refused), want: true},
		{name: "connection reset", give: &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, want: true},
		{name: "dial timeout", give: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, want: true},
		{name: "context deadline", give: context.DeadlineExceeded, want: true},
		{name: "EOF", give: io.EOF, want: true},
		{name: "unexpected EOF", give: io.ErrUnexpectedEOF, want: true},
		{name: "bad conn", give: driver.ErrBadConn, want: true},
		{name: "no rows", give: sql.ErrNoRows, want: false},
		{name: "not found", give: models.ErrNotFound, want: false},
		{name: "limit reached", give: models.ErrLimitReached, want: false},
		{name: "context canceled", give: context.Canceled, want: false},
		{name: "dial canceled", give: &net.OpError{Op: "dial", Net: "tcp", Err: context.Canceled}, want: false},
		{name: "anything else", give: errors.New("encode webhooks: boom"), want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, models.IsUnavailable(tt.give), "%v", tt.give)
		})
	}
}
