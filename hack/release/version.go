package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// One version names a release everywhere: the tag vX.Y.Z, the binaries'
// `calico-pni version`, the image tag X.Y.Z, and the chart's version and
// appVersion. Chart.yaml is committed with that version before the tag,
// so that the Rancher catalog reading the Git repository at the tag shows
// the same version as the packaged chart.

// Release is a version the repository is ready to release.
type Release struct {
	Version    string // X.Y.Z[-pre]
	Prerelease bool   // X.Y.Z-pre: no :latest image
}

// semver is a SemVer 2.0 version without the v, as Helm requires of a
// chart version.
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// chartVersions reads version and appVersion from the chart.
func chartVersions(root string) (version, appVersion string, err error) {
	file := filepath.Join(root, "charts", "calico-pni", "Chart.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return "", "", err
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		return "", "", fmt.Errorf("%s: %w", file, err)
	}
	return chart.Version, chart.AppVersion, nil
}

// checkVersion checks that the repository can be released as tag, or with
// tag "" as its next release (the chart's version): Chart.yaml's version
// and appVersion are the tag's version, and CHANGELOG.md has its entry,
// dated for a tag.
func checkVersion(root, tag string) (Release, error) {
	version, appVersion, err := chartVersions(root)
	if err != nil {
		return Release{}, err
	}
	if !semver.MatchString(version) {
		return Release{}, fmt.Errorf("Chart.yaml: version %q is not a SemVer version X.Y.Z", version)
	}
	if appVersion != version {
		return Release{}, fmt.Errorf("Chart.yaml: appVersion %q differs from version %q; one version names the chart and the image: set both to %q", appVersion, version, version)
	}
	if tag != "" {
		want, ok := strings.CutPrefix(tag, "v")
		if !ok || !semver.MatchString(want) {
			return Release{}, fmt.Errorf("tag %q is not vX.Y.Z", tag)
		}
		if want != version {
			return Release{}, fmt.Errorf("tag %s, but Chart.yaml's version is %s: set version and appVersion in charts/calico-pni/Chart.yaml to %s, commit, and tag that commit", tag, version, want)
		}
	}
	entry, err := changelogEntry(root, version)
	if err != nil {
		return Release{}, err
	}
	if tag != "" && !datedHeading.MatchString(entry.heading) {
		return Release{}, fmt.Errorf("CHANGELOG.md: the entry %q has no release date: write \"## [%s] - YYYY-MM-DD\"", entry.heading, version)
	}
	return Release{Version: version, Prerelease: strings.Contains(strings.SplitN(version, "+", 2)[0], "-")}, nil
}

type changelogSection struct {
	heading, body string
}

var datedHeading = regexp.MustCompile(` - \d{4}-\d{2}-\d{2}$`)

// changelogEntry returns CHANGELOG.md's section "## [version] ...".
func changelogEntry(root, version string) (changelogSection, error) {
	data, err := os.ReadFile(filepath.Join(root, "CHANGELOG.md"))
	if err != nil {
		return changelogSection{}, err
	}
	var found *changelogSection
	var body []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			if found != nil {
				break
			}
			if strings.HasPrefix(line, "## ["+version+"]") {
				found = &changelogSection{heading: strings.TrimSpace(line)}
			}
			continue
		}
		if found != nil {
			body = append(body, line)
		}
	}
	if found == nil {
		return changelogSection{}, fmt.Errorf("CHANGELOG.md has no entry for %s: add \"## [%s] - YYYY-MM-DD\" with what changed", version, version)
	}
	found.body = strings.TrimSpace(strings.Join(body, "\n")) + "\n"
	if strings.TrimSpace(found.body) == "" {
		return changelogSection{}, fmt.Errorf("CHANGELOG.md: the entry for %s is empty", version)
	}
	return *found, nil
}

// releaseNotes is the release's description: its CHANGELOG.md entry.
func releaseNotes(root, version string) (string, error) {
	if version == "" {
		return "", fmt.Errorf("give --version")
	}
	entry, err := changelogEntry(root, version)
	return entry.body, err
}
