//go:build unix

package e2e_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"

	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/workflows"
)

// TestTypeScriptCodecContract runs the TypeScript client's encryption contract
// (clients/typescript/src/test/codec-contract.ts) against a stack that encrypts: an event
// the TypeScript codec sealed is opened and delivered by the Go worker, and an event the
// Go service sealed opens with the TypeScript codec; neither leaves plaintext in history.
func TestTypeScriptCodecContract(t *testing.T) {
	testinfra.NeedsFullSuite(t, "npm")

	key := payloadKey(t, "cross-1")
	s := newEncryptedStack(t, withPayloadKeys(testfixture.WorkerConfig(), key))
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := s.createWebhook(user, rcv.URL, "ASSET_TRANSFERRED")
	private := "private-" + testinfra.RandomHex(8)

	goEventID := "evt_go_" + testinfra.RandomHex(8)
	_, err := dispatch.NewNotificationDispatchService(dispatch.NewWebhookDispatchService(s.temporal, s.taskQueue)).
		Dispatch(context.Background(), dispatch.Notification{
			ID: goEventID, UserID: user, Event: events.AssetTransferred,
			Title: private + "-go-title", Message: private + "-go-message",
		})
	require.NoError(t, err)
	latestClosedRun(t, workflows.DispatchWorkflowID(goEventID))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	npm, pkg := typescriptClient(ctx, t)
	runNPM(ctx, t, npm, pkg, nil, "run", "build")
	tsEventID := "evt_ts_" + testinfra.RandomHex(8)
	out := runNPM(ctx, t, npm, pkg, []string{
		"TEMPORAL_ADDRESS=" + testinfra.TemporalAddress(t),
		"TEMPORAL_TASK_QUEUE=" + s.taskQueue,
		"TEMPORAL_PAYLOAD_KEY=" + base64.StdEncoding.EncodeToString(key.Bytes),
		"TEMPORAL_PAYLOAD_KEY_ID=" + key.ID,
		"ASSETSUP_USER_ID=" + user,
		"ASSETSUP_TS_EVENT_ID=" + tsEventID,
		"ASSETSUP_GO_EVENT_ID=" + goEventID,
		"ASSETSUP_PRIVATE=" + private,
	}, "exec", "--", "node", "--test", "dist/test/codec-contract.js")
	require.Contains(t, out, "# pass 2", out)
	require.Contains(t, out, "# fail 0", out)

	// The TypeScript-sealed event reached the receiver in plaintext, signed.
	var delivered bool
	for _, r := range rcv.Requests() {
		if r.Header.Get("webhook-id") == tsEventID {
			verify(t, hook.Secret, r)
			assert.Contains(t, string(r.Body), private+"-ts-title")
			delivered = true
		}
	}
	assert.True(t, delivered, "the Go worker delivered the TypeScript event")

	// And neither event's history holds plaintext: every payload is sealed under the key.
	for _, id := range []string{tsEventID, goEventID} {
		wid := workflows.DispatchWorkflowID(id)
		h := workflowHistory(t, wid, latestClosedRun(t, wid))
		requireNoPlaintext(t, wid, private, h)
		sealed, _ := payloadsOf(t, h)
		for _, p := range sealed {
			require.Equal(t, payloadcodec.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]), wid)
			require.Equal(t, key.ID, string(p.GetMetadata()[payloadcodec.MetadataKeyID]), wid)
		}
	}
}
