package activities_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// assetsUpSignature is computed here from the definition, not with the signing package:
// "sha256=" + hex(HMAC-SHA256(key = the whole whsec_ string, message = body)).
func assetsUpSignature(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// standardSignature is Standard Webhooks' "v1," + base64(HMAC-SHA256(key = base64-decoded
// part after whsec_, message = id + "." + timestamp + "." + body)), computed here.
func standardSignature(t *testing.T, secret, msgID, timestamp string, body []byte) string {
	t.Helper()
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msgID + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// The independent signers above must agree with the signature vectors in the repository's
// testdata, which were checked against @octokit/webhooks-methods and the official
// standardwebhooks library.
func TestIndependentSignersMatchVectors(t *testing.T) {
	for _, v := range testfixture.SignatureVectors(t) {
		assert.Equal(t, v.AssetsUp, assetsUpSignature(v.Secret, []byte(v.Body)))
		assert.Equal(t, v.WebhookSignature, standardSignature(t, v.Secret, v.WebhookID, v.WebhookTimestamp, []byte(v.Body)))
	}
}

func TestSendSignsTheBytesItSends(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/hooks/assetsup")
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	in := eventInput(h.ID)

	before := time.Now()
	res, err := send(t, newEnv(t, s), s, in)
	require.NoError(t, err)
	assert.False(t, res.Skipped)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 1, res.Attempt)

	hits := rcv.Requests()
	require.Len(t, hits, 1)
	got := hits[0]
	wantBody := `{"id":"` + in.Payload.ID + `","event":"LOW_STOCK","timestamp":"2026-11-28T12:00:00Z","data":{"sku":"A-1","qty":3,"note":"h\u00e9llo \u2713"}}`
	assert.Equal(t, wantBody, string(got.Body), "body must be id, event, timestamp, data in that order")

	assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
	assert.True(t, strings.HasPrefix(got.Header.Get("User-Agent"), "AssetsUp-Webhooks/"), "User-Agent %q", got.Header.Get("User-Agent"))
	assert.Equal(t, "LOW_STOCK", got.Header.Get("X-AssetsUp-Event"))
	assert.Equal(t, in.DeliveryID, got.Header.Get("X-AssetsUp-Delivery"))
	assert.Equal(t, assetsUpSignature(h.Secret, got.Body), got.Header.Get("X-AssetsUp-Signature"))

	ts := got.Header.Get("X-AssetsUp-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, sec, before.Unix()-1)
	assert.LessOrEqual(t, sec, time.Now().Unix()+1)

	assert.Equal(t, in.Payload.ID, got.Header.Get("webhook-id"))
	assert.Equal(t, ts, got.Header.Get("webhook-timestamp"))
	assert.Equal(t, standardSignature(t, h.Secret, in.Payload.ID, ts, got.Body), got.Header.Get("webhook-signature"))

	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, delivery.OutcomeSucceeded, d.Status)
	assert.Equal(t, got.Body, d.RequestBody)
}

func TestSendRetriesSendIdenticalBodies(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n < 2 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)
	in := eventInput(h.ID)

	for n := 1; n <= 2; n++ {
		_, err := send(t, env, s, in)
		appErr := appError(t, err)
		assert.Equal(t, activities.ErrTypeHTTPStatus, appErr.Type(), "attempt %d", n)
		assert.False(t, appErr.NonRetryable())
		assert.Equal(t, activities.SendFailure{Attempt: n, StatusCode: http.StatusInternalServerError}, failureOf(t, appErr))

		d := logRow(t, db, h.ID, in.DeliveryID)
		assert.Equal(t, delivery.OutcomePending, d.Status)
		assert.Equal(t, n, d.Attempts)
		require.NotNil(t, d.LastStatusCode)
		assert.Equal(t, http.StatusInternalServerError, *d.LastStatusCode)
	}
	res, err := send(t, env, s, in)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 3, res.Attempt)

	hits := rcv.Requests()
	require.Len(t, hits, 3)
	for _, h := range hits[1:] {
		assert.Equal(t, hits[0].Body, h.Body)
		assert.Equal(t, in.DeliveryID, h.Header.Get("X-AssetsUp-Delivery"))
		assert.Equal(t, hits[0].Header.Get("webhook-id"), h.Header.Get("webhook-id"))
	}
	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, delivery.OutcomeSucceeded, d.Status)
	assert.Equal(t, hits[0].Body, d.RequestBody)

	// A retry of an attempt that already succeeded (the worker died before reporting
	// it) must not POST again, and must report the success.
	res, err = send(t, env, s, in)
	require.NoError(t, err)
	assert.False(t, res.Skipped)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, 3, res.Attempt, "the success reports the attempt that made it")
	assert.Len(t, rcv.Requests(), 3, "an already-succeeded delivery was sent again")
}

