package portal_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/internal/testinfra"
	"github.com/assetsup/webhooks/portal"
)

// sizeBudget is the ceiling on the portal's weight, compressed as served.
const sizeBudget = 150 << 10

func TestAssetsFitTheBudget(t *testing.T) {
	s, err := portal.AssetSize()
	require.NoError(t, err)
	t.Logf("portal assets: %d files, %d bytes, %d bytes gzip-compressed (budget %d)", s.Files, s.Raw, s.Gzip, sizeBudget)
	assert.Less(t, s.Gzip, sizeBudget)
}

// BenchmarkAssets reports the portal's weight beside the time to compress it.
func BenchmarkAssets(b *testing.B) {
	var s portal.Size
	for b.Loop() {
		var err error
		if s, err = portal.AssetSize(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Gzip), "gzip-bytes")
	b.ReportMetric(float64(s.Raw), "raw-bytes")
}

func readAssets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	root := "assets"
	require.NoError(t, fs.WalkDir(os.DirFS(root), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(filepath.Join(root, p))
		out[p] = string(b)
		return err
	}))
	return out
}

// TestAssetsKeepTheSecurityModel checks, file by file, what the CSP and the session
// design depend on, so a change that would break them fails here rather than in a
// browser console.
func TestAssetsKeepTheSecurityModel(t *testing.T) {
	files := readAssets(t)
	index := files["index.html"]
	require.NotEmpty(t, index)

	// Inline code would be refused by the CSP (no 'unsafe-inline').
	scripts := regexp.MustCompile(`<script([^>]*)>([^<]*)</script>`).FindAllStringSubmatch(index, -1)
	require.NotEmpty(t, scripts)
	for _, m := range scripts {
		assert.Contains(t, m[1], `src="`, "no inline script")
		assert.Empty(t, strings.TrimSpace(m[2]), "no inline script")
	}
	assert.Equal(t, len(scripts), strings.Count(index, "<script"), "every script tag is a module with a src")
	assert.NotRegexp(t, `(?i)\son[a-z]+=`, index, "no inline event handler")
	assert.NotRegexp(t, `(?i)\sstyle=`, index, "no inline style")
	assert.NotContains(t, index, "<style", "no inline style sheet")

	// Everything the page loads is one of its own files: nothing from another origin.
	for _, m := range regexp.MustCompile(`(?:src|href)="([^"#]+)"`).FindAllStringSubmatch(index, -1) {
		assert.Contains(t, files, m[1], "index.html loads %s, which is not an asset", m[1])
	}
	for name, body := range files {
		if strings.HasSuffix(name, ".css") {
			assert.NotContains(t, body, "url(", "%s: no fonts or images fetched", name)
			assert.NotContains(t, body, "@import", name)
		}
		if !strings.HasSuffix(name, ".js") {
			continue
		}
		for _, m := range regexp.MustCompile(`from "([^"]+)"`).FindAllStringSubmatch(body, -1) {
			assert.Contains(t, files, strings.TrimPrefix(m[1], "./"), "%s imports %s, which is not an asset", name, m[1])
		}
		for _, banned := range []string{
			"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function",
			"localStorage", "sessionStorage", "indexedDB", "document.cookie", "postMessage", "import(",
		} {
			assert.NotContains(t, body, banned, "%s uses %s", name, banned)
		}
		if name != "lib.js" {
			assert.NotContains(t, body, "fetch(", "%s: only lib.js talks to the network", name)
		}
	}
	// The token leaves the address bar before anything else happens.
	app := files["app.js"]
	assert.Less(t, strings.Index(app, "history.replaceState"), strings.Index(app, "startSession("), "app.js clears the fragment before the exchange")
	assert.Contains(t, files["lib.js"], `credentials: "omit"`, "requests never carry cookies")
}

