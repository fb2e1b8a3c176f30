package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/signing"
)

// excerptBytes is how much of a response the delivery log keeps.
const excerptBytes = 1024

// NewHTTPClient builds the one client all deliveries share: keep-alive, a per-host
// connection cap so one slow receiver cannot take every connection, the address
// guard applied to the resolved IP at dial time, and no redirects followed.
func NewHTTPClient(timeout time.Duration, maxConnsPerHost int, policy *netguard.Policy) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 5*time.Second), KeepAlive: 30 * time.Second}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial on our behalf and bypass the guard
		DialContext:           policy.DialContext(dialer),
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   min(timeout, 10*time.Second),
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// SendInput names one delivery attempt. It carries the event, never the secret:
// Temporal history is visible to operators.
type SendInput struct {
	delivery.Identity
	Payload events.Payload `json:"payload"`
	// MaxAttempts is the receiver's budget of HTTP attempts for this delivery, and
	// Backoff the waits between them, both fixed when the workflow run started. Send
	// keeps the budget itself, counting only requests it sent (see models.ClaimAttempt),
	// so that our own failures, retried by Temporal, never use it up.
	MaxAttempts int     `json:"maxAttempts"`
	Backoff     Backoff `json:"backoff"`
}

// Backoff is the wait after a receiver's failed attempt n: Initial·Coefficientⁿ⁻¹,
// capped at Max, unless the receiver asked for another with Retry-After.
type Backoff struct {
	Initial     time.Duration `json:"initial"`
	Coefficient float64       `json:"coefficient"`
	Max         time.Duration `json:"max"`
}

// After returns the wait after failed attempt n (from 1).
func (b Backoff) After(n int) time.Duration {
	d := float64(b.Initial)
	for i := 1; i < n && d < float64(b.Max); i++ {
		d *= max(b.Coefficient, 1)
	}
	return min(time.Duration(d), b.Max)
}

