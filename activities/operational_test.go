package activities_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/operational"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/signing"
)

// starts records the operational events the activities start, as the worker's starter
// would start their workflows.
type starts struct {
	mu  sync.Mutex
	got []activities.OperationalEvent
}

func (s *starts) start(_ context.Context, ev activities.OperationalEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, ev)
	return nil
}

// types lists the distinct events started, in order of first start.
func (s *starts) types() []operational.Type {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []operational.Type
	for _, ev := range s.got {
		if !seen[ev.EventID] {
			seen[ev.EventID] = true
			out = append(out, ev.Type)
		}
	}
	return out
}

// opsActivities builds activities that send operational events to url, signed with
// secret, and record what they start in st.
func opsActivities(t *testing.T, db bun.IDB, box *secrets.Box, url, secret string, alertAfter, disableAfter int, st *starts) *activities.Delivery {
	t.Helper()
	cfg := testConfig()
	cfg.DisableAfterFailures = disableAfter
	cfg.Operational = activities.OperationalConfig{
		URL: url, Secret: secret, AlertAfterFailures: alertAfter, Start: st.start,
		Client: activities.NewHTTPClient(time.Second, 4, netguard.NewPolicy(true, nil)),
	}
	remember(secret)
	return newActivities(t, db, box, cfg, time.Second)
}

func newOpsSecret(t *testing.T) string {
	t.Helper()
	s, err := secrets.Generate()
	require.NoError(t, err)
	return s
}

func TestCompleteTellsFailingThenDisabledOnce(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	var st starts
	s := opsActivities(t, db, box, "http://127.0.0.1:9/ops", newOpsSecret(t), 2, 3, &st)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")

	var last activities.CompleteInput
	for range 4 { // the fourth finds the webhook off already
		last = outcome(h, delivery.KindEvent, false)
		complete(t, env, s, last)
	}
	complete(t, env, s, last) // a retried outcome step: nothing new
	assert.Equal(t, []operational.Type{operational.WebhookFailing, operational.WebhookDisabled}, st.types())

	var rows []struct {
		Type string          `bun:"type"`
		Data json.RawMessage `bun:"data"`
	}
	require.NoError(t, db.NewRaw(`SELECT type, data FROM operational_events WHERE webhook_id = ? ORDER BY type`, h.ID).Scan(context.Background(), &rows))
	require.Len(t, rows, 2, "each event once")
	var disabled, failing operational.Data
	require.NoError(t, json.Unmarshal(rows[0].Data, &disabled))
	require.NoError(t, json.Unmarshal(rows[1].Data, &failing))
	assert.Equal(t, operational.Data{UserID: h.UserID, WebhookID: h.ID, WebhookName: "hook", FailureCount: 3,
		Reason: "disabled after 3 consecutive failed deliveries"}, disabled)
	assert.Equal(t, 2, failing.FailureCount)
	assert.Equal(t, "receiver answered HTTP 500", failing.LastError)

	// Successes, tests and a streak that stays below the threshold tell nothing.
	var quiet starts
	s2 := opsActivities(t, db, box, "http://127.0.0.1:9/ops", newOpsSecret(t), 2, 0, &quiet)
	env2 := newEnv(t, s2)
	h2 := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
	complete(t, env2, s2, outcome(h2, delivery.KindEvent, false))
	complete(t, env2, s2, outcome(h2, delivery.KindEvent, true))
	complete(t, env2, s2, outcome(h2, delivery.KindTest, false))
	complete(t, env2, s2, outcome(h2, delivery.KindTest, false))
	complete(t, env2, s2, outcome(h2, delivery.KindEvent, false))
	assert.Empty(t, quiet.types())
}

func TestGoneTellsDisabledOnce(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	var st starts
	s := opsActivities(t, db, box, "http://127.0.0.1:9/ops", newOpsSecret(t), 0, 10, &st)
	env := newEnv(t, s)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusGone))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)

	in := eventInput(h.ID)
	_, err := send(t, env, s, in)
	assert.Equal(t, activities.ErrTypeGone, appError(t, err).Type())
	assert.False(t, webhook(t, db, h).IsActive)
	assert.Empty(t, st.types(), "the outcome step starts it")

	done := outcome(h, delivery.KindEvent, false)
	done.Identity, done.EventID, done.Gone, done.StatusCode = in.Identity, in.Payload.ID, true, http.StatusGone
	complete(t, env, s, done)
	assert.Equal(t, []operational.Type{operational.WebhookDisabled}, st.types())
	// A test delivery answered 410 switches the webhook off too, and says so.
	var st2 starts
	s2 := opsActivities(t, db, box, "http://127.0.0.1:9/ops", newOpsSecret(t), 0, 10, &st2)
	env2 := newEnv(t, s2)
	h2 := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	probe := eventInput(h2.ID)
	probe.Kind, probe.MaxAttempts = delivery.KindTest, 1
	_, err = send(t, env2, s2, probe)
	assert.Equal(t, activities.ErrTypeGone, appError(t, err).Type())
	closed := outcome(h2, delivery.KindTest, false)
	closed.Identity, closed.Gone = probe.Identity, true
	complete(t, env2, s2, closed)
	assert.Equal(t, []operational.Type{operational.WebhookDisabled}, st2.types())

	evs, err := operational.Recorded(context.Background(), db, st.got[0].EventID)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	var data operational.Data
	require.NoError(t, json.Unmarshal(evs[0].Data, &data))
	assert.Equal(t, models.GoneReason, data.Reason)
}

