package workflows_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/workflows"
)

// The committed corpus: real histories recorded on the dev server by
// e2e/replay_test.go (make replay-corpus), one or more runs per shape.
const replayCorpusDir = "testdata/histories"

// replayShapes are the workflow shapes the corpus must hold, so a shape cannot drop out
// of the guard unnoticed when the corpus is recorded again.
var replayShapes = []string{
	"inline-success",     // one subscriber, delivered by the dispatch itself on the first attempt
	"inline-retries",     // the first attempt local, then a Temporal-retried activity
	"retry-after",        // retries waiting for the receiver's Retry-After
	"gone-410",           // the receiver answered 410: the webhook switched off, the dispatch failed
	"fan-out",            // children, paging and continue-as-new across three runs
	"test-delivery",      // POST /webhooks/:id/test
	"redelivery",         // POST /webhooks/:id/deliveries/:deliveryId/redeliver
	"skipped",            // paused between attempts: closed as skipped
	"record-retried",     // the outcome step outlasted its local retries while the database was down
	"ours-database-down", // Send found the database down: retried without using an attempt
}

// replayEntry is one run of the corpus's manifest.
type replayEntry struct {
	Shape      string `json:"shape"`
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	File       string `json:"file"`
}

// replayBaseConfig is the production default of every setting (config/config.go).
func replayBaseConfig() workflows.Config {
	return workflows.Config{
		Retry: workflows.RetryConfig{
			MaxAttempts: 3, InitialInterval: 5 * time.Second, MaxInterval: 5 * time.Minute, BackoffCoefficient: 2,
		},
		HTTPTimeout:            10 * time.Second,
		ConnWaitTimeout:        10 * time.Second,
		DBRetryTimeout:         30 * time.Second,
		RecordRetryMaxInterval: 30 * time.Second,
		MaxEventDataBytes:      256 << 10,
		ChildrenPerRun:         500,
		InlineSingleDelivery:   true,
		FirstAttemptLocal:      true,
		RecoverRate:            10,
	}
}

// replayMutations set one field of workflows.Config to another valid value each, named
// after the environment variable operators change it with: a worker restarted with any
// of them must still replay every running delivery. Every field must have one
// (TestReplayMutationsCoverEveryField).
var replayMutations = []struct {
	name  string // the environment variable
	field string // the workflows.Config field it sets, dotted when nested
	give  any
}{
	{name: "WEBHOOK_RETRY_MAX_ATTEMPTS", field: "Retry.MaxAttempts", give: 1},
	{name: "WEBHOOK_RETRY_MAX_ATTEMPTS", field: "Retry.MaxAttempts", give: 7},
	{name: "WEBHOOK_RETRY_INITIAL_INTERVAL", field: "Retry.InitialInterval", give: time.Second},
	{name: "WEBHOOK_RETRY_INITIAL_INTERVAL", field: "Retry.InitialInterval", give: time.Minute},
	{name: "WEBHOOK_RETRY_MAX_INTERVAL", field: "Retry.MaxInterval", give: 5 * time.Second},
	{name: "WEBHOOK_RETRY_MAX_INTERVAL", field: "Retry.MaxInterval", give: time.Hour},
	{name: "WEBHOOK_RETRY_BACKOFF_COEFFICIENT", field: "Retry.BackoffCoefficient", give: 1.0},
	{name: "WEBHOOK_RETRY_BACKOFF_COEFFICIENT", field: "Retry.BackoffCoefficient", give: 4.0},
	{name: "WEBHOOK_HTTP_TIMEOUT", field: "HTTPTimeout", give: time.Second},
	{name: "WEBHOOK_HTTP_TIMEOUT", field: "HTTPTimeout", give: 2 * time.Minute},
	{name: "WEBHOOK_CONN_WAIT_TIMEOUT", field: "ConnWaitTimeout", give: time.Second},
	{name: "WEBHOOK_CONN_WAIT_TIMEOUT", field: "ConnWaitTimeout", give: time.Minute},
	{name: "WEBHOOK_DB_RETRY_TIMEOUT", field: "DBRetryTimeout", give: time.Second},
	{name: "WEBHOOK_DB_RETRY_TIMEOUT", field: "DBRetryTimeout", give: 10 * time.Minute},
	{name: "WEBHOOK_RECORD_RETRY_MAX_INTERVAL", field: "RecordRetryMaxInterval", give: time.Second},
	{name: "WEBHOOK_RECORD_RETRY_MAX_INTERVAL", field: "RecordRetryMaxInterval", give: 10 * time.Minute},
	// Below the corpus's event data, so a limit read live would reject recorded events.
	{name: "WEBHOOK_MAX_EVENT_DATA_BYTES", field: "MaxEventDataBytes", give: 2},
	{name: "WEBHOOK_DISPATCH_CHILDREN_PER_RUN", field: "ChildrenPerRun", give: 1},
	{name: "WEBHOOK_DISPATCH_CHILDREN_PER_RUN", field: "ChildrenPerRun", give: 1000},
	{name: "WEBHOOK_DISPATCH_INLINE_SINGLE", field: "InlineSingleDelivery", give: false},
	{name: "WEBHOOK_FIRST_ATTEMPT_LOCAL", field: "FirstAttemptLocal", give: false},
	{name: "WEBHOOK_RECOVER_RATE", field: "RecoverRate", give: 0.5},
	{name: "WEBHOOK_RECOVER_RATE", field: "RecoverRate", give: 1000.0},
}

