// Command calico-pni keeps Rancher project network isolation in place on
// clusters whose CNI is Calico. Subcommands:
//
//	render   print the Calico policies and namespace labels for a cluster
//	explain  say whether a connection is allowed and which policy decides
//	matrix   say who can reach whom, by project or namespace
//	run      the daemon: keep them in step with the cluster
//	status   show every namespace's calico-pni status; exit 1 if one is in error
//	cleanup  remove everything calico-pni wrote
//	version  print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// Exit codes shared by every subcommand.
const (
	exitOK      = 0
	exitInvalid = 1 // bad input or a failure while working
	exitUsage   = 2 // bad flags or arguments
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// calico-pni waits on the API server far more than it computes, and
	// runs under a pod memory limit: collecting garbage at 50% heap growth
	// instead of Go's 100% costs about 15% more CPU and keeps peak memory
	// about 20% lower at 10,000 namespaces (docs/benchmarks.md). GOGC in
	// the environment still decides when it is set.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	prog = programName(os.Args[0])
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

type command struct {
	name, summary string
	run           func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"run", "keep Calico policies and namespace status in step with the cluster", runRun},
		{"render", "print the Calico policies and namespace labels for a cluster", runRender},
		{"explain", "say whether a connection is allowed and which policy decides", runExplain},
		{"matrix", "say who can reach whom, by project or namespace", runMatrix},
		{"status", "show every namespace's state, project and policies; exit 1 if one is in error", runStatus},
		{"cleanup", "remove every namespace label and policy calico-pni wrote", runCleanup},
		{"version", "print the version", func(_ []string, _ io.Reader, stdout, _ io.Writer) int {
			fmt.Fprintln(stdout, "calico-pni", version)
			return exitOK
		}},
	}
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdin, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "%s: unknown command %q\n\n", prog, args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s <command> [flags]\n\nCommands:\n", prog)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for the flags of a command.\n", prog)
}

// parseFlags parses a subcommand's flags and returns the exit code to use
// when parsing ends the command (help or a usage error), or -1 to go on.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) int {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s %s: unexpected arguments %q\n", prog, fs.Name(), fs.Args())
		return exitUsage
	}
	return -1
}