func TestSendOperationalSignsAndKeepsTheBudget(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	secret := newOpsSecret(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	rcv.FailFirst(1)
	var st starts
	s := opsActivities(t, db, box, rcv.URL+"/ops", secret, 1, 10, &st)
	env := newEnv(t, s)
	h := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
	complete(t, env, s, outcome(h, delivery.KindEvent, false))
	require.Len(t, st.got, 1)
	in := activities.SendOperationalInput{OperationalEvent: st.got[0], MaxAttempts: 2, Backoff: testBackoff}

	_, err := env.ExecuteActivity(s.SendOperational, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeHTTPStatus, appErr.Type())
	assert.False(t, appErr.NonRetryable())
	assert.Equal(t, testBackoff.After(1), appErr.NextRetryDelay(), "the run's backoff")

	val, err := env.ExecuteActivity(s.SendOperational, in)
	require.NoError(t, err)
	var res activities.SendOperationalResult
	require.NoError(t, val.Get(&res))
	assert.Equal(t, 2, res.Attempt)

	val, err = env.ExecuteActivity(s.SendOperational, in)
	require.NoError(t, err, "an event sent is not sent again")
	require.NoError(t, val.Get(&res))
	assert.True(t, res.Already)

	reqs := rcv.Requests()
	require.Len(t, reqs, 2)
	for _, r := range reqs {
		assert.True(t, signing.Verify(secret, r.Body, r.Header.Get(signing.HeaderSignature)), "signed with OPERATIONAL_WEBHOOK_SECRET")
		assert.Equal(t, "webhook.failing", r.Header.Get(signing.HeaderEvent))
		assert.Equal(t, in.EventID, r.Header.Get(signing.HeaderDelivery))
		assert.Equal(t, in.EventID, r.Header.Get(signing.HeaderWebhookID))
	}
	assert.Equal(t, reqs[0].Body, reqs[1].Body, "every attempt carries the same bytes")
	var body struct {
		ID   string           `json:"id"`
		Type operational.Type `json:"type"`
		Data operational.Data `json:"data"`
	}
	require.NoError(t, json.Unmarshal(reqs[1].Body, &body))
	assert.Equal(t, in.EventID, body.ID)
	assert.Equal(t, operational.WebhookFailing, body.Type)
	assert.Equal(t, h.ID, body.Data.WebhookID)
	assert.Equal(t, h.UserID, body.Data.UserID)

	// A backend that never answers 2xx gets the budget, then the event fails for good.
	down := testfixture.NewReceiver(t, testfixture.Status(http.StatusBadGateway))
	var st2 starts
	s2 := opsActivities(t, db, box, down.URL, secret, 1, 10, &st2)
	env2 := newEnv(t, s2)
	h2 := createHook(t, db, box, "user-"+uuid.NewString(), "http://127.0.0.1:9/never")
	complete(t, env2, s2, outcome(h2, delivery.KindEvent, false))
	in2 := activities.SendOperationalInput{OperationalEvent: st2.got[0], MaxAttempts: 2, Backoff: testBackoff}
	_, err = env2.ExecuteActivity(s2.SendOperational, in2)
	assert.False(t, appError(t, err).NonRetryable())
	_, err = env2.ExecuteActivity(s2.SendOperational, in2)
	assert.True(t, appError(t, err).NonRetryable(), "the last attempt ends it")
	_, err = env2.ExecuteActivity(s2.SendOperational, in2)
	assert.Equal(t, activities.ErrTypeExhausted, appError(t, err).Type())
	assert.Len(t, down.Requests(), 2)
	assert.False(t, logged(secret), "the secret is never logged")
}

func TestSendOperationalOffOnThisWorker(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	s := newActivities(t, db, box, testConfig(), time.Second)
	env := newEnv(t, s)
	_, err := env.ExecuteActivity(s.SendOperational, activities.SendOperationalInput{
		OperationalEvent: activities.OperationalEvent{EventID: uuid.NewString()}, MaxAttempts: 3,
	})
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeOperationalOff, appErr.Type())
	assert.True(t, appErr.NonRetryable())
}
