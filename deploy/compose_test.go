package deploy_test

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/assetsup/webhooks/config"
	"github.com/assetsup/webhooks/workflows"
)

const (
	repoRoot    = ".."
	composeFile = "../docker-compose.yml"
	dockerfile  = "../Dockerfile"

	// Sentinels for the two secrets: finding them in a service proves the value came
	// from the environment Compose was given, not from the file.
	testJWTSecret = "jwt-secret-from-the-host-environment-0123456789"
	testSecretKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // base64 of bytes 0..31
	// A second 32-byte key for TEMPORAL_PAYLOAD_KEY (bytes 32..63).
	testPayloadKey = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
)

// The services the application's own image runs, and which read config.Config.
var appServices = []string{"migrate", "api", "worker"}

// hostEnv is the environment `docker compose` would see: the three required secrets.
func hostEnv() map[string]string {
	return map[string]string{"JWT_SECRET": testJWTSecret, "WEBHOOK_SECRET_KEY": testSecretKey, "TEMPORAL_PAYLOAD_KEY": testPayloadKey}
}

// loadCompose loads docker-compose.yml as `docker compose config` would, with env as the
// only environment (never the test process's own, so the result is the same anywhere).
func loadCompose(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	wd, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  wd,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(wd, "docker-compose.yml")}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("webhooks", true) })
}

func mustLoadCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, hostEnv())
	require.NoError(t, err, "docker-compose.yml must load with JWT_SECRET, WEBHOOK_SECRET_KEY and TEMPORAL_PAYLOAD_KEY set")
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	require.NoError(t, err)
	return s
}

// environment is a service's resolved environment; a variable without a value maps to nil.
func environment(s types.ServiceConfig) map[string]*string {
	return map[string]*string(s.Environment)
}

func envValue(t *testing.T, s types.ServiceConfig, name string) string {
	t.Helper()
	v, ok := s.Environment[name]
	require.True(t, ok, "service %s: %s is not set", s.Name, name)
	require.NotNil(t, v, "service %s: %s has no value", s.Name, name)
	return *v
}

func TestComposeServices(t *testing.T) {
	p := mustLoadCompose(t)
	assert.ElementsMatch(t,
		[]string{"postgres", "temporal", "temporal-search-attributes", "temporal-ui", "migrate", "api-gateway", "api", "worker"},
		p.ServiceNames())
}

func TestComposeDependencies(t *testing.T) {
	const (
		healthy   = types.ServiceConditionHealthy
		completed = types.ServiceConditionCompletedSuccessfully
	)
	appDeps := map[string]string{"migrate": completed, "temporal-search-attributes": completed, "temporal": healthy}
	tests := []struct {
		service string
		want    map[string]string // dependency → condition
	}{
		{"postgres", map[string]string{}},
		{"temporal", map[string]string{"postgres": healthy}},
		{"temporal-search-attributes", map[string]string{"temporal": healthy}},
		{"temporal-ui", map[string]string{"temporal": healthy}},
		{"migrate", map[string]string{"postgres": healthy}},
		{"api", appDeps},
		{"worker", appDeps},
		{"api-gateway", map[string]string{"api": types.ServiceConditionStarted}},
	}
	p := mustLoadCompose(t)
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			got := map[string]string{}
			for name, dep := range service(t, p, tt.service).DependsOn {
				got[name] = dep.Condition
				assert.True(t, dep.Required, "dependency %s must be required", name)
			}
			assert.Equal(t, tt.want, got)
		})
	}

	// What a condition waits for must be able to happen: a healthcheck to pass, or a
	// job to exit (and stay exited rather than restart).
	for _, s := range p.Services {
		for name, dep := range s.DependsOn {
			target := service(t, p, name)
			switch dep.Condition {
			case healthy:
				if assert.NotNil(t, target.HealthCheck, "%s waits for %s to be healthy: it needs a healthcheck", s.Name, name) {
					assert.False(t, target.HealthCheck.Disable, "%s: healthcheck disabled", name)
					assert.NotEmpty(t, target.HealthCheck.Test, "%s: healthcheck has no test", name)
				}
			case completed:
				assert.Contains(t, []string{"", types.RestartPolicyNo}, target.Restart,
					"%s is a one-shot job (%s waits for it to complete): it must not restart", name, s.Name)
			}
		}
	}
}

