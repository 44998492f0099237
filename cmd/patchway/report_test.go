package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/policies"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/report/reporttest"
)

// fixtureReport is the report of reporttest.Fixture, built by the real
// report.Build with the default policies.
func fixtureReport(t testing.TB) contract.Report {
	t.Helper()
	engine, err := policies.Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.Build(context.Background(), engine, reporttest.Fixture())
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestEmitReportFailUnder(t *testing.T) {
	rep := fixtureReport(t) // 50.0%
	tests := []struct {
		name     string
		opts     reportOptions
		wantCode int
		wantErr  string
	}{
		{"below the threshold exits 2 and says so", reportOptions{format: "table", failSet: true, failUnder: 60}, 2, "is 50.0% compliant, below --fail-under 60%"},
		{"at the threshold exits 0", reportOptions{format: "table", failSet: true, failUnder: 50}, 0, ""},
		{"above the threshold exits 0", reportOptions{format: "md", failSet: true, failUnder: 40}, 0, ""},
		{"a threshold of 0 never fails", reportOptions{format: "table", failSet: true, failUnder: 0}, 0, ""},
		{"without --fail-under any compliance passes", reportOptions{format: "csv"}, 0, ""},
		{"a provisional report is held to the threshold too", reportOptions{format: "json", failSet: true, failUnder: 99.9}, 2, "below --fail-under 99.9%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := rep
			if strings.Contains(tt.name, "provisional") {
				rep.Provisional = "rollout still running"
			}
			var stdout, stderr bytes.Buffer
			err := emitReport(&stdout, &stderr, rep, tt.opts)
			code := 0
			var ee exitError
			switch {
			case errors.As(err, &ee):
				code = ee.code
			case err != nil:
				t.Fatalf("emitReport: %v", err)
			}
			if code != tt.wantCode || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr.String(), tt.wantCode, tt.wantErr)
			}
			if stdout.Len() == 0 {
				t.Errorf("the report was not written before the threshold was applied")
			}
		})
	}
}

func TestEmitReportWritesTheOutputFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.html")
	var stdout, stderr bytes.Buffer
	if err := emitReport(&stdout, &stderr, fixtureReport(t), reportOptions{format: "html", output: path}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || !bytes.HasPrefix(b, []byte("<!DOCTYPE html>")) || stdout.Len() != 0 {
		t.Errorf("file %d bytes (err %v), stdout %d bytes; want the page in the file only", len(b), err, stdout.Len())
	}
}

func TestReportCommandRefusesBadFlagsBeforeConnecting(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"an unknown format", []string{"report", "ms08-067", "--format", "pdf"}, `--format "pdf"`},
		{"a threshold above 100", []string{"report", "ms08-067", "--fail-under", "101"}, "--fail-under 101"},
		{"a negative threshold", []string{"report", "ms08-067", "--fail-under=-1"}, "--fail-under -1"},
		{"no rollout", []string{"report"}, "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newRootCmd()
			cmd.SetArgs(append(tt.args, "--address", "127.0.0.1:1"))
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.Execute()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one with %q", err, tt.want)
			}
		})
	}
}
