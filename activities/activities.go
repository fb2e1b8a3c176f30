// Package activities holds the side effects of delivery: finding subscribers, signing
// and POSTing an event to one webhook, recording the outcome and pruning the delivery
// log. Workflows reach them only through Temporal, which retries them by the policy the
// workflow owns.
package activities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/filter"
	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/secrets"
)

// Error types of failed send attempts. Workflows and operators match on these.
const (
	ErrTypeHTTPStatus       = "HTTPStatus"        // the receiver answered, but not 2xx
	ErrTypeNetwork          = "Network"           // no answer: refused, reset, DNS
	ErrTypeTimeout          = "Timeout"           // no answer within WEBHOOK_HTTP_TIMEOUT
	ErrTypeForbiddenAddress = "ForbiddenAddress"  // the URL resolves to a private address: never retried
	ErrTypeGone             = "Gone"              // 410: the receiver asked us to stop; never retried
	ErrTypeExhausted        = "AttemptsExhausted" // an earlier run of this step used the last attempt
	ErrTypeCompleted        = "Completed"         // the delivery was already closed as failed

	// Our own failures: nothing was sent, so they cost the receiver no attempt, never
	// count toward failure_count and are retried for as long as they last.
	ErrTypeDatabase       = "Database"       // the database did not answer
	ErrTypeConnectionWait = "ConnectionWait" // no connection to the receiver's host came free in time
	ErrTypeSecret         = "Secret"         // the signing secret cannot be opened with the configured keys
	// ErrTypeThrottled is an attempt held back by the receiver's own settings (its rate
	// limit, or its cap on attempts in flight): nothing was sent, and it comes back when
	// its turn is due, without holding a worker slot meanwhile.
	ErrTypeThrottled = "Throttled"
)

// IsOurs says whether a failure type is not the receiver's failure: the service's own,
// or a wait the receiver asked for.
func IsOurs(errType string) bool {
	return errType == ErrTypeDatabase || errType == ErrTypeConnectionWait || errType == ErrTypeSecret || errType == ErrTypeThrottled
}

// Config holds the delivery activities' limits.
type Config struct {
	MaxResponseBytes     int64
	RetryAfterMax        time.Duration
	DisableAfterFailures int
	// DBRetryTimeout is how long one run of an activity waits for the database before it
	// hands back to Temporal's retries (where operators see it as a pending activity).
	DBRetryTimeout time.Duration
	// InfraRetryMaxInterval caps the growing wait between retries of our own failures.
	InfraRetryMaxInterval time.Duration
	// ConnWaitTimeout is how long an attempt may queue for one of MaxConnsPerHost
	// connections to its receiver's host before it gives up without sending.
	ConnWaitTimeout   time.Duration
	MaxConnsPerHost   int
	DispatchPageSize  int
	DeliveryRetention time.Duration
	UserAgent         string
	Metrics           *Metrics // nil: not measured

	// FilterCostLimit bounds one evaluation of a webhook's payload filter.
	FilterCostLimit uint64
	// DefaultRateLimit (deliveries per second, 0: unlimited) and DefaultRateBurst apply
	// to webhooks that set no rate limit of their own.
	DefaultRateLimit float64
	DefaultRateBurst int
	// RateLimitHold is how long before its slot a rate-limited attempt reserves it and
	// waits in the worker; an attempt whose slot is further off leaves the worker and is
	// retried by Temporal when its turn comes.
	RateLimitHold time.Duration

	// Operational sends the AssetsUp backend its operational events (operational.go);
	// its zero value sends none. OpsMetrics measures recoveries, missed deliveries and
	// operational events; nil: not measured.
	Operational OperationalConfig
	OpsMetrics  *OpsMetrics
}

// Delivery holds what the delivery activities need: it lists subscribers, sends,
// completes and prunes. Register it with the worker so every exported method becomes
// an activity named after the method. Activities log through activity.GetLogger, which
// adds the workflow id, run id and attempt to every line.
type Delivery struct {
	db      bun.IDB
	client  *http.Client
	slots   *hostSlots
	box     *secrets.Box
	filters *filter.Cache
	now     func() time.Time
	cfg     Config
}

// filterCacheSize is how many compiled filters a worker keeps: far more than are in
// use at once, each a few kilobytes.
const filterCacheSize = 4096