func TestSendTimeout(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
		w.WriteHeader(http.StatusOK)
	})
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/slow?token=supersecret")
	s := newActivities(t, db, box, testConfig(), 300*time.Millisecond)
	in := eventInput(h.ID)

	start := time.Now()
	_, err := send(t, newEnv(t, s), s, in)
	appErr := appError(t, err)
	assert.Less(t, time.Since(start), 2*time.Second)
	assert.Equal(t, activities.ErrTypeTimeout, appErr.Type())
	assert.False(t, appErr.NonRetryable())
	assert.Equal(t, testBackoff.After(1), appErr.NextRetryDelay(), "a timeout waits the run's backoff")
	assert.Equal(t, activities.SendFailure{Attempt: 1}, failureOf(t, appErr))
	assert.NotContains(t, appErr.Error(), rcv.Listener.Addr().String())
	assert.NotContains(t, appErr.Error(), "/slow")

	d := logRow(t, db, h.ID, in.DeliveryID)
	assert.Equal(t, 1, d.Attempts, "a timeout uses the receiver's attempt")
	require.NotNil(t, d.LastError)
	assertClean(t, *d.LastError)
	assert.Nil(t, d.LastStatusCode)
}

// smallBuffers shrinks each accepted connection's send buffer so the server notices
// quickly when the client stops reading.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(16 << 10)
	}
	return c, err
}

func TestSendReadsAtMostMaxResponseBytes(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	const total = 10 << 20
	written := make(chan int, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := bytes.Repeat([]byte("x"), 32<<10)
		n := 0
		for n < total {
			k, err := w.Write(chunk)
			n += k
			if err != nil {
				break
			}
		}
		written <- n
	}))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	require.True(t, strings.HasPrefix(srv.URL, "http://127.0.0.1:"))

	h := createHook(t, db, box, "user-"+uuid.NewString(), srv.URL)
	cfg := testConfig()
	cfg.MaxResponseBytes = 64 << 10
	s := newActivities(t, db, box, cfg, 5*time.Second)
	in := eventInput(h.ID)

	start := time.Now()
	res, err := send(t, newEnv(t, s), s, in)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Less(t, time.Since(start), 3*time.Second)

	select {
	case n := <-written:
		assert.Less(t, n, 4<<20, "the client read far more than MaxResponseBytes of the 10 MiB response")
	case <-time.After(10 * time.Second):
		t.Fatal("the receiver is still writing: the client did not close the response")
	}
	d := logRow(t, db, h.ID, in.DeliveryID)
	require.NotNil(t, d.ResponseExcerpt)
	assert.LessOrEqual(t, len(*d.ResponseExcerpt), 1024)
	assert.Equal(t, strings.Repeat("x", 1024), *d.ResponseExcerpt)
}

func TestSendResponseExcerptStaysWithinCap(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	tests := []struct {
		name string
		give string
	}{
		{name: "two-byte rune cut at the cap", give: "a" + strings.Repeat("é", 600)},
		{name: "three-byte rune cut at the cap", give: "ab" + strings.Repeat("✓", 400)},
		{name: "invalid bytes between ascii", give: strings.Repeat("a\xff", 600)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(http.StatusBadGateway)
				_, _ = w.Write([]byte(tt.give))
			})
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
			s := newActivities(t, db, box, testConfig(), 5*time.Second)
			in := eventInput(h.ID)
			_, err := send(t, newEnv(t, s), s, in)
			assert.Equal(t, activities.ErrTypeHTTPStatus, appError(t, err).Type())

			d := logRow(t, db, h.ID, in.DeliveryID)
			require.NotNil(t, d.ResponseExcerpt)
			assert.LessOrEqual(t, len(*d.ResponseExcerpt), 1024)
			assert.True(t, utf8.ValidString(*d.ResponseExcerpt))
			assert.Greater(t, len(*d.ResponseExcerpt), 1000, "the excerpt should keep nearly all of its 1 KiB")
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	target := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", target.URL+"/elsewhere")
		w.WriteHeader(http.StatusFound)
	})
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	in := eventInput(h.ID)

	_, err := send(t, newEnv(t, s), s, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeHTTPStatus, appErr.Type())
	assert.Equal(t, http.StatusFound, failureOf(t, appErr).StatusCode)
	assert.Contains(t, appErr.Message(), "302")
	assert.Contains(t, appErr.Message(), "redirects")
	assert.Len(t, rcv.Requests(), 1)
	assert.Empty(t, target.Requests(), "the redirect was followed")
}

