package charttest

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// There is no container engine where calico-pni is tested, so the image
// is checked in parts: the Dockerfile against the Makefile's build, the
// binaries `make image-check` builds with the same flags, and the chart's
// manifests against what those binaries accept and serve.

// instruction is one Dockerfile instruction.
type instruction struct {
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is one FROM and what follows it.
type stage struct {
	image, name  string
	instructions []instruction
}

func (s stage) all(cmd string) []string {
	var out []string
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// readDockerfile parses the Dockerfile into stages: comments dropped,
// continued lines joined, FROM flags (--platform) skipped.
func readDockerfile(t testing.TB) []stage {
	t.Helper()
	data, err := os.ReadFile(repo(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var line string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || (text == "" && line == "") {
			continue
		}
		if cont, ok := strings.CutSuffix(text, "\\"); ok {
			line += cont + " "
			continue
		}
		line += text
		cmd, args, _ := strings.Cut(line, " ")
		line = ""
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
				fields = fields[1:]
			}
			s := stage{}
			if len(fields) > 0 {
				s.image = fields[0]
			}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	return stages
}

// execForm reads a JSON-array instruction (ENTRYPOINT ["/calico-pni"]).
func execForm(t testing.TB, cmd, args string) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Fatalf("Dockerfile: %s %s is not in exec form (a JSON array): %v", cmd, args, err)
	}
	return out
}

// shellWords splits a shell command line on blanks, honouring quotes;
// enough for the build command.
func shellWords(s string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// goBuild is a `go build` command: its environment, flags and package.
type goBuild struct {
	env     map[string]string
	flags   map[string]string // -trimpath: "true"
	output  string
	pkg     string
	command string
}

func parseGoBuild(command string) (goBuild, error) {
	b := goBuild{env: map[string]string{}, flags: map[string]string{}, command: command}
	words := shellWords(command)
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "="); i++ {
		k, v, _ := strings.Cut(words[i], "=")
		b.env[k] = v
	}
	if i+1 >= len(words) || !strings.HasSuffix(words[i], "go") && words[i] != "$(GO)" || words[i+1] != "build" {
		return b, fmt.Errorf("not a go build command: %s", command)
	}
	for i += 2; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-o" || w == "-ldflags":
			if i+1 >= len(words) {
				return b, fmt.Errorf("%s without a value: %s", w, command)
			}
			if w == "-o" {
				b.output = words[i+1]
			} else {
				b.flags[w] = words[i+1]
			}
			i++
		case strings.HasPrefix(w, "-"):
			b.flags[w] = "true"
		default:
			b.pkg = w
		}
	}
	return b, nil
}

// makefileBuilds returns the Makefile's LDFLAGS and each `go build` of
// ./cmd/calico-pni in its recipes, with the target it belongs to.
func makefileBuilds(t testing.TB) (string, map[string]goBuild) {
	t.Helper()
	data, err := os.ReadFile(repo(t, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	ldflags := ""
	builds := map[string]goBuild{}
	target := ""
	targetRe := regexp.MustCompile(`^([A-Za-z0-9_./$()-]+):`)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "LDFLAGS := "); ok {
			ldflags = strings.TrimSpace(v)
		}
		if m := targetRe.FindStringSubmatch(line); m != nil && !strings.Contains(line, ":=") {
			target = m[1]
		}
		if strings.HasPrefix(line, "\t") && strings.Contains(line, "./cmd/calico-pni") && strings.Contains(line, " build ") {
			cmd := strings.TrimSpace(line)
			// A loop body: the build itself starts at its environment.
			if i := strings.Index(cmd, "CGO_ENABLED="); i > 0 {
				cmd = cmd[i:]
			}
			cmd, _, _ = strings.Cut(cmd, " || ")
			cmd = strings.TrimSuffix(strings.TrimSpace(cmd), ";")
			b, err := parseGoBuild(cmd)
			if err != nil {
				t.Fatalf("Makefile target %s: %v", target, err)
			}
			builds[target] = b
		}
	}
	if ldflags == "" {
		t.Fatal("the Makefile sets no LDFLAGS")
	}
	return ldflags, builds
}

