package e2e_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/temporalclient"
	"github.com/assetsup/webhooks/temporalclient/tlstest"
	"github.com/assetsup/webhooks/workflows"
)

// tlsFrontend stands in front of the dev server as a Temporal frontend that requires
// mutual TLS would: it terminates TLS, demands a client certificate signed by its CA,
// and passes the gRPC stream on to the dev server.
type tlsFrontend struct {
	addr     string
	accepted atomic.Int32 // handshakes that succeeded
	refused  atomic.Int32 // handshakes that failed
}

func startTLSFrontend(t *testing.T, server tls.Certificate, clientCA *tlstest.CA, upstream string) *tlsFrontend {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{server},
		ClientCAs:    clientCA.Pool(),
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{"h2"}, // gRPC clients insist on ALPN
		MinVersion:   tls.VersionTLS12,
	})
	require.NoError(t, err)
	f := &tlsFrontend{addr: lis.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = lis.Close(); wg.Wait() })
	var conns sync.Map
	t.Cleanup(func() {
		conns.Range(func(c, _ any) bool { _ = c.(net.Conn).Close(); return true })
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := c.(*tls.Conn).HandshakeContext(ctx)
				cancel()
				if err != nil {
					f.refused.Add(1)
					return
				}
				f.accepted.Add(1)
				up, err := net.Dial("tcp", upstream)
				if err != nil {
					return
				}
				conns.Store(up, true)
				defer conns.Delete(up)
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	return f
}

// With the CA and a client certificate in the TEMPORAL_TLS_* settings, the worker and
// the API reach Temporal through a frontend that requires mutual TLS, and an event is
// delivered; without the certificate, or without the CA, neither connects.
func TestTLSConnection(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "webhooks test CA")
	frontend := startTLSFrontend(t, ca.Server(t, "127.0.0.1").TLS, ca, testinfra.TemporalAddress(t))
	client := ca.Client(t, "webhooks-worker")
	caPath := tlstest.WriteFile(t, dir, "ca.pem", ca.PEM)
	certPath := tlstest.WriteFile(t, dir, "client.pem", client.CertPEM)
	keyPath := tlstest.WriteFile(t, dir, "client.key", client.KeyPEM)

	base := testfixture.WorkerConfig()
	base.TemporalAddress = frontend.addr
	base.TemporalDialTimeout = 2 * time.Second
	base.TemporalTimeout, base.LogLevel = 5*time.Second, "info"
	base.TemporalTaskQueue = "test-tls-" + testinfra.RandomHex(6)
	mtls := base
	mtls.TemporalTLSServerCAPath, mtls.TemporalTLSClientCertPath, mtls.TemporalTLSClientKeyPath = caPath, certPath, keyPath
	require.NoError(t, mtls.Validate(config.RoleDispatch), "the settings pass start-up validation")

	t.Run("with the CA and a client certificate", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The worker, as `webhooks worker` connects.
		wc, err := temporalclient.Dial(ctx, mtls, logs.Logger(), nil)
		require.NoError(t, err)
		t.Cleanup(wc.Close)
		box := testfixture.Box(t)
		tq := testfixture.StartWorkerOn(t, wc, testfixture.WorkerSettings{Box: box, Config: mtls, Logger: logs.Logger()})
		// The API, as `webhooks api` connects.
		ac, err := temporalclient.NewLazy(mtls, logs.Logger())
		require.NoError(t, err)
		t.Cleanup(ac.Close)
		s := newAPIStack(t, box, ac, tq)
		srv := httptest.NewServer(s.router)
		t.Cleanup(srv.Close)
		resp, err := http.Get(srv.URL + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, "the API reaches Temporal")

		rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
		user := newUser()
		hook := s.createWebhook(user, rcv.URL, "LOW_STOCK")
		var test struct {
			Delivered *bool `json:"delivered"`
		}
		require.Equal(t, http.StatusOK, s.call(user, http.MethodPost, "/webhooks/"+hook.ID+"/test", nil, &test), "a test delivery through the API")
		require.NotNil(t, test.Delivered)
		assert.True(t, *test.Delivered)
		// And an event handed over the way the backend's Go code does.
		eventID, err := dispatch.NewWebhookDispatchService(wc, tq).Trigger(ctx, events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"sku": "X-1"}})
		require.NoError(t, err)
		reqs := rcv.WaitFor(t, 2, 30*time.Second)
		verify(t, hook.Secret, reqs[1])
		assert.Contains(t, string(reqs[1].Body), eventID)
		latestClosedRun(t, workflows.DispatchWorkflowID(eventID))
		assert.GreaterOrEqual(t, frontend.accepted.Load(), int32(2), "the worker's and the API's connections went through the TLS frontend")
	})

	noCert := base
	noCert.TemporalTLSServerCAPath = caPath
	noCA := base
	noCA.TemporalTLS = "true"
	noCA.TemporalTLSClientCertPath, noCA.TemporalTLSClientKeyPath = certPath, keyPath
	otherCA := tlstest.NewCA(t, "another CA").Client(t, "stranger")
	stranger := mtls
	stranger.TemporalTLSClientCertPath = tlstest.WriteFile(t, dir, "stranger.pem", otherCA.CertPEM)
	stranger.TemporalTLSClientKeyPath = tlstest.WriteFile(t, dir, "stranger.key", otherCA.KeyPEM)
	tests := []struct {
		name string
		cfg  config.Config
	}{
		{name: "plaintext", cfg: base},
		{name: "without a client certificate", cfg: noCert},
		{name: "without the CA", cfg: noCA},
		{name: "with a certificate the frontend does not trust", cfg: stranger},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, tt.cfg.Validate(config.RoleDispatch))
			tt.cfg.TemporalDialTimeout = time.Millisecond // one try: a refusal does not pass with time
			refusedBefore := frontend.refused.Load()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := temporalclient.Dial(ctx, tt.cfg, logs.Logger(), nil)
			require.Error(t, err, "the worker does not connect")
			assert.False(t, errors.Is(err, context.DeadlineExceeded), "refused, not timed out: %v", err)

			ac, err := temporalclient.NewLazy(tt.cfg, logs.Logger())
			require.NoError(t, err)
			t.Cleanup(ac.Close)
			s := newAPIStack(t, testfixture.Box(t), ac, tt.cfg.TemporalTaskQueue)
			rec := newRecorder(s.router, http.MethodGet, "/readyz")
			assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "the API does not reach Temporal: %s", rec.Body.String())
			assert.Greater(t, frontend.refused.Load(), refusedBefore, "the frontend refused the handshake")
		})
	}
}