func TestSendRefusesForbiddenAddress(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL+"/?token=supersecret")
	client := activities.NewHTTPClient(5*time.Second, 16, netguard.NewPolicy(false, nil))
	s := activities.NewDelivery(db, client, box, testConfig())
	in := eventInput(h.ID)

	_, err := send(t, newEnv(t, s), s, in)
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeForbiddenAddress, appErr.Type())
	assert.True(t, appErr.NonRetryable())
	assert.Empty(t, rcv.Requests(), "the guard let the POST through")

	d := logRow(t, db, h.ID, in.DeliveryID)
	require.NotNil(t, d.LastError)
	assert.Contains(t, *d.LastError, "forbidden address")
	assertClean(t, *d.LastError)
}

func TestSendGoneDisablesWebhook(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusGone))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)

	_, err := send(t, env, s, eventInput(h.ID))
	appErr := appError(t, err)
	assert.Equal(t, activities.ErrTypeGone, appErr.Type())
	assert.True(t, appErr.NonRetryable(), "a 410 ends the delivery on its first attempt")
	assert.Zero(t, appErr.NextRetryDelay())
	assert.Equal(t, activities.SendFailure{Attempt: 1, StatusCode: http.StatusGone}, failureOf(t, appErr))

	w := webhook(t, db, h)
	assert.False(t, w.IsActive)
	require.NotNil(t, w.DisabledReason)
	assert.Equal(t, models.GoneReason, *w.DisabledReason)
	assert.NotNil(t, w.DisabledAt)

	// The next event finds it switched off and sends nothing.
	res, err := send(t, env, s, eventInput(h.ID))
	require.NoError(t, err)
	assert.True(t, res.Skipped)
	assert.Len(t, rcv.Requests(), 1)
}

func TestSendHonoursRetryAfter(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	in20s := time.Now().Add(20 * time.Second).UTC().Format(http.TimeFormat)
	anHourAgo := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	tests := []struct {
		name   string
		code   int
		give   string
		max    time.Duration
		want   time.Duration
		within time.Duration
	}{
		{name: "429 seconds", code: http.StatusTooManyRequests, give: "7", max: time.Minute, want: 7 * time.Second},
		{name: "429 http date", code: http.StatusTooManyRequests, give: in20s, max: time.Minute, want: 20 * time.Second, within: 2 * time.Second},
		{name: "429 capped", code: http.StatusTooManyRequests, give: "3600", max: 10 * time.Second, want: 10 * time.Second},
		{name: "429 date capped", code: http.StatusTooManyRequests, give: in20s, max: 10 * time.Second, want: 10 * time.Second},
		{name: "503 seconds", code: http.StatusServiceUnavailable, give: "5", max: time.Minute, want: 5 * time.Second},
		// Without a usable wait from the receiver, the run's backoff for attempt 1 applies.
		{name: "429 date in the past", code: http.StatusTooManyRequests, give: anHourAgo, max: time.Minute, want: testBackoff.After(1)},
		{name: "429 zero", code: http.StatusTooManyRequests, give: "0", max: time.Minute, want: testBackoff.After(1)},
		{name: "429 garbage", code: http.StatusTooManyRequests, give: "soon", max: time.Minute, want: testBackoff.After(1)},
		{name: "429 negative", code: http.StatusTooManyRequests, give: "-5", max: time.Minute, want: testBackoff.After(1)},
		{name: "500 ignores the header", code: http.StatusInternalServerError, give: "7", max: time.Minute, want: testBackoff.After(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tt.give)
				w.WriteHeader(tt.code)
			})
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
			cfg := testConfig()
			cfg.RetryAfterMax = tt.max
			s := newActivities(t, db, box, cfg, 5*time.Second)

			_, err := send(t, newEnv(t, s), s, eventInput(h.ID))
			appErr := appError(t, err)
			assert.Equal(t, activities.ErrTypeHTTPStatus, appErr.Type())
			assert.False(t, appErr.NonRetryable())
			assert.Equal(t, tt.code, failureOf(t, appErr).StatusCode)
			assert.InDelta(t, tt.want, appErr.NextRetryDelay(), float64(tt.within))
		})
	}
}