// The Dockerfile builds the binary the way the Makefile does and runs it
// the way the chart expects: a static, stripped, trimmed build of
// ./cmd/calico-pni, copied alone onto distroless, run as a non-root user
// with `run` by default.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("the Dockerfile has %d stages, want a builder and the image", len(stages))
	}
	builder, final := stages[0], stages[1]

	goMod, err := os.ReadFile(repo(t, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(goMod)
	if goVersion == nil || builder.image != "golang:"+string(goVersion[1]) {
		t.Errorf("the builder is %q, want golang:<go.mod's go version>", builder.image)
	}
	if builder.name == "" {
		t.Error("the builder stage has no name (FROM ... AS build)")
	}
	var args []string
	for _, a := range builder.all("ARG") {
		for _, f := range strings.Fields(a) {
			name, _, _ := strings.Cut(f, "=")
			args = append(args, name)
		}
	}
	for _, want := range []string{"TARGETOS", "TARGETARCH", "VERSION"} {
		if !slices.Contains(args, want) {
			t.Errorf("the builder does not declare ARG %s", want)
		}
	}

	var docker goBuild
	for _, r := range builder.all("RUN") {
		if strings.Contains(r, "go build") {
			if docker, err = parseGoBuild(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if docker.command == "" {
		t.Fatal("the builder runs no go build")
	}
	wantEnv := map[string]string{"CGO_ENABLED": "0", "GOOS": "$TARGETOS", "GOARCH": "$TARGETARCH"}
	for k, v := range wantEnv {
		if docker.env[k] != v {
			t.Errorf("the Dockerfile builds with %s=%q, want %q", k, docker.env[k], v)
		}
	}
	ldflags, builds := makefileBuilds(t)
	for target, b := range builds {
		if b.env["CGO_ENABLED"] != "0" || b.flags["-trimpath"] != "true" || b.flags["-ldflags"] != "$(LDFLAGS)" || b.pkg != docker.pkg {
			t.Errorf("make %s builds with %q; want CGO_ENABLED=0, -trimpath, -ldflags '$(LDFLAGS)' and %s, as the Dockerfile", target, b.command, docker.pkg)
		}
	}
	for _, target := range []string{"build", "image-binaries"} {
		if _, ok := builds[target]; !ok {
			t.Errorf("make %s does not build ./cmd/calico-pni", target)
		}
	}
	if want := strings.ReplaceAll(ldflags, "$(VERSION)", "$VERSION"); docker.flags["-ldflags"] != want {
		t.Errorf("the Dockerfile links with -ldflags %q, the Makefile with %q", docker.flags["-ldflags"], want)
	}
	if docker.flags["-trimpath"] != "true" || docker.pkg != "./cmd/calico-pni" || docker.output == "" {
		t.Errorf("the Dockerfile builds %q", docker.command)
	}

	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("the image is based on %q", final.image)
	}
	copies := final.all("COPY")
	entrypoint := final.all("ENTRYPOINT")
	cmd := final.all("CMD")
	if len(copies) != 1 || len(entrypoint) != 1 || len(cmd) != 1 {
		t.Fatalf("the image stage has COPY %q, ENTRYPOINT %q, CMD %q; want one of each", copies, entrypoint, cmd)
	}
	if want := fmt.Sprintf("--from=%s %s ", builder.name, docker.output); !strings.HasPrefix(copies[0], want) {
		t.Errorf("COPY %s, want the builder's %s", copies[0], docker.output)
	}
	binary := strings.Fields(copies[0])[2]
	if got := execForm(t, "ENTRYPOINT", entrypoint[0]); !slices.Equal(got, []string{binary}) {
		t.Errorf("ENTRYPOINT %q, want [%q], the copied binary", got, binary)
	}
	if got := execForm(t, "CMD", cmd[0]); !slices.Equal(got, []string{"run"}) {
		t.Errorf("CMD %q, want [\"run\"]", got)
	}
	uid, _ := imageUser(t, final)
	if uid == 0 {
		t.Error("the image runs as root")
	}
}

// imageUser returns the numeric user and group of the image's USER.
func imageUser(t testing.TB, final stage) (int64, int64) {
	t.Helper()
	users := final.all("USER")
	if len(users) != 1 {
		t.Fatalf("the image stage has USER %q, want one numeric user:group", users)
	}
	u, g, _ := strings.Cut(users[0], ":")
	uid, err1 := strconv.ParseInt(u, 10, 64)
	gid, err2 := strconv.ParseInt(g, 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("USER %s is not numeric user:group (runAsNonRoot needs a number)", users[0])
	}
	return uid, gid
}

// .dockerignore keeps out what the build does not need, and nothing it
// does need: go.mod, go.sum and every Go file the binary is built from.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(repo(t, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: this test reads exclusions only, not %q", line)
		}
		patterns = append(patterns, strings.TrimSuffix(line, "/"))
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if and .Module .Module.Main}}{{range .GoFiles}}{{$.Dir}}/{{.}}{{"\n"}}{{end}}{{end}}`, "./cmd/calico-pni")
	cmd.Dir = repo(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	needed := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(repo(t), f)
		if err != nil {
			t.Fatal(err)
		}
		needed = append(needed, filepath.ToSlash(rel))
	}
	if len(needed) < 10 {
		t.Fatalf("go list found only %q", needed)
	}
	for _, f := range needed {
		if p, ok := dockerIgnored(f, patterns); ok {
			t.Errorf(".dockerignore pattern %q keeps %s, which the build needs, out of the image build", p, f)
		}
	}
	for _, f := range []string{"bin/calico-pni", "controller/daemon_server_test.go", "testdata/article-cluster.yaml", "charts/calico-pni/values.yaml", ".git/HEAD"} {
		if _, ok := dockerIgnored(f, patterns); !ok {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}

// dockerIgnored reports whether a path, or a directory above it, matches
// an exclusion: patterns as path.Match reads them, "**/" for any depth.
func dockerIgnored(file string, patterns []string) (string, bool) {
	parts := strings.Split(file, "/")
	for i := 1; i <= len(parts); i++ {
		prefix := strings.Join(parts[:i], "/")
		for _, p := range patterns {
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := path.Match(rest, parts[i-1]); m {
					return p, true
				}
				continue
			}
			if m, _ := path.Match(p, prefix); m {
				return p, true
			}
		}
	}
	return "", false
}

var imageArches = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// imageBinary returns bin/image/<arch>/calico-pni, which `make
// image-check` builds.
func imageBinary(t testing.TB, arch string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the image binaries: run without -short")
	}
	p := repo(t, "bin", "image", arch, "calico-pni")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s is missing: run `make image-check` (or `make test`, which builds it)", p)
	}
	return p
}

