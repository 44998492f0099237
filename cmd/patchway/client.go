package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"strconv"

	"github.com/spf13/pflag"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
)

// Defaults of the Temporal connection, as the Temporal CLI has them.
const (
	defaultAddress   = "127.0.0.1:7233"
	defaultNamespace = "default"
)

// clientFlags are the Temporal connection flags of every command that talks
// to a cluster. Names and environment variables follow the Temporal CLI,
// so an operator's existing TEMPORAL_* environment works unchanged. A flag
// given on the command line wins over its environment variable.
type clientFlags struct {
	fs            *pflag.FlagSet
	address       string
	namespace     string
	tls           bool
	tlsCertPath   string
	tlsKeyPath    string
	tlsCAPath     string
	tlsServerName string
	apiKey        string
}

// clientEnv maps each flag to its environment variable.
var clientEnv = map[string]string{
	"address":         "TEMPORAL_ADDRESS",
	"namespace":       "TEMPORAL_NAMESPACE",
	"tls":             "TEMPORAL_TLS",
	"tls-cert-path":   "TEMPORAL_TLS_CERT",
	"tls-key-path":    "TEMPORAL_TLS_KEY",
	"tls-ca-path":     "TEMPORAL_TLS_CA",
	"tls-server-name": "TEMPORAL_TLS_SERVER_NAME",
	"api-key":         "TEMPORAL_API_KEY",
}

// register adds the connection flags to fs.
func (f *clientFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.address, "address", defaultAddress, "Temporal frontend host:port (env TEMPORAL_ADDRESS)")
	fs.StringVarP(&f.namespace, "namespace", "n", defaultNamespace, "Temporal namespace (env TEMPORAL_NAMESPACE)")
	fs.BoolVar(&f.tls, "tls", false, "connect with TLS; implied by the other --tls-* flags and by --api-key (env TEMPORAL_TLS)")
	fs.StringVar(&f.tlsCertPath, "tls-cert-path", "", "client certificate for mTLS (env TEMPORAL_TLS_CERT)")
	fs.StringVar(&f.tlsKeyPath, "tls-key-path", "", "client private key for mTLS (env TEMPORAL_TLS_KEY)")
	fs.StringVar(&f.tlsCAPath, "tls-ca-path", "", "CA certificates that verify the server instead of the system roots (env TEMPORAL_TLS_CA)")
	fs.StringVar(&f.tlsServerName, "tls-server-name", "", "server name to verify the server's certificate against (env TEMPORAL_TLS_SERVER_NAME)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key sent as a bearer token; prefer the environment variable, which stays out of `ps` (env TEMPORAL_API_KEY)")
}

// resolve fills every flag not given on the command line from its
// environment variable.
func (f *clientFlags) resolve() error {
	if f.fs == nil {
		return errors.New("temporal connection flags were not registered")
	}
	for name, env := range clientEnv {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" || f.fs.Changed(name) {
			continue
		}
		if err := f.fs.Set(name, v); err != nil {
			return fmt.Errorf("%s: %w", env, err)
		}
	}
	return nil
}

// options builds the SDK client options. The API key is passed as
// credentials and never logged.
func (f *clientFlags) options(logger *slog.Logger) (client.Options, error) {
	if err := f.resolve(); err != nil {
		return client.Options{}, err
	}
	opts := client.Options{
		HostPort:  f.address,
		Namespace: f.namespace,
		Logger:    sdklog.NewStructuredLogger(logger),
	}
	if f.apiKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(f.apiKey)
	}
	tlsConf, err := f.tlsConfig()
	if err != nil {
		return client.Options{}, err
	}
	opts.ConnectionOptions.TLS = tlsConf
	// An explicit --tls=false holds with an API key too (the SDK would
	// turn TLS on for one): a dev server on loopback speaks plain gRPC.
	opts.ConnectionOptions.TLSDisabled = tlsConf == nil && f.tlsExplicitlyOff()
	return opts, nil
}

// tlsConfig is nil for a plain connection. TLS is on when asked for, when
// any TLS file or server name is given, or with an API key (an API key
// over plain text would be readable on the wire), unless TEMPORAL_TLS or
// --tls explicitly says false.
func (f *clientFlags) tlsConfig() (*tls.Config, error) {
	explicitOff := f.tlsExplicitlyOff()
	wanted := f.tls || f.tlsCertPath != "" || f.tlsKeyPath != "" || f.tlsCAPath != "" ||
		f.tlsServerName != "" || f.apiKey != ""
	if !wanted || explicitOff {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.tlsServerName}
	switch {
	case f.tlsCertPath != "" && f.tlsKeyPath != "":
		cert, err := tls.LoadX509KeyPair(f.tlsCertPath, f.tlsKeyPath)
		if err != nil {
			return nil, fmt.Errorf("load TLS client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	case f.tlsCertPath != "" || f.tlsKeyPath != "":
		return nil, errors.New("--tls-cert-path and --tls-key-path go together")
	}
	if f.tlsCAPath != "" {
		pem, err := os.ReadFile(f.tlsCAPath)
		if err != nil {
			return nil, fmt.Errorf("read TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TLS CA %s holds no PEM certificate", f.tlsCAPath)
		}
		conf.RootCAs = pool
	}
	return conf, nil
}

// tlsExplicitlyOff: --tls=false, or TEMPORAL_TLS false without --tls.
func (f *clientFlags) tlsExplicitlyOff() bool {
	if f.fs.Changed("tls") {
		return !f.tls
	}
	if v, ok := os.LookupEnv("TEMPORAL_TLS"); ok {
		if b, err := strconv.ParseBool(v); err == nil && !b {
			return true
		}
	}
	return false
}

// dial connects to Temporal with the SDK logging through logger.
func (f *clientFlags) dial(ctx context.Context, logger *slog.Logger) (client.Client, error) {
	opts, err := f.options(logger)
	if err != nil {
		return nil, err
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connect to Temporal at %s (namespace %s): %w", opts.HostPort, opts.Namespace, err)
	}
	return c, nil
}

// newLogger is the process logger: text on w at level. The SDK logs every
// activity at DEBUG, so workers and commands use INFO.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// cliLogger is the logger of the one-shot operator commands: warnings
// only, so their output stays the command's answer.
func cliLogger() *slog.Logger { return newLogger(os.Stderr, slog.LevelWarn) }

// operator is who runs a command that is recorded: --as when given, else
// the OS user.
func operator(as string) (string, error) {
	if as != "" {
		return as, nil
	}
	u, err := user.Current()
	if err == nil && u.Username != "" {
		return u.Username, nil
	}
	if name := os.Getenv("USER"); name != "" {
		return name, nil
	}
	return "", errors.New("cannot tell who you are: pass --as")
}
