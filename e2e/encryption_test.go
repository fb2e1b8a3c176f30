package e2e_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/uptrace/bun"
	commonpb "go.temporal.io/api/common/v1"
	failurepb "go.temporal.io/api/failure/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/proxy"
	"go.temporal.io/api/temporalproto"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/deliveryworker"
	"github.com/assetsup/webhooks/dispatch"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/temporalclient"
	"github.com/assetsup/webhooks/workflows"
)

// payloadKey is a fresh random payload key named id.
func payloadKey(t *testing.T, id string) payloadcodec.Key {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return payloadcodec.Key{ID: id, Bytes: b}
}

// keyEntry is a key as TEMPORAL_PAYLOAD_OLD_KEYS lists it: "id:base64".
func keyEntry(k payloadcodec.Key) string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Bytes)
}

// withPayloadKeys sets cfg's keys as TEMPORAL_PAYLOAD_KEY(_ID) and TEMPORAL_PAYLOAD_OLD_KEYS do.
func withPayloadKeys(cfg config.Config, current payloadcodec.Key, older ...payloadcodec.Key) config.Config {
	cfg.PayloadKeyID = current.ID
	cfg.PayloadKey = base64.StdEncoding.EncodeToString(current.Bytes)
	var entries []string
	for _, k := range older {
		entries = append(entries, keyEntry(k))
	}
	cfg.PayloadOldKeys = strings.Join(entries, ",")
	return cfg
}

