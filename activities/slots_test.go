package activities_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
)

// Waiting for one of a host's connections is not part of an attempt: three deliveries
// to a receiver that takes 600ms, over one connection, all make it on their first
// attempt within a 1s HTTP timeout, though the last waits 1.2s for its turn.
func TestSendQueuesForAConnectionWithoutUsingAnAttempt(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	var mu sync.Mutex
	inFlight, most := 0, 0
	rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(600 * time.Millisecond)
		mu.Lock()
		inFlight--
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	cfg := testConfig()
	cfg.MaxConnsPerHost = 1
	cfg.ConnWaitTimeout = 5 * time.Second
	s := newActivities(t, db, box, cfg, time.Second)

	const n = 3
	ins := make([]activities.SendInput, n)
	results := make([]activities.SendResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		ins[i] = eventInput(h.ID)
		env := newEnv(t, s)
		wg.Go(func() { results[i], errs[i] = execute(env, s, ins[i]) })
	}
	wg.Wait()

	for i := range n {
		require.NoError(t, errs[i], "delivery %d", i)
		assert.Equal(t, 1, results[i].Attempt, "delivery %d", i)
		d := logRow(t, db, h.ID, ins[i].DeliveryID)
		assert.Equal(t, 1, d.Attempts)
		assert.Equal(t, delivery.OutcomeSucceeded, d.Status)
	}
	assert.Len(t, rcv.Requests(), n)
	assert.Equal(t, 1, most, "the per-host cap let requests through side by side")
}

// An attempt that finds no free connection within WEBHOOK_CONN_WAIT_TIMEOUT sends
// nothing, claims nothing, and is retried as our failure.
func TestSendGivesUpWaitingForAConnectionWithoutSending(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv, entered, release := holdingReceiver(t, func(n int) bool { return n == 0 })
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	cfg := testConfig()
	cfg.MaxConnsPerHost = 1
	cfg.ConnWaitTimeout = 200 * time.Millisecond
	reg := prometheus.NewRegistry()
	cfg.Metrics = activities.NewMetrics(reg)
	s := newActivities(t, db, box, cfg, 5*time.Second)
	holder, waiter := eventInput(h.ID), eventInput(h.ID)

	var wg sync.WaitGroup
	var holderRes activities.SendResult
	var holderErr error
	env := newEnv(t, s)
	wg.Go(func() { holderRes, holderErr = execute(env, s, holder) })
	<-entered

	start := time.Now()
	_, err := send(t, newEnv(t, s), s, waiter)
	elapsed := time.Since(start)
	assertOurs(t, err, activities.ErrTypeConnectionWait, cfg)
	assert.GreaterOrEqual(t, elapsed, cfg.ConnWaitTimeout, "gave up before WEBHOOK_CONN_WAIT_TIMEOUT")
	assert.Less(t, elapsed, 2*time.Second, "waited well past WEBHOOK_CONN_WAIT_TIMEOUT")
	assert.Len(t, rcv.Requests(), 1, "the waiting attempt was sent")
	noLogRow(t, db, h.ID, waiter.DeliveryID)
	assert.Equal(t, 1.0, infraRetries(t, reg, activities.ErrTypeConnectionWait))

	release()
	wg.Wait()
	require.NoError(t, holderErr)
	assert.Equal(t, 1, holderRes.Attempt)

	// Once the connection is free, the retry is the delivery's first attempt.
	res, err := send(t, newEnv(t, s), s, waiter)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempt)
}

// Connections are capped per host: a slow receiver holding all of its own leaves
// another host (here another port) served at once.
func TestSendSlowHostLeavesOtherHostsAlone(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	slow, entered, release := holdingReceiver(t, func(int) bool { return true })
	quick := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := "user-" + uuid.NewString()
	slowHook, quickHook := createHook(t, db, box, user, slow.URL), createHook(t, db, box, user, quick.URL)
	cfg := testConfig()
	cfg.MaxConnsPerHost = 1
	cfg.ConnWaitTimeout = 200 * time.Millisecond
	s := newActivities(t, db, box, cfg, 5*time.Second)

	var wg sync.WaitGroup
	var slowErr error
	env := newEnv(t, s)
	wg.Go(func() { _, slowErr = execute(env, s, eventInput(slowHook.ID)) })
	<-entered

	start := time.Now()
	res, err := send(t, newEnv(t, s), s, eventInput(quickHook.ID))
	require.NoError(t, err, "the quick host queued behind the slow one")
	assert.Equal(t, 1, res.Attempt)
	assert.Less(t, time.Since(start), time.Second)
	assert.Len(t, quick.Requests(), 1)

	release()
	wg.Wait()
	require.NoError(t, slowErr)
	assert.Len(t, slow.Requests(), 1)
}
