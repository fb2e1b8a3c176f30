package deploy_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/assetsup/webhooks/api"
	"github.com/assetsup/webhooks/config"
)

const (
	k8sDir           = "kubernetes"
	k8sKustomization = "kustomization.yaml"
	k8sReadme        = "README.md"
	// In the directory, and deliberately not in kustomization.yaml.
	k8sSecretTemplate = "secret.template.yaml"
	k8sTemporalValues = "temporal-values.yaml"

	k8sImageRepository = "assetsup/webhooks"
	workerMain         = "../cmd/webhooks/main.go"
	temporalDynConfig  = "temporal/dynamicconfig.yaml"
	testDatabaseURL    = "postgres://webhooks:pw-from-the-secret@db:5432/webhooks?sslmode=disable"
	chartFrontendPort  = 7233 // Temporal's chart, values.yaml: server.frontend.service.port
)

// The objects that run the image, and the compose service that runs the same subcommand:
// each must get the environment compose gives that service.
var k8sWorkloads = []struct {
	kind, name string
	compose    string
	role       config.Role
	replicas   int32 // 0 for a Job
}{
	{"Deployment", "webhooks-api", "api", config.RoleAPI, 2},
	{"Deployment", "webhooks-worker", "worker", config.RoleWorker, 3},
	{"Job", "webhooks-migrate", "migrate", config.RoleMigrate, 0},
}

// What bench/README.md measured for one replica, and the least each request or limit must
// be to carry the load written in the manifests' comments.
var k8sMeasured = []struct {
	deployment    string
	peakRSS       string // the request may not be below it
	minCPURequest string
	minCPULimit   string
}{
	// Peak RSS 61–67 MB; 40 deliveries/s × 6 ms; a fan-out at 122/s × 6 ms.
	{"webhooks-worker", "67M", "240m", "732m"},
	// 44 MB at 1,000 req/s; 500 req/s × 0.26 ms; 1,000 req/s uncached × 0.81 ms.
	{"webhooks-api", "44M", "130m", "810m"},
}

// Keys of deploy/temporal/dynamicconfig.yaml the cluster's values leave out, and why.
var dynConfigLeftOut = map[string]string{
	"system.forceSearchAttributesCacheRefreshOnRead": "a persistence read per lookup: for a single node only",
}

// ---- loading ---------------------------------------------------------------------------

// k8sManifests is everything in deploy/kubernetes, decoded strictly into the Kubernetes
// API types: a misspelled field fails here, not at `kubectl apply` (or never, where the
// API server drops unknown fields).
type k8sManifests struct {
	files         []string // every file in the directory
	kustomization kustomization
	secret        corev1.Secret // the template
	configMaps    map[string]corev1.ConfigMap
	deployments   map[string]appsv1.Deployment
	jobs          map[string]batchv1.Job
	services      map[string]corev1.Service
	pdbs          map[string]policyv1.PodDisruptionBudget
	objects       []k8sObjectMeta // every object listed by the kustomization
	values        map[string]any  // temporal-values.yaml
	readme        string
	secretText    string // secret.template.yaml as written, comments included
}

type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

type k8sObjectMeta struct {
	typeMeta metav1.TypeMeta
	meta     metav1.ObjectMeta
}

func (o k8sObjectMeta) String() string { return o.typeMeta.Kind + "/" + o.meta.Name }

func readK8sFiles(t *testing.T) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(k8sDir)
	require.NoError(t, err)
	files := map[string][]byte{}
	for _, e := range entries {
		require.False(t, e.IsDir(), "%s: the manifests are one flat directory", e.Name())
		raw, err := os.ReadFile(filepath.Join(k8sDir, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = raw
	}
	return files
}

// splitYAML returns the documents of a multi-document YAML file, empty ones dropped.
func splitYAML(raw []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		var probe map[string]any
		if err := yaml.Unmarshal(doc, &probe); err != nil {
			return nil, err
		}
		if len(probe) > 0 {
			docs = append(docs, doc)
		}
	}
}

func parseK8s(files map[string][]byte) (*k8sManifests, error) {
	m := &k8sManifests{
		files:       slices.Sorted(maps.Keys(files)),
		configMaps:  map[string]corev1.ConfigMap{},
		deployments: map[string]appsv1.Deployment{},
		jobs:        map[string]batchv1.Job{},
		services:    map[string]corev1.Service{},
		pdbs:        map[string]policyv1.PodDisruptionBudget{},
		readme:      string(files[k8sReadme]),
		secretText:  string(files[k8sSecretTemplate]),
	}
	if err := yaml.UnmarshalStrict(files[k8sKustomization], &m.kustomization); err != nil {
		return nil, fmt.Errorf("%s: %w", k8sKustomization, err)
	}
	if err := yaml.Unmarshal(files[k8sTemporalValues], &m.values); err != nil {
		return nil, fmt.Errorf("%s: %w", k8sTemporalValues, err)
	}
	for _, name := range m.kustomization.Resources {
		if err := m.addFile(files, name, false); err != nil {
			return nil, err
		}
	}
	if err := m.addFile(files, k8sSecretTemplate, true); err != nil {
		return nil, err
	}
	if m.secret.Name == "" {
		return nil, fmt.Errorf("%s holds no Secret", k8sSecretTemplate)
	}
	return m, nil
}

