//go:build unix

package models

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// idleSocketError looks at an idle connection's socket without blocking: nil when it
// is open with nothing to read, io.EOF when the server closed it, errUnexpectedData
// when the server sent something unasked, as it does before it closes a connection.
// A byte it reads is lost, which is harmless: such a connection is dropped anyway.
func idleSocketError(c net.Conn) error {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = t.NetConn() // the TCP connection under TLS
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return errSocketUnchecked
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var sockErr error
	err = raw.Read(func(fd uintptr) bool {
		var b [1]byte
		// The runtime keeps network sockets non-blocking, so this returns at once.
		n, err := syscall.Read(int(fd), b[:])
		switch {
		case errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK):
			sockErr = nil
		case err != nil:
			sockErr = err
		case n == 0:
			sockErr = io.EOF
		default:
			sockErr = errUnexpectedData
		}
		return true // never wait for the socket to become readable
	})
	if err != nil {
		return err
	}
	return sockErr
}
