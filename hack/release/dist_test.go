//go:build release

package main

// These tests read what `goreleaser release --snapshot` left in dist/ and
// run Krew; `make release-check` builds both first and runs them with
// -tags release. Without the tag they are not compiled, so `make test`
// never counts them as passed without a snapshot.

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"debug/macho"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// artifact is one entry of GoReleaser's dist/artifacts.json.
type artifact struct {
	Name   string `json:"name"`
	Path   string `json:"path"`
	Goos   string `json:"goos"`
	Goarch string `json:"goarch"`
	Type   string `json:"type"`
	Extra  struct {
		ID       string   `json:"ID"`
		Binaries []string `json:"Binaries"`
	} `json:"extra"`
}

type snapshot struct {
	root, dist string
	version    string
	artifacts  []artifact
	cfg        goreleaserConfig
}

func readSnapshot(t *testing.T) snapshot {
	t.Helper()
	s := snapshot{root: repoRoot(t)}
	s.dist = filepath.Join(s.root, "dist")
	var meta struct {
		Version string `json:"version"`
	}
	for file, v := range map[string]any{"metadata.json": &meta, "artifacts.json": &s.artifacts} {
		data, err := os.ReadFile(filepath.Join(s.dist, file))
		if err != nil {
			t.Fatalf("%v: run `make release-check`, which makes the snapshot first", err)
		}
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("dist/%s: %v", file, err)
		}
	}
	s.version = meta.Version
	r, err := checkVersion(s.root, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.version, r.Version+"-snapshot.") {
		t.Fatalf("the snapshot is version %q, want the chart's version %s with -snapshot.<commit>", s.version, r.Version)
	}
	if s.cfg, err = readGoreleaser(s.root); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s snapshot) of(typ, id string) []artifact {
	var out []artifact
	for _, a := range s.artifacts {
		if a.Type == typ && a.Extra.ID == id {
			out = append(out, a)
		}
	}
	return out
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// tarFiles lists the regular files of a .tar.gz.
func tarFiles(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	tr := tar.NewReader(gz)
	var files []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, h.Name)
		}
	}
}

// Every build is archived for every platform under the name the Krew
// manifest and this package expect, with the files the manifest copies,
// and listed with its real checksum.
func TestSnapshotArchives(t *testing.T) {
	s := readSnapshot(t)
	checksums := s.of("Checksum", "")
	if len(checksums) != 1 {
		t.Fatalf("the snapshot has %d checksum files", len(checksums))
	}
	sums, err := readChecksums(filepath.Join(s.root, checksums[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"calico-pni", "kubectl-pni"} {
		want, err := s.cfg.archives(id, s.version)
		if err != nil {
			t.Fatal(err)
		}
		var wantNames, gotNames []string
		for _, a := range want {
			wantNames = append(wantNames, a.Name)
		}
		got := s.of("Archive", id)
		for _, a := range got {
			gotNames = append(gotNames, a.Name)
			path := filepath.Join(s.root, a.Path)
			if sums[a.Name] != fileSHA256(t, path) {
				t.Errorf("%s: checksums file says %s, the file's sha256 is %s", a.Name, sums[a.Name], fileSHA256(t, path))
			}
			files := tarFiles(t, path)
			for _, f := range []string{id, "README.md", "CHANGELOG.md"} {
				if !slices.Contains(files, f) {
					t.Errorf("%s has %q, not %s", a.Name, files, f)
				}
			}
		}
		slices.Sort(wantNames)
		slices.Sort(gotNames)
		if !slices.Equal(wantNames, gotNames) {
			t.Errorf("GoReleaser archived %s as %q; .goreleaser.yaml's name_template, as this package reads it, says %q", id, gotNames, wantNames)
		}
	}
}

// binaryPlatform reads the OS and architecture a binary is built for.
func binaryPlatform(t *testing.T, path string) (string, string) {
	t.Helper()
	if f, err := elf.Open(path); err == nil {
		defer f.Close()
		return "linux", map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}[f.Machine]
	}
	f, err := macho.Open(path)
	if err != nil {
		t.Fatalf("%s is neither ELF nor Mach-O: %v", path, err)
	}
	defer f.Close()
	return "darwin", map[macho.Cpu]string{macho.CpuAmd64: "amd64", macho.CpuArm64: "arm64"}[f.Cpu]
}

// The Krew manifest rendered with the snapshot's checksums passes Krew's
// own manifest validation, and Krew installs each platform's archive
// through it: the installed kubectl-pni is built for that platform, and on
// this machine's platform it runs as `kubectl pni`.
func TestSnapshotKrewInstall(t *testing.T) {
	s := readSnapshot(t)
	krew, validate := os.Getenv("KREW"), os.Getenv("KREW_VALIDATE")
	if krew == "" || validate == "" {
		t.Fatal("KREW and KREW_VALIDATE name the krew and validate-krew-manifest binaries: run `make release-check`")
	}
	tag := "v" + s.version
	checksums := s.of("Checksum", "")[0]
	manifest, err := renderKrewFile(s.root, filepath.Join("krew", "pni.yaml"), tag, filepath.Join(s.root, checksums.Path))
	if err != nil {
		t.Fatal(err)
	}
	archives, err := s.cfg.archives("kubectl-pni", s.version)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := readChecksums(filepath.Join(s.root, checksums.Path))
	if err != nil {
		t.Fatal(err)
	}
	checkManifest(t, manifest, tag, archives, "calico-pni/calico-pni", func(a string) string { return sums[a] })

	dir := t.TempDir()
	// Krew's validator wants the file named after the plugin.
	manifestFile := filepath.Join(dir, "pni.yaml")
	if err := os.WriteFile(manifestFile, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(validate, "-manifest", manifestFile, "-skip-install").CombinedOutput(); err != nil {
		t.Fatalf("validate-krew-manifest refuses the manifest: %v\n%s", err, out)
	}

	for _, a := range archives {
		root := filepath.Join(dir, a.Os+"-"+a.Arch)
		cmd := exec.Command(krew, "install", "--manifest="+manifestFile, "--archive="+filepath.Join(s.dist, a.Name))
		cmd.Env = append(os.Environ(), "KREW_ROOT="+root, "KREW_OS="+a.Os, "KREW_ARCH="+a.Arch, "KREW_NO_UPGRADE_CHECK=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("krew install %s for %s/%s: %v\n%s", a.Name, a.Os, a.Arch, err, out)
			continue
		}
		plugin := filepath.Join(root, "bin", "kubectl-pni")
		if goos, goarch := binaryPlatform(t, plugin); goos != a.Os || goarch != a.Arch {
			t.Errorf("Krew installed a %s/%s kubectl-pni for %s/%s", goos, goarch, a.Os, a.Arch)
		}
		if a.Os != runtime.GOOS || a.Arch != runtime.GOARCH {
			continue
		}
		out, err := exec.Command(plugin).CombinedOutput()
		if !strings.Contains(string(out), "Usage: kubectl pni <command>") {
			t.Errorf("the installed kubectl-pni: %v\n%s", err, out)
		}
		out, err = exec.Command(plugin, "version").Output()
		if want := "calico-pni " + s.version + "\n"; err != nil || string(out) != want {
			t.Errorf("kubectl-pni version: %q, %v; want %q", out, err, want)
		}
	}
}