// addFile decodes every document of one file; the Secret template alone may hold a
// Secret, and nothing else.
func (m *k8sManifests) addFile(files map[string][]byte, name string, template bool) error {
	raw, ok := files[name]
	if !ok {
		return fmt.Errorf("%s lists %s, which does not exist", k8sKustomization, name)
	}
	docs, err := splitYAML(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for _, doc := range docs {
		if err := m.add(doc, template); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// add decodes one document into its typed object.
func (m *k8sManifests) add(doc []byte, template bool) error {
	var head struct {
		metav1.TypeMeta `json:",inline"`
		Metadata        metav1.ObjectMeta `json:"metadata"`
	}
	if err := yaml.Unmarshal(doc, &head); err != nil {
		return err
	}
	obj := k8sObjectMeta{typeMeta: head.TypeMeta, meta: head.Metadata}
	strict := func(into any) error {
		if err := yaml.UnmarshalStrict(doc, into); err != nil {
			return fmt.Errorf("%s: %w", obj, err)
		}
		return nil
	}
	gvk := head.APIVersion + " " + head.Kind
	if template != (gvk == "v1 Secret") {
		return fmt.Errorf("%s: a Secret belongs in %s only, never in the applied manifests, and the template holds nothing else", obj, k8sSecretTemplate)
	}
	switch gvk {
	case "v1 ConfigMap":
		var o corev1.ConfigMap
		if err := strict(&o); err != nil {
			return err
		}
		m.configMaps[o.Name] = o
	case "v1 Secret":
		return strict(&m.secret)
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		if err := strict(&o); err != nil {
			return err
		}
		m.deployments[o.Name] = o
	case "batch/v1 Job":
		var o batchv1.Job
		if err := strict(&o); err != nil {
			return err
		}
		m.jobs[o.Name] = o
	case "v1 Service":
		var o corev1.Service
		if err := strict(&o); err != nil {
			return err
		}
		m.services[o.Name] = o
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if err := strict(&o); err != nil {
			return err
		}
		m.pdbs[o.Name] = o
	default:
		return fmt.Errorf("%s: unexpected kind %q", obj, gvk)
	}
	m.objects = append(m.objects, obj)
	return nil
}

// workload is one object of k8sWorkloads with its pod template.
type workload struct {
	name     string
	compose  string
	role     config.Role
	replicas int32
	labels   map[string]string // the pod template's
	pod      corev1.PodSpec
	kind     string
}

// workloads are the objects of k8sWorkloads found; what is missing or malformed is reported
// by checkWorkloads only, so the other checks do not repeat it.
func (m *k8sManifests) workloads() ([]workload, problems) {
	var (
		out []workload
		p   problems
	)
	for _, w := range k8sWorkloads {
		wl := workload{name: w.name, compose: w.compose, role: w.role, replicas: w.replicas, kind: w.kind}
		switch w.kind {
		case "Deployment":
			d, ok := m.deployments[w.name]
			if !ok {
				p.addf("Deployment %s is missing", w.name)
				continue
			}
			wl.labels, wl.pod = d.Spec.Template.Labels, d.Spec.Template.Spec
		case "Job":
			j, ok := m.jobs[w.name]
			if !ok {
				p.addf("Job %s is missing", w.name)
				continue
			}
			wl.labels, wl.pod = j.Spec.Template.Labels, j.Spec.Template.Spec
		}
		if len(wl.pod.Containers) != 1 {
			p.addf("%s: want exactly one container, got %d", w.name, len(wl.pod.Containers))
			continue
		}
		out = append(out, wl)
	}
	return out, p
}

func (m *k8sManifests) mustWorkloads() []workload {
	ws, _ := m.workloads()
	return ws
}

func (w workload) container() corev1.Container { return w.pod.Containers[0] }

// envEntry is where one variable of a container comes from.
type envEntry struct {
	value     string // a literal, or the ConfigMap's value
	configMap string // set when it comes from a ConfigMap
	secret    *corev1.SecretKeySelector
}

// env resolves a container's environment as the kubelet would, with what the kubelet
// would refuse or what makes the result ambiguous (reported by checkWorkloads).
func (m *k8sManifests) env(w workload) (map[string]envEntry, problems) {
	var p problems
	c := w.container()
	out := map[string]envEntry{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			p.addf("%s: envFrom takes whole ConfigMaps only, without a prefix", w.name)
			continue
		}
		cm, ok := m.configMaps[from.ConfigMapRef.Name]
		if !ok {
			p.addf("%s: envFrom names ConfigMap %s, which is not in the manifests", w.name, from.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			if prev, dup := out[k]; dup {
				p.addf("%s: %s is set by both ConfigMaps %s and %s", w.name, k, prev.configMap, cm.Name)
			}
			out[k] = envEntry{value: v, configMap: cm.Name}
		}
	}
	for _, e := range c.Env {
		if prev, dup := out[e.Name]; dup {
			p.addf("%s: %s is set twice (env and ConfigMap %q): one place only", w.name, e.Name, prev.configMap)
		}
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = envEntry{value: e.Value}
		case e.ValueFrom.SecretKeyRef != nil:
			out[e.Name] = envEntry{secret: e.ValueFrom.SecretKeyRef}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := m.configMaps[ref.Name].Data[ref.Key]
			if !ok {
				p.addf("%s: %s reads %s from ConfigMap %s, which has no such key", w.name, e.Name, ref.Key, ref.Name)
			}
			out[e.Name] = envEntry{value: v, configMap: ref.Name}
		default:
			p.addf("%s: %s comes from neither a value, a ConfigMap nor the Secret", w.name, e.Name)
		}
	}
	return out, p
}

// literalEnv is the environment the container would see, with test values for the Secret.
func (m *k8sManifests) literalEnv(w workload) map[string]string {
	testSecrets := map[string]string{
		"JWT_SECRET": testJWTSecret, "WEBHOOK_SECRET_KEY": testSecretKey,
		"DATABASE_URL": testDatabaseURL, "WEBHOOK_SECRET_OLD_KEYS": "",
	}
	out := map[string]string{}
	env, _ := m.env(w)
	for k, e := range env {
		if e.secret != nil {
			out[k] = testSecrets[e.secret.Key]
			continue
		}
		out[k] = e.value
	}
	return out
}

// ---- what the rest of the repository says ------------------------------------------------

// k8sFacts are what the manifests are checked against: the config package, compose, the
// Dockerfile and the code that serves the probed paths.
type k8sFacts struct {
	envNames     map[string]bool
	defaults     map[string]string
	secretVars   map[string]bool              // never in a ConfigMap or a literal
	compose      map[string]map[string]string // service → resolved environment
	composeCmd   map[string][]string
	entrypoint   []string
	exposed      map[int32]bool
	imageUser    int64
	served       map[config.Role]listener
	apiRouter    http.Handler
	dynConfig    map[string]any
	rpcTimeout   time.Duration // config default, in case a pod does not set it
	dialTimeout  time.Duration
	shutdownTime time.Duration
}

// listener is the one HTTP server a role runs: the variable naming its address and the
// paths it serves.
type listener struct {
	addrVar string
	paths   map[string]bool
}

func loadK8sFacts(t *testing.T) *k8sFacts {
	t.Helper()
	f := &k8sFacts{
		envNames:   map[string]bool{},
		defaults:   configDefaults(t),
		secretVars: map[string]bool{"DATABASE_URL": true}, // its password
		compose:    map[string]map[string]string{},
		composeCmd: map[string][]string{},
		exposed:    map[int32]bool{},
	}
	for _, n := range config.EnvNames() {
		f.envNames[n] = true
	}
	// The config package marks what it treats as secret: `unset` clears the variable from
	// the process environment once read.
	for field := range reflect.TypeFor[config.Config]().Fields() {
		name, opts, _ := strings.Cut(field.Tag.Get("env"), ",")
		if slices.Contains(strings.Split(opts, ","), "unset") {
			f.secretVars[name] = true
		}
	}
	require.Contains(t, f.secretVars, "JWT_SECRET")
	require.Contains(t, f.secretVars, "WEBHOOK_SECRET_KEY")

	p := mustLoadCompose(t)
	for _, name := range appServices {
		s := service(t, p, name)
		f.compose[name] = map[string]string{}
		for k, v := range environment(s) {
			require.NotNil(t, v)
			f.compose[name][k] = *v
		}
		f.composeCmd[name] = s.Command
	}

	final := readDockerfile(t, dockerfile)
	last := final[len(final)-1]
	entry := last.find("ENTRYPOINT")
	require.Len(t, entry, 1)
	require.NoError(t, json.Unmarshal([]byte(entry[0]), &f.entrypoint), "ENTRYPOINT in exec form")
	for _, e := range last.find("EXPOSE") {
		for _, port := range strings.Fields(e) {
			n, err := strconv.ParseInt(port, 10, 32)
			require.NoError(t, err)
			f.exposed[int32(n)] = true
		}
	}
	users := last.find("USER")
	require.NotEmpty(t, users)
	uid, _, _ := strings.Cut(users[len(users)-1], ":")
	var err error
	f.imageUser, err = strconv.ParseInt(uid, 10, 64)
	require.NoError(t, err, "USER is numeric, so runAsNonRoot can verify it")

	router := api.NewRouter(api.Deps{
		Logger:   slog.New(slog.DiscardHandler),
		Registry: prometheus.NewRegistry(),
		Config:   api.Config{MaxBodyBytes: 1 << 16, RateLimit: 1, RateBurst: 1},
	})
	f.apiRouter = router
	apiPaths := map[string]bool{}
	for _, r := range router.Routes() {
		if r.Method == http.MethodGet {
			apiPaths[r.Path] = true
		}
	}
	f.served = map[config.Role]listener{
		config.RoleAPI:    {addrVar: "HTTP_ADDR", paths: apiPaths},
		config.RoleWorker: {addrVar: "METRICS_ADDR", paths: workerServedPaths(t)},
	}

	raw, err := os.ReadFile(temporalDynConfig)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, &f.dynConfig))

	for v, into := range map[string]*time.Duration{
		"TEMPORAL_RPC_TIMEOUT": &f.rpcTimeout, "TEMPORAL_DIAL_TIMEOUT": &f.dialTimeout, "SHUTDOWN_TIMEOUT": &f.shutdownTime,
	} {
		*into, err = time.ParseDuration(f.defaults[v])
		require.NoError(t, err, v)
	}
	return f
}

