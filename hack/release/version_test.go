package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// fakeRepo writes a Chart.yaml and a CHANGELOG.md into a directory.
func fakeRepo(t *testing.T, version, appVersion, changelog string) string {
	t.Helper()
	root := t.TempDir()
	chart := filepath.Join(root, "charts", "calico-pni")
	if err := os.MkdirAll(chart, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(file, text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(chart, "Chart.yaml"), "apiVersion: v2\nname: calico-pni\nversion: "+version+"\nappVersion: "+appVersion+"\n")
	write(filepath.Join(root, "CHANGELOG.md"), changelog)
	return root
}

const changelog = `# Changelog

## [0.2.0-rc.1] - 2026-03-01

- A candidate.

## [0.1.0] - 2026-02-01

### Added
- The daemon.

## [0.0.9] - Unreleased

- Never released.
`

func TestCheckVersion(t *testing.T) {
	tests := []struct {
		name, version, appVersion, tag string
		want                           Release
		err                            string
	}{
		{"tag matches", "0.1.0", "0.1.0", "v0.1.0", Release{Version: "0.1.0"}, ""},
		{"next release", "0.1.0", "0.1.0", "", Release{Version: "0.1.0"}, ""},
		{"prerelease", "0.2.0-rc.1", "0.2.0-rc.1", "v0.2.0-rc.1", Release{Version: "0.2.0-rc.1", Prerelease: true}, ""},
		{"tag ahead of the chart", "0.1.0", "0.1.0", "v0.1.1", Release{}, "tag v0.1.1, but Chart.yaml's version is 0.1.0: set version and appVersion in charts/calico-pni/Chart.yaml to 0.1.1"},
		{"appVersion differs", "0.1.0", "0.0.9", "v0.1.0", Release{}, `appVersion "0.0.9" differs from version "0.1.0"`},
		{"tag without v", "0.1.0", "0.1.0", "0.1.0", Release{}, `tag "0.1.0" is not vX.Y.Z`},
		{"chart version not semver", "v1.0.0", "v1.0.0", "", Release{}, `version "v1.0.0" is not a SemVer version`},
		{"no changelog entry", "0.3.0", "0.3.0", "v0.3.0", Release{}, `CHANGELOG.md has no entry for 0.3.0: add "## [0.3.0] - YYYY-MM-DD"`},
		{"undated entry refused for a tag", "0.0.9", "0.0.9", "v0.0.9", Release{}, `the entry "## [0.0.9] - Unreleased" has no release date`},
		{"undated entry fine before the tag", "0.0.9", "0.0.9", "", Release{Version: "0.0.9"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeRepo(t, tt.version, tt.appVersion, changelog)
			got, err := checkVersion(root, tt.tag)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("checkVersion(%q) = %v, %v; want error %q", tt.tag, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("checkVersion(%q) = %+v, %v; want %+v", tt.tag, got, err, tt.want)
			}
		})
	}
}

func TestReleaseNotes(t *testing.T) {
	root := fakeRepo(t, "0.1.0", "0.1.0", changelog)
	got, err := releaseNotes(root, "0.1.0")
	if want := "### Added\n- The daemon.\n"; err != nil || got != want {
		t.Errorf("releaseNotes(0.1.0) = %q, %v; want %q", got, err, want)
	}
	if _, err := releaseNotes(root, "0.4.0"); err == nil {
		t.Error("releaseNotes of a version without an entry succeeded")
	}
}

// The repository is always ready for its next release: the chart's
// version and appVersion agree and CHANGELOG.md has the entry.
func TestRepositoryNextRelease(t *testing.T) {
	root, err := testbed.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	r, err := checkVersion(root, "")
	if err != nil {
		t.Fatal(err)
	}
	notes, err := releaseNotes(root, r.Version)
	if err != nil || len(notes) < 20 {
		t.Errorf("the release notes of %s: %q, %v", r.Version, notes, err)
	}
}

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "usage: release"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"check-version"}, 2, "give exactly one of --tag and --next"},
		{[]string{"check-version", "--tag", "v1.0.0", "--next"}, 2, "give exactly one of --tag and --next"},
		{[]string{"krew", "--tag", "v1.0.0"}, 2, "give --tag and --checksums"},
		{[]string{"check-version", "--tag", "v9.9.9"}, 1, "tag v9.9.9, but Chart.yaml's version is 0.1.0"},
	}
	root := fakeRepo(t, "0.1.0", "0.1.0", changelog)
	for _, tt := range tests {
		var stdout, stderr strings.Builder
		code := run(tt.args, root, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stderr.String(), tt.err) {
			t.Errorf("release %q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr.String(), tt.code, tt.err)
		}
	}
	var stdout, stderr strings.Builder
	if code := run([]string{"check-version", "--tag", "v0.1.0"}, root, &stdout, &stderr); code != 0 || stdout.String() != "version=0.1.0\nprerelease=false\n" {
		t.Errorf("check-version --tag v0.1.0: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
}