func TestComposePorts(t *testing.T) {
	type port struct {
		hostIP    string
		published string
		target    uint32
	}
	tests := []struct {
		service string
		want    []port
	}{
		// The gateway publishes the API; the replicas behind it publish nothing.
		{"api-gateway", []port{{"", "8080", 8080}}},
		{"api", nil},
		{"temporal-ui", []port{{"", "8233", 8080}}},
		// The gRPC frontend, for the temporal CLI on the Docker host only.
		{"temporal", []port{{"127.0.0.1", "7233", 7233}}},
		{"postgres", nil},
		{"temporal-search-attributes", nil},
		{"migrate", nil},
		// Scalable with --scale worker=N: a fixed host port would collide.
		{"worker", nil},
	}
	p := mustLoadCompose(t)
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			var got []port
			for _, pc := range service(t, p, tt.service).Ports {
				got = append(got, port{pc.HostIP, pc.Published, pc.Target})
			}
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("replicable services", func(t *testing.T) {
		// The production topology: two API replicas behind the gateway, three workers.
		for name, replicas := range map[string]int{"api": 2, "worker": 3} {
			s := service(t, p, name)
			assert.Empty(t, s.ContainerName, "%s: container_name prevents replicas", name)
			if assert.NotNil(t, s.Deploy, "%s: deploy.replicas", name) && assert.NotNil(t, s.Deploy.Replicas) {
				assert.Equal(t, replicas, *s.Deploy.Replicas, "%s replicas", name)
			}
		}
	})

	t.Run("the gateway balances over the API replicas", func(t *testing.T) {
		gw := service(t, p, "api-gateway")
		var conf string
		for _, v := range gw.Volumes {
			if v.Type == types.VolumeTypeBind && strings.HasPrefix(v.Target, "/etc/nginx/conf.d/") {
				b, err := os.ReadFile(v.Source)
				require.NoError(t, err)
				conf = string(b)
				assert.True(t, v.ReadOnly)
			}
		}
		require.NotEmpty(t, conf, "api-gateway mounts its nginx configuration")
		assert.Contains(t, conf, "server api:8080 resolve;", "every replica of the api service, re-resolved")
		assert.Contains(t, conf, "listen 8080;")
		assert.Contains(t, conf, "proxy_next_upstream error timeout;", "only a refused connection moves to the next replica")
		assert.NotContains(t, conf, "non_idempotent", "a request that was sent is never sent twice")
		assert.Equal(t, []string{"8080"}, []string(service(t, p, "api").Expose))
	})

	t.Run("listen addresses match the ports", func(t *testing.T) {
		api := service(t, p, "api")
		host, port, err := net.SplitHostPort(envValue(t, api, "HTTP_ADDR"))
		require.NoError(t, err)
		assert.Equal(t, "0.0.0.0", host, "the API must listen beyond the container's loopback")
		assert.Equal(t, "8080", port)

		worker := service(t, p, "worker")
		host, port, err = net.SplitHostPort(envValue(t, worker, "METRICS_ADDR"))
		require.NoError(t, err)
		assert.Equal(t, "0.0.0.0", host, "metrics must be reachable by a scraper on the network")
		assert.Equal(t, []string{port}, []string(worker.Expose))
	})
}

func TestComposeAppServices(t *testing.T) {
	p := mustLoadCompose(t)
	wd, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	known := config.EnvNames()

	for _, name := range appServices {
		t.Run(name, func(t *testing.T) {
			s := service(t, p, name)
			require.NotNil(t, s.Build, "built from this repository")
			assert.Equal(t, wd, s.Build.Context)
			assert.Equal(t, "Dockerfile", s.Build.Dockerfile)
			assert.Equal(t, []string{name}, []string(s.Command), "runs the %q subcommand", name)
			assert.Empty(t, s.Entrypoint, "the image's entrypoint is the binary")

			env := environment(s)
			require.NotEmpty(t, env)
			for key, v := range env {
				assert.Contains(t, known, key, "%s is not read by config.Config: a typo, or a setting that no longer exists", key)
				assert.NotNil(t, v, "%s has no value: the container would inherit nothing", key)
			}
		})
	}

	t.Run("only the API gets JWT_SECRET", func(t *testing.T) {
		assert.Equal(t, testJWTSecret, envValue(t, service(t, p, "api"), "JWT_SECRET"))
		assert.NotContains(t, environment(service(t, p, "worker")), "JWT_SECRET")
		assert.NotContains(t, environment(service(t, p, "migrate")), "JWT_SECRET")
	})
}