// SendResult describes the successful attempt, or why nothing was sent.
type SendResult struct {
	Skipped    bool   `json:"skipped,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Attempt    int    `json:"attempt"`
	StatusCode int    `json:"statusCode,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// SendFailure rides as details on a failed attempt's error.
type SendFailure struct {
	Attempt    int `json:"attempt"`
	StatusCode int `json:"statusCode,omitempty"`
}

// Send signs the event and POSTs it to the webhook once, as the delivery's next attempt.
// A webhook deleted, or switched off before this attempt, gets nothing. An attempt whose
// earlier run already succeeded (the worker died before reporting it) is not sent again.
//
// Failures are of two kinds. The receiver's (an answer other than 2xx, a timeout or a
// network error after the request went out) use one of its attempts and end the
// delivery on the last one. Ours (the database, waiting for a connection slot) send
// nothing, cost nothing, and are retried by Temporal for as long as they last, and so
// are waits the receiver asked for (its rate limit and maxInFlight: Throttled).
//
// An event the webhook's filter does not match is not sent: the delivery is closed as
// filtered (see filterOut).
func (s *Delivery) Send(ctx context.Context, in SendInput) (SendResult, error) {
	target, res, err, done := s.target(ctx, in)
	if done {
		return res, err
	}
	body, err := in.Payload.Marshal()
	if err != nil {
		return SendResult{}, temporal.NewNonRetryableApplicationError("payload cannot be encoded", "Payload", nil)
	}
	if res, err, done := s.filterOut(ctx, target, in, body); done {
		return res, err
	}
	// Built, and the secrets opened, before the attempt is claimed: a failure here is
	// ours, or the webhook's URL, never an attempt the receiver did not get.
	req, err := s.newRequest(ctx, target, in, body)
	if err != nil {
		return SendResult{}, err
	}
	// The receiver's limits before the connection slot and the claim: a throttled
	// attempt holds neither, and is not an attempt.
	slot, endThrottle, err := s.throttle(ctx, target)
	if err != nil {
		return SendResult{}, err
	}
	endThrottle = sync.OnceFunc(endThrottle)
	defer endThrottle()

	waitCtx, cancel := context.WithTimeout(ctx, s.cfg.ConnWaitTimeout)
	release, err := s.slots.acquire(waitCtx, target.URL)
	cancel()
	if err != nil {
		return SendResult{}, s.ours(ctx, ErrTypeConnectionWait,
			"no connection to the receiver's host came free within WEBHOOK_CONN_WAIT_TIMEOUT; nothing sent", err)
	}
	// Given back as soon as the exchange with the receiver is over, not after the database
	// writes that follow: an outage must not keep the receiver's other attempts queued.
	release = sync.OnceFunc(release)
	defer release()

	row := deliveryRow(ctx, in.Identity, in.Payload.ID, in.Payload.Event)
	row.RequestBody = body
	var attempt int
	err = s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		attempt, err = models.ClaimAttempt(ctx, s.db, row, budget(in))
		return err
	})
	if err != nil {
		return SendResult{}, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err)
	}
	if attempt == 0 {
		// Another run settled the delivery between the read and the claim: read it again.
		if _, res, err, done := s.target(ctx, in); done {
			return res, err
		}
		return SendResult{}, s.ours(ctx, ErrTypeDatabase, "attempt could not be claimed; nothing sent", errors.New("claim refused"))
	}

	// From here the attempt is counted and goes out: it runs to its answer (bounded by
	// WEBHOOK_HTTP_TIMEOUT) and is recorded even if the worker is told to stop meanwhile.
	// Cut off, the receiver would have the request while we count a failure and send it
	// again on the next attempt.
	ctx = context.WithoutCancel(ctx)
	req = req.WithContext(ctx)
	// A rate-limited attempt goes out on its slot, neither before nor late.
	s.waitForSlot(ctx, target.ID, slot)
	started := time.Now()
	resp, err := s.client.Do(req)
	elapsed := time.Since(started)
	rec := models.Attempt{Delivery: row, Number: attempt, Duration: elapsed}
	rec.Delivery.RequestBody = nil // the claim stored it; recording the answer need not send it again
	if err != nil {
		release()
		endThrottle()
		rec.Error = describeTransportError(err)
		s.record(ctx, rec)
		failure := s.transportFailure(err, rec.Error, attempt, in)
		s.cfg.Metrics.attempt(failureType(failure), elapsed)
		return SendResult{}, failure
	}
	excerpt, readErr := readCapped(resp.Body, s.cfg.MaxResponseBytes)
	_ = resp.Body.Close()
	release()
	endThrottle()
	rec.StatusCode = resp.StatusCode
	rec.ResponseExcerpt = excerpt
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		rec.Succeeded = true
		s.record(ctx, rec)
		s.cfg.Metrics.attempt("success", elapsed)
		return SendResult{Attempt: attempt, StatusCode: resp.StatusCode, DurationMS: elapsed.Milliseconds()}, nil
	}
	rec.Error = statusMessage(resp)
	if readErr != nil {
		rec.Error += "; " + readErr.Error()
	}
	s.record(ctx, rec)
	failure := s.statusFailure(ctx, in, resp, rec.Error, attempt)
	s.cfg.Metrics.attempt(failureType(failure), elapsed)
	return SendResult{}, failure
}

