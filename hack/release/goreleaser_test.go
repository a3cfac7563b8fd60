package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"text/template"

	"sigs.k8s.io/yaml"
)

// goreleaserConfig is the part of .goreleaser.yaml that the release's
// other pieces (the Krew manifest, the image, the Makefile) must agree
// with, as far as the tests check them. It has no build tag: krew_test.go
// uses it in every build, dist_test.go with -tags release.
type goreleaserConfig struct {
	ProjectName string            `json:"project_name"`
	Builds      []goreleaserBuild `json:"builds"`
	Archives    []struct {
		ID           string   `json:"id"`
		IDs          []string `json:"ids"`
		Formats      []string `json:"formats"`
		NameTemplate string   `json:"name_template"`
		Files        []string `json:"files"`
	} `json:"archives"`
	Release struct {
		GitHub struct {
			Owner string `json:"owner"`
			Name  string `json:"name"`
		} `json:"github"`
	} `json:"release"`
}

func readGoreleaser(root string) (goreleaserConfig, error) {
	var c goreleaserConfig
	file := filepath.Join(root, ".goreleaser.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return c, err
	}
	// Fields this reader does not model are fine; a broken file is not.
	if err := yaml.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

type goreleaserBuild struct {
	ID     string   `json:"id"`
	Binary string   `json:"binary"`
	Goos   []string `json:"goos"`
	Goarch []string `json:"goarch"`
}

// archive is one archive GoReleaser makes: a build's binary for a platform.
type archive struct {
	Name, Os, Arch, Binary string
	Files                  []string // besides the binary
}

// archives lists the archives of the build with id for every platform,
// named by the archive's name_template. GoReleaser's templates know more
// fields than these; the archive names use only these (and `make
// release-check` compares them with GoReleaser's own output).
func (c goreleaserConfig) archives(buildID, version string) ([]archive, error) {
	i := slices.IndexFunc(c.Builds, func(b goreleaserBuild) bool {
		return b.ID == buildID
	})
	if i < 0 {
		return nil, fmt.Errorf(".goreleaser.yaml has no build %q", buildID)
	}
	build := c.Builds[i]
	var out []archive
	for _, a := range c.Archives {
		if !slices.Contains(a.IDs, buildID) {
			continue
		}
		if !slices.Equal(a.Formats, []string{"tar.gz"}) {
			return nil, fmt.Errorf(".goreleaser.yaml: archive %s has formats %q, want [tar.gz]", a.ID, a.Formats)
		}
		tmpl, err := template.New(a.ID).Option("missingkey=error").Parse(a.NameTemplate)
		if err != nil {
			return nil, fmt.Errorf(".goreleaser.yaml: archive %s: %w", a.ID, err)
		}
		for _, goos := range build.Goos {
			for _, goarch := range build.Goarch {
				var name bytes.Buffer
				data := map[string]string{"ProjectName": c.ProjectName, "Version": version, "Os": goos, "Arch": goarch, "Binary": build.Binary}
				if err := tmpl.Execute(&name, data); err != nil {
					return nil, fmt.Errorf(".goreleaser.yaml: archive %s: %w", a.ID, err)
				}
				out = append(out, archive{Name: name.String() + ".tar.gz", Os: goos, Arch: goarch, Binary: build.Binary, Files: a.Files})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf(".goreleaser.yaml archives no build %q", buildID)
	}
	return out, nil
}
