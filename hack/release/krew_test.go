package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// krewPlugin is the part of a Krew manifest calico-pni fills in.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Platforms        []krewPlatform `json:"platforms"`
	} `json:"spec"`
}

type krewPlatform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string     `json:"uri"`
	SHA256 string     `json:"sha256"`
	Bin    string     `json:"bin"`
	Files  []krewFile `json:"files"`
}

type krewFile struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// fakeSum is a recognisable checksum per archive name.
func fakeSum(archive string) string {
	return fmt.Sprintf("%064x", len(archive))[:56] + fmt.Sprintf("%08x", crc(archive))
}

func crc(s string) uint32 {
	var h uint32 = 2166136261
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

// checkManifest checks a rendered manifest against the archives GoReleaser
// makes of kubectl-pni: one platform per archive, with the archive's
// download URL and checksum, the binary as the plugin, and only files the
// archive has.
func checkManifest(t *testing.T, manifest []byte, tag string, archives []archive, repo string, sum func(string) string) {
	t.Helper()
	var p krewPlugin
	if err := yaml.UnmarshalStrict(manifest, &p); err != nil {
		t.Fatalf("the rendered Krew manifest is not a plugin manifest: %v\n%s", err, manifest)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" || p.Metadata.Name != "pni" {
		t.Errorf("manifest is %s %s %s, want krew.googlecontainertools.github.com/v1alpha2 Plugin pni (kubectl pni)", p.APIVersion, p.Kind, p.Metadata.Name)
	}
	if p.Spec.Version != tag {
		t.Errorf("spec.version %q, want the tag %q", p.Spec.Version, tag)
	}
	if len(p.Spec.Platforms) != len(archives) {
		t.Errorf("the manifest has %d platforms, GoReleaser makes %d kubectl-pni archives", len(p.Spec.Platforms), len(archives))
	}
	prefix := "https://github.com/" + repo + "/releases/download/" + tag + "/"
	for _, a := range archives {
		i := slices.IndexFunc(p.Spec.Platforms, func(pl krewPlatform) bool {
			return pl.URI == prefix+a.Name
		})
		if i < 0 {
			t.Errorf("no platform of the manifest downloads %s%s", prefix, a.Name)
			continue
		}
		pl := p.Spec.Platforms[i]
		if want := map[string]string{"os": a.Os, "arch": a.Arch}; !mapsEqual(pl.Selector.MatchLabels, want) {
			t.Errorf("%s is for %s/%s, the manifest selects it for %v", a.Name, a.Os, a.Arch, pl.Selector.MatchLabels)
		}
		if pl.SHA256 != sum(a.Name) {
			t.Errorf("%s: sha256 %s, want %s", a.Name, pl.SHA256, sum(a.Name))
		}
		if pl.Bin != a.Binary {
			t.Errorf("%s: bin %q, the archive's binary is %q", a.Name, pl.Bin, a.Binary)
		}
		for _, f := range pl.Files {
			if f.From != a.Binary && !slices.Contains(a.Files, f.From) {
				t.Errorf("%s: the manifest copies %q, which the archive does not have (it has %s and %q)", a.Name, f.From, a.Binary, a.Files)
			}
		}
		if !slices.ContainsFunc(pl.Files, func(f krewFile) bool {
			return f.From == a.Binary
		}) {
			t.Errorf("%s: the manifest does not copy the binary %s", a.Name, a.Binary)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The Krew manifest template and .goreleaser.yaml agree: every archive of
// kubectl-pni is one platform of the manifest, and no platform names an
// archive GoReleaser does not make. `make release-check` repeats this
// against a real snapshot and installs each archive with Krew.
func TestKrewTemplateMatchesGoReleaser(t *testing.T) {
	root := repoRoot(t)
	cfg, err := readGoreleaser(root)
	if err != nil {
		t.Fatal(err)
	}
	const tag, version = "v1.2.3-rc.1", "1.2.3-rc.1"
	archives, err := cfg.archives("kubectl-pni", version)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !slices.ContainsFunc(archives, func(a archive) bool { return a.Os+"/"+a.Arch == want }) {
			t.Errorf("GoReleaser makes no kubectl-pni archive for %s", want)
		}
	}
	text, err := os.ReadFile(filepath.Join(root, "krew", "pni.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	manifest, err := renderKrew(text, tag, func(a string) (string, error) {
		asked = append(asked, a)
		return fakeSum(a), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range asked {
		if !slices.ContainsFunc(archives, func(b archive) bool { return b.Name == a }) {
			t.Errorf("krew/pni.yaml asks for the checksum of %s, which GoReleaser does not make", a)
		}
	}
	repo := cfg.Release.GitHub.Owner + "/" + cfg.Release.GitHub.Name
	if repo != "calico-pni/calico-pni" {
		t.Errorf(".goreleaser.yaml releases to %q", repo)
	}
	checkManifest(t, manifest, tag, archives, repo, fakeSum)
}

func TestRenderKrewErrors(t *testing.T) {
	dir := t.TempDir()
	sums := filepath.Join(dir, "checksums.txt")
	good := strings.Repeat("a", 64)
	if err := os.WriteFile(sums, []byte(good+"  kubectl-pni_1.0.0_linux_amd64.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(dir, "pni.yaml")
	write := func(text string) {
		if err := os.WriteFile(tmpl, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`sha256: {{ sha256 (printf "kubectl-pni_%s_linux_amd64.tar.gz" .Version) }}`)
	out, err := renderKrewFile(dir, "pni.yaml", "v1.0.0", sums)
	if err != nil || string(out) != "sha256: "+good {
		t.Errorf("render: %q, %v", out, err)
	}
	if _, err := renderKrewFile(dir, "pni.yaml", "v1.0.1", sums); err == nil || !strings.Contains(err.Error(), "names kubectl-pni_1.0.1_linux_amd64.tar.gz, which") {
		t.Errorf("an archive missing from the checksums: %v", err)
	}
	if _, err := renderKrewFile(dir, "pni.yaml", "1.0.0", sums); err == nil || !strings.Contains(err.Error(), "is not vX.Y.Z") {
		t.Errorf("a tag without v: %v", err)
	}
	write(`{{ .Nope }}`)
	if _, err := renderKrewFile(dir, "pni.yaml", "v1.0.0", sums); err == nil {
		t.Error("a template naming an unknown field rendered")
	}
	if err := os.WriteFile(sums, []byte("abc  x.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readChecksums(sums); err == nil || !strings.Contains(err.Error(), `checksums.txt:1: want "<sha256>  <file>"`) {
		t.Errorf("a bad checksums line: %v", err)
	}
}
