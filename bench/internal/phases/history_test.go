package phases

import (
	"slices"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/proto"
)

func historyOf(types ...enumspb.EventType) []*historypb.HistoryEvent {
	out := make([]*historypb.HistoryEvent, len(types))
	for i, t := range types {
		out[i] = &historypb.HistoryEvent{EventId: int64(i + 1), EventType: t}
	}
	return out
}

func TestDescribeHistories(t *testing.T) {
	a := historyOf(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
		enumspb.EVENT_TYPE_MARKER_RECORDED, enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
	b := historyOf(enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, enumspb.EVENT_TYPE_MARKER_RECORDED,
		enumspb.EVENT_TYPE_MARKER_RECORDED, enumspb.EVENT_TYPE_TIMER_STARTED, enumspb.EVENT_TYPE_TIMER_FIRED,
		enumspb.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)
	var size int
	for _, ev := range append(slices.Clone(a), b...) {
		size += proto.Size(ev)
	}

	tests := []struct {
		name          string
		perWorkflow   float64
		wantPerDeliv  float64
		wantBytesPerD float64
	}{
		{"one delivery per workflow", 1, 5, float64(size) / 2},
		{"a parent shared by 500 children", 500, 5.0 / 500, float64(size) / 2 / 500},
		{"no deliveries (the floor)", 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := describeHistories("k", [][]*historypb.HistoryEvent{a, b}, tt.perWorkflow)
			if s.Workflows != 2 || s.EventsPerWorkflow != 5 || s.BytesPerWorkflow != float64(size)/2 {
				t.Fatalf("per workflow: %+v (want 2 workflows, 5 events, %v bytes)", s, float64(size)/2)
			}
			if s.EventsPerDelivery != tt.wantPerDeliv || s.BytesPerDelivery != tt.wantBytesPerD {
				t.Fatalf("per delivery: %v events %v bytes, want %v %v", s.EventsPerDelivery, s.BytesPerDelivery, tt.wantPerDeliv, tt.wantBytesPerD)
			}
			if s.EventTypes["MarkerRecorded"] != 1.5 || s.EventTypes["TimerFired"] != 0.5 || s.EventTypes["WorkflowExecutionStarted"] != 1 {
				t.Fatalf("event types %v", s.EventTypes)
			}
		})
	}
	if s := describeHistories("none", nil, 1); s.Workflows != 0 || s.EventsPerWorkflow != 0 {
		t.Fatalf("no histories: %+v", s)
	}
}

func TestSample(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	tests := []struct {
		name string
		n    int
		want []string
	}{
		{"fewer than asked: all", 20, ids},
		{"spread over the whole range", 5, []string{"a", "c", "e", "g", "i"}},
		{"one", 1, []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sample(ids, tt.n); !slices.Equal(got, tt.want) {
				t.Fatalf("sample(%d) = %v, want %v", tt.n, got, tt.want)
			}
		})
	}
}
