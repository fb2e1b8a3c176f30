package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/internal/testfixture"
	"github.com/assetsup/webhooks/netguard"
)

// httpMethods are the operation keys of an OpenAPI path item.
var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// publicPaths are the routes served without a bearer token.
var publicPaths = []string{"/healthz", "/metrics", "/openapi.yaml", "/readyz"}

// specRouter builds the full router without a database or Temporal: enough to list
// routes and to reach everything that answers before a handler touches either.
func specRouter(t *testing.T) *gin.Engine {
	t.Helper()
	return api.NewRouter(api.Deps{
		DB:       nil,
		Box:      testfixture.Box(t),
		Policy:   netguard.NewPolicy(false, nil),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registry: prometheus.NewRegistry(),
		Config: api.Config{
			JWTSecret:          []byte("openapi-test-secret-openapi-test-secret"),
			MaxBodyBytes:       65536,
			MaxWebhooksPerUser: 10,
			TaskQueue:          "webhooks",
			TestTimeout:        5 * time.Second,
			TemporalTimeout:    2 * time.Second,
			SecretGrace:        24 * time.Hour,
			RateLimit:          10,
			RateBurst:          10,
		},
	})
}

// loadSpec parses the embedded description into plain maps with string keys.
func loadSpec(t *testing.T) map[string]any {
	t.Helper()
	var doc any
	require.NoError(t, yaml.Unmarshal(api.OpenAPISpec, &doc), "openapi.yaml is not valid YAML")
	root, ok := normalize(doc).(map[string]any)
	require.True(t, ok, "openapi.yaml must be a mapping at the top level")
	return root
}

// normalize turns map[any]any (a mapping with a non-string key) into map[string]any.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = normalize(e)
		}
		return v
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		for i, e := range v {
			v[i] = normalize(e)
		}
		return v
	default:
		return v
	}
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// operation is one (method, path) of the description.
type operation struct {
	method string // upper case
	path   string
	op     map[string]any
	item   map[string]any // the path item, for path-level parameters
}

func (o operation) String() string { return o.method + " " + o.path }