// encryptingClient connects to the package's dev server as the API and the dispatch
// command do (temporalclient.Dial), with cfg's payload keys.
func encryptingClient(t *testing.T, cfg config.Config) client.Client {
	t.Helper()
	cfg.TemporalAddress = testinfra.TemporalAddress(t)
	cfg.TemporalNamespace = "default"
	cfg.TemporalDialTimeout = 10 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := temporalclient.Dial(ctx, cfg, logs.Logger(), nil)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// encryptedStack is a stack whose worker and API encrypt payloads with one codec.
type encryptedStack struct {
	*stack
	codec    *payloadcodec.Codec
	temporal client.Client // the API's client, built by temporalclient
}

func newEncryptedStack(t *testing.T, cfg config.Config) *encryptedStack {
	t.Helper()
	box := testfixture.Box(t)
	tq := testfixture.StartWorker(t, testfixture.WorkerSettings{Box: box, Config: cfg, Logger: logs.Logger()})
	tc := encryptingClient(t, cfg)
	codec, err := cfg.PayloadCodec()
	require.NoError(t, err)
	require.NotNil(t, codec)
	return &encryptedStack{stack: newAPIStack(t, box, tc, tq), codec: codec, temporal: tc}
}

// createNamedWebhook registers a webhook through the API under name (which goes into
// every delivery's memo).
func (s *encryptedStack) createNamedWebhook(user, name, url string, events ...string) created {
	s.t.Helper()
	var c created
	code := s.call(user, http.MethodPost, "/webhooks", map[string]any{"name": name, "url": url, "events": events}, &c)
	require.Equal(s.t, http.StatusCreated, code)
	return c
}

// privateNotification is a notification full of business data, each field marked with
// private so a search of the histories finds any of it.
func privateNotification(user, private string) dispatch.Notification {
	return dispatch.Notification{
		UserID: user, Event: events.AssetTransferred,
		Title:      "Laptop for " + private + "-title",
		Message:    "Handed to " + private + "-message at the Lagos office",
		EntityType: "asset", EntityID: "asset-42",
		Metadata: map[string]any{"person": private + "-metadata", "location": "Lagos"},
	}
}

// Encryption on: no title, message, metadata or webhook name of any event reaches a
// workflow history, memo or failure in plaintext, read back through the Temporal API;
// every payload there is sealed; deliveries still arrive whole and verifiably signed; the
// codec server (and the temporal CLI through it) decodes them for the token holder only.
func TestEncryptedHistories(t *testing.T) {
	cfg := withPayloadKeys(testfixture.WorkerConfig(), payloadKey(t, "e2e-1"))
	s := newEncryptedStack(t, cfg)
	private := "private-" + testinfra.RandomHex(8)
	notifications := dispatch.NewNotificationDispatchService(dispatch.NewWebhookDispatchService(s.temporal, s.taskQueue))
	ctx := context.Background()

	// One subscriber, whose first attempt fails: delivered inline, with a local failure
	// and a retried activity.
	inline := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	inline.FailFirst(1)
	userInline := newUser()
	hookInline := s.createNamedWebhook(userInline, "Ops desk of "+private+"-name", inline.URL, "ASSET_TRANSFERRED")
	// Two subscribers: a dispatch and two DeliverWebhook children.
	erp, slack := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK)), testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	userFanOut := newUser()
	hookERP := s.createNamedWebhook(userFanOut, "ERP of "+private+"-name", erp.URL, "ASSET_TRANSFERRED")
	hookSlack := s.createNamedWebhook(userFanOut, "Slack of "+private+"-name", slack.URL, "ASSET_TRANSFERRED")
	// A receiver that always fails: every attempt's failure, and the DeliveryFailed
	// workflow failure with its details.
	failing := testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError))
	userFailing := newUser()
	s.createNamedWebhook(userFailing, "Broken "+private+"-name", failing.URL, "ASSET_TRANSFERRED")

	var eventIDs []string
	for _, user := range []string{userInline, userFanOut, userFailing} {
		id, err := notifications.Dispatch(ctx, privateNotification(user, private))
		require.NoError(t, err)
		eventIDs = append(eventIDs, id)
	}

	// Deliveries arrive whole and signed: the receiver sees the plaintext event.
	reqs := inline.WaitFor(t, 2, 30*time.Second)
	verify(t, hookInline.Secret, reqs[1])
	assert.Equal(t, reqs[0].Body, reqs[1].Body, "byte-identical on every attempt")
	var body struct {
		ID   string          `json:"id"`
		Data json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(reqs[1].Body, &body))
	assert.Equal(t, eventIDs[0], body.ID)
	wantData, err := json.Marshal(map[string]any{
		"title": "Laptop for " + private + "-title", "message": "Handed to " + private + "-message at the Lagos office",
		"entityType": "asset", "entityId": "asset-42", "metadata": map[string]any{"person": private + "-metadata", "location": "Lagos"},
	})
	require.NoError(t, err)
	assert.JSONEq(t, string(wantData), string(body.Data))
	for _, r := range []struct {
		rcv  *testfixture.Receiver
		hook created
	}{{erp, hookERP}, {slack, hookSlack}} {
		req := r.rcv.WaitFor(t, 1, 30*time.Second)[0]
		verify(t, r.hook.Secret, req)
		assert.Contains(t, string(req.Body), private+"-metadata")
	}

	// The API starts deliveries too: a test delivery and a redelivery of the inline one.
	var test struct {
		DeliveryID string `json:"deliveryId"`
	}
	require.Equal(t, http.StatusOK, s.call(userInline, http.MethodPost, "/webhooks/"+hookInline.ID+"/test", nil, &test))
	deliveries := userDeliveries(t, userInline, userFanOut, userFailing)
	var original string
	for _, d := range deliveries {
		if d.WebhookID == hookInline.ID && d.Kind == delivery.KindEvent {
			original = d.ID
		}
	}
	require.NotEmpty(t, original)
	require.Equal(t, http.StatusAccepted, s.call(userInline, http.MethodPost, "/webhooks/"+hookInline.ID+"/deliveries/"+original+"/redeliver", nil, nil))
	inline.WaitFor(t, 4, 30*time.Second) // the test delivery and the redelivery
	failing.WaitFor(t, 3, 30*time.Second)

	// Every workflow those made, closed.
	ids := map[string]bool{}
	for _, id := range eventIDs {
		ids[workflows.DispatchWorkflowID(id)] = true
	}
	eventually(t, 60*time.Second, func() bool {
		deliveries = userDeliveries(t, userInline, userFanOut, userFailing)
		for _, d := range deliveries {
			if d.Status == delivery.OutcomePending {
				return false
			}
		}
		return len(deliveries) == 6 // inline, 2 fan-out, failing, test, redelivery
	}, "every delivery closed")
	for _, d := range deliveries {
		ids[d.WorkflowID] = true
	}
	require.Len(t, ids, 7, "3 dispatches, 2 fan-out children, the test delivery and the redelivery")

	var failures int
	var decoded bytes.Buffer
	for id := range ids {
		runID := latestClosedRun(t, id)
		h := workflowHistory(t, id, runID)
		desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(ctx, id, runID)
		require.NoError(t, err)
		requireNoPlaintext(t, id, private, h, desc)
		sealed, searchAttrs := payloadsOf(t, h)
		require.NotEmpty(t, sealed)
		for _, p := range sealed {
			require.Equal(t, payloadcodec.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]), "%s: a payload left plaintext: %s", id, p)
			assert.Equal(t, "e2e-1", string(p.GetMetadata()[payloadcodec.MetadataKeyID]))
		}
		require.NotEmpty(t, searchAttrs, "%s: deliveries carry their search attributes", id)
		for _, p := range searchAttrs {
			assert.NotEqual(t, payloadcodec.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]), "%s: search attributes stay plaintext, for the server to index", id)
		}
		for _, f := range failuresOf(h) {
			if f.GetSource() == "" {
				continue // made by the server (a timeout, an unhandled command): no data of ours
			}
			failures++
			assert.Equal(t, "Encoded failure", f.GetMessage(), "%s: a failure message left plaintext", id)
			assert.Empty(t, f.GetStackTrace())
			assert.NotNil(t, f.GetEncodedAttributes())
		}
		decoded.Write(mustMarshal(t, decodedHistory(t, s.codec, h)))
	}
	assert.Positive(t, failures, "the failing receiver and the retried attempt recorded failures the SDK made")
	for _, want := range []string{private + "-title", private + "-message", private + "-metadata", private + "-name", "receiver answered HTTP 500"} {
		assert.Contains(t, decoded.String(), want, "decoded with the key, the histories hold it again")
	}

	// Search attributes still find deliveries: they hold ids only.
	eventually(t, 30*time.Second, func() bool {
		resp, err := testinfra.Temporal(t).ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", Query: fmt.Sprintf("WebhookUserId = %q", userFanOut),
		})
		require.NoError(t, err)
		return len(resp.GetExecutions()) == 2
	}, "both fan-out deliveries found by WebhookUserId")

	// Nothing private in the service's own log either.
	assert.NotContains(t, logs.String(), private)

	t.Run("codec server", func(t *testing.T) {
		checkCodecServer(t, s.codec, workflowHistory(t, workflows.DispatchWorkflowID(eventIDs[0]), ""), private)
	})
}