// The defaults written in the file are valid: each app service's environment passes
// the service's own configuration check, exactly as the container would run it.
func TestComposeEnvironmentPassesConfigValidation(t *testing.T) {
	p := mustLoadCompose(t)
	tests := []struct {
		service string
		role    config.Role
	}{
		{"migrate", config.RoleMigrate},
		{"api", config.RoleAPI},
		{"worker", config.RoleWorker},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			// Start from an empty configuration, whatever the test process inherited.
			for _, name := range config.EnvNames() {
				t.Setenv(name, "")
				require.NoError(t, os.Unsetenv(name))
			}
			for key, v := range environment(service(t, p, tt.service)) {
				t.Setenv(key, *v)
			}
			_, err := config.Load(tt.role)
			assert.NoError(t, err)
		})
	}
}

// A default in the file that drifts from config.Config's would make the compose stack
// behave unlike every other deployment; the overrides below are the deliberate ones.
func TestComposeDefaultsMatchConfig(t *testing.T) {
	deliberate := map[string]string{
		"DATABASE_URL":     "the compose postgres service",
		"TEMPORAL_ADDRESS": "the compose temporal service",
		"HTTP_ADDR":        "all interfaces inside the container",
		"METRICS_ADDR":     "all interfaces inside the container",
	}
	defaults := configDefaults(t)
	p := mustLoadCompose(t)
	for _, name := range appServices {
		for key, v := range environment(service(t, p, name)) {
			if _, ok := deliberate[key]; ok || key == "JWT_SECRET" || key == "WEBHOOK_SECRET_KEY" || key == "TEMPORAL_PAYLOAD_KEY" || v == nil {
				continue
			}
			assert.Equal(t, defaults[key], *v, "service %s: %s differs from config.Config's default", name, key)
		}
	}
}

// configDefaults maps each variable of config.Config to its envDefault ("" when none).
func configDefaults(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for f := range reflect.TypeFor[config.Config]().Fields() {
		key, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if key != "" {
			out[key] = f.Tag.Get("envDefault")
		}
	}
	require.ElementsMatch(t, config.EnvNames(), slices.Collect(maps.Keys(out)))
	return out
}

