package perf

import (
	"strings"
	"testing"
)

func TestSplitSamples(t *testing.T) {
	const script = `temporal-server 23594  3303.200627:    2004008 cpu-clock: 
	           4f6e8 runtime.(*spanSet).push+0x168 (/bin/temporal-server)
	          ce5e4c go.temporal.io/server/common/persistence/serialization.(*serializerImpl).DeserializeClusterMetadata+0x6c (/bin/temporal-server)
	         11dd0e4 go.temporal.io/server/common/searchattribute.(*managerImpl).refreshCacheLocked+0x524 (/bin/temporal-server)
	         2148a8d go.temporal.io/server/service/frontend.(*WorkflowHandler).StartWorkflowExecution+0xad (/bin/temporal-server)
	          7c2e0e go.temporal.io/api/workflowservice/v1._WorkflowService_StartWorkflowExecution_Handler.func1+0xce (/bin/temporal-server)

temporal-server 23595  3303.202627:    2004008 cpu-clock: 
	           1111 go.temporal.io/server/common/persistence/sql.(*sqlExecutionStore).UpdateWorkflowExecution+0x10 (/bin/temporal-server)
	           2222 go.temporal.io/server/service/history/workflow.(*ContextImpl).UpdateWorkflowExecutionAsActive+0x20 (/bin/temporal-server)
	           3333 go.temporal.io/server/service/history/api/respondworkflowtaskcompleted.Invoke+0x30 (/bin/temporal-server)

temporal-server 23596  3303.204627:    2004008 cpu-clock: 
	           4444 go.temporal.io/server/service/matching.(*matchingEngineImpl).PollWorkflowTaskQueue+0x10 (/bin/temporal-server)

temporal-server 23597  3303.206627:    2004008 cpu-clock: 
	           5555 runtime.scanobject+0x10 (/bin/temporal-server)
	           6666 runtime.gcBgMarkWorker+0x20 (/bin/temporal-server)

temporal-server 23598  3303.208627:    2004008 cpu-clock: 
	           7777 [unknown] ([kernel.kallsyms])
`
	got := splitSamples(strings.NewReader(script))
	want := map[string]float64{"frontend": 0.2, "history": 0.2, "matching": 0.2, "gc": 0.2, "other": 0.2}
	if len(got) != len(want) {
		t.Fatalf("split %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %v, want %v (all %v)", k, got[k], v, got)
		}
	}
	if splitSamples(strings.NewReader("")) != nil {
		t.Error("no samples must give no split")
	}
}

func TestClassifyStackTakesTheOutermostService(t *testing.T) {
	// History code reached from a frontend handler in the same goroutine counts as
	// frontend: the frame nearest the goroutine's start decides.
	frames := []string{
		"go.temporal.io/server/service/history.(*Handler).StartWorkflowExecution",
		"go.temporal.io/server/service/frontend.(*WorkflowHandler).StartWorkflowExecution",
	}
	if got := classifyStack(frames); got != "frontend" {
		t.Fatalf("got %s, want frontend", got)
	}
	tests := []struct {
		give []string
		want string
	}{
		{[]string{"go.temporal.io/server/common/persistence/sql.(*store).Get"}, "persistence"},
		{[]string{"runtime.memmove", "google.golang.org/grpc/internal/transport.(*http2Server).HandleStreams"}, "grpc"},
		{[]string{"runtime.scanobject", "runtime.gcBgMarkWorker"}, "gc"},
		{[]string{"runtime.findRunnable", "runtime.schedule"}, "runtime"},
		{[]string{"github.com/temporalio/ringpop-go/swim.sendPing"}, "membership"},
	}
	for _, tt := range tests {
		if got := classifyStack(tt.give); got != tt.want {
			t.Errorf("classifyStack(%v) = %s, want %s", tt.give, got, tt.want)
		}
	}
}