// logRow is one row of the delivery log.
type logRow struct {
	ID         string           `bun:"id"`
	WebhookID  string           `bun:"webhook_id"`
	Kind       delivery.Kind    `bun:"kind"`
	Status     delivery.Outcome `bun:"status"`
	WorkflowID string           `bun:"workflow_id"`
}

// userDeliveries is the delivery log of users' webhooks.
func userDeliveries(t *testing.T, users ...string) []logRow {
	t.Helper()
	var rows []logRow
	err := testinfra.DB(t).NewRaw(`SELECT d.id, d.webhook_id, d.kind, d.status, d.workflow_id
		FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
		WHERE w.user_id IN (?)`, bun.In(users)).Scan(context.Background(), &rows)
	require.NoError(t, err)
	return rows
}

// requireNoPlaintext fails when private appears in msgs, read as the API returned them:
// in the wire form (payload bytes as they are) and in the JSON form the CLI and the Web
// UI use (payload bytes in base64), in any of base64's three alignments.
func requireNoPlaintext(t *testing.T, what, private string, msgs ...proto.Message) {
	t.Helper()
	for _, m := range msgs {
		wire := mustMarshal(t, m)
		require.NotContains(t, string(wire), private, "%s: plaintext in %T", what, m)
		js, err := temporalproto.CustomJSONMarshalOptions{}.Marshal(m)
		require.NoError(t, err)
		for _, form := range base64Forms(private) {
			require.NotContains(t, string(wire), form, "%s: base64 plaintext in %T", what, m)
			require.NotContains(t, string(js), form, "%s: base64 plaintext in %T's JSON", what, m)
		}
	}
}

// base64Forms is what s looks like inside any standard base64 text, for each of the
// three offsets it can start at: the characters that depend on s alone.
func base64Forms(s string) []string {
	var out []string
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(make([]byte, pad), s...))
		start := 0
		if pad > 0 {
			start = 4
		}
		out = append(out, enc[start:len(enc)-4])
	}
	return out
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// payloadsOf returns the history's payloads apart from search attributes, and its
// search attributes' payloads.
func payloadsOf(t *testing.T, h *historypb.History) (payloads, searchAttributes []*commonpb.Payload) {
	t.Helper()
	collect := func(skipSearchAttributes bool) []*commonpb.Payload {
		var out []*commonpb.Payload
		err := proxy.VisitPayloads(context.Background(), h, proxy.VisitPayloadsOptions{
			SkipSearchAttributes: skipSearchAttributes,
			Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
				out = append(out, ps...)
				return ps, nil
			},
		})
		require.NoError(t, err)
		return out
	}
	payloads = collect(true)
	seen := map[*commonpb.Payload]bool{}
	for _, p := range payloads {
		seen[p] = true
	}
	for _, p := range collect(false) {
		if !seen[p] {
			searchAttributes = append(searchAttributes, p)
		}
	}
	return payloads, searchAttributes
}

