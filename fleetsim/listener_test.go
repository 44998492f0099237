package fleetsim

import (
	"errors"
	"net"
	"testing"
	"time"
)

// A host whose port a client's outgoing connection holds as its source
// port while the host is down (loopback ports are ephemeral ports) comes
// back as soon as that connection closes, instead of staying down for
// good.
func TestHostListensAgainOnceItsTakenPortIsFree(t *testing.T) {
	f := startFleet(t, Options{})
	h := f.Hosts()[0]
	addr := h.lis.addr
	h.lis.shut()

	// Take the host's port as the source port of a connection elsewhere.
	other, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	local, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	held, err := (&net.Dialer{LocalAddr: local}).Dial("tcp", other.Addr().String())
	if err != nil {
		t.Skipf("cannot take the port as a source port here: %v", err)
	}
	accepted, err := other.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()

	gaveUp := make(chan error, 1)
	h.lis.reopen(func(err error) { gaveUp <- err })
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the host listens while its port is taken: the test took nothing")
	}
	time.Sleep(3 * reopenEvery)
	// The far end closes first, so TIME_WAIT stays there and the port
	// frees at once (when the client closes first, Linux keeps it for
	// 60 s, which reopenFor outlasts).
	_ = accepted.Close()
	time.Sleep(50 * time.Millisecond)
	_ = held.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-gaveUp:
			t.Fatalf("the host gave up listening: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the host does not listen again 10 s after its port was freed: %v", errors.Unwrap(err))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