// workerServedPaths reads, from cmd/webhooks/main.go, the paths runWorker's metrics
// server handles: the worker's only listener. (package main cannot be imported.)
func workerServedPaths(t *testing.T) map[string]bool {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), workerMain, nil, 0)
	require.NoError(t, err)
	paths := map[string]bool{}
	var found bool
	for _, d := range file.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "runWorker" {
			continue
		}
		found = true
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				path, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				paths[path] = true
			}
			return true
		})
	}
	require.True(t, found, "runWorker in %s", workerMain)
	require.NotEmpty(t, paths, "runWorker registers no HTTP path")
	return paths
}

// ---- the checks ----------------------------------------------------------------------------

type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

type k8sCheck func(p *problems, m *k8sManifests, f *k8sFacts)

var k8sChecks = []struct {
	name  string
	check k8sCheck
}{
	{"workloads and their environment resolve", checkWorkloads},
	{"kustomization lists every manifest", checkKustomization},
	{"namespace-agnostic", checkNoNamespace},
	{"image and subcommand", checkImageAndArgs},
	{"env vars are config.Config's", checkEnvNames},
	{"secrets come from the Secret", checkSecrets},
	{"secret template holds placeholders only", checkSecretTemplate},
	{"same settings as docker-compose.yml", checkComposeParity},
	{"environment passes config validation", checkConfigValidates},
	{"listen addresses and ports", checkPorts},
	{"probes hit served paths", checkProbes},
	{"graceful shutdown fits the grace period", checkShutdown},
	{"disruption budgets", checkPDBs},
	{"Service selects the API", checkService},
	{"security context", checkSecurity},
	{"resources from the measurements", checkResources},
	{"prometheus scrape", checkPrometheus},
	{"Temporal from its Helm chart", checkTemporal},
	{"Temporal dynamic config matches compose's", checkTemporalDynamicConfig},
}

func checkWorkloads(p *problems, m *k8sManifests, _ *k8sFacts) {
	ws, issues := m.workloads()
	*p = append(*p, issues...)
	for _, w := range ws {
		_, issues := m.env(w)
		*p = append(*p, issues...)
	}
}

func runK8sChecks(m *k8sManifests, f *k8sFacts) problems {
	var p problems
	for _, c := range k8sChecks {
		c.check(&p, m, f)
	}
	return p
}

func checkKustomization(p *problems, m *k8sManifests, _ *k8sFacts) {
	k := m.kustomization
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		p.addf("%s: not a Kustomization (%s %s)", k8sKustomization, k.APIVersion, k.Kind)
	}
	var want []string
	for _, f := range m.files {
		if strings.HasSuffix(f, ".yaml") && !slices.Contains([]string{k8sKustomization, k8sSecretTemplate, k8sTemporalValues}, f) {
			want = append(want, f)
		}
	}
	if got := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(got, want) {
		p.addf("%s resources %v, want every manifest of the directory %v", k8sKustomization, got, want)
	}
	for _, r := range k.Resources {
		if r == k8sSecretTemplate || r == k8sTemporalValues {
			p.addf("%s must not list %s", k8sKustomization, r)
		}
	}
}

func checkNoNamespace(p *problems, m *k8sManifests, _ *k8sFacts) {
	for _, o := range append(slices.Clone(m.objects), k8sObjectMeta{typeMeta: m.secret.TypeMeta, meta: m.secret.ObjectMeta}) {
		if o.meta.Namespace != "" {
			p.addf("%s sets namespace %q: leave it to kubectl or the overlay", o, o.meta.Namespace)
		}
	}
}

func checkImageAndArgs(p *problems, m *k8sManifests, f *k8sFacts) {
	images := map[string]bool{}
	for _, w := range m.mustWorkloads() {
		c := w.container()
		images[c.Image] = true
		repo, tag, _ := strings.Cut(c.Image, ":")
		if repo != k8sImageRepository || tag == "" || tag == "latest" {
			p.addf("%s: image %q: want %s with a pinned tag (overlays rename it)", w.name, c.Image, k8sImageRepository)
		}
		if len(c.Command) > 0 {
			p.addf("%s: command %v replaces the image's ENTRYPOINT %v: use args", w.name, c.Command, f.entrypoint)
		}
		if !slices.Equal(c.Args, f.composeCmd[w.compose]) {
			p.addf("%s: args %v, want the subcommand compose runs %v", w.name, c.Args, f.composeCmd[w.compose])
		}
		if w.kind == "Deployment" {
			if got := m.deployments[w.name].Spec.Replicas; got == nil || *got != w.replicas {
				p.addf("%s: want %d replicas", w.name, w.replicas)
			}
		}
	}
	if !slices.Equal(f.entrypoint, []string{"/webhooks"}) {
		p.addf("the Dockerfile's ENTRYPOINT %v is no longer the binary the args are given to", f.entrypoint)
	}
	if len(images) > 1 {
		p.addf("the workloads run different images %v: one release, one image", slices.Sorted(maps.Keys(images)))
	}
}

func checkEnvNames(p *problems, m *k8sManifests, f *k8sFacts) {
	where := map[string][]string{}
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			where[k] = append(where[k], "ConfigMap "+cm.Name)
		}
		if len(cm.BinaryData) > 0 {
			p.addf("ConfigMap %s: binaryData is not read", cm.Name)
		}
	}
	for k := range m.secret.StringData {
		where[k] = append(where[k], "Secret "+m.secret.Name)
	}
	for k := range m.secret.Data {
		where[k] = append(where[k], "Secret "+m.secret.Name)
	}
	for _, w := range m.mustWorkloads() {
		for _, e := range w.container().Env {
			where[e.Name] = append(where[e.Name], w.name)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(where)) {
		if !f.envNames[k] {
			p.addf("%s (in %s) is not read by config.Config: a typo, or a setting that no longer exists", k, strings.Join(where[k], ", "))
		}
	}
}