// NewDelivery builds the activities. client must not follow redirects (see NewHTTPClient).
func NewDelivery(db bun.IDB, client *http.Client, box *secrets.Box, cfg Config) *Delivery {
	// The API refused filters longer than WEBHOOK_FILTER_MAX_BYTES when they were saved;
	// a stored one is run whatever that limit says today. The cost limit is what bounds
	// the work.
	limits := filter.Limits{MaxLength: math.MaxInt, CostLimit: cfg.FilterCostLimit}
	return &Delivery{
		db: db, client: client, slots: newHostSlots(cfg.MaxConnsPerHost), box: box,
		filters: filter.NewCache(limits, filterCacheSize), now: time.Now, cfg: cfg,
	}
}

// WithClock returns a copy of s reading time from now, for tests of time-dependent
// signing (rotation grace). A function, not a method: every exported method of
// Delivery is registered as an activity.
func WithClock(s *Delivery, now func() time.Time) *Delivery {
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
	// Payload is the event as it would be sent, for the subscribers' filters: those it
	// does not match are logged as filtered and left out of the page, so no delivery
	// starts for them. Runs started before filters existed list without it; Send applies
	// the filters for them.
	Payload *events.Payload `json:"payload,omitempty"`
}

// ListSubscribersResult is one page; Next is empty on the last page.
type ListSubscribersResult struct {
	Subscribers []Subscriber `json:"subscribers"`
	Next        string       `json:"next,omitempty"`
}

// ListSubscribers returns the next page of the user's active webhooks subscribed to the
// event whose filters (if any) match it; the others are logged as filtered.
func (s *Delivery) ListSubscribers(ctx context.Context, in ListSubscribersInput) (ListSubscribersResult, error) {
	// The first page of a run that carries the event also finds the subscribers that are
	// switched off, in the same statement, and logs the event as missed for them.
	subs, inactive, err := models.ListSubscribersAndInactive(ctx, s.db, in.UserID, string(in.Event), in.After, s.cfg.DispatchPageSize,
		in.After == "" && in.Payload != nil)
	if err != nil {
		return ListSubscribersResult{}, err
	}
	res := ListSubscribersResult{Subscribers: make([]Subscriber, 0, len(subs))}
	if len(subs) == s.cfg.DispatchPageSize {
		// The cursor is the last listed webhook, whether or not its filter matched.
		res.Next = subs[len(subs)-1].ID
	}
	var filtered []models.Filtered
	var ev *filter.Event
	for _, sub := range subs {
		if in.Payload != nil && sub.Filter != nil {
			if ev == nil {
				if ev, err = filterEvent(*in.Payload); err != nil {
					return ListSubscribersResult{}, err
				}
			}
			if reason, ok := s.match(ctx, sub.ID, *sub.Filter, ev); !ok {
				filtered = append(filtered, models.Filtered{DeliveryID: delivery.ID(in.Payload.ID, sub.ID), WebhookID: sub.ID, Reason: reason})
				continue
			}
		}
		res.Subscribers = append(res.Subscribers, Subscriber{ID: sub.ID, Name: sub.Name, Host: models.URLHost(sub.URL)})
	}
	if err := s.recordMissed(ctx, in, inactive); err != nil {
		return ListSubscribersResult{}, err
	}
	if len(filtered) > 0 {
		body, err := in.Payload.Marshal()
		if err != nil {
			return ListSubscribersResult{}, temporal.NewNonRetryableApplicationError("payload cannot be encoded", "Payload", nil)
		}
		row := deliveryRow(ctx, delivery.Identity{Kind: delivery.KindEvent}, in.Payload.ID, in.Payload.Event)
		row.RequestBody = body
		if err := models.RecordFiltered(ctx, s.db, row, filtered); err != nil {
			return ListSubscribersResult{}, err
		}
	}
	return res, nil
}

// CompleteInput is the final outcome of one delivery.
type CompleteInput struct {
	delivery.Identity
	EventID   string                   `json:"eventId"`
	Event     events.NotificationEvent `json:"event"`
	Succeeded bool                     `json:"succeeded"`
	// Skipped closes a delivery that stopped without a final attempt; Error says why.
	Skipped    bool   `json:"skipped,omitempty"`
	Attempts   int    `json:"attempts"`
	StatusCode int    `json:"statusCode,omitempty"`
	Error      string `json:"error,omitempty"`
	// Gone: the receiver answered 410, so the webhook is switched off.
	Gone bool `json:"gone,omitempty"`
}