// mutated returns base with the dotted field set to give.
func mutated(base workflows.Config, field string, give any) (workflows.Config, error) {
	v := reflect.ValueOf(&base).Elem()
	for _, name := range strings.Split(field, ".") {
		if v.Kind() != reflect.Struct {
			return base, fmt.Errorf("%s: %s is not a struct", field, v.Type())
		}
		v = v.FieldByName(name)
		if !v.IsValid() {
			return base, fmt.Errorf("workflows.Config has no field %s", field)
		}
	}
	g := reflect.ValueOf(give)
	if !g.Type().ConvertibleTo(v.Type()) || g.Kind() != v.Kind() {
		return base, fmt.Errorf("%s is %s, the mutation gives %s", field, v.Type(), g.Type())
	}
	v.Set(g.Convert(v.Type()))
	return base, nil
}

// configFields lists the settings of t's fields, dotted, descending into nested
// settings structs (a time.Duration is a setting, not a struct).
func configFields(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() == reflect.Struct {
			out = append(out, configFields(f.Type, prefix+f.Name+".")...)
			continue
		}
		out = append(out, prefix+f.Name)
	}
	return out
}

// A setting added to workflows.Config joins the replay guard, or this test fails: its
// value may change the commands a workflow issues, so it needs a mutation above.
func TestReplayMutationsCoverEveryField(t *testing.T) {
	mutatedFields := map[string]bool{}
	for _, tt := range replayMutations {
		cfg, err := mutated(replayBaseConfig(), tt.field, tt.give)
		require.NoError(t, err, tt.name)
		assert.NotEqual(t, replayBaseConfig(), cfg, "%s=%v is the default: it mutates nothing", tt.name, tt.give)
		mutatedFields[tt.field] = true
	}
	fields := configFields(reflect.TypeOf(workflows.Config{}), "")
	require.NotEmpty(t, fields)
	for _, f := range fields {
		assert.True(t, mutatedFields[f], "workflows.Config.%s has no mutation in replayMutations: add one named after its environment variable", f)
	}
}

// Every running delivery must survive a deploy of new workflow code and a worker
// restarted with any setting changed: each committed history replays under the current
// code with the default settings and with each setting mutated.
func TestReplayCorpusUnderEverySetting(t *testing.T) {
	entries := readReplayCorpus(t)
	configs := []replayConfig{{name: "defaults", give: replayBaseConfig()}}
	for _, m := range replayMutations {
		cfg, err := mutated(replayBaseConfig(), m.field, m.give)
		require.NoError(t, err, m.name)
		configs = append(configs, replayConfig{name: fmt.Sprintf("%s=%v", m.name, m.give), give: cfg})
	}
	for _, tt := range configs {
		t.Run(tt.name, func(t *testing.T) {
			replayer := replayerFor(t, tt.give)
			for _, e := range entries {
				err := replayer.ReplayWorkflowHistoryWithOptions(quietReplayLogger(), e.history, worker.ReplayWorkflowHistoryOptions{
					// The recorded ids: a dispatch's behaviour depends on its own workflow id.
					OriginalExecution: workflow.Execution{ID: e.WorkflowID, RunID: e.RunID},
				})
				assert.NoError(t, err, "%s (%s) no longer replays", e.File, e.Shape)
			}
		})
	}
}

