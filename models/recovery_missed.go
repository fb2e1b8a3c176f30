package models

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/delivery"
)

// InactiveSubscriber is a webhook subscribed to an event but switched off: the event is
// logged for it as missed.
type InactiveSubscriber struct {
	ID             string  `bun:"id"`
	Filter         *string `bun:"filter"`
	DisabledReason *string `bun:"disabled_reason"`
}

// subscriberRow is a row of ListSubscribersAndInactive's one query.
type subscriberRow struct {
	Subscriber
	IsActive       bool    `bun:"is_active"`
	DisabledReason *string `bun:"disabled_reason"`
}

// ListSubscribersAndInactive is ListSubscribers, and, with inactive, also every one of
// the user's inactive webhooks subscribed to the event, in the same statement: the
// dispatch's first page costs no extra round trip for finding what it misses. A user
// has at most WEBHOOK_MAX_PER_USER webhooks, so the inactive ones are few.
func ListSubscribersAndInactive(ctx context.Context, db bun.IDB, userID, event, afterID string, limit int, inactive bool) ([]Subscriber, []InactiveSubscriber, error) {
	rows := []subscriberRow{}
	err := db.NewRaw(`
(SELECT id, name, url, filter, true AS is_active, NULL::text AS disabled_reason FROM webhooks
 WHERE user_id = ? AND is_active AND events @> ARRAY[?]::text[] AND id > ?::uuid
 ORDER BY id LIMIT ?)
UNION ALL
(SELECT id, name, url, filter, false, disabled_reason FROM webhooks
 WHERE ? AND user_id = ? AND NOT is_active AND events @> ARRAY[?]::text[]
 ORDER BY id)`,
		userID, event, afterOrMin(afterID), limit, inactive, userID, event,
	).Scan(ctx, &rows)
	if err != nil {
		return nil, nil, fmt.Errorf("list subscribers: %w", err)
	}
	subs, off := []Subscriber{}, []InactiveSubscriber{}
	for _, r := range rows {
		if r.IsActive {
			subs = append(subs, r.Subscriber)
			continue
		}
		off = append(off, InactiveSubscriber{ID: r.ID, Filter: r.Filter, DisabledReason: r.DisabledReason})
	}
	return subs, off, nil
}

// afterOrMin is a keyset cursor that every id follows when there is none yet.
func afterOrMin(afterID string) string {
	if afterID == "" {
		return "00000000-0000-0000-0000-000000000000"
	}
	return afterID
}

// Missed is one delivery that an inactive webhook missed, with why it was off.
type Missed = Closed

// RecordMissed logs deliveries of one event that inactive webhooks missed, as
// RecordFiltered logs filtered ones (recordClosed): closed as missed, no attempt, nothing
// counted, the body they would have carried, which a recovery sends.
func RecordMissed(ctx context.Context, db bun.IDB, d Delivery, rows []Missed) error {
	if err := recordClosed(ctx, db, d, delivery.OutcomeMissed, rows); err != nil {
		return fmt.Errorf("record missed deliveries: %w", err)
	}
	return nil
}
