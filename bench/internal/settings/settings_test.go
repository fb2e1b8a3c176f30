package settings

import (
	"slices"
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

func TestParseTargets(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []string
		wantErr bool
	}{
		{name: "both, in the given order", give: "prod, dev", want: []string{"prod", "dev"}},
		{name: "one", give: "dev", want: []string{"dev"}},
		{name: "empty items are skipped", give: ",prod,", want: []string{"prod"}},
		{name: "unknown", give: "dev,staging", wantErr: true},
		{name: "twice", give: "dev,dev", wantErr: true},
		{name: "nothing", give: " , ", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTargets(tt.give)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseTargets(%q) = %v, want an error", tt.give, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseTargets(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestParseReplicas(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		want    []int
		wantErr bool
	}{
		{name: "default sweep", give: "1,2,3", want: []int{1, 2, 3}},
		{name: "gaps are fine", give: " 2, 5 ", want: []int{2, 5}},
		{name: "descending: replicas are never removed", give: "3,1", wantErr: true},
		{name: "repeated", give: "2,2", wantErr: true},
		{name: "zero", give: "0,1", wantErr: true},
		{name: "not a number", give: "one", wantErr: true},
		{name: "nothing", give: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReplicas(tt.give)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseReplicas(%q) = %v, want an error", tt.give, got)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseReplicas(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
			}
		})
	}
}

func TestTargetFlagsAndEnvironment(t *testing.T) {
	def, err := Parse(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(def.Targets, []string{"dev", "prod"}) || !slices.Equal(def.Replicas, []int{1, 2, 3}) ||
		def.ProdEvents != def.Events || def.ProdFanout != def.Fanout || def.HistoryShards != 4 || def.ProdAPIReplicas != 2 {
		t.Fatalf("defaults: targets %v replicas %v prod-n %d shards %d api replicas %d",
			def.Targets, def.Replicas, def.ProdEvents, def.HistoryShards, def.ProdAPIReplicas)
	}
	t.Setenv("BENCH_TARGET", "prod")
	t.Setenv("BENCH_REPLICAS", "2")
	env, err := Parse(nil, false)
	if err != nil || !slices.Equal(env.Targets, []string{"prod"}) || !slices.Equal(env.Replicas, []int{2}) || env.Has("dev") {
		t.Fatalf("BENCH_TARGET/BENCH_REPLICAS: %v %v %v", env.Targets, env.Replicas, err)
	}
	flags, err := Parse([]string{"-target", "dev", "-replicas", "1,3"}, false)
	if err != nil || !slices.Equal(flags.Targets, []string{"dev"}) || !slices.Equal(flags.Replicas, []int{1, 3}) {
		t.Fatalf("flags win over the environment: %v %v %v", flags.Targets, flags.Replicas, err)
	}
	if _, err := Parse([]string{"-replicas", "3,2"}, false); err == nil {
		t.Fatal("descending replicas must be refused")
	}
}

func TestPostgresChoice(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantPG    string
		wantConns int
		wantErr   bool
	}{
		{name: "private by default, production pool sizes", args: nil, wantPG: "private", wantConns: 0},
		{name: "shared: smaller pools to fit 100 connections", args: []string{"-postgres", "shared"}, wantPG: "shared", wantConns: 10},
		{name: "shared with an explicit pool size", args: []string{"-postgres", "shared", "-prod-db-conns", "5"}, wantPG: "shared", wantConns: 5},
		{name: "unknown", args: []string{"-postgres", "remote"}, wantErr: true},
		{name: "negative pool", args: []string{"-prod-db-conns", "-1"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.args, false)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Parse(%v) accepted", tt.args)
				}
				return
			}
			if err != nil || s.Postgres != tt.wantPG || s.ProdDBConns != tt.wantConns {
				t.Fatalf("Parse(%v): postgres %q conns %d err %v; want %q %d", tt.args, s.Postgres, s.ProdDBConns, err, tt.wantPG, tt.wantConns)
			}
		})
	}
}
