package settings

import (
	"testing"
	"time"
)

func TestQuickDefaultsAndFlags(t *testing.T) {
	full, err := Parse(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if full.Events != 2000 || full.CeilingN != 20000 || full.Fanout != 1000 || full.APIRate != 1000 ||
		full.LatencyDuration != 20*time.Second || full.APIDuration != 10*time.Second || full.Concurrency != 64 {
		t.Fatalf("full defaults %+v", full)
	}
	quick, err := Parse([]string{"-n", "50", "-env", "WORKER_POLLERS=8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if quick.Events != 50 || quick.LatencyDuration != 5*time.Second || quick.Fanout >= full.Fanout {
		t.Fatalf("quick %+v", quick)
	}
	if o, err := quick.FloorWorkerOptions(); err != nil || o.WorkflowTaskPollerBehavior == nil || o.MaxConcurrentActivityExecutionSize != 200 {
		t.Fatalf("floor options must be the worker's defaults (autoscaling pollers, 200 slots): %+v %v", o, err)
	}
	fixed, err := Parse([]string{"-env", "WORKER_POLLER_AUTOSCALE=false", "-env", "WORKER_POLLERS=8"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if o, err := fixed.FloorWorkerOptions(); err != nil || o.MaxConcurrentWorkflowTaskPollers != 8 || o.WorkflowTaskPollerBehavior != nil {
		t.Fatalf("floor options must follow the services' WORKER_* overrides: %+v %v", o, err)
	}
	if _, err := Parse([]string{"-n", "0"}, false); err == nil {
		t.Fatal("a zero count must be refused")
	}
}
