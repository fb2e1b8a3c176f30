package meter

import (
	"math"
	"testing"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		give string
		want Kind
	}{
		{"CreateWorkflowExecution", Write},
		{"UpdateWorkflowExecution", Write},
		{"ConflictResolveWorkflowExecution", Write},
		{"AppendHistoryNodes", Write},
		{"AddHistoryTasks", Write},
		{"CreateTasks", Write},
		{"CompleteTasksLessThan", Write},
		{"RangeCompleteTimerTasks", Write},
		{"UpdateShard", Write},
		{"UpsertClusterMembership", Write},
		{"RecordWorkflowExecutionStarted", Write},
		{"RecordWorkflowExecutionClosed", Write},
		{"UpsertWorkflowExecution", Write},
		{"DeleteWorkflowExecution", Write},
		{"GetOrCreateShard", Read},
		{"GetWorkflowExecution", Read},
		{"GetCurrentExecution", Read},
		{"GetTasks", Read},
		{"GetTransferTasks", Read},
		{"ReadHistoryBranch", Read},
		{"ListNamespaces", Read},
		{"CountWorkflowExecutions", Read},
		{"AssertShardOwnership", Read},
		{"SomethingNew", OtherKind},
		{"", OtherKind},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			if got := Classify(tt.give); got != tt.want {
				t.Fatalf("Classify(%q) = %v, want %v", tt.give, got, tt.want)
			}
		})
	}
}

func TestBetween(t *testing.T) {
	a := Snapshot{
		opSecs: map[string]float64{"UpdateWorkflowExecution": 1, "GetTasks": 0.5},
		ops:    map[string]float64{"UpdateWorkflowExecution": 100, "GetTasks": 10, "AssertShardOwnership": 5},
		visOps: map[string]float64{"RecordWorkflowExecutionStarted": 1},
		db: map[string]DBCounters{
			"temporal": {Commits: 1000, Inserted: 50, Updated: 20, Deleted: 5},
			"app":      {Commits: 10},
		},
		tables:   map[string]map[string]int64{"temporal": {"executions": 40, "history_node": 30}},
		backends: map[int]backendCPU{10: {"temporal", 5}, 11: {"app", 1}, 12: {"temporal", 9}},
		wal:      1 << 20,
	}
	b := Snapshot{
		// 60 updates took 0.18 s (3 ms each), 20 creates 0.04 s; GetTasks is no shard I/O.
		opSecs: map[string]float64{"UpdateWorkflowExecution": 1.18, "CreateWorkflowExecution": 0.04, "GetTasks": 0.7},
		ops: map[string]float64{
			"UpdateWorkflowExecution": 160, "GetTasks": 30, "AssertShardOwnership": 5, // unchanged: left out
			"CreateWorkflowExecution": 20, "Mystery": 3,
		},
		visOps: map[string]float64{"RecordWorkflowExecutionStarted": 21, "RecordWorkflowExecutionClosed": 20, "CountWorkflowExecutions": 2},
		db: map[string]DBCounters{
			"temporal":   {Commits: 1400, Inserted: 150, Updated: 80, Deleted: 25},
			"app":        {Commits: 70, Fetched: 40},
			"visibility": {Commits: 99}, // no baseline: not reported
		},
		tables: map[string]map[string]int64{"temporal": {"executions": 100, "history_node": 30, "timer_tasks": 7}},
		// 10 went on, 11 did nothing, 12 left, 13 is a new backend (all of it counts).
		backends: map[int]backendCPU{10: {"temporal", 7.5}, 11: {"app", 1}, 13: {"visibility", 0.5}},
		wal:      3 << 20,
	}
	u := Between(a, b, 20)
	if u.PostgresBackendCPU["temporal"] != 2.5 || u.PostgresBackendCPU["visibility"] != 0.5 || u.PostgresCPU() != 3 {
		t.Errorf("backend CPU %v, want temporal 2.5 and visibility 0.5", u.PostgresBackendCPU)
	}
	if u.WALBytes != 2<<20 {
		t.Errorf("WAL %d bytes, want 2 MiB", u.WALBytes)
	}
	if (Between(Snapshot{}, Snapshot{wal: 5}, 1)).WALBytes != 0 {
		t.Error("WAL without a starting position must not count")
	}
	if _, ok := u.PostgresBackendCPU["app"]; ok {
		t.Error("a backend that used nothing is listed")
	}
	p := u.Persistence
	if p.Writes != 80 || p.Reads != 20 || p.Other != 3 {
		t.Errorf("writes %v reads %v other %v, want 80 20 3 (%v)", p.Writes, p.Reads, p.Other, p.ByOperation)
	}
	if math.Abs(p.ShardIOSeconds-0.22) > 1e-9 || math.Abs(p.MeanLatencyMs["UpdateWorkflowExecution"]-3) > 1e-9 || math.Abs(p.MeanLatencyMs["GetTasks"]-10) > 1e-9 {
		t.Errorf("shard I/O %v s, mean latencies %v; want 0.22 s, update 3 ms, GetTasks 10 ms", p.ShardIOSeconds, p.MeanLatencyMs)
	}
	if _, ok := p.ByOperation["AssertShardOwnership"]; ok {
		t.Error("an operation that did not move is listed")
	}
	if p.VisibilityWrites != 40 || p.VisibilityReads != 2 {
		t.Errorf("visibility writes %v reads %v, want 40 2", p.VisibilityWrites, p.VisibilityReads)
	}
	if got := u.Per(p.Writes); got != 4 {
		t.Errorf("writes per item %v, want 4", got)
	}
	if len(u.Databases) != 2 || u.Databases[0].Role != "app" || u.Databases[1].Role != "temporal" {
		t.Fatalf("databases %+v: want app then temporal, visibility left out", u.Databases)
	}
	tdb, ok := u.Database("temporal")
	if !ok || tdb.Commits != 400 || tdb.RowWrites() != 180 {
		t.Errorf("temporal %+v, want 400 commits and 180 row writes", tdb)
	}
	if len(tdb.TableWrites) != 2 || tdb.TableWrites["executions"] != 60 || tdb.TableWrites["timer_tasks"] != 7 {
		t.Errorf("table writes %v, want executions 60 and timer_tasks 7 only", tdb.TableWrites)
	}
	if app, _ := u.Database("app"); app.Commits != 60 || app.Fetched != 40 {
		t.Errorf("app %+v", app)
	}
	if (Usage{}).Per(5) != 0 {
		t.Error("per item of nothing must be 0")
	}
}

