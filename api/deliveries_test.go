package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/models"
)

// cursorOf spells a cursor as the API encodes one, from any time text and id, so a
// test can also forge the cursors the API never returns.
func cursorOf(at, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at + "|" + id))
}

func TestListDeliveriesQuery(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("delivery log"))
	// One delivery per status, a minute apart, newest first in this order.
	statuses := []string{"pending", "succeeded", "failed", "skipped", "filtered", "missed"}
	newest := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ids := make([]string, len(statuses))
	for i, st := range statuses {
		ids[i] = uuid.NewString()
		_, err := s.db.ExecContext(context.Background(), `INSERT INTO webhook_deliveries
			(id, webhook_id, event_id, event, status, workflow_id, run_id, created_at)
			VALUES (?, ?, ?, 'LOW_STOCK', ?, ?, ?, ?)`,
			ids[i], w.ID, "evt_"+ids[i], st, "delivery:"+ids[i], uuid.NewString(), newest.Add(-time.Duration(i)*time.Minute))
		require.NoError(t, err)
	}
	after := newest.Add(time.Hour).Format(time.RFC3339Nano)

	tests := []struct {
		name       string
		giveQuery  string
		wantStatus int
		wantCode   string   // for an error
		wantIDs    []string // for a page
	}{
		{name: "everything", giveQuery: "", wantStatus: http.StatusOK, wantIDs: ids},
		{name: "skipped only", giveQuery: "status=skipped", wantStatus: http.StatusOK, wantIDs: ids[3:4]},
		{name: "filtered only", giveQuery: "status=filtered", wantStatus: http.StatusOK, wantIDs: ids[4:5]},
		{name: "missed only", giveQuery: "status=missed", wantStatus: http.StatusOK, wantIDs: ids[5:]},
		{name: "failed only", giveQuery: "status=failed", wantStatus: http.StatusOK, wantIDs: ids[2:3]},
		{name: "unknown status", giveQuery: "status=cancelled", wantStatus: http.StatusBadRequest, wantCode: "invalid_status"},
		{name: "one event", giveQuery: "event=LOW_STOCK", wantStatus: http.StatusOK, wantIDs: ids},
		{name: "one event and status", giveQuery: "event=LOW_STOCK&status=failed", wantStatus: http.StatusOK, wantIDs: ids[2:3]},
		{name: "another event", giveQuery: "event=ASSET_TRANSFERRED", wantStatus: http.StatusOK, wantIDs: []string{}},
		{name: "event too long", giveQuery: "event=" + strings.Repeat("E", 101), wantStatus: http.StatusBadRequest, wantCode: "invalid_event"},
		{name: "cursor after the newest", giveQuery: "cursor=" + cursorOf(after, uuid.NewString()), wantStatus: http.StatusOK, wantIDs: ids},
		{name: "cursor at the second", giveQuery: "cursor=" + cursorOf(newest.Add(-time.Minute).Format(time.RFC3339Nano), ids[1]), wantStatus: http.StatusOK, wantIDs: ids[2:]},
		{name: "cursor with a urn id", giveQuery: "cursor=" + cursorOf(after, "urn:uuid:"+uuid.NewString()), wantStatus: http.StatusOK, wantIDs: ids},
		{name: "cursor in year 0000", giveQuery: "cursor=" + cursorOf("0000-01-01T00:00:00Z", uuid.NewString()), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor before 1970", giveQuery: "cursor=" + cursorOf("1969-12-31T23:59:59Z", uuid.NewString()), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor offset before 1970", giveQuery: "cursor=" + cursorOf("1970-01-01T00:30:00+01:00", uuid.NewString()), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor offset past 9999", giveQuery: "cursor=" + cursorOf("9999-12-31T23:59:59-01:00", uuid.NewString()), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor without separator", giveQuery: "cursor=" + base64.RawURLEncoding.EncodeToString([]byte(after)), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor with a bad id", giveQuery: "cursor=" + cursorOf(after, "nope"), wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
		{name: "cursor not base64", giveQuery: "cursor=%2A%2A%2A", wantStatus: http.StatusBadRequest, wantCode: "invalid_cursor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries?"+tt.giveQuery, user, "")
			if tt.wantCode != "" {
				requireError(t, rec, tt.wantStatus, tt.wantCode)
				return
			}
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			var page api.DeliveryPage
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
			got := make([]string, len(page.Deliveries))
			for i, d := range page.Deliveries {
				got[i] = d.ID
			}
			assert.Equal(t, tt.wantIDs, got)
		})
	}
}

