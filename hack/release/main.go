// Command release holds the release workflow's checks and steps that
// GoReleaser does not do (docs/releasing.md):
//
//	check-version --tag vX.Y.Z   refuse a tag that disagrees with the chart or CHANGELOG.md
//	check-version --next         the same for the chart's version, before a tag exists
//	notes --version X.Y.Z        the release notes: CHANGELOG.md's entry
//	krew --tag vX.Y.Z --checksums FILE
//	                             the Krew manifest from krew/pni.yaml
//
// It runs from the repository's root: go run ./hack/release ...
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], ".", os.Stdout, os.Stderr))
}

// run executes one subcommand in the repository at root; 0 done, 1
// refused or failed, 2 usage.
func run(args []string, root string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: release check-version|notes|krew [flags]")
		return 2
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	tag := fs.String("tag", "", "the release tag, vX.Y.Z")
	next := fs.Bool("next", false, "check-version: check the chart's version as the next release, not a tag")
	version := fs.String("version", "", "notes: the version, X.Y.Z")
	checksums := fs.String("checksums", "", "krew: GoReleaser's checksums file")
	template := fs.String("template", "krew/pni.yaml", "krew: the manifest template")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var err error
	switch args[0] {
	case "check-version":
		var r Release
		if *next == (*tag != "") {
			fmt.Fprintln(stderr, "release check-version: give exactly one of --tag and --next")
			return 2
		}
		if r, err = checkVersion(root, *tag); err == nil {
			fmt.Fprintf(stdout, "version=%s\nprerelease=%t\n", r.Version, r.Prerelease)
		}
	case "notes":
		var notes string
		if notes, err = releaseNotes(root, *version); err == nil {
			fmt.Fprint(stdout, notes)
		}
	case "krew":
		var manifest []byte
		if *tag == "" || *checksums == "" {
			fmt.Fprintln(stderr, "release krew: give --tag and --checksums")
			return 2
		}
		if manifest, err = renderKrewFile(root, *template, *tag, *checksums); err == nil {
			_, err = stdout.Write(manifest)
		}
	default:
		fmt.Fprintf(stderr, "release: unknown command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "release %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
