package receiver

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/secrets"
	"github.com/assetsup/webhooks/signing"
	"github.com/assetsup/webhooks/workflows"
)

// signedRequest builds a delivery as the worker's Send activity does.
func signedRequest(t *testing.T, url, hookID, secret, eventID string, tamper bool) *http.Request {
	t.Helper()
	body, err := events.Payload{ID: eventID, Event: events.AssetTransferred, Timestamp: "2026-01-01T00:00:00Z", Data: []byte(`{"n":1}`)}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Unix()
	std, err := signing.StandardSign(secret, eventID, ts, body)
	if err != nil {
		t.Fatal(err)
	}
	sig := signing.Sign(secret, body)
	if tamper {
		body = bytes.Replace(body, []byte(`"n":1`), []byte(`"n":2`), 1)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/hook/"+hookID, bytes.NewReader(body))
	req.Header.Set(signing.HeaderSignature, sig)
	req.Header.Set(signing.HeaderDelivery, workflows.DeliveryID(eventID, hookID))
	req.Header.Set(signing.HeaderWebhookID, eventID)
	req.Header.Set(signing.HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(signing.HeaderWebhookSignature, std)
	return req
}

func TestReceiverVerifiesEveryDelivery(t *testing.T) {
	l := NewLedger()
	r := New(l)
	srv := httptest.NewServer(r)
	defer srv.Close()
	secret, _ := secrets.Generate()
	r.AddSecret("w1", secret)
	l.Expect("p", Key{"e1", "w1"}, time.Now())
	l.Expect("p", Key{"e2", "w1"}, time.Now())

	do := func(req *http.Request) int {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := do(signedRequest(t, srv.URL, "w1", secret, "e1", false)); code != http.StatusNoContent {
		t.Fatalf("valid delivery answered %d", code)
	}
	if code := do(signedRequest(t, srv.URL, "w1", secret, "e2", true)); code != http.StatusUnauthorized {
		t.Fatalf("tampered body answered %d", code)
	}
	other, _ := secrets.Generate()
	if code := do(signedRequest(t, srv.URL, "w1", other, "e2", false)); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret answered %d", code)
	}
	// Right signature, but the delivery id header names another webhook.
	req := signedRequest(t, srv.URL, "w1", secret, "e2", false)
	req.Header.Set(signing.HeaderDelivery, workflows.DeliveryID("e2", "w2"))
	if code := do(req); code != http.StatusUnauthorized {
		t.Fatalf("wrong delivery id answered %d", code)
	}
	v := l.Verify()
	if v.OK || v.BadSignatures != 3 || v.Received != 1 || v.Missing != 1 {
		t.Fatalf("verification %+v", v)
	}
	do(signedRequest(t, srv.URL, "w1", secret, "e1", false))
	if v := l.Verify(); v.Duplicates != 1 {
		t.Fatalf("duplicate not counted: %+v", v)
	}
}

func TestReceiverRefusesFirstAttemptToFlakyWebhooks(t *testing.T) {
	l := NewLedger()
	r := New(l)
	srv := httptest.NewServer(r)
	defer srv.Close()
	secret, _ := secrets.Generate()
	r.AddSecret("flaky", secret)
	r.AddSecret("steady", secret)
	r.FailFirstAttempt("flaky")
	for _, k := range []Key{{"e1", "flaky"}, {"e2", "flaky"}, {"e1", "steady"}} {
		l.Expect("retry", k, time.Now())
	}
	post := func(hook, event string, tamper bool) *http.Response {
		resp, err := http.DefaultClient.Do(signedRequest(t, srv.URL, hook, secret, event, tamper))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// A badly signed attempt is not the first attempt: it neither uses up the refusal
	// nor gets a retry hint.
	if resp := post("flaky", "e1", true); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("tampered attempt answered %d", resp.StatusCode)
	}
	tests := []struct {
		name       string
		hook       string
		event      string
		wantStatus int
		wantRetry  string
	}{
		{"first attempt of an event to a flaky webhook", "flaky", "e1", http.StatusServiceUnavailable, "1"},
		{"its retry", "flaky", "e1", http.StatusNoContent, ""},
		{"another event's first attempt to it", "flaky", "e2", http.StatusServiceUnavailable, "1"},
		{"that event's retry", "flaky", "e2", http.StatusNoContent, ""},
		{"a steady webhook", "steady", "e1", http.StatusNoContent, ""},
	}
	for _, tt := range tests {
		resp := post(tt.hook, tt.event, false)
		if resp.StatusCode != tt.wantStatus || resp.Header.Get("Retry-After") != tt.wantRetry {
			t.Fatalf("%s: %d Retry-After %q, want %d %q", tt.name, resp.StatusCode, resp.Header.Get("Retry-After"), tt.wantStatus, tt.wantRetry)
		}
	}
	if r.Refused() != 2 {
		t.Fatalf("refused %d attempts, want 2", r.Refused())
	}
	if v := l.Verify(); v.Received != 3 || v.Missing != 0 || v.Duplicates != 0 || v.BadSignatures != 1 {
		t.Fatalf("refused attempts must not reach the ledger, retries must: %+v", v)
	}
}
