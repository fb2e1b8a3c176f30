// Package deliveryworker builds the Temporal worker that runs deliveries: it registers
// the workflows under their contract names and the delivery activities, and keeps the
// namespace's search attributes and the pruning Schedule in place.
package deliveryworker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/activities"
	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/workflows"
)

// Options are the worker's concurrency caps.
type Options struct {
	TaskQueue                    string
	MaxConcurrentActivities      int
	MaxConcurrentWorkflowTasks   int
	MaxConcurrentLocalActivities int
	// Pollers is the fixed number of pollers per task type, or with AutoscalePollers the
	// number to start with.
	Pollers          int
	AutoscalePollers bool
	MaxPollers       int
	// StopTimeout is how long a stopping worker lets running activities finish (an
	// attempt already sent included) before it gives up on them (SHUTDOWN_TIMEOUT).
	StopTimeout time.Duration
}

// OptionsFrom maps the configuration to the worker's options.
func OptionsFrom(cfg config.Config) Options {
	return Options{
		TaskQueue:                    cfg.TemporalTaskQueue,
		MaxConcurrentActivities:      cfg.WorkerActivitySlots,
		MaxConcurrentWorkflowTasks:   cfg.WorkerWorkflowTaskSlots,
		MaxConcurrentLocalActivities: cfg.WorkerLocalActivitySlots,
		Pollers:                      cfg.WorkerPollers,
		AutoscalePollers:             cfg.WorkerPollerAutoscale,
		MaxPollers:                   cfg.WorkerMaxPollers,
		StopTimeout:                  cfg.ShutdownTimeout,
	}
}

// SDK returns the SDK's worker options for opts.
//
// Autoscaling pollers are the default because fixed ones stall under a backlog: with
// sticky execution every fixed workflow poller keeps polling the sticky queue while the
// server reports a sticky backlog, and that hint only clears when a long poll expires
// (a minute), so the normal queue can wait a minute with idle cores. The autoscaler
// always keeps pollers on both queues and adds them where the server reports work.
func (opts Options) SDK() worker.Options {
	o := worker.Options{
		MaxConcurrentActivityExecutionSize:      opts.MaxConcurrentActivities,
		MaxConcurrentWorkflowTaskExecutionSize:  opts.MaxConcurrentWorkflowTasks,
		MaxConcurrentLocalActivityExecutionSize: opts.MaxConcurrentLocalActivities,
		WorkerStopTimeout:                       opts.StopTimeout,
	}
	if !opts.AutoscalePollers {
		o.MaxConcurrentActivityTaskPollers = opts.Pollers
		o.MaxConcurrentWorkflowTaskPollers = opts.Pollers
		return o
	}
	behavior := worker.NewPollerBehaviorAutoscaling(worker.PollerBehaviorAutoscalingOptions{
		InitialNumberOfPollers: opts.Pollers,
		MaximumNumberOfPollers: max(opts.MaxPollers, opts.Pollers),
	})
	o.WorkflowTaskPollerBehavior = behavior
	o.ActivityTaskPollerBehavior = behavior
	return o
}

// New returns a worker on opts.TaskQueue running wf and the activities acts.
func New(c client.Client, opts Options, wf *workflows.Workflows, acts *activities.Delivery) worker.Worker {
	w := worker.New(c, opts.TaskQueue, opts.SDK())
	Register(w, wf, acts)
	return w
}

// Register puts the workflows and activities on any registry: a worker, or a test environment.
func Register(r worker.Registry, wf *workflows.Workflows, acts *activities.Delivery) {
	r.RegisterWorkflowWithOptions(wf.DispatchEvent, workflow.RegisterOptions{Name: workflows.DispatchEventName})
	r.RegisterWorkflowWithOptions(wf.DeliverWebhook, workflow.RegisterOptions{Name: workflows.DeliverWebhookName})
	r.RegisterWorkflowWithOptions(wf.PruneDeliveries, workflow.RegisterOptions{Name: workflows.PruneDeliveriesName})
	r.RegisterWorkflowWithOptions(wf.RecoverDeliveries, workflow.RegisterOptions{Name: workflows.RecoverDeliveriesName})
	r.RegisterWorkflowWithOptions(wf.SendOperationalEvent, workflow.RegisterOptions{Name: workflows.SendOperationalEventName})
	r.RegisterWorkflowWithOptions(wf.NotifyRotationEnded, workflow.RegisterOptions{Name: workflows.NotifyRotationEndedName})
	r.RegisterActivity(acts)
}

// EnsureSearchAttributes registers the delivery search attributes on the namespace if
// they are missing, so deliveries can set them. Clusters that forbid this need them
// registered by an operator first; the error says which.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	attrs := map[string]enums.IndexedValueType{}
	for _, k := range workflows.SearchAttributeKeys() {
		attrs[k.GetName()] = enums.INDEXED_VALUE_TYPE_KEYWORD
	}
	existing, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	for name := range existing.GetCustomAttributes() {
		delete(attrs, name)
	}
	if len(attrs) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: attrs,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes WebhookId, WebhookEvent, WebhookUserId (Keyword): %w", err)
	}
	return nil
}

// PruneScheduleID names the Schedule that trims the delivery log.
const PruneScheduleID = "webhooks-prune-deliveries"

// EnsurePruneSchedule creates the delivery log pruning Schedule, or updates its
// interval when it exists, so every worker start converges on the configured one.
func EnsurePruneSchedule(ctx context.Context, c client.Client, taskQueue string, every time.Duration) error {
	spec := client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: every}}}
	action := &client.ScheduleWorkflowAction{
		ID: PruneScheduleID, Workflow: workflows.PruneDeliveriesName, TaskQueue: taskQueue,
	}
	_, err := c.ScheduleClient().Create(ctx, client.ScheduleOptions{
		ID: PruneScheduleID, Spec: spec, Action: action, Overlap: enums.SCHEDULE_OVERLAP_POLICY_SKIP,
	})
	if err == nil {
		return nil
	}
	if !errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		return fmt.Errorf("create prune schedule: %w", err)
	}
	err = c.ScheduleClient().GetHandle(ctx, PruneScheduleID).Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			in.Description.Schedule.Spec = &spec
			in.Description.Schedule.Action = action
			return &client.ScheduleUpdate{Schedule: &in.Description.Schedule}, nil
		},
	})
	if err != nil {
		return fmt.Errorf("update prune schedule: %w", err)
	}
	return nil
}
