package temporalclient_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/temporalclient"
	"github.com/assetsup/webhooks/temporalclient/tlstest"
)

var testPayloadKey = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func load(t *testing.T, env map[string]string) (config.Config, error) {
	t.Helper()
	return config.LoadFrom(config.RoleDispatch, env)
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	pair := ca.Client(t, "worker")
	caPath := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	certPath := tlstest.WriteFile(t, dir, "client.pem", pair.CertPEM)
	keyPath := tlstest.WriteFile(t, dir, "client.key", pair.KeyPEM)

	tests := []struct {
		name            string
		env             map[string]string
		wantTLS         bool
		wantCredentials bool
		wantRootCAs     bool
		wantClientCerts int
		wantServerName  string
		wantEncrypted   bool
	}{
		{name: "defaults: plaintext, as make dev runs", env: map[string]string{}},
		{name: "address and namespace", env: map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "prod"}},
		{name: "API key turns TLS on", env: map[string]string{"TEMPORAL_API_KEY": "key"}, wantTLS: true, wantCredentials: true},
		{name: "API key without TLS", env: map[string]string{"TEMPORAL_API_KEY": "key", "TEMPORAL_TLS": "false"}, wantCredentials: true},
		{name: "TLS with the system roots", env: map[string]string{"TEMPORAL_TLS": "true"}, wantTLS: true},
		{name: "private CA", env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath}, wantTLS: true, wantRootCAs: true},
		{name: "mutual TLS from files", env: map[string]string{
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath, "TEMPORAL_TLS_CLIENT_CERT_PATH": certPath, "TEMPORAL_TLS_CLIENT_KEY_PATH": keyPath,
		}, wantTLS: true, wantRootCAs: true, wantClientCerts: 1},
		{name: "mutual TLS from PEM", env: map[string]string{
			"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath, "TEMPORAL_TLS_CLIENT_CERT_DATA": string(pair.CertPEM), "TEMPORAL_TLS_CLIENT_KEY_DATA": string(pair.KeyPEM),
		}, wantTLS: true, wantRootCAs: true, wantClientCerts: 1},
		{name: "server name", env: map[string]string{"TEMPORAL_TLS_SERVER_NAME": "frontend.internal"}, wantTLS: true, wantServerName: "frontend.internal"},
		{name: "encrypted payloads", env: map[string]string{"TEMPORAL_PAYLOAD_KEY": testPayloadKey}, wantEncrypted: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.env)
			require.NoError(t, err)
			opts, err := temporalclient.Options(cfg, quiet(), nil)
			require.NoError(t, err)
			assert.Equal(t, cfg.TemporalAddress, opts.HostPort)
			assert.Equal(t, cfg.TemporalNamespace, opts.Namespace)
			assert.NotNil(t, opts.Logger)
			assert.Equal(t, tt.wantCredentials, opts.Credentials != nil, "credentials")
			tlsCfg := opts.ConnectionOptions.TLS
			require.Equal(t, tt.wantTLS, tlsCfg != nil, "TLS")
			if tlsCfg != nil {
				assert.Equal(t, tt.wantRootCAs, tlsCfg.RootCAs != nil, "RootCAs")
				assert.Len(t, tlsCfg.Certificates, tt.wantClientCerts)
				assert.Equal(t, tt.wantServerName, tlsCfg.ServerName)
				assert.False(t, tlsCfg.InsecureSkipVerify, "never skips verification")
			}
			if !tt.wantEncrypted {
				assert.Nil(t, opts.DataConverter, "encryption is off unless a key is set")
				assert.Nil(t, opts.FailureConverter)
				return
			}
			p, err := opts.DataConverter.ToPayload("Pallet 12 received")
			require.NoError(t, err)
			assert.Equal(t, payloadcodec.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]))
			assert.Equal(t, "1", string(p.GetMetadata()[payloadcodec.MetadataKeyID]), "TEMPORAL_PAYLOAD_KEY_ID defaults to 1")

			// Failure messages and stack traces are encrypted too: a receiver's answer can
			// carry business data into an attempt's error.
			f := opts.FailureConverter.ErrorToFailure(errors.New("receiver answered 500: Pallet 12 unknown"))
			raw, err := proto.Marshal(f)
			require.NoError(t, err)
			assert.NotContains(t, string(raw), "Pallet 12")
			before := proto.Clone(f)
			back := opts.FailureConverter.FailureToError(f)
			assert.Contains(t, back.Error(), "receiver answered 500: Pallet 12 unknown", "and read back whole")
			assert.True(t, proto.Equal(before, f), "reading a failure leaves it encrypted: a local activity's is recorded after it is read")
			assert.Equal(t, "Encoded failure", f.GetMessage())
		})
	}
}

