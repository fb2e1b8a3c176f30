// Package meter measures what a phase of the benchmark cost each part of the stack:
// CPU per process (procfs), the Temporal server's persistence requests by operation
// (its Prometheus endpoint), and PostgreSQL's transactions and row writes per database
// and per table (pg_stat_database, pg_stat_user_tables), so that the capacity model in
// docs/scaling.md can divide each by the deliveries the phase made.
package meter

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/bench/internal/procfs"
	"github.com/assetsup/webhooks/bench/internal/stats"
)

// Processes tells the meter which processes are the stack's right now.
type Processes interface {
	TemporalPID() int
	WorkerPIDs() []int
	APIPIDs() []int
	// PostgresPID is a private PostgreSQL server's postmaster, or 0.
	PostgresPID() int
}

// Database is one PostgreSQL database of the stack, named by its role: "app" (the
// service's), "temporal" (persistence) or "visibility".
type Database struct {
	Role string
	Name string
	// DB is connected to that database, for its per-table counters; nil skips them.
	DB *bun.DB
}

// Meter takes snapshots of the stack's counters.
type Meter struct {
	procs      Processes
	metricsURL string // the Temporal server's Prometheus endpoint; empty when unknown
	admin      *bun.DB
	dbs        []Database
	hc         *http.Client
}

// New returns a meter over procs, the server's Prometheus endpoint at metricsURL, and
// dbs, whose database-wide counters it reads through admin (any database of the server).
func New(procs Processes, metricsURL string, admin *bun.DB, dbs []Database) *Meter {
	return &Meter{procs: procs, metricsURL: metricsURL, admin: admin, dbs: dbs, hc: &http.Client{Timeout: 10 * time.Second}}
}

// DBCounters are a database's cumulative counters from pg_stat_database.
type DBCounters struct {
	Commits   int64 `bun:"xact_commit"`
	Rollbacks int64 `bun:"xact_rollback"`
	Returned  int64 `bun:"tup_returned"`
	Fetched   int64 `bun:"tup_fetched"`
	Inserted  int64 `bun:"tup_inserted"`
	Updated   int64 `bun:"tup_updated"`
	Deleted   int64 `bun:"tup_deleted"`
}

// Snapshot is every counter at one moment.
type Snapshot struct {
	cpu    procfs.CPUSample
	ops    map[string]float64          // persistence_requests by operation
	opSecs map[string]float64          // persistence_latency_sum by operation
	visOps map[string]float64          // visibility_persistence_requests by operation
	db     map[string]DBCounters       // by role
	tables map[string]map[string]int64 // role → table → rows inserted + updated + deleted
	// backends is the CPU so far of each PostgreSQL backend serving one of the
	// databases, by pid, with the database's role.
	backends map[int]backendCPU
	// statements are pg_stat_statements' calls by role and statement text, when the
	// server has it loaded; execMs their total execution time by role.
	statements map[string]map[string]float64
	execMs     map[string]float64
	// wal is the private server's WAL position in bytes, 0 on a shared server (whose
	// WAL is everybody's).
	wal int64
}

type backendCPU struct {
	role    string
	seconds float64
}