func TestParseFrameAncestors(t *testing.T) {
	tests := []struct {
		give    string
		want    string
		wantErr bool
	}{
		{give: "", want: "'self'"},
		{give: "  'self'  https://app.example.com ", want: "'self' https://app.example.com"},
		{give: "https://*.example.com:8443 http://localhost:3000", want: "https://*.example.com:8443 http://localhost:3000"},
		{give: "'none'", want: "'none'"},
		{give: "'none' 'self'", wantErr: true},
		{give: "*", wantErr: true},
		{give: "https:", wantErr: true},
		{give: "https://a.example; script-src *", wantErr: true},
		{give: "https://a.example/path", wantErr: true},
		{give: "'unsafe-inline'", wantErr: true},
		{give: "javascript://x", wantErr: true},
		{give: "https://a.example:port", wantErr: true},
		{give: "https://a.example,https://b.example", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := portal.ParseFrameAncestors(tt.give)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The verify panel's snippets are what receivers copy: each is run against the
// independent signature vectors, the rotation header (two signatures) and tampering.

const goHarness = `package main

import (
	"encoding/json"
	"fmt"
	"os"

	"snippet/receiver"
)

func main() {
	var vs []struct {
		Secret string ` + "`json:\"secret\"`" + `
		Body   string ` + "`json:\"body\"`" + `
		Sig    string ` + "`json:\"x_assetsup_signature\"`" + `
	}
	b, _ := os.ReadFile(os.Args[1])
	if err := json.Unmarshal(b, &vs); err != nil || len(vs) == 0 {
		fmt.Println("no vectors")
		os.Exit(1)
	}
	for i, v := range vs {
		checks := []bool{
			receiver.VerifySignature([]byte(v.Body), v.Sig, v.Secret),
			receiver.VerifySignature([]byte(v.Body), "sha256=00, "+v.Sig, v.Secret),
			!receiver.VerifySignature([]byte(v.Body+" "), v.Sig, v.Secret),
			!receiver.VerifySignature([]byte(v.Body), v.Sig, v.Secret+"x"),
			!receiver.VerifySignature([]byte(v.Body), "", v.Secret),
		}
		for j, ok := range checks {
			if !ok {
				fmt.Printf("vector %d: check %d failed\n", i, j)
				os.Exit(1)
			}
		}
	}
	fmt.Printf("ok %d\n", len(vs))
}
`

const nodeHarness = `import { readFileSync } from "node:fs";
import { verifySignature } from "./verify.mjs";

const vs = JSON.parse(readFileSync(process.argv[2], "utf8"));
if (!vs.length) { console.log("no vectors"); process.exit(1); }
vs.forEach((v, i) => {
  const body = Buffer.from(v.body, "utf8");
  const checks = [
    verifySignature(body, v.x_assetsup_signature, v.secret),
    verifySignature(body, "sha256=00, " + v.x_assetsup_signature, v.secret),
    !verifySignature(Buffer.concat([body, Buffer.from(" ")]), v.x_assetsup_signature, v.secret),
    !verifySignature(body, v.x_assetsup_signature, v.secret + "x"),
    !verifySignature(body, undefined, v.secret),
  ];
  checks.forEach((ok, j) => { if (!ok) { console.log("vector " + i + ": check " + j + " failed"); process.exit(1); } });
});
console.log("ok " + vs.length);
`

func writeVectors(t *testing.T, dir string) (string, int) {
	t.Helper()
	vs := testfixture.SignatureVectors(t)
	b, err := json.Marshal(vs)
	require.NoError(t, err)
	p := filepath.Join(dir, "vectors.json")
	require.NoError(t, os.WriteFile(p, b, 0o600))
	return p, len(vs)
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s %v: %s", name, args, out)
	return strings.TrimSpace(string(out))
}

func TestGoSnippetVerifies(t *testing.T) {
	testinfra.NeedsFullSuite(t, "the Go toolchain")
	snippet, err := os.ReadFile("assets/snippets/verify.go.txt")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "receiver"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module snippet\n\ngo 1.22\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "receiver", "verify.go"), snippet, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(goHarness), 0o600))
	vectors, n := writeVectors(t, dir)
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	assert.Equal(t, "ok "+strconv.Itoa(n), run(t, dir, goBin, "run", ".", vectors))
	run(t, dir, goBin, "vet", "./...")
}

func TestNodeSnippetVerifies(t *testing.T) {
	testinfra.NeedsFullSuite(t, "node")
	snippet, err := os.ReadFile("assets/snippets/verify.mjs.txt")
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "verify.mjs"), snippet, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "harness.mjs"), []byte(nodeHarness), 0o600))
	vectors, n := writeVectors(t, dir)
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is needed to run the Node snippet (make test installs it with the TypeScript client)")
	assert.Equal(t, "ok "+strconv.Itoa(n), run(t, dir, node, "harness.mjs", vectors))
}
