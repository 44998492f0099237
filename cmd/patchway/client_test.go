package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestClientFlags(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		address   string
		namespace string
		tls       bool
		apiKey    bool
	}{
		{"defaults are the local dev server's", nil, nil, defaultAddress, defaultNamespace, false, false},
		{"environment variables as the Temporal CLI names them",
			map[string]string{"TEMPORAL_ADDRESS": "temporal.corp:7233", "TEMPORAL_NAMESPACE": "patching"}, nil,
			"temporal.corp:7233", "patching", false, false},
		{"a flag wins over its environment variable",
			map[string]string{"TEMPORAL_ADDRESS": "temporal.corp:7233"}, []string{"--address", "10.0.0.1:7233"},
			"10.0.0.1:7233", defaultNamespace, false, false},
		{"an API key turns TLS on",
			map[string]string{"TEMPORAL_API_KEY": "secret-key"}, nil, defaultAddress, defaultNamespace, true, true},
		{"TEMPORAL_TLS=false keeps an API key on plain text, as asked",
			map[string]string{"TEMPORAL_API_KEY": "secret-key", "TEMPORAL_TLS": "false"}, nil, defaultAddress, defaultNamespace, false, true},
		{"a server name alone turns TLS on", nil, []string{"--tls-server-name", "temporal.corp"},
			defaultAddress, defaultNamespace, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, env := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TLS", "TEMPORAL_TLS_CERT",
				"TEMPORAL_TLS_KEY", "TEMPORAL_TLS_CA", "TEMPORAL_TLS_SERVER_NAME", "TEMPORAL_API_KEY"} {
				t.Setenv(env, tt.env[env])
			}
			var f clientFlags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			f.register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			opts, err := f.options(slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatalf("options: %v", err)
			}
			if opts.HostPort != tt.address || opts.Namespace != tt.namespace {
				t.Errorf("address, namespace = %q, %q; want %q, %q", opts.HostPort, opts.Namespace, tt.address, tt.namespace)
			}
			if got := opts.ConnectionOptions.TLS != nil; got != tt.tls {
				t.Errorf("TLS = %v, want %v", got, tt.tls)
			}
			if got := opts.Credentials != nil; got != tt.apiKey {
				t.Errorf("credentials set = %v, want %v", got, tt.apiKey)
			}
			if strings.Contains(logs.String(), "secret-key") {
				t.Errorf("API key logged: %s", logs.String())
			}
		})
	}
}

func TestClientFlagsRefuseHalfAClientCertificate(t *testing.T) {
	var f clientFlags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.register(fs)
	if err := fs.Parse([]string{"--tls-cert-path", "/nonexistent/cert.pem"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_TLS_KEY", "")
	if _, err := f.options(slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Fatalf("options with a cert and no key = %v, want a 'go together' error", err)
	}
}