// target reads the webhook and what earlier attempts recorded, and says whether the
// delivery is already settled (done), with the result to return: the webhook is gone
// or off, the delivery succeeded or was closed, or its attempts are used up.
func (s *Delivery) target(ctx context.Context, in SendInput) (*models.DeliveryTarget, SendResult, error, bool) {
	var t *models.DeliveryTarget
	err := s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		t, err = models.LoadDeliveryTarget(ctx, s.db, in.WebhookID, in.DeliveryID)
		return err
	})
	switch {
	case errors.Is(err, models.ErrNotFound):
		return nil, SendResult{Skipped: true, Reason: "webhook deleted"}, nil, true
	case err != nil:
		return nil, SendResult{}, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err), true
	}
	prior := SendFailure{Attempt: t.PriorAttempts, StatusCode: t.PriorStatusCode}
	switch {
	case t.PriorStatus == delivery.OutcomeSucceeded:
		return t, SendResult{Attempt: t.PriorAttempts, StatusCode: t.PriorStatusCode}, nil, true
	case t.PriorCompleted && t.PriorStatus == delivery.OutcomeFiltered:
		return t, SendResult{Skipped: true, Reason: "filtered: " + t.PriorError}, nil, true
	case t.PriorCompleted && t.PriorStatus == delivery.OutcomeMissed:
		// Logged as missed while the webhook was off: a recovery sends it, as a redelivery.
		return t, SendResult{Skipped: true, Reason: "missed: " + t.PriorError}, nil, true
	case t.PriorCompleted && t.PriorStatus == delivery.OutcomeSkipped:
		return t, SendResult{Skipped: true, Reason: t.PriorError, Attempt: t.PriorAttempts}, nil, true
	case t.PriorCompleted:
		return t, SendResult{}, temporal.NewNonRetryableApplicationError(
			"delivery already completed: "+t.PriorError, ErrTypeCompleted, nil, prior), true
	case !t.IsActive && in.Kind != delivery.KindTest:
		return t, SendResult{Skipped: true, Reason: "webhook inactive", Attempt: t.PriorAttempts}, nil, true
	case t.PriorAttempts >= budget(in):
		// An earlier run sent the last attempt but did not live to report it.
		return t, SendResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("all %d attempts made: %s", t.PriorAttempts, t.PriorError), ErrTypeExhausted, nil, prior), true
	}
	return t, SendResult{}, nil, false
}

func (s *Delivery) newRequest(ctx context.Context, t *models.DeliveryTarget, in SendInput, body []byte) (*http.Request, error) {
	keys, err := s.signingSecrets(ctx, t)
	if err != nil {
		return nil, err
	}
	msgID := in.Payload.ID
	if msgID == "" {
		msgID = in.DeliveryID // test deliveries have no event id
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("webhook url is not a valid request target", "URL", nil)
	}
	// The receiver's own headers first: none may carry a name the service sets (the API
	// refuses reserved names), and the service's would win anyway.
	if err := s.setCustomHeaders(ctx, t, req.Header); err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", s.cfg.UserAgent)
	err = signing.SetHeaders(req.Header, keys, signing.Delivery{
		Event: string(in.Payload.Event), DeliveryID: in.DeliveryID, MsgID: msgID, Timestamp: s.now().Unix(), Body: body,
	})
	if err != nil {
		return nil, temporal.NewNonRetryableApplicationError("stored secret is malformed", "Secret", nil)
	}
	return req, nil
}

// signingSecrets unseals the current secret and, inside the rotation grace period,
// the previous one: newest first.
func (s *Delivery) signingSecrets(ctx context.Context, t *models.DeliveryTarget) ([]string, error) {
	current, err := s.box.Open(t.ID, t.SecretSealed, t.SecretKeyVersion)
	if err != nil {
		// Our misconfiguration (WEBHOOK_SECRET_KEY or _OLD_KEYS), never the receiver's:
		// nothing is sent unsigned, and the delivery waits until an operator fixes the keys.
		return nil, s.ours(ctx, ErrTypeSecret, "signing secret cannot be opened: check WEBHOOK_SECRET_KEY and WEBHOOK_SECRET_OLD_KEYS; nothing sent", err)
	}
	keys := []string{current}
	if len(t.PreviousSecretSealed) > 0 && t.PreviousSecretExpiresAt != nil && s.now().Before(*t.PreviousSecretExpiresAt) {
		prev, err := s.box.Open(t.ID, t.PreviousSecretSealed, t.PreviousSecretKeyVersion)
		if err == nil {
			keys = append(keys, prev)
		}
	}
	return keys, nil
}

