package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestE2ESetupPreparesANamespaceIdempotently runs `patchway setup`
// against the embedded server as against a self-hosted cluster: a missing
// namespace is refused without --create; with it the namespace is made
// with its retention and every search attribute; a second run changes
// nothing; a new retention is set; an attribute of another type is
// refused by name; --cloud prints tcld commands and changes nothing.
func TestE2ESetupPreparesANamespaceIdempotently(t *testing.T) {
	e := newE2E(t, e2eOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	setup := func(ns string, args ...string) cliResult {
		// Not e.cli, which names the default namespace.
		cmd := exec.CommandContext(ctx, e.bin, append([]string{"setup", "--address", e.address(), "--namespace", ns}, args...)...)
		cmd.Env = e.env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		r := cliResult{stdout: stdout.String(), stderr: stderr.String()}
		if exit, ok := err.(*exec.ExitError); ok {
			r.code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}

	if r := setup("pw-setup"); r.code == 0 || !strings.Contains(r.stderr, "namespace pw-setup does not exist (create it, or pass --create)") {
		t.Errorf("setup of a missing namespace: exit %d, stderr %q", r.code, r.stderr)
	}
	first := setup("pw-setup", "--create", "--retention", "7d")
	if first.code != 0 || !strings.Contains(first.stdout, "namespace pw-setup: created with retention 7d") ||
		!strings.Contains(first.stdout, "search attribute RolloutId (Keyword): added") || !strings.Contains(first.stdout, "search attribute PatchwayHosts (KeywordList): added") {
		t.Errorf("first setup: exit %d\nstdout: %s\nstderr: %s", first.code, first.stdout, first.stderr)
	}
	again := setup("pw-setup", "--retention", "7d")
	if again.code != 0 || !strings.Contains(again.stdout, "retention 7d, unchanged") || !strings.Contains(again.stdout, "nothing to change") {
		t.Errorf("second setup: exit %d\nstdout: %s\nstderr: %s", again.code, again.stdout, again.stderr)
	}
	longer := setup("pw-setup", "--retention", "14d")
	if longer.code != 0 || !strings.Contains(longer.stdout, "retention 14d (was 7d)") || strings.Contains(longer.stdout, "added") {
		t.Errorf("setup with a new retention: exit %d\nstdout: %s\nstderr: %s", longer.code, longer.stdout, longer.stderr)
	}
	cloud := setup("pw-setup", "--cloud")
	if cloud.code != 0 || !strings.Contains(cloud.stdout, "tcld namespace retention set --namespace pw-setup --retention-days 30") ||
		!strings.Contains(cloud.stdout, "Every search attribute Patchway needs is there.") {
		t.Errorf("setup --cloud: exit %d\nstdout: %s\nstderr: %s", cloud.code, cloud.stdout, cloud.stderr)
	}

	// A namespace where RolloutId is an Int.
	if _, err := e.client.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "pw-conflict", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := e.client.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: "pw-conflict", SearchAttributes: map[string]enumspb.IndexedValueType{"RolloutId": enumspb.INDEXED_VALUE_TYPE_INT},
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	conflict := setup("pw-conflict")
	if conflict.code == 0 || !strings.Contains(conflict.stderr, "search attribute RolloutId is registered in pw-conflict as Int, Patchway needs Keyword") {
		t.Errorf("setup over a conflicting type: exit %d, stderr %q", conflict.code, conflict.stderr)
	}
	cloudMissing := setup("pw-conflict", "--cloud")
	if !strings.Contains(cloudMissing.stdout, "--search-attribute RolloutId=Keyword") || !strings.Contains(cloudMissing.stdout, "--search-attribute SLADeadline=Datetime") {
		t.Errorf("setup --cloud of a namespace lacking attributes:\n%s", cloudMissing.stdout)
	}
	if r := setup("pw-setup", "--retention", "1h"); r.code == 0 || !strings.Contains(r.stderr, "want at least a day") {
		t.Errorf("setup --retention 1h: exit %d, stderr %q", r.code, r.stderr)
	}
}
