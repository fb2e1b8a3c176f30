package phases

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
)

// HistorySample is what a kind of workflow writes to its history: events and their
// encoded size (what the history service appends to PostgreSQL), averaged over the
// workflows read, and per delivery (a fan-out parent's history is shared by its
// children).
type HistorySample struct {
	Kind              string             `json:"kind"`
	Workflows         int                `json:"workflowsRead"`
	EventsPerWorkflow float64            `json:"eventsPerWorkflow"`
	BytesPerWorkflow  float64            `json:"bytesPerWorkflow"`
	EventsPerDelivery float64            `json:"eventsPerDelivery"`
	BytesPerDelivery  float64            `json:"bytesPerDelivery"`
	EventTypes        map[string]float64 `json:"eventTypesPerWorkflow"`
}

// Kinds of history sample.
const (
	HistoryFloor        = "floor: no-op workflow + 1 activity"
	HistorySingle       = "single subscriber, delivered inline"
	HistoryFanoutChild  = "fan-out child (DeliverWebhook)"
	HistoryFanoutParent = "fan-out parent (DispatchEvent, all runs)"
	HistoryRetry        = "single subscriber, one retry (503 + Retry-After: 1)"
)

// histories reads the histories of ids (every run of each, following continue-as-new)
// and describes them; deliveriesPerWorkflow divides them among the deliveries each
// workflow made.
func (b *Bench) histories(ctx context.Context, kind string, ids []string, deliveriesPerWorkflow float64) (HistorySample, error) {
	var runs [][]*historypb.HistoryEvent
	for _, id := range ids {
		events, err := b.readHistory(ctx, id)
		if err != nil {
			return HistorySample{}, fmt.Errorf("history of %s: %w", id, err)
		}
		runs = append(runs, events)
	}
	return describeHistories(kind, runs, deliveriesPerWorkflow), nil
}

// readHistory returns every event of workflow id, oldest run first.
func (b *Bench) readHistory(ctx context.Context, id string) ([]*historypb.HistoryEvent, error) {
	var all []*historypb.HistoryEvent
	runID := ""
	for range 100 {
		iter := b.env.Temporal.GetWorkflowHistory(ctx, id, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		var run []*historypb.HistoryEvent
		for iter.HasNext() {
			ev, err := iter.Next()
			if err != nil {
				return nil, err
			}
			run = append(run, ev)
		}
		all = append(run, all...)
		if len(run) == 0 {
			break
		}
		prev := run[0].GetWorkflowExecutionStartedEventAttributes().GetContinuedExecutionRunId()
		if prev == "" {
			break
		}
		runID = prev
	}
	return all, nil
}

// describeHistories averages the event counts, sizes and types of workflows' histories.
func describeHistories(kind string, workflows [][]*historypb.HistoryEvent, deliveriesPerWorkflow float64) HistorySample {
	s := HistorySample{Kind: kind, Workflows: len(workflows), EventTypes: map[string]float64{}}
	if len(workflows) == 0 {
		return s
	}
	n := float64(len(workflows))
	for _, events := range workflows {
		for _, ev := range events {
			s.EventsPerWorkflow++
			s.BytesPerWorkflow += float64(proto.Size(ev))
			s.EventTypes[ev.GetEventType().String()]++
		}
	}
	s.EventsPerWorkflow /= n
	s.BytesPerWorkflow /= n
	for k := range s.EventTypes {
		s.EventTypes[k] /= n
	}
	if deliveriesPerWorkflow > 0 {
		s.EventsPerDelivery = s.EventsPerWorkflow / deliveriesPerWorkflow
		s.BytesPerDelivery = s.BytesPerWorkflow / deliveriesPerWorkflow
	}
	return s
}

// sample picks up to n of ids, spread evenly over them.
func sample(ids []string, n int) []string {
	if len(ids) <= n {
		return ids
	}
	out := make([]string, 0, n)
	step := float64(len(ids)) / float64(n)
	for i := range n {
		out = append(out, ids[int(float64(i)*step)])
	}
	return out
}
