package activities

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/rollout"
)

// streamingHost answers Receive itself and everything else as wsmanHost
// does. receive writes the reply to one Receive (n counts from 1).
type streamingHost struct {
	*wsmanHost
	receive  func(w http.ResponseWriter, r *http.Request, n int)
	receives atomic.Int64
}

func (h *streamingHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	if m := actionRE.FindSubmatch(raw); m != nil && strings.HasSuffix(string(m[1]), "/Receive") {
		w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
		h.receive(w, r, int(h.receives.Add(1)))
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	h.wsmanHost.ServeHTTP(w, r)
}

func streamingRunner(t *testing.T, h *streamingHost, r *WinRMRunner) rollout.Host {
	t.Helper()
	if h.wsmanHost == nil {
		h.wsmanHost = &wsmanHost{}
	}
	addr, ca := tlsServer(t, h)
	r.Credentials = StaticCredentials{"fleet": {Username: "u", Password: "p"}}
	return rollout.Host{Name: "srv-01", Address: addr, Credential: "fleet", TLS: rollout.HostTLS{CAFile: ca}}
}

// floodHost streams total bytes of stdout in Receive replies of chunk
// bytes each (about the 150 KiB envelopes Windows sends), then ends the
// command. The replies are built once, so the server side allocates
// almost nothing while the client is measured.
func floodHost(total, chunk int) *streamingHost {
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), chunk))
	part := []byte(receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">` + data + `</rsp:Stream></rsp:ReceiveResponse>`))
	last := []byte(receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1" End="true"></rsp:Stream><rsp:CommandState CommandId="CMD-1" State="` + stateDone + `"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`))
	return &streamingHost{receive: func(w http.ResponseWriter, _ *http.Request, n int) {
		if n*chunk <= total {
			w.Write(part)
			return
		}
		w.Write(last)
	}}
}

// runMeasured runs one scan against h and returns the run's error, the
// bytes the process allocated meanwhile and its peak heap in use.
func runMeasured(t *testing.T, r *WinRMRunner, h *streamingHost) (RunResult, error, uint64, uint64) {
	host := streamingRunner(t, h, r)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := r.Run(ctx, host, "# patchway-op: scan/1\n")
	close(stop)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	return res, err, after.TotalAlloc - before.TotalAlloc, peak.Load() - min(peak.Load(), before.HeapInuse)
}

func TestRunnerOutputIsBoundedPerRun(t *testing.T) {
	const total, chunk = 50 << 20, 100 << 10
	// The same 50 MB host, first without a bound (as runs were before),
	// then with the default one. Compared with each other, not a clock.
	h := floodHost(total, chunk)
	res, err, allocUnbounded, peakUnbounded := runMeasured(t, &WinRMRunner{MaxOutputBytes: 1 << 40}, h)
	t.Logf("unbounded: %d Receive replies, %d bytes of stdout, %.1f MB allocated, peak heap +%.1f MB",
		h.receives.Load(), len(res.Stdout), float64(allocUnbounded)/1e6, float64(peakUnbounded)/1e6)
	if err != nil || len(res.Stdout) < total {
		t.Fatalf("unbounded run: %d bytes, %v", len(res.Stdout), err)
	}

	h = floodHost(total, chunk)
	res, err, alloc, peak := runMeasured(t, &WinRMRunner{}, h)
	t.Logf("bounded: %d Receive replies, %.1f MB allocated, peak heap +%.1f MB: %v", h.receives.Load(), float64(alloc)/1e6, float64(peak)/1e6, err)
	if typ := hostErrorType(err); typ != contract.ScriptFailed {
		t.Fatalf("error type %q (%v), want %s", typ, err, contract.ScriptFailed)
	}
	if !strings.Contains(err.Error(), "exceeds the 1048576-byte limit") || !strings.Contains(err.Error(), "bytes of stdout and stderr") {
		t.Errorf("error %q should state the limit and the size", err)
	}
	if len(res.Stdout) > DefaultMaxOutputBytes {
		t.Errorf("kept %d bytes of stdout, over the bound", len(res.Stdout))
	}
	if n := h.receives.Load(); n > 2*DefaultMaxOutputBytes/chunk {
		t.Errorf("%d Receive replies read: the run went on past the bound", n)
	}
	if alloc > allocUnbounded/10 {
		t.Errorf("bounded run allocated %d bytes, unbounded %d: the bound saves little", alloc, allocUnbounded)
	}
	if h.count("Delete") == 0 {
		t.Error("the shell was not deleted")
	}

	t.Run("output at the bound is kept whole", func(t *testing.T) {
		h := floodHost(DefaultMaxOutputBytes, 64<<10)
		res, err, _, _ := runMeasured(t, &WinRMRunner{}, h)
		if err != nil || len(res.Stdout) != DefaultMaxOutputBytes {
			t.Fatalf("%d bytes, %v", len(res.Stdout), err)
		}
	})
}

// operationTimeoutFault is the fault a host answers a Receive with when
// the command printed nothing within OperationTimeout.
func operationTimeoutFault(w http.ResponseWriter) {
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, envelope, "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault",
		`<env:Fault><env:Reason><env:Text>The WS-Management service cannot complete the operation within the time specified in OperationTimeout.</env:Text></env:Reason><env:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793"/></env:Detail></env:Fault>`)
}