// replayConfig is one configuration the corpus is replayed under.
type replayConfig struct {
	name string
	give workflows.Config
}

// replayCorpusRun is a manifest entry with its history.
type replayCorpusRun struct {
	replayEntry
	history *historypb.History
}

// readReplayCorpus loads the manifest and every history it lists, failing when the
// corpus is missing, incomplete or does not match the manifest.
func readReplayCorpus(t *testing.T) []replayCorpusRun {
	t.Helper()
	return readCorpus(t, replayCorpusDir, replayShapes, "run make replay-corpus")
}

// readCorpus loads the manifest of the corpus in dir and every history it lists,
// failing when it is missing (record tells how to record it) or lacks one of shapes.
func readCorpus(t *testing.T, dir string, shapes []string, record string) []replayCorpusRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	require.NoError(t, err, "the replay corpus in %s is missing: %s", dir, record)
	var entries []replayEntry
	require.NoError(t, json.Unmarshal(b, &entries))

	have := map[string]bool{}
	var runs []replayCorpusRun
	for _, e := range entries {
		have[e.Shape] = true
		runs = append(runs, replayCorpusRun{replayEntry: e, history: readHistory(t, dir, e.File)})
	}
	requireComplete(t, dir, len(entries), have, shapes)
	return runs
}

// readHistory reads one history of a corpus, which must begin with its start.
func readHistory(t *testing.T, dir, file string) *historypb.History {
	t.Helper()
	f, err := os.ReadFile(filepath.Join(dir, file))
	require.NoError(t, err, file)
	h, err := client.HistoryFromJSON(bytes.NewReader(f), client.HistoryJSONOptions{})
	require.NoError(t, err, file)
	require.NotEmpty(t, h.GetEvents(), file)
	require.NotNil(t, h.GetEvents()[0].GetWorkflowExecutionStartedEventAttributes(), "%s does not begin with its start", file)
	return h
}

