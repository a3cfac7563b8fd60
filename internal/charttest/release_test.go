package charttest

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"
)

// The chart and the release agree: the chart runs the image the release
// workflow publishes, under the chart's appVersion, and Rancher's system
// default registry takes the place of the image's registry.

// chartMeta reads Chart.yaml.
func chartMeta(t *testing.T) (version, appVersion string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Version, AppVersion string }
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c.Version, c.AppVersion
}

// images returns the images of the daemon and of the uninstall hook.
func images(t *testing.T, flags ...string) (string, string) {
	t.Helper()
	objects := render(t, flags...)
	var d appsv1.Deployment
	convert(t, find(t, objects, "Deployment", release), &d)
	var job batchv1.Job
	convert(t, find(t, objects, "Job", release+"-cleanup"), &job)
	return d.Spec.Template.Spec.Containers[0].Image, job.Spec.Template.Spec.Containers[0].Image
}

// publishedImage reads the image the release workflow pushes.
func publishedImage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repo(t, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Env map[string]string `json:"env"`
	}
	if err := yaml.Unmarshal(data, &wf); err != nil {
		t.Fatal(err)
	}
	if wf.Env["IMAGE"] == "" {
		t.Fatal("release.yml sets no IMAGE")
	}
	return wf.Env["IMAGE"]
}

func TestImageReference(t *testing.T) {
	_, appVersion := chartMeta(t)
	published := publishedImage(t)
	_, path, _ := strings.Cut(published, "/") // calico-pni/calico-pni
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"default: the published image at the chart's appVersion", nil, published + ":" + appVersion},
		{"Rancher's system default registry replaces the registry",
			[]string{"--set", "global.cattle.systemDefaultRegistry=registry.example.com:5000"},
			"registry.example.com:5000/" + path + ":" + appVersion},
		{"a trailing slash is tolerated",
			[]string{"--set", "global.cattle.systemDefaultRegistry=registry.example.com/"},
			"registry.example.com/" + path + ":" + appVersion},
		{"an empty system default registry changes nothing",
			[]string{"--set", "global.cattle.systemDefaultRegistry="},
			published + ":" + appVersion},
		{"a registry of one's own, with a path",
			[]string{"--set", "image.registry=harbor.example.com/mirror", "--set", "image.tag=0.1.0-fix"},
			"harbor.example.com/mirror/" + path + ":0.1.0-fix"},
		{"no registry: the repository as given",
			[]string{"--set", "image.registry=", "--set", "image.repository=docker.io/me/calico-pni"},
			"docker.io/me/calico-pni:" + appVersion},
		{"the system default registry wins over image.registry",
			[]string{"--set", "image.registry=harbor.example.com", "--set", "global.cattle.systemDefaultRegistry=airgap.example.com"},
			"airgap.example.com/" + path + ":" + appVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			daemon, hook := images(t, tt.flags...)
			if daemon != tt.want || hook != tt.want {
				t.Errorf("images %q (daemon) and %q (uninstall hook), want %q", daemon, hook, tt.want)
			}
		})
	}
	if _, err := renderErr(t, "--set", "image.registry=a registry"); err == nil || !strings.Contains(err.Error(), "/image/registry") {
		t.Errorf("a registry with a blank: %v", err)
	}
}

// The release packages the chart with the tag's version as version and
// appVersion (`helm package --version --app-version`): the package then
// runs the image of that version.
func TestChartPackageVersion(t *testing.T) {
	version, appVersion := chartMeta(t)
	if version != appVersion {
		t.Errorf("Chart.yaml: version %s, appVersion %s; one version names chart and image", version, appVersion)
	}
	const next = "9.8.7-rc.1"
	dir := t.TempDir()
	if _, err := helm(t, "lint", chartDir(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := helm(t, "package", chartDir(t), "--version", next, "--app-version", next, "--destination", dir); err != nil {
		t.Fatal(err)
	}
	pkg := filepath.Join(dir, "calico-pni-"+next+".tgz")
	out, err := helm(t, "template", release, pkg, "--namespace", namespace, "--kube-version", kubeVersion, "--api-versions", vapAPI)
	if err != nil {
		t.Fatal(err)
	}
	images := regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindAllStringSubmatch(out, -1)
	if len(images) != 2 {
		t.Fatalf("the packaged chart renders %d images, want the daemon's and the hook's", len(images))
	}
	for _, m := range images {
		if m[1] != publishedImage(t)+":"+next {
			t.Errorf("the chart packaged as %s runs %s", next, m[1])
		}
	}
	if !strings.Contains(out, "helm.sh/chart: calico-pni-"+strings.ReplaceAll(next, "+", "_")) {
		t.Errorf("the packaged chart's labels do not carry version %s", next)
	}
}

// The release binaries (.goreleaser.yaml) and the release image
// (release.yml) are built as the Makefile and the Dockerfile build
// calico-pni: same package, static, trimmed, the version linked in.
func TestReleaseBuildsLikeTheImage(t *testing.T) {
	ldflags, _ := makefileBuilds(t)
	data, err := os.ReadFile(repo(t, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Builds []struct {
			ID, Binary, Main string
			Env, Flags       []string
			Ldflags          []string
		}
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Builds) != 2 {
		t.Fatalf(".goreleaser.yaml has %d builds, want calico-pni and kubectl-pni", len(cfg.Builds))
	}
	want := strings.ReplaceAll(ldflags, "$(VERSION)", "{{ .Version }}")
	for _, b := range cfg.Builds {
		if b.Main != "./cmd/calico-pni" || strings.Join(b.Env, " ") != "CGO_ENABLED=0" || strings.Join(b.Flags, " ") != "-trimpath" || strings.Join(b.Ldflags, " ") != want {
			t.Errorf("GoReleaser build %s: main %s, env %q, flags %q, ldflags %q; want ./cmd/calico-pni, CGO_ENABLED=0, -trimpath, %q as the Makefile", b.ID, b.Main, b.Env, b.Flags, b.Ldflags, want)
		}
	}

	wf, err := os.ReadFile(repo(t, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var release struct {
		Jobs map[string]struct {
			Steps []struct {
				Uses string            `json:"uses"`
				With map[string]string `json:"with"`
			} `json:"steps"`
		} `json:"jobs"`
	}
	if err := yaml.Unmarshal(wf, &release); err != nil {
		t.Fatal(err)
	}
	var platforms, args string
	for _, s := range release.Jobs["image"].Steps {
		if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
			platforms, args = s.With["platforms"], s.With["build-args"]
		}
	}
	var wantPlatforms []string
	for arch := range imageArches {
		wantPlatforms = append(wantPlatforms, "linux/"+arch)
	}
	got := strings.Split(platforms, ",")
	slices.Sort(got)
	slices.Sort(wantPlatforms)
	if !slices.Equal(got, wantPlatforms) {
		t.Errorf("the release builds the image for %q, make image-check checks %q", got, wantPlatforms)
	}
	if args != "VERSION=${{ needs.version.outputs.version }}" {
		t.Errorf("the release builds the image with build-args %q, want the checked version as VERSION", args)
	}
}
