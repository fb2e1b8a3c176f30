package e2e_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/secrets"
)

// The worker as deployed, at its most talkative level, through every path that logs:
// an inline delivery, children, retries, a 410 that switches a webhook off, a secret
// rotation and a test delivery. Its output must hold no signing secret, no master key
// and no credential from a receiver's URL.
func TestWorkerLogsHoldNoSecret(t *testing.T) {
	masterKey, box := newMasterKey(t)
	tq := "logs-" + uuid.NewString()
	w := startWorkerProcess(t, masterKey, tq, "LOG_LEVEL=debug", "WEBHOOK_RETRY_MAX_ATTEMPTS=2")
	s := newAPIStack(t, box, testinfra.Temporal(t), tq)
	ok, failing, gone := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK)), testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError)), testfixture.NewReceiver(t, testfixture.Status(http.StatusGone))
	single, many := newUser(), newUser()
	const token = "receiver-credential-4f1c"
	hooks := []created{
		s.createWebhook(single, ok.URL+"/in?token="+token, "LOW_STOCK"),
		s.createWebhook(many, ok.URL+"/in?token="+token, "LOW_STOCK"),
		s.createWebhook(many, failing.URL+"/fail?token="+token, "LOW_STOCK"),
		s.createWebhook(many, gone.URL+"/gone?token="+token, "LOW_STOCK"),
	}
	d := dispatch.NewWebhookDispatchService(testinfra.Temporal(t), tq)
	for _, user := range []string{single, many} {
		id, err := d.Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: map[string]any{"sku": "X-1"}})
		require.NoError(t, err)
		for _, h := range hooks {
			if (user == single) == (h.ID == hooks[0].ID) {
				deliveryResult(t, id, h.ID)
			}
		}
	}
	var rotated struct{ Secret string }
	require.Equal(t, http.StatusOK, s.call(single, http.MethodPost, "/webhooks/"+hooks[0].ID+"/rotate-secret", nil, &rotated))
	require.Equal(t, http.StatusOK, s.call(single, http.MethodPost, "/webhooks/"+hooks[0].ID+"/test", nil, nil))
	require.Len(t, failing.Requests(), 2, "both attempts were made, so the retry path logged")
	require.Len(t, gone.Requests(), 1)

	w.stop()
	logs := w.logs.String()
	require.Contains(t, logs, "worker starting", "the output was captured")
	require.Contains(t, logs, `"level":"DEBUG"`, "the worker logged at debug level")
	forbidden := map[string]string{"master key": masterKey, "receiver credential": token, "rotated secret": rotated.Secret}
	for _, h := range hooks {
		forbidden["secret of "+h.ID] = h.Secret
	}
	for what, v := range forbidden {
		require.NotEmpty(t, v, what)
		assert.NotContains(t, logs, v, "%s in the worker's logs", what)
		if body, found := strings.CutPrefix(v, secrets.Prefix); found {
			assert.NotContains(t, logs, body, "%s (without its prefix) in the worker's logs", what)
		}
	}
}