func specOperations(t *testing.T, spec map[string]any) []operation {
	t.Helper()
	paths := asMap(spec["paths"])
	require.NotEmpty(t, paths, "openapi.yaml has no paths")
	var ops []operation
	for path, rawItem := range paths {
		item := asMap(rawItem)
		require.NotNil(t, item, "path %s is not a mapping", path)
		for _, m := range httpMethods {
			if raw, ok := item[m]; ok {
				op := asMap(raw)
				require.NotNil(t, op, "%s %s is not a mapping", m, path)
				ops = append(ops, operation{method: strings.ToUpper(m), path: path, op: op, item: item})
			}
		}
	}
	slices.SortFunc(ops, func(a, b operation) int { return strings.Compare(a.String(), b.String()) })
	return ops
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// routerOperations lists the router's routes as "METHOD /path/{param}".
func routerOperations(r *gin.Engine) map[string]bool {
	out := map[string]bool{}
	for _, route := range r.Routes() {
		out[route.Method+" "+ginParam.ReplaceAllString(route.Path, "{$1}")] = true
	}
	return out
}

func TestOpenAPIRoutesMatchRouter(t *testing.T) {
	routes := routerOperations(specRouter(t))
	documented := map[string]bool{}
	for _, op := range specOperations(t, loadSpec(t)) {
		documented[op.String()] = true
	}
	var undocumented, unrouted []string
	for k := range routes {
		if !documented[k] {
			undocumented = append(undocumented, k)
		}
	}
	for k := range documented {
		if !routes[k] {
			unrouted = append(unrouted, k)
		}
	}
	slices.Sort(undocumented)
	slices.Sort(unrouted)
	assert.Empty(t, undocumented, "routes in router.go missing from openapi.yaml")
	assert.Empty(t, unrouted, "operations in openapi.yaml that router.go does not serve")
	assert.Contains(t, routes, "GET /metrics", "the router must serve /metrics when given a registry")
}

func TestOpenAPISpecIsValid(t *testing.T) {
	spec := loadSpec(t)
	version, _ := spec["openapi"].(string)
	assert.Regexp(t, `^3\.\d+\.\d+$`, version, "openapi must be a 3.x version string")
	info := asMap(spec["info"])
	require.NotNil(t, info, "info is required")
	assert.NotEmpty(t, info["title"], "info.title is required")
	assert.NotEmpty(t, info["version"], "info.version is required")

	pathParam := regexp.MustCompile(`\{([^}]+)\}`)
	statusKey := regexp.MustCompile(`^([1-5]\d\d|[1-5]XX|default)$`)
	operationIDs := map[string]string{}
	for _, o := range specOperations(t, spec) {
		t.Run(o.String(), func(t *testing.T) {
			responses := asMap(o.op["responses"])
			require.NotEmpty(t, responses, "every operation needs at least one response")
			for code, raw := range responses {
				assert.Regexp(t, statusKey, code, "response key")
				resp := resolve(t, spec, raw)
				assert.NotEmpty(t, resp["description"], "response %s needs a description", code)
			}

			id, _ := o.op["operationId"].(string)
			if assert.NotEmpty(t, id, "operationId") {
				if prev, dup := operationIDs[id]; dup {
					t.Errorf("operationId %q is used by %s too", id, prev)
				}
				operationIDs[id] = o.String()
			}

			// Every {param} of the path is declared as a required path parameter, and no
			// path parameter is declared that the path does not have.
			declared := map[string]bool{}
			for _, params := range []any{o.item["parameters"], o.op["parameters"]} {
				list, _ := params.([]any)
				for _, p := range list {
					param := resolve(t, spec, p)
					if param["in"] == "path" {
						name, _ := param["name"].(string)
						declared[name] = true
						assert.Equal(t, true, param["required"], "path parameter %s must be required", name)
					}
				}
			}
			inPath := map[string]bool{}
			for _, m := range pathParam.FindAllStringSubmatch(o.path, -1) {
				inPath[m[1]] = true
				assert.True(t, declared[m[1]], "path parameter {%s} is not declared", m[1])
			}
			for name := range declared {
				assert.True(t, inPath[name], "path parameter %s is declared but not in the path", name)
			}
		})
	}
}

func TestOpenAPIRefsResolve(t *testing.T) {
	spec := loadSpec(t)
	var refs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"]; ok {
				s, isString := ref.(string)
				if assert.True(t, isString, "$ref must be a string: %v", ref) {
					refs = append(refs, s)
				}
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(spec)
	require.NotEmpty(t, refs)
	for _, ref := range refs {
		assert.True(t, strings.HasPrefix(ref, "#/components/"), "%s: only local component refs are used", ref)
		_, err := lookup(spec, ref)
		assert.NoError(t, err, "$ref %s", ref)
	}
}

// lookup follows a local JSON pointer ("#/a/b") through the document.
func lookup(spec map[string]any, ref string) (any, error) {
	ptr, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, fmt.Errorf("not a local reference")
	}
	var cur any = spec
	for _, tok := range strings.Split(ptr, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m := asMap(cur)
		next, ok := m[tok]
		if !ok {
			return nil, fmt.Errorf("no %q", tok)
		}
		cur = next
	}
	return cur, nil
}

// resolve follows $ref chains to the object they name.
func resolve(t *testing.T, spec map[string]any, v any) map[string]any {
	t.Helper()
	m := asMap(v)
	for range 10 {
		ref, ok := m["$ref"].(string)
		if !ok {
			return m
		}
		target, err := lookup(spec, ref)
		require.NoError(t, err, "$ref %s", ref)
		m = asMap(target)
	}
	t.Fatalf("$ref chain too long")
	return nil
}

