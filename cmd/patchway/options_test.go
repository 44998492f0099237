package main

import (
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/workflows"
)

// The Validate methods check flags alone: none of these tests needs a
// server, or even a connection attempt.

// checkValidate runs Validate and checks its error against want ("" for
// none, else a part of the message).
func checkValidate(t *testing.T, o commandOptions, want string) {
	t.Helper()
	err := o.Validate()
	switch {
	case want == "" && err != nil:
		t.Errorf("Validate() = %v, want no error", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("Validate() = %v, want an error with %q", err, want)
	}
}

func TestSubmitOptionsValidate(t *testing.T) {
	tests := []struct {
		name   string
		tuning workflows.Tuning
		want   string
	}{
		{"the defaults", workflows.Tuning{}, ""},
		{"both set", workflows.Tuning{BootTimeout: time.Minute, RetryInterval: time.Hour}, ""},
		{"a negative boot timeout", workflows.Tuning{BootTimeout: -time.Second}, "--boot-timeout and --retry-interval must not be negative"},
		{"a negative retry interval", workflows.Tuning{RetryInterval: -time.Second}, "must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkValidate(t, &submitOptions{tuning: tt.tuning}, tt.want)
		})
	}
}
