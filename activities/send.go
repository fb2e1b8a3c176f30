package activities

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

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
	DeliveryID   string         `json:"deliveryId"`
	WebhookID    string         `json:"webhookId"`
	Kind         string         `json:"kind"`
	RedeliveryOf string         `json:"redeliveryOf,omitempty"`
	Payload      events.Payload `json:"payload"`
	// AttemptOffset counts the attempts made before this activity (the workflow's local
	// first attempt), so attempts are numbered across both.
	AttemptOffset int `json:"attemptOffset,omitempty"`
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

// Send signs the event and POSTs it to the webhook once. A webhook deleted, or
// switched off before this attempt, gets nothing. An attempt whose earlier run
// already succeeded (the worker died before reporting it) is not sent again.
func (s *Sender) Send(ctx context.Context, in SendInput) (SendResult, error) {
	info := activity.GetInfo(ctx)
	attempt := int(info.Attempt) + in.AttemptOffset

	var target *models.DeliveryTarget
	err := s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		target, err = models.LoadDeliveryTarget(ctx, s.db, in.WebhookID, in.DeliveryID)
		return err
	})
	switch {
	case errors.Is(err, models.ErrNotFound):
		return SendResult{Skipped: true, Reason: "webhook deleted"}, nil
	case err != nil:
		return SendResult{}, temporal.NewApplicationErrorWithOptions("database unavailable, nothing sent", ErrTypeDatabase,
			temporal.ApplicationErrorOptions{Details: []any{SendFailure{Attempt: attempt}}})
	case !target.IsActive && in.Kind != "test":
		return SendResult{Skipped: true, Reason: "webhook inactive"}, nil
	case target.PriorStatus == models.StatusSucceeded:
		return SendResult{Attempt: target.PriorAttempts, StatusCode: target.PriorStatusCode}, nil
	}

	body, err := in.Payload.Marshal()
	if err != nil {
		return SendResult{}, temporal.NewNonRetryableApplicationError("payload cannot be encoded", "Payload", nil)
	}
	req, err := s.newRequest(ctx, target, in, body)
	if err != nil {
		return SendResult{}, err
	}

	started := time.Now()
	resp, err := s.client.Do(req)
	elapsed := time.Since(started)
	rec := models.Attempt{
		Delivery: deliveryRow(in.DeliveryID, in.WebhookID, in.Kind, in.RedeliveryOf, in.Payload.ID, in.Payload.Event, info),
		Number:   attempt,
		Duration: elapsed,
	}
	rec.Delivery.RequestBody = body
	if err != nil {
		rec.Error = describeTransportError(err)
		s.record(ctx, rec)
		failure := s.transportFailure(err, rec.Error, attempt)
		s.cfg.Metrics.attempt(failureType(failure), elapsed)
		return SendResult{}, failure
	}
	excerpt, readErr := readCapped(resp.Body, s.cfg.MaxResponseBytes)
	_ = resp.Body.Close()
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
	failure := s.statusFailure(ctx, in.WebhookID, resp, rec.Error, attempt)
	s.cfg.Metrics.attempt(failureType(failure), elapsed)
	return SendResult{}, failure
}

func (s *Sender) newRequest(ctx context.Context, t *models.DeliveryTarget, in SendInput, body []byte) (*http.Request, error) {
	keys, err := s.signingSecrets(t)
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
func (s *Sender) signingSecrets(t *models.DeliveryTarget) ([]string, error) {
	current, err := s.box.Open(t.ID, t.SecretSealed, t.SecretKeyVersion)
	if err != nil {
		// A key misconfiguration: retrying cannot help and nothing may be sent unsigned.
		return nil, temporal.NewNonRetryableApplicationError("signing secret cannot be opened: check WEBHOOK_SECRET_KEY", "Secret", nil)
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
func (s *Sender) record(ctx context.Context, a models.Attempt) {
	err := s.withDBRetry(ctx, func(ctx context.Context) error { return models.RecordAttempt(ctx, s.db, a) })
	if err != nil {
		s.log.ErrorContext(ctx, "record attempt", "delivery_id", a.Delivery.ID, "error", err)
	}
}

func (s *Sender) transportFailure(err error, msg string, attempt int) error {
	details := temporal.ApplicationErrorOptions{Details: []any{SendFailure{Attempt: attempt}}}
	switch {
	case netguard.IsForbidden(err):
		details.NonRetryable = true
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeForbiddenAddress, details)
	case isTimeout(err):
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeTimeout, details)
	default:
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeNetwork, details)
	}
}

func (s *Sender) statusFailure(ctx context.Context, webhookID string, resp *http.Response, msg string, attempt int) error {
	opts := temporal.ApplicationErrorOptions{Details: []any{SendFailure{Attempt: attempt, StatusCode: resp.StatusCode}}}
	switch resp.StatusCode {
	case http.StatusGone:
		err := s.withDBRetry(ctx, func(ctx context.Context) error {
			return models.DeactivateWebhook(ctx, s.db, webhookID, "receiver answered 410 Gone")
		})
		if err != nil {
			return fmt.Errorf("deactivate after 410: %w", err) // retried: the 410 will come again
		}
		opts.NonRetryable = true
		return temporal.NewApplicationErrorWithOptions(msg, ErrTypeGone, opts)
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), s.now()); ok {
			opts.NextRetryDelay = min(d, s.cfg.RetryAfterMax)
		}
	}
	return temporal.NewApplicationErrorWithOptions(msg, ErrTypeHTTPStatus, opts)
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