// CompleteResult says what recording the outcome changed on the webhook.
type CompleteResult struct {
	FailureCount int  `json:"failureCount"`
	Disabled     bool `json:"disabled"`
}

// Complete closes the delivery's log row and updates the webhook's failure streak in
// one statement. It is idempotent, so it retries database errors on its own policy
// without ever counting a failure twice.
func (s *Delivery) Complete(ctx context.Context, in CompleteInput) (CompleteResult, error) {
	if in.Skipped {
		if _, err := models.SkipDelivery(ctx, s.db, in.DeliveryID, in.Error); err != nil {
			return CompleteResult{}, err
		}
		return CompleteResult{}, nil
	}
	d := deliveryRow(ctx, in.Identity, in.EventID, in.Event)
	reason := fmt.Sprintf("disabled after %d consecutive failed deliveries", s.cfg.DisableAfterFailures)
	res, err := s.completeDelivery(ctx, in, models.Completion{
		Delivery:       d,
		Succeeded:      in.Succeeded,
		Attempts:       in.Attempts,
		StatusCode:     in.StatusCode,
		Error:          in.Error,
		DisableAfter:   s.cfg.DisableAfterFailures,
		DisabledReason: reason,
		Gone:           in.Gone,
	})
	if err != nil {
		return CompleteResult{}, err
	}
	if res.Completed {
		s.cfg.Metrics.finished(in.Kind, in.Succeeded)
	}
	if res.Completed && res.Disabled && !in.Succeeded {
		activity.GetLogger(ctx).Warn("webhook disabled", "webhook_id", in.WebhookID, "failure_count", res.FailureCount)
	}
	return CompleteResult{FailureCount: res.FailureCount, Disabled: res.Disabled}, nil
}

// deliveryRow is the delivery log row of the delivery id names, for event eventID,
// written by the workflow run this activity belongs to.
func deliveryRow(ctx context.Context, id delivery.Identity, eventID string, event events.NotificationEvent) models.Delivery {
	run := activity.GetInfo(ctx).WorkflowExecution
	d := models.Delivery{
		ID:         id.DeliveryID,
		WebhookID:  id.WebhookID,
		EventID:    eventID,
		Event:      string(event),
		Kind:       id.Kind,
		WorkflowID: run.ID,
		RunID:      run.RunID,
	}
	if id.RedeliveryOf != "" {
		d.RedeliveryOf = &id.RedeliveryOf
	}
	return d
}

// withDBRetry runs op until it succeeds, ctx ends or DBRetryTimeout passes, while the
// database is unreachable; any other error (a constraint, a missing row) is returned at
// once, since waiting cannot change it.
func (s *Delivery) withDBRetry(ctx context.Context, op func(context.Context) error) error {
	deadline := time.Now().Add(s.cfg.DBRetryTimeout)
	wait := 100 * time.Millisecond
	for {
		err := op(ctx)
		if err == nil || !models.IsUnavailable(err) || time.Now().Add(wait).After(deadline) {
			return err
		}
		activity.GetLogger(ctx).Warn("database unavailable, retrying", "error", err, "wait", wait)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		activity.RecordHeartbeat(ctx)
		wait = min(wait*2, 2*time.Second)
	}
}

// ours is the failure of an attempt that sent nothing because of the service itself:
// retryable, with a wait that grows with the activity's executions up to
// InfraRetryMaxInterval, so a long outage is polled gently and picked up soon after it ends.
func (s *Delivery) ours(ctx context.Context, errType, msg string, cause error) error {
	s.cfg.Metrics.infraRetry(errType)
	activity.GetLogger(ctx).Warn("nothing sent, will retry", "error_type", errType, "error", cause)
	wait := time.Second << min(max(activity.GetInfo(ctx).Attempt-1, 0), 10)
	return temporal.NewApplicationErrorWithOptions(msg, errType, temporal.ApplicationErrorOptions{
		NextRetryDelay: min(wait, s.cfg.InfraRetryMaxInterval),
	})
}