// TestOpenAPIErrorResponses checks that the errors the middleware and validators can
// produce are documented on every operation they apply to, all with the Error schema.
func TestOpenAPIErrorResponses(t *testing.T) {
	spec := loadSpec(t)
	const errorRef = "#/components/schemas/Error"
	// Error statuses whose body is deliberately not the Error shape.
	notErrorShaped := map[string]bool{"GET /readyz 503": true, "GET /metrics 500": true}
	for _, o := range specOperations(t, spec) {
		t.Run(o.String(), func(t *testing.T) {
			responses := asMap(o.op["responses"])
			for code, raw := range responses {
				n, err := strconv.Atoi(code)
				if err != nil || n < 400 || notErrorShaped[o.String()+" "+code] {
					continue
				}
				content := asMap(resolve(t, spec, raw)["content"])
				schema := asMap(asMap(content["application/json"])["schema"])
				assert.Equal(t, errorRef, schema["$ref"], "%s must answer with the Error schema", code)
			}
			public := slices.Contains(publicPaths, o.path)
			if !public {
				assert.Contains(t, responses, "401", "authenticated routes answer 401")
				assert.Contains(t, responses, "429", "rate-limited routes answer 429")
				assert.Contains(t, responses, "500")
			}
			if _, hasBody := o.op["requestBody"]; hasBody {
				assert.Contains(t, responses, "400", "a route with a body rejects bad bodies")
				assert.Contains(t, responses, "413", "a route with a body caps its size")
			}
			if strings.Contains(o.path, "{id}") {
				assert.Contains(t, responses, "404", "a webhook route answers 404 for an unknown id")
			}
			if strings.HasPrefix(o.path, "/webhooks") && assert.Contains(t, responses, "503", "a route that reads the database answers 503 while it is down") {
				headers := asMap(resolve(t, spec, responses["503"])["headers"])
				assert.Contains(t, headers, "Retry-After", "a database_unavailable 503 says when to come back")
			}
		})
	}
}

// TestOpenAPISecurityMatchesRouter checks the security the description claims against
// the router: public routes opt out of the global bearer scheme, and every other route
// refuses a request without a token.
func TestOpenAPISecurityMatchesRouter(t *testing.T) {
	spec := loadSpec(t)
	schemes := asMap(asMap(spec["components"])["securitySchemes"])
	bearer := asMap(schemes["bearerAuth"])
	assert.Equal(t, "http", bearer["type"])
	assert.Equal(t, "bearer", bearer["scheme"])
	assert.Equal(t, "JWT", bearer["bearerFormat"])
	assert.Equal(t, []any{map[string]any{"bearerAuth": []any{}}}, spec["security"], "bearer auth applies by default")

	r := specRouter(t)
	for _, o := range specOperations(t, spec) {
		t.Run(o.String(), func(t *testing.T) {
			security, overridden := o.op["security"]
			public := overridden && len(security.([]any)) == 0
			assert.Equal(t, slices.Contains(publicPaths, o.path), public, "public iff one of %v", publicPaths)
			if public {
				return
			}
			path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(o.path, "7d3c9a52-1b1e-4c3f-8f0a-0a6f1d2e3b4c")
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(o.method, path, nil))
			assert.Equal(t, http.StatusUnauthorized, rec.Code)
			assert.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
			var body struct {
				Error struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
			assert.Equal(t, "unauthorized", body.Error.Code)
		})
	}
}

func TestOpenAPIEventEnumsMatchCatalogue(t *testing.T) {
	spec := loadSpec(t)
	schemas := asMap(asMap(spec["components"])["schemas"])
	var want []any
	for _, d := range events.Catalogue() {
		want = append(want, string(d.Name))
	}
	assert.Equal(t, want, asMap(schemas["EventName"])["enum"], "EventName must list the catalogue, in order")
	assert.Equal(t, append(slices.Clone(want), string(events.Test)), asMap(schemas["DeliveredEvent"])["enum"],
		"DeliveredEvent is the catalogue plus the test event")
}

func TestOpenAPIServedByRouter(t *testing.T) {
	require.NotEmpty(t, api.OpenAPISpec)
	rec := httptest.NewRecorder()
	specRouter(t).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/yaml", rec.Header().Get("Content-Type"))
	assert.Equal(t, api.OpenAPISpec, rec.Body.Bytes(), "the served document must be the embedded bytes")
}
