package fleetsim

import (
	"net"
	"net/http"
	"sync"
	"time"
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

// reopenFor bounds how long a booted host retries a port that is taken
// (longer than Linux's 60 s TIME_WAIT, which keeps a port a client
// closed first unbindable), and reopenEvery is the pause between tries.
const (
	reopenFor   = 3 * time.Minute
	reopenEvery = 50 * time.Millisecond
)

// reopen listens again at the host's address (a boot). The fleet's ports
// are loopback ports in the ephemeral range, so while a host is down any
// client's outgoing connection may be given its port as its own source
// port, and listening fails until that connection closes (EADDRINUSE):
// a simulator's accident, not a Windows behaviour, and at 10,000 hosts
// it left a few hosts down for good and a rollout waiting for them. The
// first try is now, as a boot is; the retries run apart, for at most
// reopenFor, and give up with failed(err).
func (l *hostListener) reopen(failed func(error)) {
	err := l.open()
	if err == nil {
		return
	}
	l.fleet.wg.Add(1)
	go l.fleet.guard("reopen of host "+l.name, func() {
		defer l.fleet.wg.Done()
		for deadline := time.Now().Add(reopenFor); time.Now().Before(deadline); {
			time.Sleep(reopenEvery)
			if err = l.open(); err == nil {
				return
			}
		}
		failed(err)
	})()
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