func TestRunnerIdleTimeout(t *testing.T) {
	runner := func() *WinRMRunner {
		return &WinRMRunner{OperationTimeout: time.Second, IdleTimeout: 2 * time.Second}
	}
	t.Run("a host dribbling its reply a byte at a time is ended", func(t *testing.T) {
		reply := receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">e30=</rsp:Stream></rsp:ReceiveResponse>`)
		h := &streamingHost{receive: func(w http.ResponseWriter, r *http.Request, _ int) {
			fl := w.(http.Flusher)
			for i := 0; i < len(reply); i++ {
				w.Write([]byte{reply[i]})
				fl.Flush()
				select {
				case <-r.Context().Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}}
		expectIdle(t, runner(), h)
	})
	t.Run("a host that never answers a Receive is ended", func(t *testing.T) {
		h := &streamingHost{receive: func(_ http.ResponseWriter, r *http.Request, _ int) {
			select {
			case <-r.Context().Done():
			case <-time.After(time.Minute):
			}
		}}
		expectIdle(t, runner(), h)
	})
	t.Run("a silent script answered by OperationTimeout faults is not idle", func(t *testing.T) {
		start := time.Now()
		done := []byte(receiveReply(`<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="CMD-1">e30=</rsp:Stream><rsp:CommandState CommandId="CMD-1" State="` + stateDone + `"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>`))
		h := &streamingHost{receive: func(w http.ResponseWriter, r *http.Request, _ int) {
			// Each poll is held for most of the OperationTimeout, as
			// Windows does, until the command ends after 5s.
			if time.Since(start) < 5*time.Second {
				select {
				case <-r.Context().Done():
					return
				case <-time.After(800 * time.Millisecond):
				}
				operationTimeoutFault(w)
				return
			}
			w.Write(done)
		}}
		r := runner()
		host := streamingRunner(t, h, r)
		res, err := r.Run(context.Background(), host, "# patchway-op: scan/1\n")
		if err != nil || res.Stdout != "{}" {
			t.Fatalf("silent run: %+v, %v", res, err)
		}
	})
}

func expectIdle(t *testing.T, r *WinRMRunner, h *streamingHost) {
	t.Helper()
	host := streamingRunner(t, h, r)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, host, "# patchway-op: scan/1\n")
	t.Logf("ended after %s: %v", time.Since(start).Round(10*time.Millisecond), err)
	if typ := hostErrorType(err); typ != contract.Unreachable || !strings.Contains(err.Error(), "idle timeout") {
		t.Fatalf("err = %v (type %q), want %s for the idle timeout", err, typ, contract.Unreachable)
	}
	if ctx.Err() != nil {
		t.Error("the run lasted until its deadline")
	}
	if n := h.count("Create"); n != 1 {
		t.Errorf("%d shells created: an idle host was tried again", n)
	}
}
