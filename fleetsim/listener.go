package fleetsim

import (
	"net"
	"net/http"
	"sync"
)

// hostListener is a host's WinRM port. It is open while the host is up
// and closed while it is down (rebooting, or down for good), so that a
// client dialling a host that is down gets "connection refused", as from
// a real machine whose port nothing listens on, not a connection that
// closes at its first request.
type hostListener struct {
	fleet *Fleet
	name  string
	addr  string
	srv   *http.Server
	tls   bool

	mu sync.Mutex
	ln net.Listener
	// closed: the fleet is closing; nothing opens again.
	closed bool
}

// serve starts serving ln, the port's listener.
func (l *hostListener) serve(ln net.Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = ln.Close()
		return
	}
	l.ln = ln
	l.fleet.wg.Add(1)
	go l.fleet.guard("listener of host "+l.name, func() {
		defer l.fleet.wg.Done()
		if l.tls {
			_ = l.srv.ServeTLS(ln, "", "")
		} else {
			_ = l.srv.Serve(ln)
		}
	})()
}

// open listens again at the host's address (a boot).
func (l *hostListener) open() error {
	l.mu.Lock()
	if l.closed || l.ln != nil {
		l.mu.Unlock()
		return nil
	}
	l.mu.Unlock()
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return err
	}
	l.serve(ln)
	return nil
}

// shut stops listening (the host went down); connections already open
// see the host down at their next request.
func (l *hostListener) shut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		_ = l.ln.Close()
		l.ln = nil
	}
}

// close shuts the port for good (the fleet is closing).
func (l *hostListener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.shut()
}