func TestSendSkipsDeletedAndInactiveWebhooks(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusNoContent))
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)

	t.Run("deleted", func(t *testing.T) {
		h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
		require.NoError(t, models.DeleteWebhook(ctx, db, h.UserID, h.ID))
		res, err := send(t, env, s, eventInput(h.ID))
		require.NoError(t, err)
		assert.True(t, res.Skipped)
		assert.Equal(t, "webhook deleted", res.Reason)
		assert.Empty(t, rcv.Requests())
	})

	t.Run("inactive", func(t *testing.T) {
		h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
		off := false
		_, err := models.UpdateWebhook(ctx, db, h.UserID, h.ID, models.WebhookPatch{IsActive: &off})
		require.NoError(t, err)

		for _, kind := range []delivery.Kind{delivery.KindEvent, delivery.KindRedelivery} {
			in := eventInput(h.ID)
			in.Kind = kind
			res, err := send(t, env, s, in)
			require.NoError(t, err)
			assert.True(t, res.Skipped, kind)
			assert.Equal(t, "webhook inactive", res.Reason)
		}
		assert.Empty(t, rcv.Requests())

		// A test from the portal is how a user checks a paused webhook: it is sent.
		in := activities.SendInput{
			Identity: delivery.Identity{DeliveryID: uuid.NewString(), WebhookID: h.ID, Kind: delivery.KindTest},
			Payload:  events.Payload{Event: events.Test, Timestamp: "2026-11-28T12:00:00Z"},
		}
		res, err := send(t, env, s, in)
		require.NoError(t, err)
		assert.False(t, res.Skipped)
		assert.Equal(t, http.StatusNoContent, res.StatusCode)
		hits := rcv.Requests()
		require.Len(t, hits, 1)
		assert.Equal(t, `{"event":"webhook.test","timestamp":"2026-11-28T12:00:00Z"}`, string(hits[0].Body))
		assert.Equal(t, in.DeliveryID, hits[0].Header.Get("webhook-id"), "a test has no event id: the delivery id names the message")
		assert.Equal(t, assetsUpSignature(h.Secret, hits[0].Body), hits[0].Header.Get("X-AssetsUp-Signature"))
		assert.Equal(t, standardSignature(t, h.Secret, in.DeliveryID, hits[0].Header.Get("webhook-timestamp"), hits[0].Body),
			hits[0].Header.Get("webhook-signature"))
	})
}

// closedURL is a 127.0.0.1 address nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return "http://" + addr
}

func TestSendKeepsSecretsAndTokensOutOfErrorsAndLogs(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	tests := []struct {
		name    string
		respond func(int, http.ResponseWriter, *http.Request)
		closed  bool
		want    string
	}{
		{name: "500", respond: testfixture.Status(http.StatusInternalServerError), want: activities.ErrTypeHTTPStatus},
		{name: "429", respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
		}, want: activities.ErrTypeHTTPStatus},
		{name: "redirect echoing the token", respond: func(_ int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/next?"+r.URL.RawQuery)
			w.WriteHeader(http.StatusTemporaryRedirect)
		}, want: activities.ErrTypeHTTPStatus},
		{name: "connection reset", respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = conn.Close()
			}
		}, want: activities.ErrTypeNetwork},
		{name: "connection refused", closed: true, want: activities.ErrTypeNetwork},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := closedURL(t)
			var rcv *testfixture.Receiver
			if !tt.closed {
				rcv = testfixture.NewReceiver(t, tt.respond)
				base = rcv.URL
			}
			h := createHook(t, db, box, "user-"+uuid.NewString(), base+"/in?token=supersecret")
			s := newActivities(t, db, box, testConfig(), 5*time.Second)
			in := eventInput(h.ID)

			_, err := send(t, newEnv(t, s), s, in) // send checks the error text
			appErr := appError(t, err)
			assert.Equal(t, tt.want, appErr.Type(), appErr.Error())
			if rcv != nil {
				hits := rcv.Requests()
				require.Len(t, hits, 1)
				assert.Equal(t, "token=supersecret", hits[0].RawQuery, "the receiver's token must reach it")
			}

			d := logRow(t, db, h.ID, in.DeliveryID)
			require.NotNil(t, d.LastError)
			assertClean(t, *d.LastError)
			if d.ResponseExcerpt != nil {
				assert.Empty(t, leakedSecrets(*d.ResponseExcerpt))
			}
			logs := logs.String()
			assert.NotContains(t, logs, h.Secret)
			assert.NotContains(t, logs, strings.TrimPrefix(h.Secret, secrets.Prefix))
			assert.NotContains(t, logs, "supersecret")
		})
	}
	assert.Empty(t, leakedSecrets(logs.String()), "a secret issued by an earlier test reached the log")
}