func checkSecrets(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, cm := range m.configMaps {
		for k, v := range cm.Data {
			if f.secretVars[k] {
				p.addf("ConfigMap %s holds %s: secrets belong in the Secret %s", cm.Name, k, m.secret.Name)
			}
			if hasURLPassword(v) {
				p.addf("ConfigMap %s: %s carries a password in a URL", cm.Name, k)
			}
		}
	}
	for _, w := range m.mustWorkloads() {
		env, _ := m.env(w)
		for k, e := range env {
			switch {
			case f.secretVars[k] && e.secret == nil:
				p.addf("%s: %s must come from the Secret %s (secretKeyRef), not a value", w.name, k, m.secret.Name)
			case e.secret != nil:
				if e.secret.Name != m.secret.Name || e.secret.Key != k {
					p.addf("%s: %s reads %s/%s: want Secret %s, key %s", w.name, k, e.secret.Name, e.secret.Key, m.secret.Name, k)
				}
				if _, ok := m.secret.StringData[e.secret.Key]; !ok {
					p.addf("%s: %s reads key %s, which the Secret template does not have", w.name, k, e.secret.Key)
				}
				// Required: what compose requires a non-empty value for.
				if optional := e.secret.Optional != nil && *e.secret.Optional; optional && f.compose[w.compose][k] != "" {
					p.addf("%s: %s is required by the service: the secretKeyRef must not be optional", w.name, k)
				}
			case hasURLPassword(e.value):
				p.addf("%s: %s carries a password in a URL", w.name, k)
			}
		}
		for k := range f.compose[w.compose] {
			if _, ok := env[k]; f.secretVars[k] && !ok {
				p.addf("%s: %s is not set; compose gives it to %s", w.name, k, w.compose)
			}
		}
	}
}