func TestClassifyStatement(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{"SELECT range_id FROM shards WHERE shard_id = $1 FOR SHARE", StatementRead},
		{"  select 1", StatementRead},
		{"INSERT INTO history_node (shard_id, tree_id) VALUES ($1, $2)", StatementWrite},
		{"UPDATE executions SET data = $1 WHERE shard_id = $2", StatementWrite},
		{"DELETE FROM transfer_tasks WHERE shard_id = $1", StatementWrite},
		{"WITH x AS (UPDATE webhooks SET failure_count = failure_count + $1 RETURNING id) SELECT * FROM x", StatementWrite},
		{"WITH x AS (SELECT 1) SELECT * FROM x", StatementRead},
		{"BEGIN", StatementTransaction},
		{"COMMIT", StatementTransaction},
		{"ROLLBACK", StatementTransaction},
		{"SET statement_timeout = 0", StatementOther},
		{"", StatementOther},
	}
	for _, tt := range tests {
		if got := ClassifyStatement(tt.give); got != tt.want {
			t.Errorf("ClassifyStatement(%q) = %s, want %s", tt.give, got, tt.want)
		}
	}
}

func TestStatementUsage(t *testing.T) {
	a := Snapshot{statements: map[string]map[string]float64{
		"temporal": {"SELECT a": 10, "BEGIN": 5, "COMMIT": 5, "UPDATE e": 1},
	}, execMs: map[string]float64{"temporal": 100}}
	b := Snapshot{statements: map[string]map[string]float64{
		"temporal": {"SELECT a": 40, "BEGIN": 15, "COMMIT": 15, "UPDATE e": 11, "INSERT INTO h": 10, "SET x": 2},
		"app":      {"SELECT w": 3},
	}, execMs: map[string]float64{"temporal": 160, "app": 2}}
	u := Between(a, b, 10)
	if len(u.Statements) != 2 || u.Statements[0].Role != "app" {
		t.Fatalf("statements %+v: want app then temporal", u.Statements)
	}
	st, ok := u.Statement("temporal")
	if !ok || st.Total != 72 || st.Reads != 30 || st.Writes != 20 || st.Transaction != 20 || st.Other != 2 {
		t.Fatalf("temporal %+v", st)
	}
	if st.ExecMs != 60 {
		t.Errorf("execution time %v ms, want 60", st.ExecMs)
	}
	if st.Top[0].Query != "SELECT a" || st.Top[0].Kind != StatementRead || st.Top[1].Query != "BEGIN" {
		t.Fatalf("top statements not by calls, most first: %+v", st.Top)
	}
	if app, _ := u.Statement("app"); app.Total != 3 {
		t.Fatalf("app %+v: a database without a baseline counts from zero", app)
	}
	// A server without pg_stat_statements reports nothing, not zeros.
	if u := Between(Snapshot{}, Snapshot{}, 1); u.Statements != nil {
		t.Fatalf("statements without pg_stat_statements: %+v", u.Statements)
	}
}