// failuresOf is every Failure in the history, causes included.
func failuresOf(h *historypb.History) []*failurepb.Failure {
	var out []*failurepb.Failure
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if f, ok := m.Interface().(*failurepb.Failure); ok {
			out = append(out, f)
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(h.ProtoReflect())
	return out
}

// decodedHistory is h with every payload decoded by codec, as a worker reads it.
func decodedHistory(t *testing.T, codec converter.PayloadCodec, h *historypb.History) *historypb.History {
	t.Helper()
	out := proto.Clone(h).(*historypb.History)
	err := proxy.VisitPayloads(context.Background(), out, proxy.VisitPayloadsOptions{
		Visitor: func(_ *proxy.VisitPayloadsContext, ps []*commonpb.Payload) ([]*commonpb.Payload, error) {
			return codec.Decode(ps)
		},
	})
	require.NoError(t, err)
	return out
}

const codecToken = "e2e-codec-server-token-0123456789abcdef"

// checkCodecServer serves the codec server protocol for codec and checks that the
// start of h decodes for the token holder, over HTTP and through the temporal CLI, and
// for nobody else.
func checkCodecServer(t *testing.T, codec *payloadcodec.Codec, h *historypb.History, private string) {
	srv := httptest.NewServer(payloadcodec.NewHandler(codec, payloadcodec.HandlerOptions{
		Token: codecToken, AllowedOrigins: []string{"http://127.0.0.1:8233"}, MaxBodyBytes: 4 << 20, Logger: logs.Logger(),
	}))
	t.Cleanup(srv.Close)
	input := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput()
	body, err := protojson.Marshal(input)
	require.NoError(t, err)

	tests := []struct {
		name   string
		auth   string
		want   int
		decode bool
	}{
		{name: "token holder", auth: "Bearer " + codecToken, want: http.StatusOK, decode: true},
		{name: "no token", want: http.StatusUnauthorized},
		{name: "wrong token", auth: "Bearer " + strings.Repeat("x", len(codecToken)), want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/decode", bytes.NewReader(body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Namespace", "default")
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.want, resp.StatusCode, string(b))
			if !tt.decode {
				requireNoBase64(t, string(b), private)
				return
			}
			var out commonpb.Payloads
			require.NoError(t, protojson.Unmarshal(b, &out))
			var in workflows.DispatchEventInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(&out, &in))
			assert.Contains(t, string(in.Data), private+"-title")
		})
	}

	t.Run("temporal CLI", func(t *testing.T) {
		id := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetWorkflowId()
		show := func(args ...string) string {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, testinfra.TemporalCLI(t), append([]string{"workflow", "show",
				"--address", testinfra.TemporalAddress(t), "--namespace", "default", "--workflow-id", id, "--output", "json"}, args...)...)
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, string(out))
			return string(out)
		}
		withToken := show("--codec-endpoint", srv.URL, "--codec-auth", "Bearer "+codecToken)
		assert.True(t, containsPlainOrBase64(withToken, private+"-title"), "the CLI shows the decoded event with the token:\n%s", withToken)
		requireNoBase64(t, show(), private)
	})
}

func requireNoBase64(t *testing.T, s, private string) {
	t.Helper()
	require.NotContains(t, s, private)
	for _, form := range base64Forms(private) {
		require.NotContains(t, s, form)
	}
}

func containsPlainOrBase64(s, want string) bool {
	if strings.Contains(s, want) {
		return true
	}
	for _, form := range base64Forms(want) {
		if strings.Contains(s, form) {
			return true
		}
	}
	return false
}

// encryptedReplayer replays histories sealed by codec, with the workflows registered
// under their contract names as deliveryworker.Register does.
func encryptedReplayer(t *testing.T, cfg workflows.Config, codec converter.PayloadCodec) worker.WorkflowReplayer {
	t.Helper()
	dc := temporalclient.DataConverter(codec)
	r, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter: dc, FailureConverter: temporalclient.FailureConverter(dc),
	})
	require.NoError(t, err)
	wf := workflows.New(cfg)
	r.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	r.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	r.RegisterWorkflowWithOptions(wf.PruneDeliveries, workflow.RegisterOptions{Name: workflows.PruneDeliveriesName})
	return r
}

