package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"
)

// RatePlan is how ReserveRate spaces one webhook's attempts.
type RatePlan struct {
	// Interval is the time between two attempts at the steady rate, Burst how many may
	// start at once after a quiet spell.
	Interval time.Duration
	Burst    int
	// Lead is the least time from reserving a slot to the slot itself: what the caller
	// needs to get ready to send (a claim, a database round trip), so that every request
	// goes out on its slot rather than late by that work, which would bunch requests.
	Lead time.Duration
	// Horizon is how far ahead a slot may be reserved (at least Lead). An attempt whose
	// slot is further off is not given one; it is told when to come back instead.
	Horizon time.Duration
}

// RateReservation is ReserveRate's answer.
type RateReservation struct {
	// Reserved: the caller owns the send slot Wait from now and must send no earlier.
	// Otherwise it holds a place in the queue whose turn comes in Wait.
	Reserved bool
	Wait     time.Duration
	// At is the slot or turn on the database's clock, which every replica shares.
	At time.Time
}

// ReserveRate takes the next send slot of webhookID under plan, in one statement that
// every worker replica shares through the webhook's throttle_rates row.
//
// It is GCRA (the generic cell rate algorithm) with reservations: tat, the theoretical
// arrival time, moves on by Interval per slot handed out, and a slot is free from tat
// less (Burst-1)·Interval, and never sooner than Lead from now. Slot times are
// therefore at least Interval apart beyond the burst, whichever replica sends. A slot
// is reserved only within Horizon, so only attempts about to send hold one (and wait for
// it in the worker); the others are given a turn in a queue (queue_at, also Interval
// apart), and come back then without a slot, so a thousand waiting attempts wake one by
// one rather than all at once.
//
// A webhook deleted meanwhile reserves at once: the caller finds it gone.
func ReserveRate(ctx context.Context, db bun.IDB, webhookID string, plan RatePlan) (RateReservation, error) {
	args := rateArgs{
		WebhookID: webhookID,
		Interval:  micros(plan.Interval),
		Tolerance: micros(time.Duration(max(plan.Burst-1, 0)) * plan.Interval),
		Lead:      micros(plan.Lead),
		Horizon:   micros(max(plan.Horizon, plan.Lead)),
	}
	var res RateReservation
	var waitMicros int64
	// The inserted row's last_slot is the earliest slot (the statement's clock plus
	// Lead), read before the statement may wait for another replica's lock on the row:
	// EXCLUDED.last_slot is "the earliest slot now" in the update. Each SET reads the
	// row as it was. The wait is measured against the clock again once the row is ours.
	err := db.NewRaw(`
INSERT INTO throttle_rates AS r (webhook_id, tat, queue_at, last_slot, last_reserved)
SELECT w.id, n.t + (?lead + ?interval) * interval '1 microsecond', n.t, n.t + ?lead * interval '1 microsecond', true
FROM webhooks AS w, (SELECT clock_timestamp() AS t) AS n
WHERE w.id = ?webhook_id
ON CONFLICT (webhook_id) DO UPDATE SET
    last_reserved = GREATEST(EXCLUDED.last_slot, r.tat - ?tolerance * interval '1 microsecond')
                    <= EXCLUDED.last_slot + (?horizon - ?lead) * interval '1 microsecond',
    last_slot = CASE
        WHEN GREATEST(EXCLUDED.last_slot, r.tat - ?tolerance * interval '1 microsecond')
             <= EXCLUDED.last_slot + (?horizon - ?lead) * interval '1 microsecond'
        THEN GREATEST(EXCLUDED.last_slot, r.tat - ?tolerance * interval '1 microsecond')
        ELSE GREATEST(r.queue_at, r.tat - ?tolerance * interval '1 microsecond') END,
    tat = CASE
        WHEN GREATEST(EXCLUDED.last_slot, r.tat - ?tolerance * interval '1 microsecond')
             <= EXCLUDED.last_slot + (?horizon - ?lead) * interval '1 microsecond'
        THEN GREATEST(EXCLUDED.last_slot, r.tat) + ?interval * interval '1 microsecond'
        ELSE r.tat END,
    queue_at = CASE
        WHEN GREATEST(EXCLUDED.last_slot, r.tat - ?tolerance * interval '1 microsecond')
             <= EXCLUDED.last_slot + (?horizon - ?lead) * interval '1 microsecond'
        THEN r.queue_at
        ELSE GREATEST(r.queue_at, r.tat - ?tolerance * interval '1 microsecond') + ?interval * interval '1 microsecond' END
RETURNING r.last_reserved, r.last_slot, floor(EXTRACT(EPOCH FROM r.last_slot - clock_timestamp()) * 1000000)::bigint`, &args,
	).Scan(ctx, &res.Reserved, &res.At, &waitMicros)
	if errors.Is(err, sql.ErrNoRows) {
		return RateReservation{Reserved: true}, nil
	}
	if err != nil {
		return RateReservation{}, fmt.Errorf("reserve rate slot: %w", err)
	}
	res.Wait = time.Duration(waitMicros) * time.Microsecond
	return res, nil
}