// requireComplete checks that a corpus has every shape it must have and that its
// manifest (entries long) lists every history file in dir.
func requireComplete(t *testing.T, dir string, entries int, have map[string]bool, want []string) {
	t.Helper()
	for _, s := range want {
		assert.True(t, have[s], "%s has no %q history: record it again (make replay-corpus for the current code)", dir, s)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	assert.Len(t, files, entries+1, "every history in %s is in its manifest", dir)
}

// replayerFor registers the workflows under their contract names, as deliveryworker.Register does.
func replayerFor(t *testing.T, cfg workflows.Config, interceptors ...interceptor.WorkerInterceptor) worker.WorkflowReplayer {
	t.Helper()
	return newReplayer(t, cfg, worker.WorkflowReplayerOptions{Interceptors: interceptors})
}

// newReplayer is a replayer with opts of the service's workflows under cfg.
func newReplayer(t *testing.T, cfg workflows.Config, opts worker.WorkflowReplayerOptions) worker.WorkflowReplayer {
	t.Helper()
	r, err := worker.NewWorkflowReplayerWithOptions(opts)
	require.NoError(t, err)
	wf := workflows.New(cfg)
	r.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	r.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	r.RegisterWorkflowWithOptions(wf.PruneDeliveries, workflow.RegisterOptions{Name: workflows.PruneDeliveriesName})
	return r
}

// quietReplayLogger keeps the replayer's debug lines out of test output; a replay
// failure is returned as the error, which the test prints.
func quietReplayLogger() tlog.Logger {
	return tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// The legacy corpus: histories recorded on the dev server by the workflows of the
// release before recorded settings (commit 108b6e8), with stubbed activities driving
// each shape. Their runs carry no "run-config" marker, only that release's
// "inline-single-delivery" and "local-first-attempt" ones. Such runs may still be
// running when this release is deployed, so the current code must go on issuing exactly
// the commands that release issued. The corpus is frozen: the current code cannot
// record it again, and make replay-corpus leaves this directory alone. Its manifest has
// no connWaitTimeout, a setting that release did not have.
const legacyCorpusDir = "testdata/histories/legacy"

// legacyShapes are the shapes the legacy corpus must hold; "local-off" and "inline off"
// variants are there because that release's shape depended on those two settings.
var legacyShapes = []string{
	"inline-success",            // canonical dispatch, inline, first attempt local, delivered at once
	"inline-success-local-off",  // the same with the first attempt an activity
	"single-child",              // inline off: one subscriber, delivered by a child
	"inline-retrying",           // running: local attempt failed, timer, activity Send retrying (2 of 2)
	"inline-retrying-local-off", // running: activity Send retrying (3 of 3)
	"inline-retry-after",        // the local attempt's Retry-After decides the timer
	"child-retrying",            // running DeliverWebhook child, first attempt local
	"child-retrying-local-off",  // running DeliverWebhook child, first attempt an activity
	"fan-out",                   // three subscribers, three children
	"fan-out-paged",             // pages of two with WEBHOOK_DISPATCH_CHILDREN_PER_RUN=2: continue-as-new
	"forward",                   // dispatch under another id, inline on: forwarded to the canonical id
	"other-id-inline-off",       // dispatch under another id, inline off: started the children itself
	"skipped",                   // skipped on the first attempt: no outcome recorded
	"skipped-after-retry",       // skipped on the activity after a local failure
	"skipped-child-local-off",   // skipped in a child whose first attempt is an activity
	"failed",                    // three failed attempts (local, then the activity's two): DeliveryFailed
	"failed-local-off",          // three failed attempts of the activity
	"gone",                      // 410 on the local attempt: not retried
	"test-delivery",             // MaxAttempts 1 in the input: the local attempt is the only one
	"test-delivery-local-off",   // MaxAttempts 1, the only attempt an activity
}

// legacyEntry is a legacy manifest entry with the configuration its worker ran with.
type legacyEntry struct {
	replayEntry
	Config workflows.Config `json:"config"`
}

// legacyRun is a legacy manifest entry with its history.
type legacyRun struct {
	legacyEntry
	history *historypb.History
}

// A run the previous release started replays under the current code, which takes the
// legacy path for it (no "run-config" marker), with the commands that release issued.
//
// A legacy run reads the live configuration, as that release did (only its two shape
// switches were recorded), so each history replays under the settings it was recorded
// with. That is a deployment rule: the release that introduces recorded settings must be
// deployed without changing any setting, and settings may change only once the runs
// started by the previous release have closed.
func TestReplayLegacyCorpus(t *testing.T) {
	for _, run := range readLegacyCorpus(t) {
		t.Run(strings.TrimSuffix(run.File, ".json"), func(t *testing.T) {
			rec := &commandRecorder{}
			err := replayerFor(t, run.Config, rec).ReplayWorkflowHistoryWithOptions(quietReplayLogger(), run.history, worker.ReplayWorkflowHistoryOptions{
				// The recorded ids: a dispatch's behaviour depends on its own workflow id.
				OriginalExecution: workflow.Execution{ID: run.WorkflowID, RunID: run.RunID},
			})
			require.NoError(t, err, "%s (%s), recorded by the previous release, no longer replays", run.File, run.Shape)
			// Replay matches an activity by type and id, a timer by id and a child by type
			// only: a changed retry policy, wait or child id would replay without a word.
			assert.Equal(t, recordedCommands(run.history), rec.commands, "%s (%s): commands replay does not compare", run.File, run.Shape)
		})
	}
}

// readLegacyCorpus loads the legacy manifest and every history it lists, failing when
// the corpus is missing, incomplete, or holds a run of the current code.
func readLegacyCorpus(t *testing.T) []legacyRun {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(legacyCorpusDir, "manifest.json"))
	require.NoError(t, err, "the legacy replay corpus is missing")
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a renamed setting must not replay as its zero value
	var entries []legacyEntry
	require.NoError(t, dec.Decode(&entries))

	shapes := map[string]bool{}
	var runs []legacyRun
	for _, e := range entries {
		h := readHistory(t, legacyCorpusDir, e.File)
		require.Positive(t, e.Config.Retry.MaxAttempts, "%s: the manifest names the configuration it was recorded with", e.File)
		changes := versionChanges(t, h)
		require.NotContains(t, changes, "run-config", "%s was recorded by the current code, not the previous release", e.File)
		require.NotEmpty(t, changes, "%s has none of the previous release's markers", e.File)
		shapes[e.Shape] = true
		runs = append(runs, legacyRun{legacyEntry: e, history: h})
	}
	requireComplete(t, legacyCorpusDir, len(entries), shapes, legacyShapes)
	return runs
}

// versionChanges lists the change ids of the history's version markers.
func versionChanges(t *testing.T, h *historypb.History) []string {
	t.Helper()
	var out []string
	for _, e := range h.GetEvents() {
		a := e.GetMarkerRecordedEventAttributes()
		if a.GetMarkerName() != "Version" {
			continue
		}
		var id string
		require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(a.GetDetails()["change-id"], &id))
		out = append(out, id)
	}
	return out
}

