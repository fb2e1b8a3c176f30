package api_test

import (
	"os"
	"testing"

	"github.com/assetsup/webhooks/internal/testinfra"
)

// TestMain runs the package's tests on a fresh database of their own, dropped afterwards.
func TestMain(m *testing.M) { os.Exit(testinfra.Main(m)) }

// logs is every log line of the package's routers, so a test can check what was, and
// was not, logged.
var logs testinfra.LogBuffer