func replay(t *testing.T, r worker.WorkflowReplayer, workflowID, runID string, h *historypb.History) error {
	t.Helper()
	return r.ReplayWorkflowHistoryWithOptions(testinfra.QuietLogger(), h, worker.ReplayWorkflowHistoryOptions{
		OriginalExecution: workflow.Execution{ID: workflowID, RunID: runID},
	})
}

// Rotation: an event handed over under the old key, before any worker polled, is
// delivered by a worker whose current key is the new one and which keeps the old one
// only to open; what that worker writes is sealed under the new key. Once the old key
// is dropped, nothing can read that history again.
func TestEncryptionKeyRotation(t *testing.T) {
	oldKey, newKey := payloadKey(t, "2025-01"), payloadKey(t, "2025-06")
	box := testfixture.Box(t)
	rcv := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	user := newUser()
	hook := testfixture.CreateWebhook(t, testinfra.DB(t), box, testfixture.Webhook{UserID: user, URL: rcv.URL, Events: []string{"ASSET_TRANSFERRED"}})
	private := "private-" + testinfra.RandomHex(8)
	taskQueue := "test-" + testinfra.RandomHex(8)

	before := encryptingClient(t, withPayloadKeys(testfixture.WorkerConfig(), oldKey))
	eventID, err := dispatch.NewNotificationDispatchService(dispatch.NewWebhookDispatchService(before, taskQueue)).
		Dispatch(context.Background(), privateNotification(user, private))
	require.NoError(t, err)

	cfg := withPayloadKeys(testfixture.WorkerConfig(), newKey, oldKey)
	cfg.TemporalTaskQueue = taskQueue
	testfixture.StartWorker(t, testfixture.WorkerSettings{Box: box, Config: cfg, Logger: logs.Logger()})

	req := rcv.WaitFor(t, 1, 30*time.Second)[0]
	verify(t, hook.Secret, req)
	assert.Contains(t, string(req.Body), private+"-title")

	id := workflows.DispatchWorkflowID(eventID)
	runID := latestClosedRun(t, id)
	h := workflowHistory(t, id, runID)
	requireNoPlaintext(t, id, private, h)
	sealed, _ := payloadsOf(t, h)
	keyIDs := map[string]int{}
	for _, p := range sealed {
		keyIDs[string(p.GetMetadata()[payloadcodec.MetadataKeyID])]++
	}
	input := h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0]
	assert.Equal(t, oldKey.ID, string(input.GetMetadata()[payloadcodec.MetadataKeyID]), "the input was sealed by the client under the old key")
	assert.Positive(t, keyIDs[newKey.ID], "the worker sealed what it wrote under the new key")
	assert.Len(t, keyIDs, 2, "no payload under any other key, none in plaintext: %v", keyIDs)

	wcfg := deliveryworker.WorkflowConfig(cfg)
	both, err := payloadcodec.New(newKey, oldKey)
	require.NoError(t, err)
	require.NoError(t, replay(t, encryptedReplayer(t, wcfg, both), id, runID, h), "replays with both keys")
	newOnly, err := payloadcodec.New(newKey)
	require.NoError(t, err)
	require.Error(t, replay(t, encryptedReplayer(t, wcfg, newOnly), id, runID, h),
		"without the old key the history cannot be read: keep old keys while their workflows may replay")
}

// updateEncryptedHistories rewrites the encrypted corpus that workflows/replay_encrypted_test.go
// replays without a server.
var updateEncryptedHistories = flag.Bool("update-encrypted-histories", false,
	"write the recorded encrypted histories to workflows/testdata/histories-encrypted")

// encryptedCorpusDir is the encrypted corpus, seen from this package's directory. Its
// codec.key ("id:base64", a test key) opens it.
const encryptedCorpusDir = "../workflows/testdata/histories-encrypted"