func hasURLPassword(v string) bool {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// placeholder is how the template spells "put the real value here": it must never be a
// value the service would accept.
var placeholder = regexp.MustCompile(`^<[^<>]+>$`)

func checkSecretTemplate(p *problems, m *k8sManifests, f *k8sFacts) {
	s := m.secret
	if s.Name == "" || s.Kind != "Secret" {
		p.addf("%s holds no Secret", k8sSecretTemplate)
		return
	}
	if len(s.Data) > 0 {
		p.addf("%s: data hides values in base64: use stringData with placeholders", k8sSecretTemplate)
	}
	// A valid API environment, into which each placeholder is put in turn.
	valid := map[string]string{}
	for k, v := range f.compose["api"] {
		valid[k] = v
	}
	valid["DATABASE_URL"] = testDatabaseURL
	for _, k := range slices.Sorted(maps.Keys(s.StringData)) {
		v := s.StringData[k]
		if !f.secretVars[k] {
			p.addf("%s: %s is not a secret setting: it belongs in a ConfigMap", k8sSecretTemplate, k)
		}
		if v == "" {
			continue
		}
		if !placeholder.MatchString(v) {
			p.addf("%s: %s looks like a real value; want a <placeholder> or nothing", k8sSecretTemplate, k)
			continue
		}
		env := maps.Clone(valid)
		env[k] = v
		if _, err := config.LoadFrom(config.RoleAPI, env); err == nil || !strings.Contains(err.Error(), k) {
			p.addf("%s: the placeholder of %s must fail start-up naming it, got %v", k8sSecretTemplate, k, err)
		}
	}
	// The command that creates the real Secret, in the template and in the README.
	for doc, text := range map[string]string{k8sSecretTemplate: m.secretText, k8sReadme: m.readme} {
		cmd := shellCommand(text, "kubectl create secret generic "+s.Name)
		if cmd == "" {
			p.addf("%s: no `kubectl create secret generic %s` command", doc, s.Name)
			continue
		}
		for k := range s.StringData {
			if !strings.Contains(cmd, "--from-literal="+k+"=") {
				p.addf("%s: the kubectl create secret command does not set %s", doc, k)
			}
		}
	}
}

// shellCommand finds the command starting with prefix in text (a README or YAML comments),
// its continuation lines joined.
func shellCommand(text, prefix string) string {
	var cmd string
	in := false
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if !in && !strings.HasPrefix(line, prefix) {
			continue
		}
		in = true
		cont, more := strings.CutSuffix(line, `\`)
		cmd += cont + " "
		if !more {
			return cmd
		}
	}
	return cmd
}

// The deliberate differences from compose: the address of Temporal (checked against the
// Helm chart by checkTemporal) and the secrets (checked by checkSecrets).
func checkComposeParity(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		env, _ := m.env(w)
		want := f.compose[w.compose]
		for _, k := range slices.Sorted(maps.Keys(env)) {
			e := env[k]
			cv, ok := want[k]
			switch {
			case !ok:
				p.addf("%s: %s is set here but not in docker-compose.yml's %s", w.name, k, w.compose)
			case e.secret != nil || k == "TEMPORAL_ADDRESS":
			case e.value != cv:
				p.addf("%s: %s=%q differs from docker-compose.yml's %q", w.name, k, e.value, cv)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if _, ok := env[k]; !ok {
				p.addf("%s: %s is not set here; docker-compose.yml gives it to %s", w.name, k, w.compose)
			}
		}
	}
}

func checkConfigValidates(p *problems, m *k8sManifests, _ *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		if _, err := config.LoadFrom(w.role, m.literalEnv(w)); err != nil {
			p.addf("%s: the pod's environment fails start-up: %v", w.name, err)
		}
	}
}

// containerPort resolves a probe's or Service's port (a number or a port name).
func containerPort(c corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// listenAddr is the role's listener and its address from the pod's environment (the
// config default when the pod does not set it).
func (m *k8sManifests) listenAddr(w workload, f *k8sFacts) (host string, port int32, l listener, ok bool) {
	l, ok = f.served[w.role]
	if !ok {
		return "", 0, l, false
	}
	addr, set := m.literalEnv(w)[l.addrVar]
	if !set {
		addr = f.defaults[l.addrVar]
	}
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0, l, true
	}
	n, _ := strconv.ParseInt(ps, 10, 32)
	return host, int32(n), l, true
}

func checkPorts(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		c := w.container()
		for _, cp := range c.Ports {
			if !f.exposed[cp.ContainerPort] {
				p.addf("%s: containerPort %d is not EXPOSEd by the Dockerfile", w.name, cp.ContainerPort)
			}
		}
		host, port, l, ok := m.listenAddr(w, f)
		if !ok {
			if len(c.Ports) > 0 {
				p.addf("%s: declares ports but runs no listener", w.name)
			}
			continue
		}
		if host != "0.0.0.0" {
			p.addf("%s: %s must listen on 0.0.0.0:<port>, or the kubelet and other pods cannot reach it", w.name, l.addrVar)
		}
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == port }) {
			p.addf("%s: listens on %d, which is not a containerPort", w.name, port)
		}
	}
}

func checkProbes(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		c := w.container()
		if w.kind != "Deployment" {
			if c.ReadinessProbe != nil || c.LivenessProbe != nil || c.StartupProbe != nil {
				p.addf("%s: a Job needs no probes", w.name)
			}
			continue
		}
		_, port, l, _ := m.listenAddr(w, f)
		env := m.literalEnv(w)
		probes := []struct {
			kind  string
			probe *corev1.Probe
		}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}, {"startup", c.StartupProbe}}
		for _, pr := range probes {
			if pr.probe == nil {
				if pr.kind != "startup" {
					p.addf("%s: no %s probe", w.name, pr.kind)
				}
				continue
			}
			if pr.probe.Exec != nil {
				p.addf("%s: %s probe uses exec, but the distroless image has no shell or tools", w.name, pr.kind)
			}
			g := pr.probe.HTTPGet
			if g == nil {
				p.addf("%s: %s probe is not httpGet", w.name, pr.kind)
				continue
			}
			got, ok := containerPort(c, g.Port)
			if !ok {
				p.addf("%s: %s probe port %s is not a containerPort", w.name, pr.kind, g.Port.String())
			} else if got != port {
				p.addf("%s: %s probe port %d is not the listener's (%s, port %d)", w.name, pr.kind, got, l.addrVar, port)
			}
			if !l.paths[g.Path] {
				p.addf("%s: %s probe path %s is not served on %s (serves %v)", w.name, pr.kind, g.Path, l.addrVar, slices.Sorted(maps.Keys(l.paths)))
			}
			if g.Path == "/readyz" {
				rpc := durationEnv(env, "TEMPORAL_RPC_TIMEOUT", f.rpcTimeout)
				if time.Duration(pr.probe.TimeoutSeconds)*time.Second <= rpc {
					p.addf("%s: %s probe timeoutSeconds %d: /readyz may take TEMPORAL_RPC_TIMEOUT (%s) to answer", w.name, pr.kind, pr.probe.TimeoutSeconds, rpc)
				}
			}
		}
		// Liveness must not depend on the database or Temporal: served with neither, it answers 200.
		if w.role == config.RoleAPI && c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil {
			rec := httptest.NewRecorder()
			f.apiRouter.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, c.LivenessProbe.HTTPGet.Path, nil))
			if rec.Code != http.StatusOK {
				p.addf("%s: liveness path %s answers %d without a database or Temporal: an outage would restart every pod", w.name, c.LivenessProbe.HTTPGet.Path, rec.Code)
			}
		}
		if w.role == config.RoleWorker {
			dial := durationEnv(env, "TEMPORAL_DIAL_TIMEOUT", f.dialTimeout)
			s := c.StartupProbe
			if s == nil || time.Duration(s.PeriodSeconds*s.FailureThreshold)*time.Second <= dial {
				p.addf("%s: the startup probe must allow more than TEMPORAL_DIAL_TIMEOUT (%s): the listener opens after the dial", w.name, dial)
			}
		}
	}
}

func durationEnv(env map[string]string, name string, def time.Duration) time.Duration {
	if v, ok := env[name]; ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func checkShutdown(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		if w.kind != "Deployment" {
			continue
		}
		c := w.container()
		var sleep int64
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			switch h := c.Lifecycle.PreStop; {
			case h.Sleep != nil:
				sleep = h.Sleep.Seconds
			case h.Exec != nil:
				p.addf("%s: preStop exec cannot run: the distroless image has no shell or sleep; use the sleep action", w.name)
			}
		}
		if m.servedByService(w) && sleep < 1 {
			p.addf("%s: a Service routes to it, so it needs a preStop sleep while its endpoint is removed", w.name)
		}
		shutdown := durationEnv(m.literalEnv(w), "SHUTDOWN_TIMEOUT", f.shutdownTime)
		grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
		if w.pod.TerminationGracePeriodSeconds != nil {
			grace = *w.pod.TerminationGracePeriodSeconds
		}
		if need := time.Duration(sleep)*time.Second + shutdown; time.Duration(grace)*time.Second <= need {
			p.addf("%s: terminationGracePeriodSeconds %d must exceed preStop (%ds) + SHUTDOWN_TIMEOUT (%s)", w.name, grace, sleep, shutdown)
		}
	}
}

func (m *k8sManifests) servedByService(w workload) bool {
	for _, s := range m.services {
		if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.labels)) {
			return true
		}
	}
	return false
}

func selects(p *problems, what string, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		p.addf("%s: %v", what, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

func checkPDBs(p *problems, m *k8sManifests, _ *k8sFacts) {
	ws := m.mustWorkloads()
	for _, w := range ws {
		if w.kind != "Deployment" {
			continue
		}
		d := m.deployments[w.name]
		if !selects(p, "Deployment "+w.name, d.Spec.Selector, w.labels) {
			p.addf("Deployment %s: its selector does not match its own pod template", w.name)
		}
		var budgets []string
		for _, b := range m.pdbs {
			if !selects(p, "PodDisruptionBudget "+b.Name, b.Spec.Selector, w.labels) {
				continue
			}
			budgets = append(budgets, b.Name)
			if allowed := pdbAllows(p, b, w.replicas); allowed < 1 {
				p.addf("PodDisruptionBudget %s allows no disruption at %d replicas: node drains would block", b.Name, w.replicas)
			}
		}
		if len(budgets) != 1 {
			p.addf("Deployment %s: want one PodDisruptionBudget selecting its pods, got %v", w.name, budgets)
		}
	}
	for _, b := range m.pdbs {
		var matched []string
		for _, w := range ws {
			if selects(p, "PodDisruptionBudget "+b.Name, b.Spec.Selector, w.labels) {
				matched = append(matched, w.name)
			}
		}
		if len(matched) != 1 {
			p.addf("PodDisruptionBudget %s selects %v: want exactly one Deployment's pods", b.Name, matched)
		}
	}
}

// pdbAllows is how many pods of replicas the budget lets go at once.
func pdbAllows(p *problems, b policyv1.PodDisruptionBudget, replicas int32) int32 {
	switch {
	case b.Spec.MaxUnavailable != nil && b.Spec.MinAvailable == nil:
		n, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MaxUnavailable, int(replicas), true)
		if err != nil {
			p.addf("PodDisruptionBudget %s: %v", b.Name, err)
		}
		return int32(n)
	case b.Spec.MinAvailable != nil && b.Spec.MaxUnavailable == nil:
		n, err := intstr.GetScaledValueFromIntOrPercent(b.Spec.MinAvailable, int(replicas), true)
		if err != nil {
			p.addf("PodDisruptionBudget %s: %v", b.Name, err)
		}
		return replicas - int32(n)
	default:
		p.addf("PodDisruptionBudget %s: set exactly one of minAvailable and maxUnavailable", b.Name)
		return 0
	}
}

func checkService(p *problems, m *k8sManifests, f *k8sFacts) {
	s, ok := m.services["webhooks-api"]
	if !ok {
		p.addf("Service webhooks-api is missing")
		return
	}
	if len(m.services) != 1 {
		p.addf("want only the API's Service, got %v", slices.Sorted(maps.Keys(m.services)))
	}
	for _, w := range m.mustWorkloads() {
		selected := len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.labels))
		if selected != (w.role == config.RoleAPI) {
			p.addf("Service %s selects %s: %v; want the API's pods only", s.Name, w.name, selected)
		}
		if w.role != config.RoleAPI {
			continue
		}
		_, listen, _, _ := m.listenAddr(w, f)
		for _, sp := range s.Spec.Ports {
			if got, ok := containerPort(w.container(), sp.TargetPort); !ok || got != listen {
				p.addf("Service %s port %s: targetPort %s is not the API's listener (%d)", s.Name, sp.Name, sp.TargetPort.String(), listen)
			}
		}
	}
}

func checkSecurity(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		pod, c := w.pod.SecurityContext, w.container()
		if pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot {
			p.addf("%s: the pod must set runAsNonRoot", w.name)
		}
		if pod == nil || pod.RunAsUser == nil || *pod.RunAsUser != f.imageUser {
			p.addf("%s: runAsUser must be the image's USER %d", w.name, f.imageUser)
		}
		if pod == nil || pod.SeccompProfile == nil || pod.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			p.addf("%s: the pod must use the RuntimeDefault seccomp profile", w.name)
		}
		if w.pod.AutomountServiceAccountToken == nil || *w.pod.AutomountServiceAccountToken {
			p.addf("%s: the service never calls the Kubernetes API: automountServiceAccountToken: false", w.name)
		}
		sc := c.SecurityContext
		if sc == nil {
			p.addf("%s: the container has no securityContext", w.name)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.addf("%s: readOnlyRootFilesystem must be true", w.name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.addf("%s: allowPrivilegeEscalation must be false", w.name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			p.addf("%s: privileged", w.name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			p.addf("%s: capabilities must drop ALL and add none", w.name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser != f.imageUser {
			p.addf("%s: the container's runAsUser must be the image's USER %d", w.name, f.imageUser)
		}
	}
}

func checkResources(p *problems, m *k8sManifests, _ *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		r := w.container().Resources
		for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := r.Requests[name]
			limit, hasLimit := r.Limits[name]
			if !hasReq || !hasLimit {
				p.addf("%s: set both a request and a limit for %s", w.name, name)
				continue
			}
			if limit.Cmp(req) < 0 {
				p.addf("%s: %s limit %s is below its request %s", w.name, name, limit.String(), req.String())
			}
		}
	}
	for _, mm := range k8sMeasured {
		d, ok := m.deployments[mm.deployment]
		if !ok || len(d.Spec.Template.Spec.Containers) != 1 {
			continue
		}
		r := d.Spec.Template.Spec.Containers[0].Resources
		for _, c := range []struct {
			what string
			got  resource.Quantity
			min  string
		}{
			{"requests.memory (measured peak RSS)", r.Requests[corev1.ResourceMemory], mm.peakRSS},
			{"requests.cpu (measured CPU per unit × the load per replica)", r.Requests[corev1.ResourceCPU], mm.minCPURequest},
			{"limits.cpu (measured CPU per unit × the peak load)", r.Limits[corev1.ResourceCPU], mm.minCPULimit},
		} {
			if c.got.Cmp(resource.MustParse(c.min)) < 0 {
				p.addf("%s: %s %s is below the measured %s", mm.deployment, c.what, c.got.String(), c.min)
			}
		}
	}
}

func checkPrometheus(p *problems, m *k8sManifests, f *k8sFacts) {
	for _, w := range m.mustWorkloads() {
		if w.kind != "Deployment" {
			continue
		}
		ann := m.deployments[w.name].Spec.Template.Annotations
		if ann["prometheus.io/scrape"] != "true" {
			if w.role == config.RoleWorker {
				p.addf("%s: the worker's pods need prometheus.io/scrape: \"true\"", w.name)
			}
			continue
		}
		_, port, l, _ := m.listenAddr(w, f)
		if ann["prometheus.io/port"] != strconv.Itoa(int(port)) {
			p.addf("%s: prometheus.io/port %q is not the listener's port %d", w.name, ann["prometheus.io/port"], port)
		}
		path := cmp.Or(ann["prometheus.io/path"], "/metrics")
		if !l.paths[path] {
			p.addf("%s: prometheus.io/path %s is not served on %s", w.name, path, l.addrVar)
		}
	}
}

// helmInstall matches `helm install <release> <repo>/<chart> ...` in the README.
var helmInstall = regexp.MustCompile(`helm install (\S+) (\S+)/(\S+)([^\n]*)`)

func checkTemporal(p *problems, m *k8sManifests, _ *k8sFacts) {
	shared := m.configMaps["webhooks-config"].Data
	match := helmInstall.FindStringSubmatch(m.readme)
	if match == nil {
		p.addf("%s: no `helm install <release> <repo>/temporal` command", k8sReadme)
		return
	}
	release, chart, rest := match[1], match[3], match[4]
	if chart != "temporal" {
		p.addf("%s: installs chart %q, want Temporal's chart \"temporal\"", k8sReadme, chart)
	}
	if !strings.Contains(rest, k8sTemporalValues) {
		p.addf("%s: the helm install does not pass -f %s", k8sReadme, k8sTemporalValues)
	}
	// The chart's names (templates/_helpers.tpl): fullname is the release name when it
	// contains the chart's, else release-chart, unless fullnameOverride; the frontend
	// Service is <fullname>-frontend.
	fullname := release
	if !strings.Contains(release, chart) {
		fullname = release + "-" + chart
	}
	if o, _ := lookup(m.values, "fullnameOverride").(string); o != "" {
		fullname = o
	}
	port := chartFrontendPort
	if v, ok := lookup(m.values, "server", "frontend", "service", "port").(float64); ok {
		port = int(v)
	}
	if want := fmt.Sprintf("%s-frontend:%d", fullname, port); shared["TEMPORAL_ADDRESS"] != want {
		p.addf("TEMPORAL_ADDRESS %q is not the chart's frontend Service for release %q: want %s", shared["TEMPORAL_ADDRESS"], release, want)
	}

	for _, store := range []string{"default", "visibility"} {
		if plugin := lookup(m.values, "server", "config", "persistence", "datastores", store, "sql", "pluginName"); plugin != "postgres12" {
			p.addf("%s: the %s store must be PostgreSQL (sql.pluginName postgres12), got %v", k8sTemporalValues, store, plugin)
		}
	}
	created := false
	if lookup(m.values, "server", "config", "namespaces", "create") == true {
		list, _ := lookup(m.values, "server", "config", "namespaces", "namespace").([]any)
		for _, n := range list {
			created = created || lookup(n, "name") == shared["TEMPORAL_NAMESPACE"]
		}
	}
	if !created {
		p.addf("TEMPORAL_NAMESPACE %q is not created by %s", shared["TEMPORAL_NAMESPACE"], k8sTemporalValues)
	}
}

func checkTemporalDynamicConfig(p *problems, m *k8sManifests, f *k8sFacts) {
	dc, _ := lookup(m.values, "server", "dynamicConfig").(map[string]any)
	for _, k := range slices.Sorted(maps.Keys(dc)) {
		want, ok := f.dynConfig[k]
		if !ok {
			p.addf("%s: dynamicConfig %s is not in %s: one dynamic config for every Temporal we run", k8sTemporalValues, k, temporalDynConfig)
			continue
		}
		if !reflect.DeepEqual(dc[k], want) {
			p.addf("%s: dynamicConfig %s = %v differs from %s's %v", k8sTemporalValues, k, dc[k], temporalDynConfig, want)
		}
	}
	for k := range f.dynConfig {
		if _, ok := dc[k]; !ok && dynConfigLeftOut[k] == "" {
			p.addf("%s: dynamicConfig lacks %s from %s (or say why in dynConfigLeftOut)", k8sTemporalValues, k, temporalDynConfig)
		}
	}
}

// lookup walks a decoded YAML value by map keys; nil when a step is missing.
func lookup(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// ---- the tests -----------------------------------------------------------------------------

func TestKubernetesManifests(t *testing.T) {
	m, err := parseK8s(readK8sFiles(t))
	require.NoError(t, err)
	f := loadK8sFacts(t)
	for _, c := range k8sChecks {
		t.Run(c.name, func(t *testing.T) {
			var p problems
			c.check(&p, m, f)
			assert.Empty(t, p)
		})
	}
}

// k8sEdit changes one value of one document, as a mistake in a manifest would.
type k8sEdit struct {
	file  string
	doc   string // "Kind/name"; "" for a file of one document
	path  []string
	value any // nil deletes; a list index one past the end appends
}

// Every row is a mistake the checks must catch, so a check that stops looking fails here.
func TestKubernetesChecksCatchMistakes(t *testing.T) {
	const (
		api    = "api.yaml"
		worker = "worker.yaml"
		cms    = "configmap.yaml"
		job    = "migrate-job.yaml"
	)
	ctr := []string{"spec", "template", "spec", "containers", "0"} // the one container
	at := func(base []string, rest ...string) []string { return append(slices.Clone(base), rest...) }
	tests := []struct {
		name string
		give k8sEdit
		want string
	}{
		{"worker grace not above SHUTDOWN_TIMEOUT", k8sEdit{worker, "Deployment/webhooks-worker", []string{"spec", "template", "spec", "terminationGracePeriodSeconds"}, 20}, "terminationGracePeriodSeconds"},
		{"API grace leaves no room for preStop", k8sEdit{api, "Deployment/webhooks-api", []string{"spec", "template", "spec", "terminationGracePeriodSeconds"}, 25}, "terminationGracePeriodSeconds"},
		{"API without preStop", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "lifecycle"), nil}, "preStop"},
		{"preStop exec in a distroless image", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "lifecycle", "preStop"), map[string]any{"exec": map[string]any{"command": []any{"sleep", "5"}}}}, "exec"},
		{"misspelled variable", k8sEdit{cms, "ConfigMap/webhooks-config", []string{"data", "WEBHOOK_RETRY_MAX_ATTEMPT"}, "3"}, "not read by config.Config"},
		{"default drifts from compose", k8sEdit{cms, "ConfigMap/webhooks-config", []string{"data", "SHUTDOWN_TIMEOUT"}, "25s"}, "differs from docker-compose.yml"},
		{"a setting compose does not give the worker", k8sEdit{cms, "ConfigMap/webhooks-worker-config", []string{"data", "API_RATE_LIMIT"}, "20"}, "set here but not in docker-compose.yml"},
		{"a setting compose gives is missing", k8sEdit{cms, "ConfigMap/webhooks-api-config", []string{"data", "WEBHOOK_MAX_PER_USER"}, nil}, "is not set here"},
		{"invalid value", k8sEdit{cms, "ConfigMap/webhooks-worker-config", []string{"data", "WEBHOOK_DISPATCH_PAGE_SIZE"}, "5000"}, "fails start-up"},
		{"secret in a ConfigMap", k8sEdit{cms, "ConfigMap/webhooks-api-config", []string{"data", "JWT_SECRET"}, strings.Repeat("x", 40)}, "secrets belong in the Secret"},
		{"password in a ConfigMap URL", k8sEdit{cms, "ConfigMap/webhooks-config", []string{"data", "WEBHOOK_ALLOWED_CIDRS"}, "postgres://u:pw@db/x"}, "password in a URL"},
		{"secret as a literal value", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "env", "1"), map[string]any{"name": "DATABASE_URL", "value": testDatabaseURL}}, "must come from the Secret"},
		{"worker gets JWT_SECRET", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "env", "4"), map[string]any{"name": "JWT_SECRET", "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "webhooks-secrets", "key": "JWT_SECRET"}}}}, "JWT_SECRET is set here but not in docker-compose.yml"},
		{"required secret made optional", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "env", "2", "valueFrom", "secretKeyRef", "optional"), true}, "must not be optional"},
		{"secret read from another Secret", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "env", "2", "valueFrom", "secretKeyRef", "name"), "webhook-secrets"}, "want Secret webhooks-secrets"},
		{"Job without DATABASE_URL", k8sEdit{job, "Job/webhooks-migrate", at(ctr, "env", "0"), nil}, "DATABASE_URL is not set"},
		{"real value in the template", k8sEdit{k8sSecretTemplate, "Secret/webhooks-secrets", []string{"stringData", "JWT_SECRET"}, strings.Repeat("k", 48)}, "looks like a real value"},
		{"placeholder the service would accept", k8sEdit{k8sSecretTemplate, "Secret/webhooks-secrets", []string{"stringData", "JWT_SECRET"}, "<" + strings.Repeat("k", 40) + ">"}, "must fail start-up"},
		{"base64 data in the template", k8sEdit{k8sSecretTemplate, "Secret/webhooks-secrets", []string{"data"}, map[string]any{"JWT_SECRET": "eHh4"}}, "base64"},
		{"template key that is not secret", k8sEdit{k8sSecretTemplate, "Secret/webhooks-secrets", []string{"stringData", "LOG_LEVEL"}, ""}, "not a secret setting"},
		{"readiness on a path the API does not serve", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "readinessProbe", "httpGet", "path"), "/ready"}, "not served"},
		{"worker probed on a path it does not serve", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "livenessProbe", "httpGet", "path"), "/livez"}, "not served"},
		{"API liveness depends on the database", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "livenessProbe", "httpGet", "path"), "/readyz"}, "without a database"},
		{"probe on an undeclared port", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "readinessProbe", "httpGet", "port"), "http"}, "not a containerPort"},
		{"readiness times out before /readyz answers", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "readinessProbe", "timeoutSeconds"), 5}, "TEMPORAL_RPC_TIMEOUT"},
		{"startup probe shorter than the Temporal dial", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "startupProbe", "failureThreshold"), 6}, "TEMPORAL_DIAL_TIMEOUT"},
		{"worker listens on loopback", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "env", "0", "value"), "127.0.0.1:9090"}, "must listen on 0.0.0.0"},
		{"PDB selects nothing", k8sEdit{worker, "PodDisruptionBudget/webhooks-worker", []string{"spec", "selector", "matchLabels", "app.kubernetes.io/component"}, "workers"}, "want one PodDisruptionBudget"},
		{"PDB selects every pod", k8sEdit{api, "PodDisruptionBudget/webhooks-api", []string{"spec", "selector", "matchLabels", "app.kubernetes.io/component"}, nil}, "want exactly one Deployment's pods"},
		{"PDB blocks every drain", k8sEdit{api, "PodDisruptionBudget/webhooks-api", []string{"spec", "maxUnavailable"}, 0}, "allows no disruption"},
		{"Service selects the worker", k8sEdit{api, "Service/webhooks-api", []string{"spec", "selector", "app.kubernetes.io/component"}, "worker"}, "want the API's pods only"},
		{"Service targets the wrong port", k8sEdit{api, "Service/webhooks-api", []string{"spec", "ports", "0", "targetPort"}, 9090}, "targetPort"},
		{"command replaces the entrypoint", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "command"), []any{"/bin/sh", "-c"}}, "ENTRYPOINT"},
		{"wrong subcommand", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "args"), []any{"api"}}, "want the subcommand compose runs"},
		{"unpinned image", k8sEdit{job, "Job/webhooks-migrate", at(ctr, "image"), "assetsup/webhooks:latest"}, "pinned tag"},
		{"images differ", k8sEdit{job, "Job/webhooks-migrate", at(ctr, "image"), "assetsup/webhooks:0.0.9"}, "different images"},
		{"one API replica", k8sEdit{api, "Deployment/webhooks-api", []string{"spec", "replicas"}, 1}, "want 2 replicas"},
		{"namespace fixed", k8sEdit{api, "Deployment/webhooks-api", []string{"metadata", "namespace"}, "prod"}, "sets namespace"},
		{"writable root filesystem", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "securityContext", "readOnlyRootFilesystem"), false}, "readOnlyRootFilesystem"},
		{"capabilities kept", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "securityContext", "capabilities", "drop"), []any{"NET_RAW"}}, "drop ALL"},
		{"runs as root", k8sEdit{job, "Job/webhooks-migrate", []string{"spec", "template", "spec", "securityContext", "runAsUser"}, 0}, "runAsUser"},
		{"memory request below the measured peak", k8sEdit{worker, "Deployment/webhooks-worker", at(ctr, "resources", "requests", "memory"), "48Mi"}, "measured"},
		{"CPU request below the derivation", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "resources", "requests", "cpu"), "100m"}, "measured"},
		{"no memory limit", k8sEdit{job, "Job/webhooks-migrate", at(ctr, "resources", "limits", "memory"), nil}, "request and a limit"},
		{"worker not scraped", k8sEdit{worker, "Deployment/webhooks-worker", []string{"spec", "template", "metadata", "annotations", "prometheus.io/scrape"}, nil}, "prometheus.io/scrape"},
		{"scrape on the wrong port", k8sEdit{worker, "Deployment/webhooks-worker", []string{"spec", "template", "metadata", "annotations", "prometheus.io/port"}, "8080"}, "prometheus.io/port"},
		{"TEMPORAL_ADDRESS not the chart's frontend", k8sEdit{cms, "ConfigMap/webhooks-config", []string{"data", "TEMPORAL_ADDRESS"}, "temporal:7233"}, "chart's frontend Service"},
		{"Temporal namespace not created", k8sEdit{k8sTemporalValues, "", []string{"server", "config", "namespaces", "namespace", "0", "name"}, "webhooks"}, "is not created by"},
		{"visibility not on PostgreSQL", k8sEdit{k8sTemporalValues, "", []string{"server", "config", "persistence", "datastores", "visibility", "sql", "pluginName"}, "mysql8"}, "must be PostgreSQL"},
		{"dynamic config drifts from compose's", k8sEdit{k8sTemporalValues, "", []string{"server", "dynamicConfig", "system.enableActivityEagerExecution", "0", "value"}, false}, "differs from"},
		{"dynamic config key compose lacks", k8sEdit{k8sTemporalValues, "", []string{"server", "dynamicConfig", "limit.maxIDLength"}, []any{map[string]any{"value": 255}}}, "is not in"},
		{"misspelled field", k8sEdit{api, "Deployment/webhooks-api", at(ctr, "readinesProbe"), map[string]any{}}, "unknown field"},
		{"manifest left out of the kustomization", k8sEdit{k8sKustomization, "", []string{"resources", "3"}, nil}, "want every manifest"},
		{"secret template in the kustomization", k8sEdit{k8sKustomization, "", []string{"resources", "4"}, k8sSecretTemplate}, "a Secret belongs in"},
	}
	files := readK8sFiles(t)
	f := loadK8sFacts(t)
	m, err := parseK8s(files)
	require.NoError(t, err)
	require.Empty(t, runK8sChecks(m, f), "the manifests as committed pass")

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edited := maps.Clone(files)
			raw, err := editYAML(files[tt.give.file], tt.give)
			require.NoError(t, err)
			edited[tt.give.file] = raw
			var got problems
			if m, err := parseK8s(edited); err != nil {
				got = problems{err.Error()}
			} else {
				got = runK8sChecks(m, f)
			}
			require.NotEmpty(t, got, "the mistake went unnoticed")
			assert.True(t, slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, tt.want) }),
				"no problem mentions %q: %v", tt.want, got)
		})
	}
}

// editYAML applies e to the document of raw it names and returns the file re-encoded.
func editYAML(raw []byte, e k8sEdit) ([]byte, error) {
	docs, err := splitYAML(raw)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	found := false
	for _, doc := range docs {
		var v map[string]any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return nil, err
		}
		name, _ := lookup(v, "metadata", "name").(string)
		kind, _ := v["kind"].(string)
		if e.doc == "" || e.doc == kind+"/"+name {
			found = true
			if _, err := setPath(v, e.path, e.value); err != nil {
				return nil, fmt.Errorf("%s %v: %w", e.doc, e.path, err)
			}
		}
		enc, err := yaml.Marshal(v)
		if err != nil {
			return nil, err
		}
		out.WriteString("---\n")
		out.Write(enc)
	}
	if !found {
		return nil, fmt.Errorf("no document %s", e.doc)
	}
	return out.Bytes(), nil
}

// setPath sets (or with nil deletes) the value at path, creating maps on the way, and
// returns the changed node: a list that grows or shrinks is a new slice for its parent.
func setPath(v any, path []string, value any) (any, error) {
	if len(path) == 0 {
		return value, nil
	}
	k, rest := path[0], path[1:]
	switch node := v.(type) {
	case map[string]any:
		if len(rest) == 0 && value == nil {
			delete(node, k)
			return node, nil
		}
		child, ok := node[k]
		if !ok {
			child = map[string]any{}
		}
		nv, err := setPath(child, rest, value)
		if err != nil {
			return nil, err
		}
		node[k] = nv
		return node, nil
	case []any:
		idx, err := strconv.Atoi(k)
		if err != nil || idx < 0 || idx > len(node) || (idx == len(node) && (len(rest) > 0 || value == nil)) {
			return nil, fmt.Errorf("bad index %q for a list of %d", k, len(node))
		}
		switch {
		case len(rest) == 0 && value == nil:
			return slices.Delete(node, idx, idx+1), nil
		case idx == len(node):
			return append(node, value), nil
		}
		nv, err := setPath(node[idx], rest, value)
		if err != nil {
			return nil, err
		}
		node[idx] = nv
		return node, nil
	default:
		return nil, fmt.Errorf("%q: not a map or a list", k)
	}
}
