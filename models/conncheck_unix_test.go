//go:build unix

package models

import (
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdleSocketError plays the server's side of an idle connection on loopback TCP.
func TestIdleSocketError(t *testing.T) {
	tests := []struct {
		name      string
		giveWrite string // what the server sends unasked
		giveClose bool   // the server closes its end
		giveReset bool   // ... and resets it instead of ending the stream
		want      error
	}{
		{name: "open and quiet", want: nil},
		{name: "server closed", giveClose: true, want: io.EOF},
		{name: "server sent a notice", giveWrite: "E", want: errUnexpectedData},
		{name: "server sent a notice and closed", giveWrite: "E", giveClose: true, want: errUnexpectedData},
		{name: "server reset", giveClose: true, giveReset: true, want: syscall.ECONNRESET},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := tcpPair(t)
			if tt.giveWrite != "" {
				_, err := server.Write([]byte(tt.giveWrite))
				require.NoError(t, err)
			}
			if tt.giveReset {
				require.NoError(t, server.SetLinger(0))
			}
			if tt.giveClose {
				require.NoError(t, server.Close())
			}
			if tt.want == nil {
				assert.NoError(t, idleSocketError(client))
				assert.NoError(t, idleSocketError(client), "a second check of a healthy socket")
				return
			}
			// Loopback delivers at once, but not necessarily before the first look.
			var err error
			require.Eventually(t, func() bool {
				err = idleSocketError(client)
				return err != nil
			}, 5*time.Second, time.Millisecond)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

func TestIdleSocketErrorWithoutASocket(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	defer client.Close()
	assert.ErrorIs(t, idleSocketError(client), errSocketUnchecked)
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	s, ok := <-accepted
	require.True(t, ok, "accept failed")
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}
