package activities_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/models"
)

func TestListSubscribersPagesActiveSubscribersOfOneUser(t *testing.T) {
	db, box := testinfra.DB(t), testfixture.Box(t)
	ctx := context.Background()
	user, other := "user-"+uuid.NewString(), "user-"+uuid.NewString()
	const url = "http://127.0.0.1:9/hooks/in?token=supersecret"

	var want []string
	for range 5 {
		want = append(want, createHook(t, db, box, user, url).ID)
	}
	slices.Sort(want)

	// Not subscribers: another user's, a paused one, one subscribed to other events.
	createHook(t, db, box, other, url)
	paused := createHook(t, db, box, user, url)
	off := false
	_, err := models.UpdateWebhook(ctx, db, user, paused.ID, models.WebhookPatch{IsActive: &off})
	require.NoError(t, err)
	elsewhere := createHook(t, db, box, user, url)
	_, err = models.UpdateWebhook(ctx, db, user, elsewhere.ID, models.WebhookPatch{
		Events: []string{string(events.AssetTransferred), string(events.MaintenanceDue)},
	})
	require.NoError(t, err)
	// A subscriber to several events, LOW_STOCK among them, is one.
	several := createHook(t, db, box, user, url)
	_, err = models.UpdateWebhook(ctx, db, user, several.ID, models.WebhookPatch{
		Events: []string{string(events.AssetTransferred), string(events.LowStock)},
	})
	require.NoError(t, err)
	want = append(want, several.ID)
	slices.Sort(want)

	cfg := testConfig()
	cfg.DispatchPageSize = 2
	s := newActivities(t, db, box, cfg, time.Second)
	env := newEnv(t, s)

	var got []string
	in := activities.ListSubscribersInput{UserID: user, Event: events.LowStock}
	for page := 0; ; page++ {
		require.Less(t, page, 10, "paging does not end")
		val, err := env.ExecuteActivity(s.ListSubscribers, in)
		require.NoError(t, err)
		var res activities.ListSubscribersResult
		require.NoError(t, val.Get(&res))
		require.LessOrEqual(t, len(res.Subscribers), 2)
		for _, sub := range res.Subscribers {
			got = append(got, sub.ID)
			assert.Equal(t, "127.0.0.1:9", sub.Host, "only the host, never the path or token")
			assert.NotEmpty(t, sub.Name)
		}
		if len(res.Subscribers) == 2 {
			assert.Equal(t, res.Subscribers[1].ID, res.Next, "a full page names the cursor")
		} else {
			assert.Empty(t, res.Next, "a short page is the last")
		}
		if res.Next == "" {
			break
		}
		in.After = res.Next
	}
	assert.Equal(t, want, got, "every subscriber once, in id order")

	val, err := env.ExecuteActivity(s.ListSubscribers, activities.ListSubscribersInput{UserID: user, Event: events.BookingCancelled})
	require.NoError(t, err)
	var none activities.ListSubscribersResult
	require.NoError(t, val.Get(&none))
	assert.Empty(t, none.Subscribers)
	assert.Empty(t, none.Next)
}
