package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/rancher"
	"github.com/calico-pni/calico-pni/report"
)

func runExplain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	oneShotGC()
	fs := flag.NewFlagSet("explain", flag.ContinueOnError)
	from := fs.String("from", "", "source: NAMESPACE/POD, NAMESPACE (any pod of it) or an IP address")
	to := fs.String("to", "", "destination: NAMESPACE/POD, NAMESPACE or an IP address")
	port := fs.Int("port", 0, "destination port, as the pod receives it (default: every port)")
	protocol := fs.String("protocol", "TCP", "TCP, UDP or SCTP")
	output := fs.String("o", "text", "output: text or json")
	var in evalInput
	in.register(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: "+prog+" explain --from SRC --to DST [--port N] [--protocol TCP|UDP|SCTP] (-f FILE | --kubeconfig PATH) [flags]\n\nSays whether a connection is allowed and which policy decides, the way Calico's\ndataplane evaluates every policy of the cluster: egress of the source, then\ningress of the destination, tier by tier.\n\nExit codes: 0 evaluated (whatever the verdict), 1 bad input, 2 usage.\n\nFlags:")
		fs.PrintDefaults()
	}
	if code := parseFlags(fs, args, stderr); code >= 0 {
		return code
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, prog+" explain: "+format+"\n", a...)
		return code
	}
	switch {
	case *from == "" || *to == "":
		return fail(exitUsage, "give --from and --to")
	case *port < 0 || *port > 65535:
		return fail(exitUsage, "--port %d: use a port from 1 to 65535", *port)
	case *output != "text" && *output != "json":
		return fail(exitUsage, "-o %q: use text or json", *output)
	}
	proto, err := checkProtocol(*protocol)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	if in.withoutRancher && !in.preview {
		return fail(exitUsage, "--without-rancher changes the state with calico-pni's policies: give it with --preview")
	}
	if err := in.check(); err != nil {
		return fail(exitUsage, "%v", err)
	}
	loaded, err := in.load(stdin, in.preview)
	if err != nil {
		return fail(exitInvalid, "%v", err)
	}
	cluster := loaded.today
	if in.preview {
		cluster = in.after(loaded)
	}
	ix := in.index(cluster)
	src, srcNote, err := resolveEndpoint(ix, *from)
	if err != nil {
		return fail(exitInvalid, "--from %s: %v", *from, err)
	}
	dst, dstNote, err := resolveEndpoint(ix, *to)
	if err != nil {
		return fail(exitInvalid, "--to %s: %v", *to, err)
	}
	e := report.Explanation{From: *from, To: *to, Protocol: proto, Port: uint16(*port), Policies: policiesText(in), Owners: owners(loaded)}
	for _, n := range []string{srcNote, dstNote} {
		if n != "" {
			e.Notes = append(e.Notes, n)
		}
	}
	e.Notes = append(e.Notes, ix.Notes()...)
	if *port != 0 {
		r := ix.Evaluate(src, dst, proto, uint16(*port))
		e.Result = &r
	} else {
		s := ix.EvaluateAllPorts(src, dst, proto)
		e.Summary = &s
	}
	if *output == "json" {
		err = report.ExplainJSON(stdout, e)
	} else {
		err = report.ExplainText(stdout, e)
	}
	if err != nil {
		return fail(exitInvalid, "%v", err)
	}
	for _, n := range loaded.notes {
		fmt.Fprintln(stderr, prog+" explain: note:", n)
	}
	return exitOK
}

// resolveEndpoint reads NAMESPACE/POD, NAMESPACE or an IP address.
func resolveEndpoint(ix *evaluator.Index, text string) (*evaluator.Endpoint, string, error) {
	if a, err := netip.ParseAddr(text); err == nil {
		ep := ix.AddrEndpoint(a)
		note := ""
		if ep.Name != "" {
			note = fmt.Sprintf("%s is the address of pod %s", text, ep)
		}
		return ep, note, nil
	}
	if ns, pod, ok := strings.Cut(text, "/"); ok {
		ep, err := ix.PodEndpoint(ns, pod)
		return ep, "", err
	}
	return ix.NamespaceEndpoint(text)
}

func checkProtocol(p string) (string, error) {
	switch up := strings.ToUpper(p); up {
	case "TCP", "UDP", "SCTP":
		return up, nil
	}
	return "", fmt.Errorf("--protocol %q: use TCP, UDP or SCTP", p)
}

// policiesText says which policies were evaluated.
func policiesText(in evalInput) string {
	s := "as they are in the cluster"
	if in.preview {
		s = "calico-pni's as `calico-pni render` computes them (replacing what it wrote before), and the users' as they are"
		if in.withoutRancher {
			s += ", without Rancher's project isolation (its NetworkPolicies, labelled " + rancher.CreatorLabel + ": " + rancher.CreatorNorman + ", left out as when it is switched off)"
		}
	}
	if in.staged {
		s += "; staged policies as if they were enforced"
	}
	return s
}
