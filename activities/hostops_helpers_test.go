package activities

import (
	"context"
	"errors"
	"testing"

	"github.com/patchway/patchway/contract"

	"go.temporal.io/sdk/temporal"

	"github.com/patchway/patchway/rollout"
)

func TestPackageSelectionAndSource(t *testing.T) {
	patch := rollout.Patch{KB: "KB1", Packages: []rollout.Package{
		{OS: "windows-server-2008-r2", Source: `patches\kb1-2008r2.msu`, Type: "msu"},
		{OS: "windows-10-*", Source: "https://cdn.example/kb1-w10.msu", Type: "msu"},
	}}
	tests := []struct {
		name, os, dp, want, wantType string
	}{
		{"relative source joins a share", "windows-server-2008-r2", `\\dp01\wsus\`, `\\dp01\wsus\patches\kb1-2008r2.msu`, ""},
		{"relative source joins a URL", "windows-server-2008-r2", "https://dp01.example/wsus/", "https://dp01.example/wsus/patches/kb1-2008r2.msu", ""},
		{"absolute URL kept; OS glob matches", "windows-10-22h2", `\\dp01\wsus`, "https://cdn.example/kb1-w10.msu", ""},
		{"no package for the OS", "windows-xp", `\\dp01`, "", contract.UnsupportedOS},
		{"relative source without a distribution point", "windows-server-2008-r2", "", "", contract.HostConfigInvalid},
	}
	hosts := &HostActivities{Policy: testPolicy(t)}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := contract.HostTarget{Host: rollout.Host{Name: "h", OS: tt.os, Site: "paris"}, Patch: patch, DistributionPoint: tt.dp}
			pkg, err := hosts.packageFor(context.Background(), target)
			var src string
			if err == nil {
				src, err = packageSource(target, pkg)
			}
			if tt.wantType != "" {
				if hostErrorType(err) != tt.wantType {
					t.Fatalf("err = %v, want type %s", err, tt.wantType)
				}
				return
			}
			if err != nil || src != tt.want {
				t.Errorf("source = %q, %v; want %q", src, err, tt.want)
			}
		})
	}
}

func TestActivityErrorClassification(t *testing.T) {
	tests := []struct {
		err          error
		wantType     string
		nonRetryable bool
	}{
		{&contract.HostError{Type: contract.AuthFailed, Host: "h"}, contract.AuthFailed, true},
		{&contract.HostError{Type: contract.NotApplicable, Host: "h"}, contract.NotApplicable, true},
		{&contract.HostError{Type: contract.ChecksumMismatch, Host: "h"}, contract.ChecksumMismatch, true},
		{&contract.HostError{Type: contract.UnsupportedOS, Host: "h"}, contract.UnsupportedOS, true},
		{&contract.HostError{Type: contract.InstallFailed, Host: "h", ExitCode: 1603}, contract.InstallFailed, true},
		{&contract.HostError{Type: contract.TransportRefused, Host: "h"}, contract.TransportRefused, true},
		{&contract.HostError{Type: contract.HostConfigInvalid, Host: "h"}, contract.HostConfigInvalid, true},
		{&contract.HostError{Type: contract.Unreachable, Host: "h"}, contract.Unreachable, false},
		{&contract.HostError{Type: contract.ScriptFailed, Host: "h"}, contract.ScriptFailed, false},
		{&didNotReturnError{host: "h"}, contract.HostDidNotReturn, true},
	}
	for _, tt := range tests {
		err := activityError("step", tt.err)
		var ae *temporal.ApplicationError
		if !errors.As(err, &ae) {
			t.Fatalf("%v: not an ApplicationError", tt.err)
		}
		if ae.Type() != tt.wantType || ae.NonRetryable() != tt.nonRetryable {
			t.Errorf("%v: type %s non-retryable %v; want %s %v", tt.err, ae.Type(), ae.NonRetryable(), tt.wantType, tt.nonRetryable)
		}
	}
	var ae *temporal.ApplicationError
	errors.As(activityError("install", &contract.HostError{Type: contract.InstallFailed, Host: "h", ExitCode: 1603}), &ae)
	var d contract.HostErrorDetails
	if err := ae.Details(&d); err != nil || d.ExitCode != 1603 || d.Host != "h" {
		t.Errorf("InstallFailed details = %+v, %v; want exit code 1603 for host h", d, err)
	}
}

func TestStateForErrorType(t *testing.T) {
	for typ, want := range map[string]rollout.HostState{
		contract.NotApplicable: rollout.StateNotApplicable, contract.UnsupportedOS: rollout.StateNotApplicable,
		contract.Unreachable: rollout.StateUnreachable, contract.HostDidNotReturn: rollout.StateUnreachable,
		contract.InstallFailed: rollout.StateFailed, contract.AuthFailed: rollout.StateFailed, "": rollout.StateUnknown,
	} {
		if got := contract.StateForErrorType(typ); got != want {
			t.Errorf("StateForErrorType(%q) = %s, want %s", typ, got, want)
		}
	}
}

func TestDecodeOneWantsExactlyOneObject(t *testing.T) {
	var v map[string]any
	if err := decodeOne(`{"a":1}`+"\r\n", &v); err != nil {
		t.Errorf("one object: %v", err)
	}
	for _, bad := range []string{"", "WARNING: x", `{"a":1}{"b":2}`, `{"a":`} {
		if err := decodeOne(bad, &v); err == nil {
			t.Errorf("decodeOne(%q) accepted", bad)
		}
	}
}