// record writes the attempt to the delivery log. A failure to log does not change the
// attempt's outcome: the delivery itself already happened, or did not.
func (s *Delivery) record(ctx context.Context, a models.Attempt) {
	err := s.withDBRetry(ctx, func(ctx context.Context) error { return models.RecordAttempt(ctx, s.db, a) })
	if err != nil {
		// The attempt is counted already (claimed before sending); only its detail is lost.
		activity.GetLogger(ctx).Error("record attempt", "delivery_id", a.Delivery.ID, "error", err)
	}
}

// transportFailure is a receiver's failure without an answer: the request went out
// (the connection slot and the claim came first), so it uses the attempt.
func (s *Delivery) transportFailure(err error, msg string, attempt int, in SendInput) error {
	opts := receiverFailure(attempt, 0, in)
	switch {
	case netguard.IsForbidden(err):
		opts.NonRetryable = true
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeForbiddenAddress, opts)
	case isTimeout(err):
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeTimeout, opts)
	default:
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeNetwork, opts)
	}
}

func (s *Delivery) statusFailure(ctx context.Context, in SendInput, resp *http.Response, msg string, attempt int) error {
	opts := receiverFailure(attempt, resp.StatusCode, in)
	switch resp.StatusCode {
	case http.StatusGone:
		// Switched off at once so other deliveries stop too; if the database is down,
		// the outcome step (which waits for it) switches it off instead.
		err := s.withDBRetry(ctx, func(ctx context.Context) error { return s.deactivateGone(ctx, in.Identity) })
		if err != nil {
			activity.GetLogger(ctx).Warn("deactivate after 410, left to the outcome step", "webhook_id", in.WebhookID, "error", err)
		}
		opts.NonRetryable = true
		opts.NextRetryDelay = 0
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeGone, opts)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), s.now()); ok && d > 0 && !opts.NonRetryable {
			opts.NextRetryDelay = min(d, s.cfg.RetryAfterMax)
		}
	}
	return temporal.NewApplicationErrorWithOptions(msg, ErrTypeHTTPStatus, opts)
}

// budget is the number of attempts the delivery may make. An input without MaxAttempts
// comes from a run started before Send kept the budget; Temporal's policy keeps it there.
func budget(in SendInput) int {
	if in.MaxAttempts <= 0 {
		return math.MaxInt32
	}
	return in.MaxAttempts
}

// receiverFailure shapes a failed attempt: the last one ends the delivery, the others
// wait the run's backoff for this attempt number, whatever Temporal's own count of
// executions (which includes our failures) says.
func receiverFailure(attempt, status int, in SendInput) temporal.ApplicationErrorOptions {
	opts := temporal.ApplicationErrorOptions{Details: []any{SendFailure{Attempt: attempt, StatusCode: status}}}
	if attempt >= budget(in) {
		opts.NonRetryable = true
	} else if in.Backoff.Initial > 0 {
		opts.NextRetryDelay = in.Backoff.After(attempt)
	}
	return opts
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// readCapped drains at most limit bytes and returns the first excerptBytes as text.
func readCapped(r io.Reader, limit int64) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return excerpt(b), fmt.Errorf("read response: %w", err)
	}
	return excerpt(b), nil
}

func excerpt(b []byte) string {
	if len(b) > excerptBytes {
		b = b[:excerptBytes]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	// A replacement (3 bytes) can be longer than what it replaced, a rune split by the
	// cut included: trim whole runes until the excerpt fits the cap again.
	for len(s) > excerptBytes {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

func statusMessage(resp *http.Response) string {
	msg := "receiver answered HTTP " + strconv.Itoa(resp.StatusCode)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed)"
	}
	return msg
}

// describeTransportError says what went wrong without the URL, whose path or query
// may hold the receiver's credentials.
func describeTransportError(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	switch {
	case netguard.IsForbidden(err):
		return "destination refused: " + forbiddenReason(err)
	case isTimeout(err):
		return "no response within the timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return "connection failed: " + op.Op + ": " + op.Err.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "host not found: " + dns.Name
	}
	return "request failed: " + err.Error()
}

func forbiddenReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, netguard.ErrForbiddenAddress.Error()); i >= 0 {
		return msg[i:]
	}
	return netguard.ErrForbiddenAddress.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func failureType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return "error"
}
