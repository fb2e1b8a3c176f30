package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/payloadcodec"
)

// `webhooks codec-server` serves the codec protocol with the configured keys to the
// token holder, and stops cleanly on SIGTERM (a cancelled context).
func TestCodecServerCommand(t *testing.T) {
	keyBytes := bytes.Repeat([]byte{5}, 32)
	token := strings.Repeat("t", 40)
	addr, err := testinfra.FreeAddr()
	require.NoError(t, err)
	t.Setenv("TEMPORAL_PAYLOAD_KEY", base64.StdEncoding.EncodeToString(keyBytes))
	t.Setenv("TEMPORAL_PAYLOAD_KEY_ID", "cmd-1")
	t.Setenv("CODEC_SERVER_TOKEN", token)
	t.Setenv("CODEC_SERVER_ADDR", addr)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"codec-server"}, io.Discard) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "a stop is not an error")
		case <-time.After(10 * time.Second):
			t.Error("the codec server did not stop")
		}
	})
	base := "http://" + addr
	require.Eventually(t, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusNoContent
	}, 10*time.Second, 50*time.Millisecond, "the codec server listens on CODEC_SERVER_ADDR")
	_, stillSet := os.LookupEnv("CODEC_SERVER_TOKEN")
	assert.False(t, stillSet, "the token is cleared from the environment once read")

	codec, err := payloadcodec.New(payloadcodec.Key{ID: "cmd-1", Bytes: keyBytes})
	require.NoError(t, err)
	p, err := converter.GetDefaultDataConverter().ToPayload("Generator G-2 moved to Kano")
	require.NoError(t, err)
	sealed, err := codec.Encode([]*commonpb.Payload{p})
	require.NoError(t, err)
	body, err := protojson.Marshal(&commonpb.Payloads{Payloads: sealed})
	require.NoError(t, err)

	for _, tt := range []struct {
		name string
		auth string
		want int
	}{
		{name: "token holder", auth: "Bearer " + token, want: http.StatusOK},
		{name: "anyone else", want: http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, base+"/decode", bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.want, resp.StatusCode, string(b))
			if tt.want == http.StatusOK {
				var got commonpb.Payloads
				require.NoError(t, protojson.Unmarshal(b, &got))
				var s string
				require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(&got, &s))
				assert.Equal(t, "Generator G-2 moved to Kano", s)
			}
		})
	}
}

func TestCodecServerCommandRefusesBadConfiguration(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{name: "no keys", env: map[string]string{"CODEC_SERVER_TOKEN": strings.Repeat("t", 40)}, want: "TEMPORAL_PAYLOAD_KEY"},
		{name: "no token", env: map[string]string{"TEMPORAL_PAYLOAD_KEY": base64.StdEncoding.EncodeToString(make([]byte, 32))}, want: "CODEC_SERVER_TOKEN is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TEMPORAL_PAYLOAD_KEY", "")
			t.Setenv("CODEC_SERVER_TOKEN", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			err := run(context.Background(), []string{"codec-server"}, io.Discard)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
