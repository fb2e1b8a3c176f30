package activities

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/filter"
	"github.com/assetsup/webhooks/headers"
	"github.com/assetsup/webhooks/models"
)

// The endpoint controls a receiver sets on its webhook, as Send applies them: its
// payload filter, its custom headers, its rate limit and its cap on attempts in flight.

// rateMargin stretches the interval between a rate-limited webhook's attempts by 10 %,
// so that "N per second" holds in every one-second window at the receiver even when
// requests reach it up to 100 ms off their slots (lateSlot, the network, a busy worker
// or receiver): a receiver that asked for 10/s gets at most 10 in any second, at the
// price of about 9.1/s at full speed. 5 % (50 ms) was measured to be too little on a
// loaded two-core machine.
const rateMargin = 1.10

// leaseSlack is how long an in-flight slot outlives its attempt's own deadline, for
// clocks that differ between the worker and the database.
const leaseSlack = 5 * time.Second

// leaseTries is how often an attempt looks for a free in-flight slot when racing
// replicas took the one it chose.
const leaseTries = 3

// claimLead is how long before its rate-limit slot an attempt stops waiting to take its
// in-flight slot, its connection slot and its claim, and then waits out the rest; a
// slot is never reserved sooner than that. Those steps' own latency (database round
// trips, more under load) then never shifts when the request goes out, which would
// bunch requests at the receiver. A worker killed in that last wait costs the receiver
// an attempt it never saw, as one killed between the claim and the request always has.
const claimLead = 100 * time.Millisecond

// lateSlot is how far past its slot a request may still go out on it. Later (the steps
// before it took longer than claimLead), it takes the next free slot instead, so a late
// request never lands next to the following one.
const lateSlot = 20 * time.Millisecond

// lateSlotTries bounds how often a late attempt takes another slot before it goes out
// anyway: only a database slower than claimLead every time gets that far.
const lateSlotTries = 5

// throttleBaseWait is the first wait of an attempt that found every in-flight slot
// held; it doubles with each try up to InfraRetryMaxInterval, jittered so that the
// waiting attempts do not all come back together.
const throttleBaseWait = 250 * time.Millisecond

// filterEvent prepares a payload for filter evaluation.
func filterEvent(p events.Payload) (*filter.Event, error) {
	ev, err := filter.NewEvent(p.ID, string(p.Event), p.Timestamp, p.Data)
	if err != nil {
		// Data is validated as a JSON object when the event is dispatched.
		return nil, temporal.NewNonRetryableApplicationError("event data cannot be decoded for the filters", "Payload", err)
	}
	return ev, nil
}

// match says whether webhookID's filter text lets ev through, and if not why (for the
// delivery log). A filter that fails to evaluate lets nothing through: a receiver that
// asked for some events only must not get others because its filter broke on them.
func (s *Delivery) match(ctx context.Context, webhookID, text string, ev *filter.Event) (reason string, ok bool) {
	f, err := s.filters.Get(text)
	if err != nil {
		activity.GetLogger(ctx).Warn("stored filter does not compile", "webhook_id", webhookID, "error", err)
		return "filter does not compile: " + err.Error(), false
	}
	matched, err := f.Match(ev)
	switch {
	case errors.Is(err, filter.ErrCostLimit):
		return "filter stopped at its cost limit (WEBHOOK_FILTER_COST_LIMIT)", false
	case err != nil:
		return "filter failed on this event: " + err.Error(), false
	case !matched:
		return "filter did not match the event", false
	}
	return "", true
}

