package main

import "strings"

// kubectl runs an executable named kubectl-<name> found on PATH for
// `kubectl <name> ...`, with the executable's path as argv[0]. Installed
// under the name kubectl-pni (Krew installs it so), calico-pni is the
// plugin `kubectl pni` and names itself so in usage and error messages.
const pluginBinary = "kubectl-pni"

// prog is how the user invoked calico-pni: "calico-pni" or "kubectl pni".
// Every usage and error message starts with it.
var prog = "calico-pni"

// programName returns the command name for the executable path argv[0].
func programName(arg0 string) string {
	base := arg0[strings.LastIndexAny(arg0, `/\`)+1:]
	base = strings.TrimSuffix(base, ".exe")
	if base == pluginBinary {
		return "kubectl pni"
	}
	return "calico-pni"
}
