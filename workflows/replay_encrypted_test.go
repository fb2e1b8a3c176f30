package workflows_test

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/assetsup/webhooks/payloadcodec"
	"github.com/assetsup/webhooks/temporalclient"
	"github.com/assetsup/webhooks/workflows"
)

// The encrypted corpus: histories recorded on the dev server with payload encryption on
// (e2e TestEncryptedReplayCorpus, -update-encrypted-histories), and codec.key, the test
// key ("id:base64") that sealed them.
const encryptedCorpusDir = "testdata/histories-encrypted"

// encryptedShapes are the shapes the encrypted corpus must hold: every kind of payload a
// delivery writes (inputs, markers, local activity results and failures, activity
// failures, children, memo, results) sealed.
var encryptedShapes = []string{
	"inline-success", // one subscriber, delivered by the dispatch on the first attempt
	"inline-retries", // a failed local attempt, then a retried activity
	"fan-out",        // a dispatch and its two DeliverWebhook children
	"failed",         // every attempt failed: DeliveryFailed with its details
	"test-delivery",  // POST /webhooks/:id/test, started by the API's client
}

// Encrypted runs survive what plaintext ones do: new workflow code and every setting
// changed, here with a rotated key set (a newer current key, the corpus's key kept to
// open). Without the corpus's key they do not replay at all, so the corpus cannot be
// plaintext by mistake.
func TestReplayEncryptedCorpus(t *testing.T) {
	runs, key := readEncryptedCorpus(t)
	rotated, err := payloadcodec.New(randomPayloadKey(t, "rotated"), key)
	require.NoError(t, err)

	configs := []replayConfig{{name: "defaults", give: replayBaseConfig()}}
	for _, m := range replayMutations {
		cfg, err := mutated(replayBaseConfig(), m.field, m.give)
		require.NoError(t, err, m.name)
		configs = append(configs, replayConfig{name: fmt.Sprintf("%s=%v", m.name, m.give), give: cfg})
	}
	for _, tt := range configs {
		t.Run(tt.name, func(t *testing.T) {
			replayer := encryptedReplayerFor(t, tt.give, rotated)
			for _, e := range runs {
				err := replayer.ReplayWorkflowHistoryWithOptions(quietReplayLogger(), e.history, worker.ReplayWorkflowHistoryOptions{
					OriginalExecution: workflow.Execution{ID: e.WorkflowID, RunID: e.RunID},
				})
				assert.NoError(t, err, "%s (%s) no longer replays", e.File, e.Shape)
			}
		})
	}

	t.Run("without the key", func(t *testing.T) {
		stranger, err := payloadcodec.New(randomPayloadKey(t, "stranger"))
		require.NoError(t, err)
		replayer := encryptedReplayerFor(t, replayBaseConfig(), stranger)
		for _, e := range runs {
			err := replayer.ReplayWorkflowHistoryWithOptions(quietReplayLogger(), e.history, worker.ReplayWorkflowHistoryOptions{
				OriginalExecution: workflow.Execution{ID: e.WorkflowID, RunID: e.RunID},
			})
			assert.Error(t, err, "%s replayed without its key: it is not encrypted", e.File)
		}
	})
}

// readEncryptedCorpus loads the manifest, every history it lists and the key, failing
// when the corpus is missing or incomplete.
func readEncryptedCorpus(t *testing.T) ([]replayCorpusRun, payloadcodec.Key) {
	t.Helper()
	runs := readCorpus(t, encryptedCorpusDir, encryptedShapes,
		"go test ./e2e/ -run TestEncryptedReplayCorpus -args -update-encrypted-histories")

	k, err := os.ReadFile(filepath.Join(encryptedCorpusDir, "codec.key"))
	require.NoError(t, err)
	keys, err := payloadcodec.ParseKeys(string(k))
	require.NoError(t, err)
	require.Len(t, keys, 1, "codec.key holds one id:base64 key")
	return runs, keys[0]
}

// encryptedReplayerFor is replayerFor with the clients' converters for codec.
func encryptedReplayerFor(t *testing.T, cfg workflows.Config, codec converter.PayloadCodec) worker.WorkflowReplayer {
	t.Helper()
	dc := temporalclient.DataConverter(codec)
	return newReplayer(t, cfg, worker.WorkflowReplayerOptions{DataConverter: dc, FailureConverter: temporalclient.FailureConverter(dc)})
}

func randomPayloadKey(t *testing.T, id string) payloadcodec.Key {
	t.Helper()
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return payloadcodec.Key{ID: id, Bytes: b}
}