// replayedCommand is a command with the attributes replay does not compare.
type replayedCommand struct {
	Kind   string // activity, timer or child
	Type   string // the activity or workflow type
	Policy string // an activity's retry policy
	Wait   time.Duration
	ID     string // a child's workflow id
}

// recordedCommands reads the history's activities, timers and children.
func recordedCommands(h *historypb.History) []replayedCommand {
	var out []replayedCommand
	for _, e := range h.GetEvents() {
		switch e.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			a := e.GetActivityTaskScheduledEventAttributes()
			p := a.GetRetryPolicy()
			out = append(out, replayedCommand{Kind: "activity", Type: a.GetActivityType().GetName(), Policy: policyString(
				p.GetMaximumAttempts(), p.GetInitialInterval().AsDuration(), p.GetBackoffCoefficient(), p.GetMaximumInterval().AsDuration())})
		case enumspb.EVENT_TYPE_TIMER_STARTED:
			out = append(out, replayedCommand{Kind: "timer", Wait: e.GetTimerStartedEventAttributes().GetStartToFireTimeout().AsDuration()})
		case enumspb.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
			a := e.GetStartChildWorkflowExecutionInitiatedEventAttributes()
			out = append(out, replayedCommand{Kind: "child", Type: a.GetWorkflowType().GetName(), ID: a.GetWorkflowId()})
		}
	}
	return out
}

func policyString(maxAttempts int32, initial time.Duration, coefficient float64, maxInterval time.Duration) string {
	return fmt.Sprintf("attempts %d, initial %s, coefficient %g, max %s", maxAttempts, initial, coefficient, maxInterval)
}

// commandRecorder intercepts the replayed workflow code's activities, timers and
// children, with the attributes replay does not compare.
type commandRecorder struct {
	interceptor.WorkerInterceptorBase
	commands []replayedCommand
}

func (r *commandRecorder) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &recordingInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, r: r}
}

type recordingInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	r *commandRecorder
}

func (i *recordingInbound) Init(outbound interceptor.WorkflowOutboundInterceptor) error {
	return i.Next.Init(&recordingOutbound{WorkflowOutboundInterceptorBase: interceptor.WorkflowOutboundInterceptorBase{Next: outbound}, r: i.r})
}

type recordingOutbound struct {
	interceptor.WorkflowOutboundInterceptorBase
	r *commandRecorder
}

func (o *recordingOutbound) ExecuteActivity(ctx workflow.Context, activityType string, args ...any) workflow.Future {
	p := workflow.GetActivityOptions(ctx).RetryPolicy
	if p == nil {
		p = &temporal.RetryPolicy{}
	}
	o.r.commands = append(o.r.commands, replayedCommand{Kind: "activity", Type: activityType,
		Policy: policyString(p.MaximumAttempts, p.InitialInterval, p.BackoffCoefficient, p.MaximumInterval)})
	return o.Next.ExecuteActivity(ctx, activityType, args...)
}

func (o *recordingOutbound) NewTimer(ctx workflow.Context, d time.Duration) workflow.Future {
	o.timer(d)
	return o.Next.NewTimer(ctx, d)
}

// NewTimerWithOptions is also where workflow.Sleep arrives.
func (o *recordingOutbound) NewTimerWithOptions(ctx workflow.Context, d time.Duration, opts workflow.TimerOptions) workflow.Future {
	o.timer(d)
	return o.Next.NewTimerWithOptions(ctx, d, opts)
}

func (o *recordingOutbound) timer(d time.Duration) {
	if d > 0 { // a timer of no time is no command
		o.r.commands = append(o.r.commands, replayedCommand{Kind: "timer", Wait: d})
	}
}

func (o *recordingOutbound) ExecuteChildWorkflow(ctx workflow.Context, childWorkflowType string, args ...any) workflow.ChildWorkflowFuture {
	o.r.commands = append(o.r.commands, replayedCommand{Kind: "child", Type: childWorkflowType, ID: workflow.GetChildWorkflowOptions(ctx).WorkflowID})
	return o.Next.ExecuteChildWorkflow(ctx, childWorkflowType, args...)
}
