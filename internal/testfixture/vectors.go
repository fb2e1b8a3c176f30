package testfixture

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetsup/webhooks/internal/testinfra"
)

// SignatureVectorsFile is where the signature vectors live, from the repository root:
// a copy of vectors computed independently of this project's code.
const SignatureVectorsFile = "testdata/signatures.json"

// SignatureVector is one case: a secret, a body, and both signatures of it.
type SignatureVector struct {
	Secret           string `json:"secret"`
	Body             string `json:"body"`
	AssetsUp         string `json:"x_assetsup_signature"`
	WebhookID        string `json:"webhook_id"`
	WebhookTimestamp string `json:"webhook_timestamp"`
	WebhookSignature string `json:"webhook_signature"`
}

// SignatureVectors reads the vectors, failing the test when they are missing or empty.
func SignatureVectors(t testing.TB) []SignatureVector {
	t.Helper()
	root, err := testinfra.RepoRoot()
	if err != nil {
		t.Fatalf("locate %s: %v", SignatureVectorsFile, err)
	}
	raw, err := os.ReadFile(filepath.Join(root, SignatureVectorsFile))
	if err != nil {
		t.Fatalf("read the signature vectors: %v", err)
	}
	var doc struct {
		Vectors []SignatureVector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decode %s: %v", SignatureVectorsFile, err)
	}
	if len(doc.Vectors) == 0 {
		t.Fatalf("%s holds no vectors", SignatureVectorsFile)
	}
	return doc.Vectors
}