func TestOptionsRefuseBadConnectionSettings(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	pair := ca.Client(t, "worker")
	certPath := tlstest.WriteFile(t, dir, "client.pem", pair.CertPEM)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{name: "missing CA file", env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": dir + "/nope.pem"}, wantErr: "TEMPORAL_TLS_*"},
		{name: "CA is not PEM", env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": tlstest.WriteFile(t, dir, "bad.pem", []byte("not a certificate"))}, wantErr: "CA"},
		{name: "certificate without key", env: map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": certPath}, wantErr: "other must be present"},
		{name: "key does not match", env: map[string]string{
			"TEMPORAL_TLS_CLIENT_CERT_DATA": string(pair.CertPEM), "TEMPORAL_TLS_CLIENT_KEY_DATA": string(ca.Client(t, "other").KeyPEM),
		}, wantErr: "client cert"},
		{name: "TEMPORAL_TLS not a boolean", env: map[string]string{"TEMPORAL_TLS": "yes"}, wantErr: "TEMPORAL_TLS must be true or false"},
		{name: "payload key too short", env: map[string]string{"TEMPORAL_PAYLOAD_KEY": base64.StdEncoding.EncodeToString(make([]byte, 16))}, wantErr: "want 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, tt.env)
			require.ErrorContains(t, err, tt.wantErr, "refused at start-up, by config validation")
			for _, v := range []string{string(pair.KeyPEM)} {
				assert.NotContains(t, err.Error(), v, "an error never repeats a private key")
			}
		})
	}
}

// fakeFrontend is a Temporal frontend that answers the one call a client makes when it
// connects, and keeps the authorization headers it was sent.
type fakeFrontend struct {
	workflowservice.UnimplementedWorkflowServiceServer
	mu    sync.Mutex
	calls int
	auth  []string
}

func (f *fakeFrontend) GetSystemInfo(ctx context.Context, _ *workflowservice.GetSystemInfoRequest) (*workflowservice.GetSystemInfoResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.auth = append(f.auth, md.Get("authorization")...)
	return &workflowservice.GetSystemInfoResponse{}, nil
}

// seen is how many calls reached the server and their authorization headers.
func (f *fakeFrontend) seen() (int, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, append([]string(nil), f.auth...)
}

// startFrontend serves fakeFrontend over TLS with cfg on a loopback port.
func startFrontend(t *testing.T, cfg *tls.Config) (*fakeFrontend, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeFrontend{}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(cfg)))
	workflowservice.RegisterWorkflowServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

// The client built from the configuration speaks TLS, presents its certificate, checks
// the server's against the configured CA and sends the API key; without what the
// server requires it does not connect.
func TestDialSecuredFrontend(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "test CA")
	otherCA := tlstest.NewCA(t, "another CA")
	server := ca.Server(t, "127.0.0.1", "temporal.internal")
	namedOnly := ca.Server(t, "frontend.internal")
	client := ca.Client(t, "worker")
	caPath := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	certPath := tlstest.WriteFile(t, dir, "client.pem", client.CertPEM)
	keyPath := tlstest.WriteFile(t, dir, "client.key", client.KeyPEM)
	mtls := map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath, "TEMPORAL_TLS_CLIENT_CERT_PATH": certPath, "TEMPORAL_TLS_CLIENT_KEY_PATH": keyPath}

	requireClientCert := &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	serverOnly := &tls.Config{Certificates: []tls.Certificate{server.TLS}}
	named := &tls.Config{Certificates: []tls.Certificate{namedOnly.TLS}}
	strangerCA := &tls.Config{Certificates: []tls.Certificate{server.TLS}, ClientCAs: otherCA.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	tests := []struct {
		name     string
		server   *tls.Config
		env      map[string]string
		wantAuth string // the authorization header the server saw
		wantErr  bool
	}{
		{name: "mutual TLS", server: requireClientCert, env: mtls},
		{name: "API key over TLS", server: serverOnly, env: map[string]string{"TEMPORAL_API_KEY": "key-123", "TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath}, wantAuth: "Bearer key-123"},
		{name: "server name override", server: named, env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath, "TEMPORAL_TLS_SERVER_NAME": "frontend.internal"}},
		{name: "no client certificate", server: requireClientCert, env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath}, wantErr: true},
		{name: "client certificate the server does not trust", server: strangerCA, env: mtls, wantErr: true},
		{name: "server not signed by the configured CA", server: serverOnly, env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": tlstest.WriteFile(t, dir, "other-ca.pem", otherCA.PEM)}, wantErr: true},
		{name: "system roots do not know the test CA", server: serverOnly, env: map[string]string{"TEMPORAL_TLS": "true"}, wantErr: true},
		{name: "name mismatch", server: named, env: map[string]string{"TEMPORAL_TLS_SERVER_CA_CERT_PATH": caPath}, wantErr: true},
		{name: "plaintext", server: serverOnly, env: map[string]string{}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frontend, addr := startFrontend(t, tt.server)
			env := map[string]string{"TEMPORAL_ADDRESS": addr, "TEMPORAL_DIAL_TIMEOUT": "1ms"}
			for k, v := range tt.env {
				env[k] = v
			}
			cfg, err := load(t, env)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := temporalclient.Dial(ctx, cfg, quiet(), nil)
			if tt.wantErr {
				require.Error(t, err, "connected without what the server requires")
				calls, _ := frontend.seen()
				assert.Zero(t, calls, "no call reached the server")
				return
			}
			require.NoError(t, err)
			c.Close()
			calls, auth := frontend.seen()
			require.Positive(t, calls, "the client called the server")
			if tt.wantAuth != "" {
				assert.Equal(t, []string{tt.wantAuth}, auth[:1])
			} else {
				assert.Empty(t, auth, "no API key configured, none sent")
			}
		})
	}
}