// TestEncryptedReplayCorpus records the main delivery shapes with encryption on, checks
// each is the shape it stands for and sealed throughout, and that it replays with the key
// and not without it. With -update-encrypted-histories it writes them, and their key, to
// the corpus `go test ./workflows/` replays.
func TestEncryptedReplayCorpus(t *testing.T) {
	key := payloadKey(t, "corpus-"+time.Now().UTC().Format("2006-01-02"))
	cfg := withPayloadKeys(testfixture.WorkerConfig(), key)
	s := newEncryptedStack(t, cfg)
	trigger := dispatch.NewWebhookDispatchService(s.temporal, s.taskQueue)
	hand := func(user string) string {
		id, err := trigger.Trigger(context.Background(), events.LowStock, dispatch.Event{UserID: user, Data: corpusEventData})
		require.NoError(t, err)
		return workflows.DispatchWorkflowID(id)
	}

	ok := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	userSuccess, userRetries, userFanOut, userFailed := newUser(), newUser(), newUser(), newUser()
	s.createWebhook(userSuccess, ok.URL, "LOW_STOCK")
	flaky := testfixture.NewReceiver(t, testfixture.Status(http.StatusOK))
	flaky.FailFirst(1)
	s.createWebhook(userRetries, flaky.URL, "LOW_STOCK")
	fanOut := []string{s.createWebhook(userFanOut, ok.URL, "LOW_STOCK").ID, s.createWebhook(userFanOut, ok.URL, "LOW_STOCK").ID}
	s.createWebhook(userFailed, testfixture.NewReceiver(t, testfixture.Status(http.StatusInternalServerError)).URL, "LOW_STOCK")
	userTest := newUser()
	testHook := s.createWebhook(userTest, ok.URL, "LOW_STOCK")

	success, retries, fanOutID, failed := hand(userSuccess), hand(userRetries), hand(userFanOut), hand(userFailed)
	var test struct {
		WorkflowID string `json:"workflowId"`
	}
	require.Equal(t, http.StatusOK, s.call(userTest, http.MethodPost, "/webhooks/"+testHook.ID+"/test", nil, &test))

	type shape struct {
		name, part, workflowID string
		steps                  []string
	}
	eventID := strings.TrimPrefix(fanOutID, "dispatch:")
	sort.Strings(fanOut)
	shapes := []shape{
		{"inline-success", "dispatch", success, []string{"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo", "local Send", "local Complete", "completed"}},
		{"inline-retries", "dispatch", retries, []string{"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo", "local Send failed", "timer 1s", "activity Send", "local Complete", "completed"}},
		{"fan-out", "dispatch", fanOutID, []string{"version", "search attributes", "config", "local ListSubscribers", "child DeliverWebhook", "child DeliverWebhook", "completed"}},
		{"fan-out", "delivery-1", workflows.DeliveryWorkflowID(eventID, fanOut[0]), []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}},
		{"fan-out", "delivery-2", workflows.DeliveryWorkflowID(eventID, fanOut[1]), []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}},
		{"failed", "dispatch", failed, []string{"version", "search attributes", "config", "local ListSubscribers", "search attributes", "memo", "local Send failed", "timer 1s", "activity Send failed", "local Complete", "failed"}},
		{"test-delivery", "delivery", test.WorkflowID, []string{"version", "search attributes", "config", "local Send", "local Complete", "completed"}},
	}
	var runs []corpusRun
	stranger, err := payloadcodec.New(payloadKey(t, "stranger"))
	require.NoError(t, err)
	current := deliveryworker.WorkflowConfig(cfg)
	for _, sh := range shapes {
		runID := latestClosedRun(t, sh.workflowID)
		h := workflowHistory(t, sh.workflowID, runID)
		assert.Equal(t, sh.steps, historySteps(t, decodedHistory(t, s.codec, h)), "%s %s", sh.name, sh.part)
		sealed, _ := payloadsOf(t, h)
		for _, p := range sealed {
			require.Equal(t, payloadcodec.EncodingEncrypted, string(p.GetMetadata()[converter.MetadataEncoding]), "%s: sealed throughout", sh.workflowID)
		}
		require.NoError(t, replay(t, encryptedReplayer(t, current, s.codec), sh.workflowID, runID, h), "%s replays with the key", sh.workflowID)
		require.Error(t, replay(t, encryptedReplayer(t, current, stranger), sh.workflowID, runID, h), "%s does not replay without it", sh.workflowID)
		runs = append(runs, corpusRun{Shape: sh.name, WorkflowID: sh.workflowID, RunID: runID, File: sh.name + "." + sh.part + ".json", history: h})
	}
	if *updateEncryptedHistories && !t.Failed() {
		writeEncryptedCorpus(t, runs, key)
	}
}

// writeEncryptedCorpus replaces the encrypted corpus with runs and the key that opens them.
func writeEncryptedCorpus(t *testing.T, runs []corpusRun, key payloadcodec.Key) {
	t.Helper()
	writeCorpusTo(t, encryptedCorpusDir, runs)
	require.NoError(t, os.WriteFile(filepath.Join(encryptedCorpusDir, "codec.key"), []byte(keyEntry(key)+"\n"), 0o644))
}
