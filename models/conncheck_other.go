//go:build !unix

package models

import "net"

// idleSocketError cannot look at a socket here; checkIdleConn pings instead.
func idleSocketError(net.Conn) error { return errSocketUnchecked }