// TestListDeliveriesPages follows nextCursor through the log.
func TestListDeliveriesPages(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("paged log"))
	var want []string
	for i := range 5 {
		id := uuid.NewString()
		_, err := s.db.ExecContext(context.Background(), `INSERT INTO webhook_deliveries
			(id, webhook_id, event_id, event, workflow_id, run_id, created_at)
			VALUES (?, ?, ?, 'LOW_STOCK', ?, ?, current_timestamp - ? * interval '1 second')`,
			id, w.ID, "evt_"+id, "delivery:"+id, uuid.NewString(), i)
		require.NoError(t, err)
		want = append(want, id)
	}
	var got []string
	path := "/webhooks/" + w.ID + "/deliveries?limit=2"
	for range 5 {
		rec := s.do(t, http.MethodGet, path, user, "")
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		var page api.DeliveryPage
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &page))
		for _, d := range page.Deliveries {
			got = append(got, d.ID)
		}
		if page.NextCursor == nil {
			break
		}
		path = "/webhooks/" + w.ID + "/deliveries?limit=2&cursor=" + *page.NextCursor
	}
	assert.Equal(t, want, got)
}

func TestGetDeliveryShowsEveryAttempt(t *testing.T) {
	s := newServer(t)
	user := newUser()
	w := s.create(t, user, validHook("attempt log"))
	d := models.Delivery{ID: uuid.NewString(), WebhookID: w.ID, EventID: "evt_log", Event: "LOW_STOCK",
		Kind: delivery.KindEvent, WorkflowID: "delivery:evt_log:" + w.ID, RunID: uuid.NewString()}
	ctx := context.Background()
	for _, a := range []models.Attempt{
		{Delivery: d, Number: 1, StatusCode: 503, Error: "receiver answered HTTP 503", ResponseExcerpt: "busy", Duration: 30 * time.Millisecond},
		{Delivery: d, Number: 2, Error: "timeout", Duration: 2 * time.Second},
		{Delivery: d, Number: 3, Succeeded: true, StatusCode: 204, Duration: 5 * time.Millisecond},
	} {
		require.NoError(t, models.RecordAttempt(ctx, s.db, a))
	}

	rec := s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries/"+d.ID, user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var got api.Delivery
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	require.Len(t, got.AttemptLog, 3)
	tests := []struct {
		status    *int
		succeeded bool
		err       string
		duration  int
	}{
		{status: ptr(503), err: "receiver answered HTTP 503", duration: 30},
		{status: nil, err: "timeout", duration: 2000},
		{status: ptr(204), succeeded: true, duration: 5},
	}
	for i, tt := range tests {
		a := got.AttemptLog[i]
		assert.Equal(t, i+1, a.Attempt)
		assert.Equal(t, tt.status, a.StatusCode, "attempt %d", i+1)
		assert.Equal(t, tt.succeeded, a.Succeeded, "attempt %d", i+1)
		assert.Equal(t, tt.duration, a.DurationMS, "attempt %d", i+1)
		if tt.err == "" {
			assert.Nil(t, a.Error)
		} else if assert.NotNil(t, a.Error) {
			assert.Equal(t, tt.err, *a.Error)
		}
	}

	// Another user's delivery stays unknown, log and all.
	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries/"+d.ID, newUser(), "")
	assert.Equal(t, http.StatusNotFound, rec.Code)
	assert.NotContains(t, rec.Body.String(), "receiver answered")

	// The list leaves the log out.
	rec = s.do(t, http.MethodGet, "/webhooks/"+w.ID+"/deliveries", user, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.NotContains(t, rec.Body.String(), "attemptLog")
}

func ptr(n int) *int { return &n }
