//go:build unix

package e2e_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/delivery"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/workflows"
)

// TestTypeScriptContract runs the TypeScript client's test suite, contract test included,
// against this package's real stack: the API on a loopback port, a Go worker and the
// Temporal dev server. The TypeScript side registers a webhook, starts DispatchEvent with
// @temporalio/client, verifies what its receiver gets and dispatches the event twice; the
// Go side then checks the delivery log saw exactly one successful delivery.
func TestTypeScriptContract(t *testing.T) {
	testinfra.NeedsFullSuite(t, "npm")

	s := newStack(t, testfixture.WorkerSettings{})
	srv := httptest.NewServer(s.router)
	t.Cleanup(srv.Close)
	user := newUser()
	token, err := api.IssueToken(jwtSecret, user, time.Hour, time.Now())
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	npm, pkg := typescriptClient(ctx, t)
	out := runNPM(ctx, t, npm, pkg, []string{
		"ASSETSUP_API_URL=" + srv.URL,
		"ASSETSUP_TOKEN=" + token,
		"TEMPORAL_ADDRESS=" + testinfra.TemporalAddress(t),
		"TEMPORAL_TASK_QUEUE=" + s.taskQueue,
		"ASSETSUP_USER_ID=" + user,
		"ASSETSUP_CONTRACT_REQUIRED=1",
	}, "test")
	// The contract test must have run, not skipped.
	require.NotContains(t, out, "# SKIP", "the contract test was skipped:\n%s", out)
	require.Contains(t, out, "# skipped 0", out)

	// From the Go side: the user's one webhook got exactly one delivery, and it succeeded.
	type row struct {
		EventID  string           `bun:"event_id"`
		Event    string           `bun:"event"`
		Kind     delivery.Kind    `bun:"kind"`
		Status   delivery.Outcome `bun:"status"`
		Attempts int              `bun:"attempts"`
	}
	var rows []row
	eventually(t, 15*time.Second, func() bool {
		rows = nil
		err := testinfra.DB(t).NewRaw(`SELECT d.event_id, d.event, d.kind, d.status, d.attempts
			FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE w.user_id = ?`, user).Scan(context.Background(), &rows)
		require.NoError(t, err)
		return len(rows) == 1 && rows[0].Status == "succeeded"
	}, "one succeeded delivery for the TypeScript-dispatched event")
	require.Len(t, rows, 1)
	assert.Equal(t, "ASSET_TRANSFERRED", rows[0].Event)
	assert.Equal(t, delivery.KindEvent, rows[0].Kind)
	assert.Equal(t, 1, rows[0].Attempts)
	assert.Regexp(t, `^evt_[0-9a-f]{32}$`, rows[0].EventID)

	// The event went through DispatchEvent under the recommended id, and started one delivery.
	desc, err := testinfra.Temporal(t).DescribeWorkflowExecution(ctx, workflows.DispatchWorkflowID(rows[0].EventID), "")
	require.NoError(t, err)
	assert.Equal(t, workflows.DispatchEventName, desc.GetWorkflowExecutionInfo().GetType().GetName())
	assert.Equal(t, 1, dispatchResult(t, rows[0].EventID).Started)
}

// runNPM runs one npm command in dir with extra environment, failing the test with its
// output when it fails. npm and the node processes it starts share a process group, so a
// timeout stops all of them.
func runNPM(ctx context.Context, t *testing.T, npm, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false", "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	started := time.Now()
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			t.Fatalf("npm %v timed out after %s:\n%s", args, time.Since(started).Round(time.Second), out.String())
		}
		t.Fatalf("npm %v in %s failed: %v\n%s", args, dir, err, out.String())
	}
	t.Logf("npm %v: ok in %s", args, time.Since(started).Round(time.Millisecond))
	if testing.Verbose() {
		t.Log(out.String())
	}
	return out.String()
}

// typescriptClient finds npm and the TypeScript client (clients/typescript), installing
// its packages from the lockfile when they are missing; without npm the test fails.
func typescriptClient(ctx context.Context, t *testing.T) (npm, pkg string) {
	t.Helper()
	pkg, err := filepath.Abs(filepath.Join("..", "clients", "typescript"))
	require.NoError(t, err)
	npm, err = exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is required for the TypeScript client's tests (Node 20+ with npm): %v", err)
	}
	if _, err := os.Stat(filepath.Join(pkg, "node_modules")); errors.Is(err, os.ErrNotExist) {
		runNPM(ctx, t, npm, pkg, nil, "ci")
	}
	return npm, pkg
}
