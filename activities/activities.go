// Package activities holds the side effects of delivery: finding subscribers, signing
// and POSTing an event to one webhook, and recording the outcome. Workflows reach them
// only through Temporal, which retries them by the policy the workflow owns.
package activities

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// Error types of failed send attempts. Workflows and operators match on these.
const (
	ErrTypeHTTPStatus       = "HTTPStatus"       // the receiver answered, but not 2xx
	ErrTypeNetwork          = "Network"          // no answer: refused, reset, DNS
	ErrTypeTimeout          = "Timeout"          // no answer within WEBHOOK_HTTP_TIMEOUT
	ErrTypeForbiddenAddress = "ForbiddenAddress" // the URL resolves to a private address: never retried
	ErrTypeGone             = "Gone"             // 410: the receiver asked us to stop; never retried
	ErrTypeDatabase         = "Database"         // nothing was sent: the database did not answer
)

// Config holds the sender's limits.
type Config struct {
	MaxResponseBytes     int64
	RetryAfterMax        time.Duration
	DisableAfterFailures int
	DBRetryTimeout       time.Duration
	DispatchPageSize     int
	DeliveryRetention    time.Duration
	UserAgent            string
	Metrics              *Metrics // nil: not measured
}

// Sender holds what delivery activities need; register it with the worker so every
// exported method becomes an activity.
type Sender struct {
	db     bun.IDB
	client *http.Client
	box    *secrets.Box
	now    func() time.Time
	cfg    Config
	log    *slog.Logger
}

// NewSender builds the activities. client must not follow redirects (see NewHTTPClient).
func NewSender(db bun.IDB, client *http.Client, box *secrets.Box, cfg Config, logger *slog.Logger) *Sender {
	return &Sender{db: db, client: client, box: box, now: time.Now, cfg: cfg, log: logger}
}

// WithClock returns a copy of s reading time from now, for tests of time-dependent
// signing (rotation grace). A function, not a method: every exported method of
// Sender is registered as an activity.
func WithClock(s *Sender, now func() time.Time) *Sender {
	c := *s
	c.now = now
	return &c
}

// Subscriber is one webhook to deliver to, with the non-secret facts operators see.
type Subscriber struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Host string `json:"host"`
}

// ListSubscribersInput pages through one user's subscribers of one event.
type ListSubscribersInput struct {
	UserID string                   `json:"userId"`
	Event  events.NotificationEvent `json:"event"`
	After  string                   `json:"after,omitempty"`
}

// ListSubscribersResult is one page; Next is empty on the last page.
type ListSubscribersResult struct {
	Subscribers []Subscriber `json:"subscribers"`
	Next        string       `json:"next,omitempty"`
}

// ListSubscribers returns the next page of the user's active webhooks subscribed to the event.
func (s *Sender) ListSubscribers(ctx context.Context, in ListSubscribersInput) (ListSubscribersResult, error) {
	subs, err := models.ListSubscribers(ctx, s.db, in.UserID, string(in.Event), in.After, s.cfg.DispatchPageSize)
	if err != nil {
		return ListSubscribersResult{}, err
	}
	res := ListSubscribersResult{Subscribers: make([]Subscriber, len(subs))}
	for i, sub := range subs {
		res.Subscribers[i] = Subscriber{ID: sub.ID, Name: sub.Name, Host: models.URLHost(sub.URL)}
	}
	if len(subs) == s.cfg.DispatchPageSize {
		res.Next = subs[len(subs)-1].ID
	}
	return res, nil
}

// CompleteInput is the final outcome of one delivery.
type CompleteInput struct {
	DeliveryID   string                   `json:"deliveryId"`
	WebhookID    string                   `json:"webhookId"`
	Kind         string                   `json:"kind"`
	RedeliveryOf string                   `json:"redeliveryOf,omitempty"`
	EventID      string                   `json:"eventId"`
	Event        events.NotificationEvent `json:"event"`
	Succeeded    bool                     `json:"succeeded"`
	Attempts     int                      `json:"attempts"`
	StatusCode   int                      `json:"statusCode,omitempty"`
	Error        string                   `json:"error,omitempty"`
}

// CompleteResult says what recording the outcome changed on the webhook.
type CompleteResult struct {
	FailureCount int  `json:"failureCount"`
	Disabled     bool `json:"disabled"`
}

// Complete closes the delivery's log row and updates the webhook's failure streak in
// one statement. It is idempotent, so it retries database errors on its own policy
// without ever counting a failure twice.
func (s *Sender) Complete(ctx context.Context, in CompleteInput) (CompleteResult, error) {
	info := activity.GetInfo(ctx)
	d := deliveryRow(in.DeliveryID, in.WebhookID, in.Kind, in.RedeliveryOf, in.EventID, in.Event, info)
	reason := fmt.Sprintf("disabled after %d consecutive failed deliveries", s.cfg.DisableAfterFailures)
	res, err := models.CompleteDelivery(ctx, s.db, models.Completion{
		Delivery:       d,
		Succeeded:      in.Succeeded,
		Attempts:       in.Attempts,
		StatusCode:     in.StatusCode,
		Error:          in.Error,
		DisableAfter:   s.cfg.DisableAfterFailures,
		DisabledReason: reason,
	})
	if err != nil {
		return CompleteResult{}, err
	}
	if res.Completed {
		s.cfg.Metrics.delivery(in.Kind, in.Succeeded)
	}
	if res.Completed && res.Disabled && !in.Succeeded {
		s.log.WarnContext(ctx, "webhook disabled", "webhook_id", in.WebhookID, "failure_count", res.FailureCount)
	}
	return CompleteResult{FailureCount: res.FailureCount, Disabled: res.Disabled}, nil
}

func deliveryRow(deliveryID, webhookID, kind, redeliveryOf, eventID string, event events.NotificationEvent, info activity.Info) models.Delivery {
	d := models.Delivery{
		ID:         deliveryID,
		WebhookID:  webhookID,
		EventID:    eventID,
		Event:      string(event),
		Kind:       kind,
		WorkflowID: info.WorkflowExecution.ID,
		RunID:      info.WorkflowExecution.RunID,
	}
	if redeliveryOf != "" {
		d.RedeliveryOf = &redeliveryOf
	}
	return d
}

// withDBRetry runs op until it succeeds, ctx ends or DBRetryTimeout passes, so a
// database restart does not burn an HTTP attempt.
func (s *Sender) withDBRetry(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(s.cfg.DBRetryTimeout)
	wait := 100 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil || errors.Is(err, models.ErrNotFound) || time.Now().Add(wait).After(deadline) {
			return err
		}
		s.log.WarnContext(ctx, "database unavailable, retrying", "error", err, "wait", wait)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx)
		}
		wait = min(wait*2, 2*time.Second)
	}
}