// The image binaries are what the Dockerfile promises: one per platform,
// static, stripped, with trimmed paths and the version linked in.
func TestImageBinaries(t *testing.T) {
	root := []byte(repo(t))
	for arch, machine := range imageArches {
		bin := imageBinary(t, arch)
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		if f.Machine != machine {
			t.Errorf("%s is for %s", bin, f.Machine)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked: distroless/static has no libc", bin)
			}
		}
		for _, s := range []string{".symtab", ".debug_info"} {
			if f.Section(s) != nil {
				t.Errorf("%s has %s: not built with -s -w", bin, s)
			}
		}
		f.Close()
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
		// Go leaves -ldflags out of the build info of a -trimpath build;
		// their effects are checked above (-s -w) and below (-X).
		want := map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": arch, "-trimpath": "true"}
		for k, v := range want {
			if settings[k] != v {
				t.Errorf("%s was built with %s=%q, want %q", bin, k, settings[k], v)
			}
		}
		if info.Path != "github.com/calico-pni/calico-pni/cmd/calico-pni" {
			t.Errorf("%s is %s", bin, info.Path)
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, root) {
			t.Errorf("%s contains the build directory %s: not built with -trimpath", bin, root)
		}
	}
	// The version the Makefile linked in with -X.
	version, err := os.ReadFile(repo(t, "bin", "image", "VERSION"))
	if err != nil {
		t.Fatalf("bin/image/VERSION: %v (run `make image-check`)", err)
	}
	out, err := run(t, imageBinary(t, runtime.GOARCH), "version")
	if want := "calico-pni " + strings.TrimSpace(string(version)); err != nil || strings.TrimSpace(out) != want {
		t.Errorf("version: %q (%v), want %q", out, err, want)
	}
}