func TestSendSignsWithBothSecretsDuringRotation(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)

	newSecret, err := secrets.Generate()
	require.NoError(t, err)
	remember(newSecret)
	sealed, version, err := box.Seal(h.ID, newSecret)
	require.NoError(t, err)
	expires, err := models.RotateSecret(ctx, db, h.UserID, h.ID, models.SecretRotation{
		Hash: secrets.Fingerprint(newSecret), Sealed: sealed, KeyVersion: version, Grace: time.Hour,
	})
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute)

	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	in := eventInput(h.ID)
	_, err = send(t, newEnv(t, s), s, in)
	require.NoError(t, err)
	hits := rcv.Requests()
	require.Len(t, hits, 1)
	got := hits[0]
	ts := got.Header.Get("webhook-timestamp")
	assert.Equal(t, assetsUpSignature(newSecret, got.Body)+","+assetsUpSignature(h.Secret, got.Body),
		got.Header.Get("X-AssetsUp-Signature"), "newest first, then the previous secret")
	assert.Equal(t, standardSignature(t, newSecret, in.Payload.ID, ts, got.Body)+" "+standardSignature(t, h.Secret, in.Payload.ID, ts, got.Body),
		got.Header.Get("webhook-signature"))

	// Once the grace period is over only the new secret signs.
	later := expires.Add(time.Minute)
	clocked := activities.WithClock(s, func() time.Time { return later })
	in = eventInput(h.ID)
	_, err = send(t, newEnv(t, clocked), clocked, in)
	require.NoError(t, err)
	hits = rcv.Requests()
	require.Len(t, hits, 2)
	got = hits[1]
	ts = got.Header.Get("webhook-timestamp")
	assert.Equal(t, strconv.FormatInt(later.Unix(), 10), ts, "the timestamp comes from the activities' clock")
	assert.Equal(t, assetsUpSignature(newSecret, got.Body), got.Header.Get("X-AssetsUp-Signature"))
	assert.Equal(t, standardSignature(t, newSecret, in.Payload.ID, ts, got.Body), got.Header.Get("webhook-signature"))
}

