package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// The Krew manifest is a template in the repository (krew/pni.yaml) rather
// than GoReleaser's krews publisher: that publisher commits the manifest to
// another repository, which takes a long-lived token, while a manifest
// attached to the release installs with `kubectl krew install
// --manifest-url=...` and can be offered to krew-index as it is.

// krewData is what the template sees.
type krewData struct {
	Tag     string // vX.Y.Z
	Version string // X.Y.Z
}

// renderKrew executes a manifest template; sha256 looks an archive's
// checksum up and fails for an archive the release does not have.
func renderKrew(text []byte, tag string, sha256 func(archive string) (string, error)) ([]byte, error) {
	version, ok := strings.CutPrefix(tag, "v")
	if !ok || !semver.MatchString(version) {
		return nil, fmt.Errorf("tag %q is not vX.Y.Z", tag)
	}
	funcs := template.FuncMap{
		"list":   func(items ...string) []string { return items },
		"sha256": sha256,
	}
	tmpl, err := template.New("krew").Funcs(funcs).Option("missingkey=error").Parse(string(text))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, krewData{Tag: tag, Version: version}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// readChecksums reads GoReleaser's checksums file: "<sha256>  <file>" lines.
func readChecksums(file string) (map[string]string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 || len(fields[0]) != 64 {
			return nil, fmt.Errorf("%s:%d: want \"<sha256>  <file>\", got %q", file, n, sc.Text())
		}
		sums[fields[1]] = fields[0]
	}
	return sums, sc.Err()
}

// renderKrewFile renders the template file for tag with the checksums of
// a release.
func renderKrewFile(root, templateFile, tag, checksumsFile string) ([]byte, error) {
	text, err := os.ReadFile(filepath.Join(root, templateFile))
	if err != nil {
		return nil, err
	}
	sums, err := readChecksums(checksumsFile)
	if err != nil {
		return nil, err
	}
	out, err := renderKrew(text, tag, func(archive string) (string, error) {
		sum, ok := sums[archive]
		if !ok {
			return "", fmt.Errorf("%s names %s, which %s does not list: the archive names in .goreleaser.yaml and the manifest disagree", templateFile, archive, checksumsFile)
		}
		return sum, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", templateFile, err)
	}
	return out, nil
}