// knownFlags lists the flags a subcommand of the binary accepts, from its
// help.
func knownFlags(t *testing.T, bin, subcommand string) map[string]bool {
	t.Helper()
	out, err := run(t, bin, subcommand, "-h")
	if err != nil {
		t.Fatalf("calico-pni %s -h: %v\n%s", subcommand, err, out)
	}
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(out, -1) {
		flags[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("calico-pni %s -h lists no flags:\n%s", subcommand, out)
	}
	return flags
}

// The chart runs the image the way it is built: the entrypoint with the
// default command's subcommand and flags the binary knows, as the image's
// user, and probes paths the binary serves on the port it listens on.
func TestImageMatchesChart(t *testing.T) {
	e := testbed.Need(t, env)
	bin := imageBinary(t, runtime.GOARCH)
	stages := readDockerfile(t)
	final := stages[len(stages)-1]
	uid, gid := imageUser(t, final)
	cmd := execForm(t, "CMD", final.all("CMD")[0])
	objects := render(t)

	var d appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &d)
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)
	for _, spec := range []corev1.PodSpec{d.Spec.Template.Spec, job.Spec.Template.Spec} {
		sc := spec.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != uid || sc.RunAsGroup == nil || *sc.RunAsGroup != gid {
			t.Errorf("pods run as %+v, the image as %d:%d", sc, uid, gid)
		}
	}

	daemon := d.Spec.Template.Spec.Containers[0]
	hook := job.Spec.Template.Spec.Containers[0]
	for _, c := range []corev1.Container{daemon, hook} {
		if len(c.Command) != 0 {
			t.Errorf("container %s replaces the image's entrypoint with %q", c.Name, c.Command)
		}
	}
	if len(daemon.Args) == 0 || daemon.Args[0] != cmd[0] {
		t.Errorf("the daemon's args %q do not start with the image's command %q", daemon.Args, cmd)
	}
	for _, c := range []corev1.Container{daemon, hook} {
		known := knownFlags(t, bin, c.Args[0])
		for _, a := range c.Args[1:] {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			if !strings.HasPrefix(a, "-") || !known[name] {
				t.Errorf("container %s passes %q, which `calico-pni %s` does not accept", c.Name, a, c.Args[0])
			}
		}
	}

	// The port: --http-address, the container port the probes and the
	// Service name, and what the binary listens on.
	address, ok := flagValue(daemon.Args, "http-address")
	if !ok {
		t.Fatal("the daemon has no --http-address")
	}
	_, portText, _ := strings.Cut(address, ":")
	port, _ := strconv.Atoi(portText)
	if len(daemon.Ports) != 1 || int(daemon.Ports[0].ContainerPort) != port {
		t.Fatalf("container ports %+v, --http-address %s", daemon.Ports, address)
	}
	probes := map[string]*corev1.Probe{"liveness": daemon.LivenessProbe, "readiness": daemon.ReadinessProbe}
	for kind, p := range probes {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != daemon.Ports[0].Name {
			t.Fatalf("%s probe %+v does not use port %s", kind, p, daemon.Ports[0].Name)
		}
	}
	var svc corev1.Service
	convert(t, find(t, objects, "Service", release), &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != daemon.Ports[0].Name {
		t.Errorf("the Service's ports %+v do not target %s", svc.Spec.Ports, daemon.Ports[0].Name)
	}

	// Run the image's binary with the chart's arguments (dry run, leading
	// on its own) and ask it the probes' paths.
	dir := t.TempDir()
	kubeconfig, err := e.WriteKubeconfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(configFile, renderedConfig(t, objects), 0o600); err != nil {
		t.Fatal(err)
	}
	local := freePort(t)
	args := containerArgs(t, daemon, "calico-pni-image-check")
	args = replaceFlag(t, args, "config", configFile)
	args = replaceFlag(t, args, "http-address", fmt.Sprintf("127.0.0.1:%d", local))
	args = replaceFlag(t, args, "dry-run", "true")
	args = append(args, "--kubeconfig="+kubeconfig, "--leader-elect=false")
	p := start(t, bin, args...)
	for kind, probe := range probes {
		url := fmt.Sprintf("http://127.0.0.1:%d%s", local, probe.HTTPGet.Path)
		testbed.Eventually(t, 90*time.Second, func() error {
			select {
			case <-p.done:
				// No point waiting out the timeout for a process that is gone.
				t.Fatalf("the image's binary exited: %v\n%s", p.err, p.output.String())
			default:
			}
			code, body, err := httpGet(url)
			if err != nil {
				return err
			}
			if code == 404 {
				t.Fatalf("%s probe %s: the binary does not serve this path", kind, url)
			}
			if code != 200 {
				return fmt.Errorf("%s probe %s: %d %s", kind, url, code, body)
			}
			return nil
		})
	}
	if code, _, err := httpGet(fmt.Sprintf("http://127.0.0.1:%d/metrics", local)); err != nil || code != 200 {
		t.Errorf("/metrics: %d %v", code, err)
	}
}