// The test environment runs every execution as Temporal's attempt 1, so any number past
// 1 below can only come from the claims in the database, which is where Send keeps the
// receiver's budget.
func TestSendKeepsTheReceiversAttemptBudget(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	retryAfter := func(code int, after string) func(int, http.ResponseWriter, *http.Request) {
		return func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", after)
			w.WriteHeader(code)
		}
	}
	tests := []struct {
		name        string
		respond     func(int, http.ResponseWriter, *http.Request)
		maxAttempts int
		wantType    string
		wantStatus  int
		wantDelays  []time.Duration // after each attempt but the last
	}{
		{
			name: "500", respond: testfixture.Status(http.StatusInternalServerError), maxAttempts: 3,
			wantType: activities.ErrTypeHTTPStatus, wantStatus: http.StatusInternalServerError,
			wantDelays: []time.Duration{testBackoff.After(1), testBackoff.After(2)},
		},
		{
			name: "429 with a Retry-After above the cap", respond: retryAfter(http.StatusTooManyRequests, "3600"), maxAttempts: 3,
			wantType: activities.ErrTypeHTTPStatus, wantStatus: http.StatusTooManyRequests,
			wantDelays: []time.Duration{10 * time.Second, 10 * time.Second},
		},
		{
			name: "503 with a Retry-After", respond: retryAfter(http.StatusServiceUnavailable, "5"), maxAttempts: 3,
			wantType: activities.ErrTypeHTTPStatus, wantStatus: http.StatusServiceUnavailable,
			wantDelays: []time.Duration{5 * time.Second, 5 * time.Second},
		},
		{
			name: "connection reset", maxAttempts: 3,
			respond: func(_ int, w http.ResponseWriter, _ *http.Request) {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			},
			wantType:   activities.ErrTypeNetwork,
			wantDelays: []time.Duration{testBackoff.After(1), testBackoff.After(2)},
		},
		{
			name: "timeout", maxAttempts: 3,
			respond: func(_ int, w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(3 * time.Second):
				}
				w.WriteHeader(http.StatusOK)
			},
			wantType:   activities.ErrTypeTimeout,
			wantDelays: []time.Duration{testBackoff.After(1), testBackoff.After(2)},
		},
		{
			name: "a single attempt", respond: testfixture.Status(http.StatusInternalServerError), maxAttempts: 1,
			wantType: activities.ErrTypeHTTPStatus, wantStatus: http.StatusInternalServerError,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := testfixture.NewReceiver(t, tt.respond)
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
			cfg := testConfig()
			cfg.RetryAfterMax = 10 * time.Second
			s := newActivities(t, db, box, cfg, 500*time.Millisecond)
			env := newEnv(t, s)
			in := eventInput(h.ID)
			in.MaxAttempts = tt.maxAttempts

			for n := 1; n <= tt.maxAttempts; n++ {
				_, err := send(t, env, s, in)
				appErr := appError(t, err)
				assert.Equal(t, tt.wantType, appErr.Type(), "attempt %d", n)
				assert.Equal(t, activities.SendFailure{Attempt: n, StatusCode: tt.wantStatus}, failureOf(t, appErr))
				last := n == tt.maxAttempts
				assert.Equal(t, last, appErr.NonRetryable(), "only the last attempt ends the delivery (attempt %d)", n)
				if last {
					assert.Zero(t, appErr.NextRetryDelay(), "nothing follows the last attempt")
				} else {
					assert.Equal(t, tt.wantDelays[n-1], appErr.NextRetryDelay(), "wait after attempt %d", n)
				}
				assert.Equal(t, n, logRow(t, db, h.ID, in.DeliveryID).Attempts)
			}
			d := logRow(t, db, h.ID, in.DeliveryID)
			require.NotNil(t, d.LastError)

			// An earlier run sent the last attempt but did not live to report it: the retry
			// sends nothing and fails the delivery with what that attempt recorded.
			_, err := send(t, env, s, in)
			appErr := appError(t, err)
			assert.Equal(t, activities.ErrTypeExhausted, appErr.Type())
			assert.True(t, appErr.NonRetryable())
			assert.Contains(t, appErr.Message(), *d.LastError, "the failure carries what the last attempt recorded")
			assert.Equal(t, activities.SendFailure{Attempt: tt.maxAttempts, StatusCode: tt.wantStatus}, failureOf(t, appErr))
			assert.Len(t, rcv.Requests(), tt.maxAttempts, "the receiver got more than its budget")
			assert.Equal(t, tt.maxAttempts, logRow(t, db, h.ID, in.DeliveryID).Attempts, "a refused claim counted an attempt")
		})
	}
}

func TestBackoffAfter(t *testing.T) {
	tests := []struct {
		name string
		give activities.Backoff
		n    int
		want time.Duration
	}{
		{name: "first", give: activities.Backoff{Initial: time.Second, Coefficient: 2, Max: time.Minute}, n: 1, want: time.Second},
		{name: "grows", give: activities.Backoff{Initial: time.Second, Coefficient: 2, Max: time.Minute}, n: 4, want: 8 * time.Second},
		{name: "capped", give: activities.Backoff{Initial: time.Second, Coefficient: 2, Max: 10 * time.Second}, n: 5, want: 10 * time.Second},
		{name: "far past the cap", give: activities.Backoff{Initial: time.Second, Coefficient: 2, Max: 10 * time.Second}, n: 1000, want: 10 * time.Second},
		{name: "coefficient below 1 never shrinks", give: activities.Backoff{Initial: 4 * time.Second, Coefficient: 0.5, Max: time.Minute}, n: 3, want: 4 * time.Second},
		{name: "initial above max", give: activities.Backoff{Initial: time.Minute, Coefficient: 2, Max: time.Second}, n: 1, want: time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.give.After(tt.n))
		})
	}
}