// filterOut applies the webhook's filter to an event delivery not yet attempted, and
// when it does not match, closes the delivery as filtered: logged, with the body, never
// sent and never counted. The subscriber listing usually filtered it already; this
// catches runs that listed before filters existed, and a filter changed since.
func (s *Delivery) filterOut(ctx context.Context, t *models.DeliveryTarget, in SendInput, body []byte) (SendResult, error, bool) {
	if in.Kind != delivery.KindEvent || t.Filter == nil || t.PriorStatus != "" {
		return SendResult{}, nil, false
	}
	ev, err := filterEvent(in.Payload)
	if err != nil {
		return SendResult{}, err, true
	}
	reason, ok := s.match(ctx, t.ID, *t.Filter, ev)
	if ok {
		return SendResult{}, nil, false
	}
	row := deliveryRow(ctx, in.Identity, in.Payload.ID, in.Payload.Event)
	row.RequestBody = body
	err = s.withDBRetry(ctx, func(ctx context.Context) error {
		return models.RecordFiltered(ctx, s.db, row, []models.Filtered{{DeliveryID: in.DeliveryID, WebhookID: in.WebhookID, Reason: reason}})
	})
	if err != nil {
		return SendResult{}, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err), true
	}
	return SendResult{Skipped: true, Reason: "filtered: " + reason}, nil, true
}

// setCustomHeaders opens the webhook's custom headers and sets them on h. Like the
// signing secret, they are opened here only, never logged and never returned.
func (s *Delivery) setCustomHeaders(ctx context.Context, t *models.DeliveryTarget, h http.Header) error {
	hs, err := headers.Open(s.box, t.ID, t.HeadersSealed, t.HeadersKeyVersion)
	if err != nil {
		return s.ours(ctx, ErrTypeSecret, "custom headers cannot be opened: check WEBHOOK_SECRET_KEY and WEBHOOK_SECRET_OLD_KEYS; nothing sent", err)
	}
	for _, x := range hs {
		h.Set(x.Name, x.Value)
	}
	return nil
}

// rateSlot is the send slot an attempt reserved; a zero one is no rate limit.
type rateSlot struct {
	at   time.Time
	plan models.RatePlan
}

// throttle reserves the webhook's rate-limit slot and waits until shortly before it
// (claimLead), and takes one of its in-flight slots, if it has those limits. The caller
// sends on the slot (see waitForSlot) and calls release when the exchange is over, to
// give the in-flight slot back. An attempt that must wait longer than RateLimitHold, or
// finds every in-flight slot held, fails as Throttled, to be retried when its turn is
// due: it is not an attempt, counts toward nothing and holds no worker slot meanwhile.
func (s *Delivery) throttle(ctx context.Context, t *models.DeliveryTarget) (slot rateSlot, release func(), err error) {
	if plan, ok := s.ratePlan(t); ok {
		var r models.RateReservation
		err := s.withDBRetry(ctx, func(ctx context.Context) error {
			var err error
			r, err = models.ReserveRate(ctx, s.db, t.ID, plan)
			return err
		})
		if err != nil {
			return rateSlot{}, nil, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err)
		}
		if !r.Reserved {
			// Back a little before the turn, so the slot is then within the hold.
			return rateSlot{}, nil, s.throttled(ctx, t.ID, "waiting for the webhook's rate limit; nothing sent", r.Wait-plan.Horizon/2)
		}
		slot = rateSlot{at: time.Now().Add(r.Wait), plan: plan}
		if early := r.Wait - claimLead; early > 0 {
			timer := time.NewTimer(early)
			select {
			case <-timer.C:
			case <-ctx.Done():
				timer.Stop()
				return rateSlot{}, nil, s.throttled(ctx, t.ID, "stopped while waiting for the webhook's rate limit; nothing sent", plan.Interval)
			}
		}
	}
	if t.MaxInFlight == nil {
		return slot, func() {}, nil
	}
	var lease models.Lease
	var ok bool
	err = s.withDBRetry(ctx, func(ctx context.Context) error {
		var err error
		lease, ok, err = models.AcquireLease(ctx, s.db, t.ID, uuid.NewString(), *t.MaxInFlight, leaseTTL(ctx), leaseTries)
		return err
	})
	if err != nil {
		return rateSlot{}, nil, s.ours(ctx, ErrTypeDatabase, "database unavailable; nothing sent", err)
	}
	if !ok {
		return rateSlot{}, nil, s.throttled(ctx, t.ID, "every one of the webhook's maxInFlight slots is in use; nothing sent", s.inFlightWait(ctx))
	}
	return slot, func() {
		// Given back even when the worker is stopping; a slot that cannot be given back
		// expires with its lease.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := models.ReleaseLease(rctx, s.db, lease); err != nil {
			activity.GetLogger(ctx).Warn("in-flight slot not given back; it expires with its lease", "webhook_id", t.ID, "error", err)
		}
	}, nil
}

