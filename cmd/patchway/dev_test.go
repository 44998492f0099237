package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/patchway/patchway/workflows"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestDevRunsServerAndWorkerAndStopsCleanlyOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runDev(ctx, &out, io.Discard, devOptions{inMemory: true, headless: true, ip: "127.0.0.1", namespace: "default",
			scenario: "../../examples/fleet-demo.hcl"})
	}()

	frontend := regexp.MustCompile(`Temporal frontend  (127\.0\.0\.1:\d+)`)
	var addr string
	for deadline := time.Now().Add(time.Minute); addr == "" && time.Now().Before(deadline); {
		select {
		case err := <-done:
			t.Fatalf("dev exited before it was ready: %v\n%s", err, out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if m := frontend.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatalf("dev did not print its frontend address:\n%s", out.String())
	}
	for _, want := range []string{"state              in memory", "task queue " + workflows.TaskQueue,
		"213 simulated Windows hosts", "patchway submit examples/ms08-067.hcl --inventory "} {
		if !bytes.Contains([]byte(out.String()), []byte(want)) {
			t.Errorf("banner lacks %q:\n%s", want, out.String())
		}
	}

	// The console dev started answers, and lists the (no) rollouts.
	if m := regexp.MustCompile(`console            (http://127\.0\.0\.1:\d+)`).FindStringSubmatch(out.String()); m == nil {
		t.Errorf("banner names no console:\n%s", out.String())
	} else if resp, err := http.Get(m[1] + "/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("dev's console at %s: %v %v", m[1], resp, err)
	} else {
		resp.Body.Close()
	}

	// The worker polls Patchway's task queue on the dev server.
	c, err := client.Dial(client.Options{HostPort: addr, Logger: testSDKLogger(io.Discard)})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	if pollers := waitForPollers(ctx, c); pollers == 0 {
		t.Errorf("no worker polls task queue %s", workflows.TaskQueue)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("dev returned %v after Ctrl-C, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("dev did not stop within a minute of Ctrl-C")
	}
}

// waitForPollers waits up to 30 s for a worker to poll Patchway's task
// queue in namespace default and returns how many do.
func waitForPollers(ctx context.Context, c client.Client) int {
	pollers := 0
	for deadline := time.Now().Add(30 * time.Second); pollers == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := c.WorkflowService().DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace:     "default",
			TaskQueue:     &taskqueuepb.TaskQueue{Name: workflows.TaskQueue, Kind: enumspb.TASK_QUEUE_KIND_NORMAL},
			TaskQueueType: enumspb.TASK_QUEUE_TYPE_WORKFLOW,
		})
		if err == nil {
			pollers = len(resp.GetPollers())
		}
	}
	return pollers
}