// A retry of a delivery another run already settled sends nothing and reports how it
// was settled.
func TestSendLeavesSettledDeliveries(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	s := newActivities(t, db, box, testConfig(), 5*time.Second)
	env := newEnv(t, s)
	tests := []struct {
		name     string
		give     delivery.Outcome // how the delivery was settled
		want     activities.SendResult
		wantType string // the failure instead of a result
	}{
		{name: "succeeded, not yet reported", give: delivery.OutcomeSucceeded, want: activities.SendResult{Attempt: 2, StatusCode: http.StatusNoContent}},
		{name: "completed as failed", give: delivery.OutcomeFailed, wantType: activities.ErrTypeCompleted},
		{name: "closed as skipped", give: delivery.OutcomeSkipped, want: activities.SendResult{Skipped: true, Reason: "webhook inactive", Attempt: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
			in := eventInput(h.ID)
			row := models.Delivery{
				ID: in.DeliveryID, WebhookID: h.ID, EventID: in.Payload.ID, Event: string(in.Payload.Event),
				Kind: in.Kind, WorkflowID: "deliver-" + uuid.NewString(), RunID: uuid.NewString(),
			}
			switch tt.give {
			case delivery.OutcomeSucceeded:
				require.NoError(t, models.RecordAttempt(ctx, db, models.Attempt{Delivery: row, Number: 2, Succeeded: true, StatusCode: http.StatusNoContent}))
			case delivery.OutcomeFailed:
				_, err := models.CompleteDelivery(ctx, db, models.Completion{Delivery: row, Attempts: 1, StatusCode: 500, Error: "receiver answered HTTP 500"})
				require.NoError(t, err)
			case delivery.OutcomeSkipped:
				n, err := models.ClaimAttempt(ctx, db, row, testMaxAttempts)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				closed, err := models.SkipDelivery(ctx, db, row.ID, "webhook inactive")
				require.NoError(t, err)
				require.True(t, closed)
			}

			res, err := send(t, env, s, in)
			if tt.wantType != "" {
				appErr := appError(t, err)
				assert.Equal(t, tt.wantType, appErr.Type())
				assert.True(t, appErr.NonRetryable())
				assert.Contains(t, appErr.Message(), "receiver answered HTTP 500")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.want, res)
			}
			assert.Empty(t, rcv.Requests(), "a settled delivery was sent")
		})
	}
}

// A permanent database error (here the webhook, and its delivery rows with it, went while
// the request was out, so recording the attempt breaks the foreign key) cannot pass by
// waiting: Send must not hold the attempt for DBRetryTimeout.
func TestSendDoesNotWaitOutPermanentDatabaseErrors(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	tests := []struct {
		name     string
		give     int
		wantType string // "" for a success
	}{
		{name: "success", give: http.StatusOK},
		{name: "failure", give: http.StatusInternalServerError, wantType: activities.ErrTypeHTTPStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hooks := make(chan hook, 1)
			deleted := make(chan error, 1)
			rcv := testfixture.NewReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				h := <-hooks
				deleted <- models.DeleteWebhook(context.Background(), db, h.UserID, h.ID)
				w.WriteHeader(tt.give)
			})
			h := createHook(t, db, box, "user-"+uuid.NewString(), rcv.URL)
			hooks <- h
			cfg := testConfig()
			cfg.DBRetryTimeout = 10 * time.Second
			s := newActivities(t, db, box, cfg, 5*time.Second)
			in := eventInput(h.ID)

			start := time.Now()
			res, err := send(t, newEnv(t, s), s, in)
			elapsed := time.Since(start)
			require.NoError(t, <-deleted)
			assert.Less(t, elapsed, 2*time.Second, "recording the attempt waited for an error that cannot pass")
			if tt.wantType == "" {
				require.NoError(t, err)
				assert.Equal(t, 1, res.Attempt)
				assert.Equal(t, tt.give, res.StatusCode)
			} else {
				appErr := appError(t, err)
				assert.Equal(t, tt.wantType, appErr.Type())
				assert.Equal(t, activities.SendFailure{Attempt: 1, StatusCode: tt.give}, failureOf(t, appErr))
			}
			assert.Len(t, rcv.Requests(), 1)
			assert.True(t, logged(`"msg":"record attempt"`, `"ActivityType":"Send"`, in.DeliveryID), "the lost record is not logged")
		})
	}
}