// rateArgs are ReserveRate's named placeholders (?name), durations in microseconds.
type rateArgs struct {
	WebhookID string `bun:"webhook_id"`
	Interval  int64  `bun:"interval"`
	Tolerance int64  `bun:"tolerance"`
	Lead      int64  `bun:"lead"`
	Horizon   int64  `bun:"horizon"`
}

func micros(d time.Duration) int64 { return d.Microseconds() }

// Lease is one of a webhook's in-flight slots, held by one attempt.
type Lease struct {
	WebhookID string
	Slot      int
	Holder    string
}

// AcquireLease takes one of webhookID's maxInFlight slots for holder (a fresh id per
// attempt) until ttl passes, or reports ok false when every slot is held. Slots are rows
// of throttle_leases whose primary key is (webhook, slot number), so two replicas can
// never hold the same slot; an expired lease (its worker died mid-attempt) is taken over.
//
// Two attempts racing for the same free slot leave one of them without any, even if a
// higher slot is free: it tries again, up to tries times, each with a fresh view.
func AcquireLease(ctx context.Context, db bun.IDB, webhookID, holder string, maxInFlight int, ttl time.Duration, tries int) (Lease, bool, error) {
	for range max(tries, 1) {
		var slot int
		err := db.NewRaw(`
INSERT INTO throttle_leases AS l (webhook_id, slot, holder, expires_at)
SELECT w.id, s.n, ?, clock_timestamp() + ? * interval '1 microsecond'
FROM webhooks AS w, generate_series(1, ?) AS s (n)
WHERE w.id = ? AND NOT EXISTS (
    SELECT 1 FROM throttle_leases AS x
    WHERE x.webhook_id = w.id AND x.slot = s.n AND x.expires_at > clock_timestamp())
ORDER BY s.n
LIMIT 1
ON CONFLICT (webhook_id, slot) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE l.expires_at <= clock_timestamp()
RETURNING l.slot`, holder, micros(ttl), maxInFlight, webhookID).Scan(ctx, &slot)
		switch {
		case err == nil:
			return Lease{WebhookID: webhookID, Slot: slot, Holder: holder}, true, nil
		case !errors.Is(err, sql.ErrNoRows):
			return Lease{}, false, fmt.Errorf("acquire in-flight slot: %w", err)
		}
		free, err := freeLeases(ctx, db, webhookID, maxInFlight)
		if err != nil {
			return Lease{}, false, err
		}
		if free == 0 {
			return Lease{}, false, nil
		}
	}
	return Lease{}, false, nil
}

// freeLeases counts webhookID's slots up to maxInFlight that no live lease holds.
func freeLeases(ctx context.Context, db bun.IDB, webhookID string, maxInFlight int) (int, error) {
	var held int
	err := db.NewRaw(`SELECT count(*) FROM throttle_leases
WHERE webhook_id = ? AND slot <= ? AND expires_at > clock_timestamp()`, webhookID, maxInFlight).Scan(ctx, &held)
	if err != nil {
		return 0, fmt.Errorf("count in-flight slots: %w", err)
	}
	return max(maxInFlight-held, 0), nil
}

// ReleaseLease gives l's slot back, unless it expired and another attempt took it over.
func ReleaseLease(ctx context.Context, db bun.IDB, l Lease) error {
	_, err := db.NewRaw(`DELETE FROM throttle_leases WHERE webhook_id = ? AND slot = ? AND holder = ?`,
		l.WebhookID, l.Slot, l.Holder).Exec(ctx)
	if err != nil {
		return fmt.Errorf("release in-flight slot: %w", err)
	}
	return nil
}