// Every service that talks to PostgreSQL or Temporal follows the same variables, so
// overriding one on the host changes the whole stack consistently.
func TestComposeWiring(t *testing.T) {
	env := hostEnv()
	env["POSTGRES_PASSWORD"] = "pw-from-host"
	env["TEMPORAL_NAMESPACE"] = "ns-from-host"
	p, err := loadCompose(t, env)
	require.NoError(t, err)

	pg := service(t, p, "postgres")
	t.Run("database", func(t *testing.T) {
		assert.Equal(t, "pw-from-host", envValue(t, pg, "POSTGRES_PASSWORD"))
		for _, name := range appServices {
			u, err := url.Parse(envValue(t, service(t, p, name), "DATABASE_URL"))
			require.NoError(t, err, name)
			pw, _ := u.User.Password()
			assert.Equal(t, "postgres", u.Hostname(), name)
			assert.Equal(t, envValue(t, pg, "POSTGRES_USER"), u.User.Username(), name)
			assert.Equal(t, "pw-from-host", pw, name)
			assert.Equal(t, "/"+envValue(t, pg, "POSTGRES_DB"), u.Path, name)
		}
		temporal := service(t, p, "temporal")
		assert.Equal(t, "postgres", envValue(t, temporal, "POSTGRES_SEEDS"))
		assert.Equal(t, envValue(t, pg, "POSTGRES_USER"), envValue(t, temporal, "POSTGRES_USER"))
		assert.Equal(t, "pw-from-host", envValue(t, temporal, "POSTGRES_PWD"))
	})

	t.Run("temporal", func(t *testing.T) {
		tests := []struct{ service, address, namespace string }{
			{"api", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"},
			{"worker", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"},
			{"temporal-search-attributes", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"},
			{"temporal-ui", "TEMPORAL_ADDRESS", "TEMPORAL_DEFAULT_NAMESPACE"},
			{"temporal", "", "DEFAULT_NAMESPACE"}, // the namespace auto-setup creates
		}
		for _, tt := range tests {
			s := service(t, p, tt.service)
			if tt.address != "" {
				assert.Equal(t, "temporal:7233", envValue(t, s, tt.address), tt.service)
			}
			assert.Equal(t, "ns-from-host", envValue(t, s, tt.namespace), tt.service)
		}
		assert.Equal(t, envValue(t, service(t, p, "api"), "TEMPORAL_TASK_QUEUE"),
			envValue(t, service(t, p, "worker"), "TEMPORAL_TASK_QUEUE"), "the API starts work on the queue the worker polls")
	})

	t.Run("search attributes", func(t *testing.T) {
		job := service(t, p, "temporal-search-attributes")
		script := strings.Join(append(slices.Clone([]string(job.Entrypoint)), job.Command...), " ")
		for _, k := range workflows.SearchAttributeKeys() {
			assert.Contains(t, script, k.GetName(), "the job must register every search attribute the workflows set")
		}
		assert.Contains(t, script, "--type Keyword")
	})

	t.Run("temporal dynamic config", func(t *testing.T) {
		temporal := service(t, p, "temporal")
		want := filepath.Join("/etc/temporal", envValue(t, temporal, "DYNAMIC_CONFIG_FILE_PATH"))
		var mounted bool
		for _, v := range temporal.Volumes {
			if v.Type == types.VolumeTypeBind && v.Target == want {
				mounted = true
				assert.FileExists(t, v.Source)
				assert.True(t, v.ReadOnly)
			}
		}
		assert.True(t, mounted, "DYNAMIC_CONFIG_FILE_PATH must name the mounted file %s", want)
	})
}

// The three secrets reach the services only from the host: the file holds neither value
// nor default, and Compose refuses to start without them.
func TestComposeSecretsComeFromTheHost(t *testing.T) {
	p := mustLoadCompose(t)
	want := hostEnv()
	for _, s := range p.Services {
		for key, v := range environment(s) {
			if secret, ok := want[key]; ok {
				require.NotNil(t, v, "service %s: %s", s.Name, key)
				assert.Equal(t, secret, *v, "service %s: %s must be the host's value", s.Name, key)
			}
		}
	}

	tests := []struct {
		name    string
		env     map[string]string
		missing string
	}{
		{"without JWT_SECRET", without("JWT_SECRET"), "JWT_SECRET"},
		{"with an empty JWT_SECRET", with("JWT_SECRET", ""), "JWT_SECRET"},
		{"without WEBHOOK_SECRET_KEY", without("WEBHOOK_SECRET_KEY"), "WEBHOOK_SECRET_KEY"},
		{"with an empty WEBHOOK_SECRET_KEY", with("WEBHOOK_SECRET_KEY", ""), "WEBHOOK_SECRET_KEY"},
		{"without TEMPORAL_PAYLOAD_KEY", without("TEMPORAL_PAYLOAD_KEY"), "TEMPORAL_PAYLOAD_KEY"},
		{"with an empty TEMPORAL_PAYLOAD_KEY", with("TEMPORAL_PAYLOAD_KEY", ""), "TEMPORAL_PAYLOAD_KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadCompose(t, tt.env)
			require.Error(t, err)
			var missing *template.MissingRequiredError
			require.True(t, errors.As(err, &missing), "want a required-variable error, got %v", err)
			assert.Equal(t, tt.missing, missing.Variable)
			assert.Contains(t, missing.Reason, "set "+tt.missing, "the error tells the operator what to do")
		})
	}
}

// without is hostEnv less one variable; with is hostEnv with one variable changed.
func without(key string) map[string]string {
	env := hostEnv()
	delete(env, key)
	return env
}

func with(key, value string) map[string]string {
	env := hostEnv()
	env[key] = value
	return env
}

func TestComposeImagesArePinned(t *testing.T) {
	p := mustLoadCompose(t)
	for _, s := range p.Services {
		if s.Build != nil {
			continue
		}
		_, tag, ok := strings.Cut(s.Image, ":")
		assert.True(t, ok && tag != "" && tag != "latest", "service %s: pin the image %q to a version", s.Name, s.Image)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is the instructions from one FROM to the next.
type stage struct {
	from         string // the FROM arguments
	instructions []instruction
}

func readDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var (
		stages  []stage
		pending string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		cmd, args, _ := strings.Cut(line, " ")
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			stages = append(stages, stage{from: in.args})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
		}
	}
	require.NoError(t, sc.Err())
	require.Empty(t, pending, "a continuation line ends the Dockerfile")
	return stages
}

func (s stage) find(cmd string) []string {
	var out []string
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t, dockerfile)
	require.GreaterOrEqual(t, len(stages), 2, "multi-stage: the toolchain stays out of the final image")
	build, final := stages[0], stages[len(stages)-1]

	t.Run("builder", func(t *testing.T) {
		assert.Contains(t, build.from, "golang:")
		var runs string
		for _, r := range build.find("RUN") {
			runs += r + "\n"
		}
		assert.Contains(t, runs, "CGO_ENABLED=0", "a static binary, for the distroless static base")
		assert.Contains(t, runs, "-trimpath")
		assert.Contains(t, runs, "-X main.version=", "the version is stamped at build time")
		assert.Contains(t, runs, "./cmd/webhooks")
		assert.Contains(t, runs, "--mount=type=cache,target=/go/pkg/mod", "module downloads are cached between builds")
	})

	t.Run("Go version follows go.mod", func(t *testing.T) {
		gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
		require.NoError(t, err)
		var goVersion string
		for line := range strings.Lines(string(gomod)) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
				parts := strings.SplitN(v, ".", 3)
				require.GreaterOrEqual(t, len(parts), 2)
				goVersion = parts[0] + "." + parts[1]
			}
		}
		require.NotEmpty(t, goVersion)
		assert.Contains(t, builderImage(t), "golang:"+goVersion, "the builder image's Go must match go.mod's go line")
	})

	t.Run("final stage", func(t *testing.T) {
		users := final.find("USER")
		nonroot := strings.HasSuffix(final.from, ":nonroot")
		if len(users) > 0 {
			user := users[len(users)-1]
			nonroot = slices.Contains([]string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, user)
		}
		assert.True(t, nonroot, "the final stage must run as a non-root user (%s, USER %v)", final.from, users)
		assert.Contains(t, final.from, "distroless/static")
		assert.Equal(t, []string{`["/webhooks"]`}, final.find("ENTRYPOINT"))
		var exposed []string
		for _, e := range final.find("EXPOSE") {
			exposed = append(exposed, strings.Fields(e)...)
		}
		assert.Subset(t, exposed, []string{"8080", "9090"})
		var copied bool
		for _, c := range final.find("COPY") {
			copied = copied || strings.Contains(c, "--from=")
		}
		assert.True(t, copied, "the final stage copies the binary from the builder")
	})
}

// builderImage is the first FROM with the ARG defaults before it substituted.
func builderImage(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	args := map[string]string{}
	var from string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if a, ok := strings.CutPrefix(line, "ARG "); ok {
			if k, v, ok := strings.Cut(a, "="); ok {
				args[k] = v
			}
		}
		if f, ok := strings.CutPrefix(line, "FROM "); ok && from == "" {
			from = f
		}
	}
	return os.Expand(from, func(k string) string {
		if v, ok := args[k]; ok {
			return v
		}
		return "$" + k
	})
}

func TestDockerignore(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, line)
		}
	}
	assert.Subset(t, patterns, []string{".git", ".env", ".dev", "bin"}, "history, local keys and binaries stay out of the build context")
	for _, needed := range []string{"go.mod", "go.sum", "cmd", "migrations", "api"} {
		for _, p := range patterns {
			ok, err := filepath.Match(p, needed)
			require.NoError(t, err)
			assert.False(t, ok, "%s is needed by the build but excluded by %q", needed, p)
		}
	}
}
