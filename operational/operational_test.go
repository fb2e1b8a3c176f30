package operational_test

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/operational"
)

func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

func TestEventIDNamesOneEventPerCause(t *testing.T) {
	d1, d2 := operational.DeliveryCause(uuid.NewString()), operational.DeliveryCause(uuid.NewString())
	assert.Equal(t, operational.EventID(d1, operational.WebhookFailing), operational.EventID(d1, operational.WebhookFailing))
	assert.NotEqual(t, operational.EventID(d1, operational.WebhookFailing), operational.EventID(d1, operational.WebhookDisabled))
	assert.NotEqual(t, operational.EventID(d1, operational.WebhookFailing), operational.EventID(d2, operational.WebhookFailing))
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	assert.Equal(t, operational.RotationCause("w", at), operational.RotationCause("w", at.In(time.FixedZone("x", 3600))))
}

func TestBodyIsTheSameBytesEveryTime(t *testing.T) {
	ev, err := operational.NewEvent("recovery:r", operational.RecoveryCompleted, operational.Data{
		UserID: "u", WebhookID: "w", WebhookName: "n", Reason: "r",
		Recovery: &operational.RecoverySummary{RecoveryID: "r", State: "completed", Matched: 3, Redelivered: 2, Succeeded: 2},
	})
	require.NoError(t, err)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.FixedZone("x", 3600))
	a, err := operational.Body(ev.ID, ev.Type, at, ev.Data)
	require.NoError(t, err)
	b, err := operational.Body(ev.ID, ev.Type, at, ev.Data)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	var got struct {
		ID        string         `json:"id"`
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal(a, &got))
	assert.Equal(t, ev.ID, got.ID)
	assert.Equal(t, "webhook.recovery_completed", got.Type)
	assert.Equal(t, "2026-12-01T09:00:00Z", got.Timestamp)
	assert.Equal(t, "u", got.Data["userId"])
	assert.NotContains(t, got.Data, "previousSecretExpiredAt", "fields of other types are left out")
}

func TestCatalogueNamesEveryType(t *testing.T) {
	var names []operational.Type
	for _, d := range operational.Catalogue() {
		assert.NotEmpty(t, d.Description)
		names = append(names, d.Name)
	}
	assert.Equal(t, []operational.Type{operational.WebhookDisabled, operational.WebhookFailing,
		operational.RecoveryCompleted, operational.SecretRotationEnded}, names)
}

func TestRecordAndClaim(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	ev, err := operational.NewEvent(operational.DeliveryCause(uuid.NewString()), operational.WebhookFailing, operational.Data{
		UserID: "u", WebhookID: uuid.NewString(), WebhookName: "n", Reason: "3 consecutive failed deliveries", FailureCount: 3,
	})
	require.NoError(t, err)
	require.NoError(t, operational.Record(ctx, db, ev))
	again := ev
	again.Data = json.RawMessage(`{"reason":"other"}`)
	require.NoError(t, operational.Record(ctx, db, again), "a cause recorded twice is one event")
	got, err := operational.Get(ctx, db, ev.ID)
	require.NoError(t, err)
	assert.JSONEq(t, string(ev.Data), string(got.Data), "the first recording stands")
	assert.Nil(t, got.SentAt)

	tests := []struct{ want int }{{1}, {2}, {0}}
	for _, tt := range tests {
		n, err := operational.ClaimAttempt(ctx, db, ev.ID, 2)
		require.NoError(t, err)
		assert.Equal(t, tt.want, n, "attempts are counted up to the budget")
	}
	require.NoError(t, operational.RecordAttempt(ctx, db, ev.ID, true, 204, ""))
	got, err = operational.Get(ctx, db, ev.ID)
	require.NoError(t, err)
	assert.NotNil(t, got.SentAt)
	n, err := operational.ClaimAttempt(ctx, db, ev.ID, 10)
	require.NoError(t, err)
	assert.Zero(t, n, "a sent event is not sent again")

	_, err = operational.Get(ctx, db, uuid.NewString())
	require.ErrorIs(t, err, operational.ErrNotFound)
}

func TestDeactivateGoneRecordsOneEvent(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	h := testfixture.CreateWebhook(t, db, testfixture.Box(t), testfixture.Webhook{
		UserID: "user-" + uuid.NewString(), URL: "http://127.0.0.1:9/in", Events: []string{"LOW_STOCK"}, Name: "billing",
	})
	id := operational.EventID(operational.DeliveryCause(uuid.NewString()), operational.WebhookDisabled)
	off, err := operational.DeactivateGone(ctx, db, h.ID, models.GoneReason, id)
	require.NoError(t, err)
	assert.True(t, off)
	off, err = operational.DeactivateGone(ctx, db, h.ID, models.GoneReason, operational.EventID("other", operational.WebhookDisabled))
	require.NoError(t, err)
	assert.False(t, off, "already off: no second event")

	evs, err := operational.Recorded(ctx, db, id, operational.EventID("other", operational.WebhookDisabled))
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var data operational.Data
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	assert.Equal(t, operational.Data{UserID: h.UserID, WebhookID: h.ID, WebhookName: "billing", Reason: models.GoneReason}, data)
	w, err := models.GetWebhook(ctx, db, h.UserID, h.ID)
	require.NoError(t, err)
	assert.False(t, w.IsActive)
	assert.Equal(t, models.GoneReason, *w.DisabledReason)
}

func TestRotationEndedOnlyForTheLatestRotation(t *testing.T) {
	db, ctx := testinfra.DB(t), context.Background()
	box := testfixture.Box(t)
	h := testfixture.CreateWebhook(t, db, box, testfixture.Webhook{UserID: "user-" + uuid.NewString(), URL: "http://127.0.0.1:9/in", Events: []string{"LOW_STOCK"}})
	rotate := func() time.Time {
		t.Helper()
		sealed, version, err := box.Seal(h.ID, "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
		require.NoError(t, err)
		at, err := models.RotateSecret(ctx, db, h.UserID, h.ID, models.SecretRotation{Hash: "h", Sealed: sealed, KeyVersion: version, Grace: time.Hour})
		require.NoError(t, err)
		return at
	}
	first := rotate()
	second := rotate()

	ev, err := operational.RotationEnded(ctx, db, h.ID, first)
	require.NoError(t, err)
	assert.Nil(t, ev, "rotated again since: that rotation's end is told")
	ev, err = operational.RotationEnded(ctx, db, h.ID, second)
	require.NoError(t, err)
	require.NotNil(t, ev)
	assert.Equal(t, operational.SecretRotationEnded, ev.Type)
	again, err := operational.RotationEnded(ctx, db, h.ID, second)
	require.NoError(t, err)
	assert.Equal(t, ev.ID, again.ID, "the same end is the same event")
	ev, err = operational.RotationEnded(ctx, db, uuid.NewString(), second)
	require.NoError(t, err)
	assert.Nil(t, ev, "a deleted webhook has nothing to tell")
}