// Take reads every counter. A source that cannot be read reads as empty: the usage
// computed from it is then zero, never wrong by a missing baseline alone.
func (m *Meter) Take(ctx context.Context) Snapshot {
	s := Snapshot{
		cpu: procfs.SampleCPU(procfs.PIDs{
			Temporal: m.procs.TemporalPID(), Workers: m.procs.WorkerPIDs(), APIs: m.procs.APIPIDs(), Postgres: m.procs.PostgresPID(),
		}),
		db:       map[string]DBCounters{},
		tables:   map[string]map[string]int64{},
		backends: map[int]backendCPU{},
	}
	s.ops, s.visOps, s.opSecs = m.persistence(ctx)
	m.backendCPU(ctx, s.backends)
	s.statements, s.execMs = m.statementCalls(ctx)
	if m.admin != nil && m.procs.PostgresPID() > 0 {
		_ = m.admin.NewRaw(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(ctx, &s.wal)
	}
	for _, d := range m.dbs {
		var c DBCounters
		if m.admin != nil && m.admin.NewRaw(`SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted, tup_updated, tup_deleted
			FROM pg_stat_database WHERE datname = ?`, d.Name).Scan(ctx, &c) == nil {
			s.db[d.Role] = c
		}
		if d.DB == nil {
			continue
		}
		var rows []struct {
			Table  string `bun:"relname"`
			Writes int64  `bun:"writes"`
		}
		if d.DB.NewRaw(`SELECT relname, n_tup_ins + n_tup_upd + n_tup_del AS writes FROM pg_stat_user_tables`).Scan(ctx, &rows) == nil {
			t := map[string]int64{}
			for _, r := range rows {
				t[r.Table] = r.Writes
			}
			s.tables[d.Role] = t
		}
	}
	return s
}

func (m *Meter) persistence(ctx context.Context) (ops, vis, secs map[string]float64) {
	ops, vis, secs = map[string]float64{}, map[string]float64{}, map[string]float64{}
	if m.metricsURL == "" {
		return ops, vis, secs
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.metricsURL, nil)
	if err != nil {
		return ops, vis, secs
	}
	resp, err := m.hc.Do(req)
	if err != nil {
		return ops, vis, secs
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return ops, vis, secs
	}
	text := string(body)
	ops, _ = stats.PromByLabel(strings.NewReader(text), "persistence_requests", "operation")
	vis, _ = stats.PromByLabel(strings.NewReader(text), "visibility_persistence_requests", "operation")
	secs, _ = stats.PromByLabel(strings.NewReader(text), "persistence_latency_sum", "operation")
	return ops, vis, secs
}

// backendCPU reads the CPU of every backend serving one of the stack's databases: each
// backend serves one database, so this is PostgreSQL's CPU for this stack alone, apart
// from the server's shared background processes and whoever else uses it.
func (m *Meter) backendCPU(ctx context.Context, into map[int]backendCPU) {
	if m.admin == nil || len(m.dbs) == 0 {
		return
	}
	roles := map[string]string{}
	names := make([]string, 0, len(m.dbs))
	for _, d := range m.dbs {
		roles[d.Name] = d.Role
		names = append(names, d.Name)
	}
	var rows []struct {
		PID      int    `bun:"pid"`
		Database string `bun:"datname"`
	}
	if m.admin.NewRaw(`SELECT pid, datname FROM pg_stat_activity WHERE datname IN (?)`, bun.In(names)).Scan(ctx, &rows) != nil {
		return
	}
	for _, r := range rows {
		into[r.PID] = backendCPU{role: roles[r.Database], seconds: procfs.CPUSeconds(r.PID)}
	}
}

// statementCalls reads pg_stat_statements for the stack's databases; nil when the
// server does not have it (only the benchmark's private server loads it).
func (m *Meter) statementCalls(ctx context.Context) (map[string]map[string]float64, map[string]float64) {
	if m.admin == nil || len(m.dbs) == 0 {
		return nil, nil
	}
	roles := map[string]string{}
	names := make([]string, 0, len(m.dbs))
	for _, d := range m.dbs {
		roles[d.Name] = d.Role
		names = append(names, d.Name)
	}
	var rows []struct {
		Database string  `bun:"datname"`
		Query    string  `bun:"query"`
		Calls    float64 `bun:"calls"`
		ExecMs   float64 `bun:"exec_ms"`
	}
	err := m.admin.NewRaw(`SELECT d.datname, s.query, sum(s.calls) AS calls, sum(s.total_exec_time) AS exec_ms
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname IN (?) GROUP BY 1, 2`, bun.In(names)).Scan(ctx, &rows)
	if err != nil {
		return nil, nil
	}
	out, exec := map[string]map[string]float64{}, map[string]float64{}
	for _, r := range rows {
		role := roles[r.Database]
		if out[role] == nil {
			out[role] = map[string]float64{}
		}
		out[role][r.Query] += r.Calls
		exec[role] += r.ExecMs
	}
	return out, exec
}

// Connections counts the open PostgreSQL connections to each of the stack's databases.
func (m *Meter) Connections(ctx context.Context) map[string]int {
	out := map[string]int{}
	if m.admin == nil {
		return out
	}
	for _, d := range m.dbs {
		var n int
		if m.admin.NewRaw(`SELECT count(*) FROM pg_stat_activity WHERE datname = ?`, d.Name).Scan(ctx, &n) == nil {
			out[d.Role] = n
		}
	}
	return out
}

// PeakConnections samples Connections every interval until stop is called, and stop
// returns the largest count seen per database.
func (m *Meter) PeakConnections(ctx context.Context, interval time.Duration) (stop func() map[string]int) {
	peak := map[string]int{}
	var mu sync.Mutex
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		now := m.Connections(ctx)
		mu.Lock()
		for k, v := range now {
			peak[k] = max(peak[k], v)
		}
		mu.Unlock()
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			sample()
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() map[string]int {
		close(done)
		<-finished
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// Usage is what the stack spent between two snapshots, and on how many items
// (deliveries or workflows) the per-item figures are based.
type Usage struct {
	Items       int           `json:"items"`
	CPU         procfs.CPUUse `json:"cpu"`
	Persistence Persistence   `json:"persistence"`
	Databases   []DBUsage     `json:"databases,omitempty"`
	// PeakConnections are the most connections seen open to each database.
	PeakConnections map[string]int `json:"peakConnections,omitempty"`
	// PostgresBackendCPU is the CPU seconds of the PostgreSQL backends serving each of
	// the stack's databases: unlike CPU.Postgres, without other users of the server.
	PostgresBackendCPU map[string]float64 `json:"postgresBackendCpuSeconds,omitempty"`
	// Statements are the statements each database ran (pg_stat_statements), when the
	// server counts them.
	Statements []StatementUsage `json:"statements,omitempty"`
	// WALBytes is the write-ahead log the private PostgreSQL server wrote: every
	// database's changes, the bytes a replica or a backup has to carry.
	WALBytes int64 `json:"walBytes,omitempty"`
}

// StatementUsage is what one database was asked to run, by kind of statement.
type StatementUsage struct {
	Role  string  `json:"role"`
	Total float64 `json:"total"`
	// Reads are SELECTs, Writes INSERT, UPDATE, DELETE (and a WITH that does one),
	// Transaction BEGIN, COMMIT, ROLLBACK and savepoints.
	Reads       float64 `json:"reads"`
	Writes      float64 `json:"writes"`
	Transaction float64 `json:"transactionControl"`
	Other       float64 `json:"other"`
	// ExecMs is the time the server spent executing them (pg_stat_statements'
	// total_exec_time): connections are busy at least that long.
	ExecMs float64 `json:"execMs"`
	// Top are the most called statements, most first.
	Top []StatementCalls `json:"top,omitempty"`
}

// StatementCalls is one normalized statement and how often it ran.
type StatementCalls struct {
	Query string  `json:"query"`
	Kind  string  `json:"kind"`
	Calls float64 `json:"calls"`
}

// Statement returns the statement usage of the database with role, if counted.
func (u Usage) Statement(role string) (StatementUsage, bool) {
	for _, s := range u.Statements {
		if s.Role == role {
			return s, true
		}
	}
	return StatementUsage{}, false
}

// Statement kinds.
const (
	StatementRead        = "read"
	StatementWrite       = "write"
	StatementTransaction = "transaction"
	StatementOther       = "other"
)

// ClassifyStatement says what kind of statement a (normalized) SQL text is.
func ClassifyStatement(q string) string {
	fields := strings.FieldsFunc(strings.ToUpper(q), func(r rune) bool { return (r < 'A' || r > 'Z') && r != '_' })
	if len(fields) == 0 {
		return StatementOther
	}
	switch fields[0] {
	case "SELECT", "TABLE", "VALUES":
		return StatementRead
	case "INSERT", "UPDATE", "DELETE", "MERGE", "COPY":
		return StatementWrite
	case "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE", "PREPARE", "ABORT":
		return StatementTransaction
	case "WITH":
		for _, f := range fields[1:] {
			switch f {
			case "INSERT", "UPDATE", "DELETE", "MERGE":
				return StatementWrite
			}
		}
		return StatementRead
	}
	return StatementOther
}

// topStatements is how many statements per database Usage lists.
const topStatements = 12

func statementUsage(a, b map[string]map[string]float64) []StatementUsage {
	var out []StatementUsage
	for role, after := range b {
		su := StatementUsage{Role: role}
		for q, calls := range deltas(a[role], after) {
			kind := ClassifyStatement(q)
			su.Total += calls
			switch kind {
			case StatementRead:
				su.Reads += calls
			case StatementWrite:
				su.Writes += calls
			case StatementTransaction:
				su.Transaction += calls
			default:
				su.Other += calls
			}
			su.Top = append(su.Top, StatementCalls{Query: q, Kind: kind, Calls: calls})
		}
		slices.SortFunc(su.Top, func(x, y StatementCalls) int {
			if x.Calls != y.Calls {
				if x.Calls > y.Calls {
					return -1
				}
				return 1
			}
			return strings.Compare(x.Query, y.Query)
		})
		if len(su.Top) > topStatements {
			su.Top = su.Top[:topStatements]
		}
		out = append(out, su)
	}
	slices.SortFunc(out, func(x, y StatementUsage) int { return roleOrder(x.Role) - roleOrder(y.Role) })
	return out
}

// PostgresCPU is the CPU seconds of the backends serving the stack's databases.
func (u Usage) PostgresCPU() float64 {
	var total float64
	for _, v := range u.PostgresBackendCPU {
		total += v
	}
	return total
}

// Persistence is the Temporal server's persistence requests, split into writes and
// reads by operation name (Classify), for its execution store and for visibility.
type Persistence struct {
	Writes           float64            `json:"writes"`
	Reads            float64            `json:"reads"`
	Other            float64            `json:"other"`
	VisibilityWrites float64            `json:"visibilityWrites"`
	VisibilityReads  float64            `json:"visibilityReads"`
	ByOperation      map[string]float64 `json:"byOperation,omitempty"`
	Visibility       map[string]float64 `json:"visibilityByOperation,omitempty"`
	// MeanLatencyMs is each operation's mean latency over the phase.
	MeanLatencyMs map[string]float64 `json:"meanLatencyMs,omitempty"`
	// ShardIOSeconds is the time spent in the operations a history shard runs one at a
	// time (ShardIOOperations): 1 / (ShardIOSeconds per delivery) is what one shard can
	// carry at these latencies.
	ShardIOSeconds float64 `json:"shardIoSeconds"`
}

// ShardIOOperations are the persistence operations the history service runs under a
// shard's I/O semaphore, one at a time per shard by default (history.shardIOConcurrency
// is 1; go.temporal.io/server service/history/shard/context_impl.go).
var ShardIOOperations = []string{
	"AssertShardOwnership", "AddHistoryTasks", "CreateWorkflowExecution", "UpdateWorkflowExecution",
	"ConflictResolveWorkflowExecution", "SetWorkflowExecution", "DeleteWorkflowExecution", "UpdateShard",
}

// DBUsage is what one database did: transactions and rows.
type DBUsage struct {
	Role      string `json:"role"`
	Commits   int64  `json:"commits"`
	Rollbacks int64  `json:"rollbacks"`
	Returned  int64  `json:"rowsReturned"`
	Fetched   int64  `json:"rowsFetched"`
	Inserted  int64  `json:"rowsInserted"`
	Updated   int64  `json:"rowsUpdated"`
	Deleted   int64  `json:"rowsDeleted"`
	// TableWrites are rows inserted, updated or deleted per table.
	TableWrites map[string]int64 `json:"tableWrites,omitempty"`
}

// RowWrites is rows inserted, updated and deleted.
func (d DBUsage) RowWrites() int64 { return d.Inserted + d.Updated + d.Deleted }

// Between is the usage from snapshot a to b, for items items.
func Between(a, b Snapshot, items int) Usage {
	u := Usage{Items: items, CPU: procfs.CPUBetween(a.cpu, b.cpu)}
	u.Persistence.ByOperation = deltas(a.ops, b.ops)
	u.Persistence.Visibility = deltas(a.visOps, b.visOps)
	secs := deltas(a.opSecs, b.opSecs)
	for op, n := range u.Persistence.ByOperation {
		if s, ok := secs[op]; ok && n > 0 {
			if u.Persistence.MeanLatencyMs == nil {
				u.Persistence.MeanLatencyMs = map[string]float64{}
			}
			u.Persistence.MeanLatencyMs[op] = 1000 * s / n
		}
	}
	for _, op := range ShardIOOperations {
		u.Persistence.ShardIOSeconds += secs[op]
	}
	for op, n := range u.Persistence.ByOperation {
		switch Classify(op) {
		case Write:
			u.Persistence.Writes += n
		case Read:
			u.Persistence.Reads += n
		default:
			u.Persistence.Other += n
		}
	}
	for op, n := range u.Persistence.Visibility {
		if Classify(op) == Write {
			u.Persistence.VisibilityWrites += n
		} else {
			u.Persistence.VisibilityReads += n
		}
	}
	u.PostgresBackendCPU = backendDeltas(a.backends, b.backends)
	if a.wal > 0 && b.wal > a.wal {
		u.WALBytes = b.wal - a.wal
	}
	if a.statements != nil && b.statements != nil {
		u.Statements = statementUsage(a.statements, b.statements)
		for i := range u.Statements {
			role := u.Statements[i].Role
			u.Statements[i].ExecMs = max(0, b.execMs[role]-a.execMs[role])
		}
	}
	roles := make([]string, 0, len(b.db))
	for role := range b.db {
		if _, ok := a.db[role]; ok {
			roles = append(roles, role)
		}
	}
	slices.SortFunc(roles, func(x, y string) int { return roleOrder(x) - roleOrder(y) })
	for _, role := range roles {
		x, y := a.db[role], b.db[role]
		d := DBUsage{
			Role: role, Commits: y.Commits - x.Commits, Rollbacks: y.Rollbacks - x.Rollbacks,
			Returned: y.Returned - x.Returned, Fetched: y.Fetched - x.Fetched,
			Inserted: y.Inserted - x.Inserted, Updated: y.Updated - x.Updated, Deleted: y.Deleted - x.Deleted,
		}
		for table, n := range b.tables[role] {
			if w := n - a.tables[role][table]; w > 0 {
				if d.TableWrites == nil {
					d.TableWrites = map[string]int64{}
				}
				d.TableWrites[table] = w
			}
		}
		u.Databases = append(u.Databases, d)
	}
	return u
}

// backendDeltas is each role's backend CPU from a to b. A backend that appeared
// between the snapshots started during the window, so all of its CPU counts; one that
// left takes its last moments with it (pools keep their connections, so that is rare).
func backendDeltas(a, b map[int]backendCPU) map[string]float64 {
	out := map[string]float64{}
	for pid, after := range b {
		d := after.seconds
		if before, ok := a[pid]; ok && before.role == after.role {
			d -= before.seconds
		}
		if d > 0 {
			out[after.role] += d
		}
	}
	return out
}

func roleOrder(role string) int {
	switch role {
	case "app":
		return 0
	case "temporal":
		return 1
	case "visibility":
		return 2
	}
	return 3
}

// Database returns the usage of the database with role, and whether it was measured.
func (u Usage) Database(role string) (DBUsage, bool) {
	for _, d := range u.Databases {
		if d.Role == role {
			return d, true
		}
	}
	return DBUsage{}, false
}

// Per is v per item; 0 when there are none.
func (u Usage) Per(v float64) float64 {
	if u.Items == 0 {
		return 0
	}
	return v / float64(u.Items)
}

// deltas is b − a per key, keeping only what moved.
func deltas(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range b {
		if d := v - a[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// Kind says whether a persistence operation writes or reads.
type Kind int

// Kinds of persistence operation.
const (
	OtherKind Kind = iota
	Write
	Read
)

// writePrefixes and readPrefixes classify Temporal's persistence operation names
// (go.temporal.io/server common/persistence: CreateWorkflowExecution,
// UpdateWorkflowExecution, AppendHistoryNodes, RangeCompleteTimerTasks,
// RecordWorkflowExecutionStarted, GetTasks, ReadHistoryBranch, ...). A GetOrCreate
// reads unless what it looks for is missing, which happens once per shard.
var (
	writePrefixes = []string{
		"Create", "Update", "Upsert", "Delete", "Append", "Add", "Put", "Set", "Insert", "Record", "Save",
		"Complete", "RangeComplete", "RangeDelete", "Conflict", "Trim", "Fork", "Prune", "Initialize", "Register",
		"Lease", "Renew",
	}
	readPrefixes = []string{"GetOrCreate", "Get", "Read", "List", "Count", "Scan", "Assert", "Describe", "Is"}
)

// Classify says whether the persistence operation op writes or reads.
func Classify(op string) Kind {
	for _, p := range readPrefixes {
		if strings.HasPrefix(op, p) {
			return Read
		}
	}
	for _, p := range writePrefixes {
		if strings.HasPrefix(op, p) {
			return Write
		}
	}
	return OtherKind
}