// waitForSlot returns when a claimed attempt may go out: on its rate-limit slot. An
// attempt that finds itself past its slot by more than lateSlot (its claim took longer
// than claimLead, or the worker did not get to run on time) takes the next free slot
// instead, whatever the hold: it is claimed, so it goes out, but never next to the
// request on the following slot.
func (s *Delivery) waitForSlot(ctx context.Context, webhookID string, slot rateSlot) {
	if slot.at.IsZero() {
		return
	}
	plan := slot.plan
	plan.Horizon = 24 * time.Hour // claimed: it must have a slot, however far
	for range lateSlotTries {
		time.Sleep(time.Until(slot.at))
		late := time.Since(slot.at)
		if late <= lateSlot {
			return
		}
		r, err := models.ReserveRate(ctx, s.db, webhookID, plan)
		if err != nil {
			activity.GetLogger(ctx).Warn("late for its rate-limit slot and no other could be reserved; sending", "webhook_id", webhookID, "error", err)
			return
		}
		activity.GetLogger(ctx).Debug("late for its rate-limit slot, took the next", "webhook_id", webhookID, "late", late, "wait", r.Wait)
		slot.at = time.Now().Add(r.Wait)
	}
}

// ratePlan is the webhook's rate limit, or the service default, as ReserveRate spaces it.
func (s *Delivery) ratePlan(t *models.DeliveryTarget) (models.RatePlan, bool) {
	perSecond, burst := s.cfg.DefaultRateLimit, s.cfg.DefaultRateBurst
	if t.RateLimitPerSecond != nil {
		perSecond, burst = *t.RateLimitPerSecond, 1
		if t.RateLimitBurst != nil {
			burst = *t.RateLimitBurst
		}
	}
	if perSecond <= 0 {
		return models.RatePlan{}, false
	}
	return models.RatePlan{
		Interval: time.Duration(float64(time.Second) * rateMargin / perSecond),
		Burst:    max(burst, 1),
		Lead:     claimLead,
		Horizon:  max(s.cfg.RateLimitHold, claimLead),
	}, true
}

// leaseTTL is how long an in-flight slot is held at most: the attempt's own deadline
// (Temporal retries it after that), so a worker killed mid-attempt frees its slot then.
func leaseTTL(ctx context.Context) time.Duration {
	if d := activity.GetInfo(ctx).Deadline; !d.IsZero() {
		return max(time.Until(d), 0) + leaseSlack
	}
	return time.Minute // no deadline: only in tests that run an activity bare
}

// inFlightWait is how long an attempt that found every in-flight slot held stays away:
// growing with its tries, jittered, at most InfraRetryMaxInterval.
func (s *Delivery) inFlightWait(ctx context.Context) time.Duration {
	n := min(max(activity.GetInfo(ctx).Attempt-1, 0), 10)
	wait := min(throttleBaseWait<<n, s.cfg.InfraRetryMaxInterval)
	return time.Duration(float64(wait) * (0.5 + rand.Float64()))
}

// throttled is the failure of an attempt held back by the receiver's own limits: it
// sent nothing, costs nothing, and is retried after wait. Routine, so logged at debug.
func (s *Delivery) throttled(ctx context.Context, webhookID, msg string, wait time.Duration) error {
	wait = max(wait, 10*time.Millisecond)
	activity.GetLogger(ctx).Debug("throttled, nothing sent", "webhook_id", webhookID, "reason", msg, "wait", wait)
	return temporal.NewApplicationErrorWithOptions(msg, ErrTypeThrottled, temporal.ApplicationErrorOptions{NextRetryDelay: wait})
}
