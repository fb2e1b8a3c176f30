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
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/secrets"
)

// infraRetries reads webhooks_infrastructure_retries_total{type=errType} from reg.
func infraRetries(t *testing.T, reg *prometheus.Registry, errType string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "webhooks_infrastructure_retries_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "type" && l.GetValue() == errType {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// assertOurs checks the failure of an attempt that sent nothing because of the service
// itself: retried by Temporal with a wait of its own, never ending the delivery.
func assertOurs(t *testing.T, err error, wantType string, cfg activities.Config) {
	t.Helper()
	appErr := appError(t, err)
	assert.Equal(t, wantType, appErr.Type())
	assert.True(t, activities.IsOurs(appErr.Type()))
	assert.False(t, appErr.NonRetryable(), "our own failure ended the delivery")
	assert.Positive(t, appErr.NextRetryDelay(), "our own failure must ask for its wait: Temporal's would grow with the receiver's backoff")
	assert.LessOrEqual(t, appErr.NextRetryDelay(), cfg.InfraRetryMaxInterval)
	assert.Contains(t, appErr.Message(), "nothing sent")
}

// outageConfig waits for the database briefly, as the worker's first try of an attempt
// does before it hands the wait to Temporal.
func outageConfig() (activities.Config, *prometheus.Registry) {
	cfg := testConfig()
	cfg.DBRetryTimeout = time.Second
	reg := prometheus.NewRegistry()
	cfg.Metrics = activities.NewMetrics(reg)
	return cfg, reg
}

// The database is the private server's, which the test stops and starts; one server
// serves both outages, since creating one takes seconds.
func TestSendCostsNothingWhileTheDatabaseIsDown(t *testing.T) {
	pg := testinfra.StartPrivatePostgres(t)
	db, box := pg.Open(), testfixture.Box(t)
	outageBeforeTheRead(t, pg, db, box)
	outageBeforeTheClaim(t, pg, db, box)
}

// outageBeforeTheRead: the database is down when the attempt starts.
func outageBeforeTheRead(t *testing.T, pg *testinfra.PrivatePostgres, db bun.IDB, box *secrets.Box) {
	t.Helper()
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	cfg, reg := outageConfig()
	s := newActivities(t, db, box, cfg, 5*time.Second)
	env := newEnv(t, s)
	in := eventInput(h.ID)

	pg.Stop()
	for range 2 { // an outage outlasting several tries still costs nothing
		start := time.Now()
		_, err := send(t, env, s, in)
		assertOurs(t, err, activities.ErrTypeDatabase, cfg)
		assert.Less(t, time.Since(start), cfg.DBRetryTimeout+3*time.Second, "the attempt held on to the outage instead of handing it to Temporal")
	}
	assert.Empty(t, rcv.Requests(), "a request went out while the database was down")
	assert.Equal(t, 2.0, infraRetries(t, reg, activities.ErrTypeDatabase))

	pg.Start()
	res, err := send(t, env, s, in)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempt, "the outage used an attempt")
	assert.Len(t, rcv.Requests(), 1)
	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, 1, d.Attempts)
	assert.Equal(t, delivery.OutcomeSucceeded, d.Status)
}

// outageBeforeTheClaim: the database goes while an attempt queues for a connection,
// after it read its target, so its claim fails and nothing is sent. The attempt that
// held the connection was sent and stays counted, though recording its answer failed.
func outageBeforeTheClaim(t *testing.T, pg *testinfra.PrivatePostgres, db bun.IDB, box *secrets.Box) {
	t.Helper()
	rcv, entered, release := holdingReceiver(t, func(n int) bool { return n == 0 })
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	cfg, reg := outageConfig()
	cfg.MaxConnsPerHost = 1
	cfg.ConnWaitTimeout = 30 * time.Second
	s := newActivities(t, db, box, cfg, 10*time.Second)
	first, second := eventInput(h.ID), eventInput(h.ID)

	var wg sync.WaitGroup
	var firstRes, secondRes activities.SendResult
	var firstErr, secondErr error
	firstEnv, secondEnv := newEnv(t, s), newEnv(t, s)
	wg.Go(func() { firstRes, firstErr = execute(firstEnv, s, first) })
	<-entered
	wg.Go(func() { secondRes, secondErr = execute(secondEnv, s, second) })
	// Time for the second attempt to read its target and queue behind the first; were it
	// slower, it would fail on the read instead, with the same outcome.
	time.Sleep(500 * time.Millisecond)
	pg.Stop()
	release()
	wg.Wait()

	require.NoError(t, firstErr, "an attempt the receiver answered failed on its record")
	assert.Equal(t, 1, firstRes.Attempt)
	assert.Equal(t, activities.SendResult{}, secondRes)
	assertOurs(t, secondErr, activities.ErrTypeDatabase, cfg)
	assert.Len(t, rcv.Requests(), 1, "an attempt was sent without its claim")
	assert.Equal(t, 1.0, infraRetries(t, reg, activities.ErrTypeDatabase))
	assert.True(t, logged(`"msg":"record attempt"`, `"ActivityType":"Send"`, first.DeliveryID), "the lost record is not logged")

	pg.Start()
	d := logRow(t, db, h.ID, first.DeliveryID)
	assert.Equal(t, 1, d.Attempts, "the sent attempt was claimed before it went out")
	assert.Equal(t, delivery.OutcomePending, d.Status, "the answer could not be recorded")
	noLogRow(t, db, h.ID, second.DeliveryID)

	res, err := send(t, newEnv(t, s), s, second)
	require.NoError(t, err)
	assert.Equal(t, 1, res.Attempt, "the outage used the second delivery's attempt")
	assert.Len(t, rcv.Requests(), 2)
}
