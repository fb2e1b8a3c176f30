package phases

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/bench/internal/meter"
	"github.com/assetsup/webhooks/bench/internal/stats"
	"github.com/assetsup/webhooks/workflows"
)

// ShapeResult is a no-op workflow shaped like a delivery path, driven like (3): starts
// as fast as they are accepted, timed from the first start to the last "send" activity.
type ShapeResult struct {
	Name      string        `json:"name"`
	Count     int           `json:"count"`
	Seconds   float64       `json:"seconds"`
	PerSecond float64       `json:"perSecond"`
	Latency   stats.Summary `json:"startToSend"`
	Usage     meter.Usage   `json:"usage"`
}

const shapeQueue = "bench-shapes"

const (
	enumsParentAbandon   = enumspb.PARENT_CLOSE_POLICY_ABANDON
	enumsRejectDuplicate = enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE
)

func shapeNoop(context.Context) error { return nil }

func shapeLocal(ctx workflow.Context) workflow.Context {
	return workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{StartToCloseTimeout: 10 * time.Second})
}

func shapeRemote(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
}

// shapeDispatch is DispatchEvent without its body: a local activity (list subscribers),
// one abandoned child with the delivery's search attributes and memo, waited on until
// it has started.
func shapeDispatch(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil); err != nil {
		return err
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            "shape-child:" + id,
		ParentClosePolicy:     enumsParentAbandon,
		TypedSearchAttributes: workflows.DeliverySearchAttributes("00000000-0000-0000-0000-000000000000", benchEvent, "shape"),
		Memo:                  workflows.DeliveryMemo("shape", "127.0.0.1"),
	})
	return workflow.ExecuteChildWorkflow(cctx, "ShapeDeliver", id).GetChildWorkflowExecution().Get(ctx, nil)
}

// shapeDeliver is DeliverWebhook without its body: one activity (send), one local
// activity (complete).
func shapeDeliver(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteActivity(shapeRemote(ctx), "ShapeSend", id).Get(ctx, nil); err != nil {
		return err
	}
	return workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil)
}

// shapeInline is the one-workflow alternative: list, send and complete in the event's
// own workflow, no child.
func shapeInline(ctx workflow.Context, id string) error {
	if err := workflow.ExecuteLocalActivity(shapeLocal(ctx), shapeNoop).Get(ctx, nil); err != nil {
		return err
	}
	return shapeDeliver(ctx, id)
}

// shapes runs each shape n times on an in-process worker with the production settings.
func (b *Bench) shapes(ctx context.Context, n int) ([]ShapeResult, error) {
	var mu sync.Mutex
	sent := make(map[string]time.Time, 3*n)
	opts, err := b.cfg.FloorWorkerOptions()
	if err != nil {
		return nil, err
	}
	w := worker.New(b.env.Temporal, shapeQueue, opts)
	w.RegisterWorkflowWithOptions(shapeDispatch, workflow.RegisterOptions{Name: "ShapeDispatch"})
	w.RegisterWorkflowWithOptions(shapeDeliver, workflow.RegisterOptions{Name: "ShapeDeliver"})
	w.RegisterWorkflowWithOptions(shapeInline, workflow.RegisterOptions{Name: "ShapeInline"})
	w.RegisterActivityWithOptions(func(_ context.Context, id string) error {
		mu.Lock()
		sent[id] = time.Now()
		mu.Unlock()
		return nil
	}, activity.RegisterOptions{Name: "ShapeSend"})
	if err := w.Start(); err != nil {
		return nil, err
	}
	defer w.Stop()

	var out []ShapeResult
	for _, shape := range []struct{ name, workflow string }{
		{"dispatch + child delivery (ours for 2+ subscribers, no-op bodies)", "ShapeDispatch"},
		{"one workflow per event (LA + activity + LA)", "ShapeInline"},
	} {
		prefix := fmt.Sprintf("%s-%s", shape.workflow, b.runID)
		starts := make([]time.Time, n)
		var errs atomic.Int64
		m := b.measure(ctx)
		begin := time.Now()
		runPool(ctx, n, b.cfg.Concurrency, func(i int) {
			id := fmt.Sprintf("%s-%06d", prefix, i)
			starts[i] = time.Now()
			_, err := b.env.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: "shape:" + id, TaskQueue: shapeQueue, WorkflowIDReusePolicy: enumsRejectDuplicate,
			}, shape.workflow, id)
			if err != nil {
				errs.Add(1)
			}
		})
		deadline := time.Now().Add(b.cfg.DrainTimeout)
		var lat []time.Duration
		var last time.Time
		for {
			mu.Lock()
			lat, last = lat[:0], time.Time{}
			for i := 0; i < n; i++ {
				if at, ok := sent[fmt.Sprintf("%s-%06d", prefix, i)]; ok {
					lat = append(lat, at.Sub(starts[i]))
					if at.After(last) {
						last = at
					}
				}
			}
			mu.Unlock()
			if len(lat) == n || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(lat) < n || errs.Load() > 0 {
			return out, fmt.Errorf("shape %s: %d of %d sent, %d start errors", shape.workflow, len(lat), n, errs.Load())
		}
		secs := last.Sub(begin).Seconds()
		out = append(out, ShapeResult{
			Name: shape.name, Count: n, Seconds: stats.Round(secs, 3), PerSecond: stats.Round(float64(n)/secs, 1),
			Latency: stats.Summarize(lat), Usage: m.done(ctx, n),
		})
		b.logf("    %s: %.1f/s", shape.name, float64(n)/secs)
	}
	return out, nil
}
