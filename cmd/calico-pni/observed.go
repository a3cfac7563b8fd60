package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/evaluator"
	"github.com/calico-pni/calico-pni/flows"
)

// observedFlags are matrix's flags for --observed: where Goldmane is and
// the client certificate it accepts.
type observedFlags struct {
	on                  bool
	address, serverName string
	tlsDir              string
	window              time.Duration
}

func (o *observedFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.on, "observed", false, "also read the connections Calico's flow logs show (Goldmane, Calico 3.30+) and list those that the matrix's state (today, or --preview) decides otherwise than Calico did")
	fs.StringVar(&o.address, "goldmane", "localhost:7443", "with --observed: Goldmane's host:port (kubectl -n calico-system port-forward service/goldmane 7443)")
	fs.StringVar(&o.serverName, "goldmane-server-name", "goldmane.calico-system.svc", "with --observed: the name Goldmane's certificate carries")
	fs.StringVar(&o.tlsDir, "goldmane-tls", config.DefaultGoldmaneTLSDir, "with --observed: directory with ca.crt, tls.crt and tls.key: the CA of Goldmane's certificate and a client certificate it signed (docs/rollout.md)")
	fs.DurationVar(&o.window, "window", 24*time.Hour, "with --observed: how far back to read flows")
}

// list reads the flows of the window from Goldmane.
func (o *observedFlags) list(timeout time.Duration) ([]flows.Flow, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tls := flows.TLSFiles(filepath.Join(o.tlsDir, "ca.crt"), filepath.Join(o.tlsDir, "tls.crt"), filepath.Join(o.tlsDir, "tls.key"))
	return flows.List(ctx, o.address, o.serverName, tls, o.window)
}

// observedConnection is one connection between two pods as the flow logs
// show it, over the window: Allowed counts the entries the destination
// reported allowed (the connection got through), Denied those either side
// denied.
type observedConnection struct {
	Src, Dst         flows.Endpoint
	Protocol         string
	Port             int
	Allowed, Denied  int64
	srcPod, dstPod   *evaluator.Endpoint
	result           evaluator.Result
	decidedOtherwise bool
}

// observedReport is what --observed adds to the matrix.
type observedReport struct {
	address string
	window  time.Duration
	// Connections between pods; Unmatched those with an end the input has
	// no pod for.
	Connections []*observedConnection
	Unmatched   int
}

// compareObserved evaluates every connection between pods of the flows
// with ix, the state the matrix shows, and marks those decided otherwise
// than Calico did. A flow log names a pod by its owner's GenerateName;
// the first pod of the input whose name starts with it stands for it.
func compareObserved(fl []flows.Flow, ix *evaluator.Index, pods []evaluator.Pod, protocol string, port uint16) observedReport {
	byKey := map[string]*observedConnection{}
	var rep observedReport
	for _, f := range fl {
		if f.Src.Type != flows.WorkloadEndpoint || f.Dst.Type != flows.WorkloadEndpoint || !strings.EqualFold(f.Protocol, protocol) || (port != 0 && f.Port != int(port)) {
			continue
		}
		key := strings.Join([]string{f.Src.Namespace, f.Src.Name, f.Dst.Namespace, f.Dst.Name, f.Protocol, fmt.Sprint(f.Port)}, "|")
		c := byKey[key]
		if c == nil {
			c = &observedConnection{Src: f.Src, Dst: f.Dst, Protocol: strings.ToUpper(f.Protocol), Port: f.Port}
			byKey[key] = c
		}
		switch {
		case f.Action == "deny":
			c.Denied++
		case f.Reporter == flows.ReporterDst:
			c.Allowed++
		}
	}
	for _, c := range byKey {
		c.srcPod, c.dstPod = podOf(ix, pods, c.Src), podOf(ix, pods, c.Dst)
		if c.srcPod == nil || c.dstPod == nil || c.Port <= 0 || c.Port > 65535 {
			rep.Unmatched++
			continue
		}
		c.result = ix.Evaluate(c.srcPod, c.dstPod, c.Protocol, uint16(c.Port))
		c.decidedOtherwise = (c.result.Verdict == evaluator.Deny && c.Allowed > 0) || (c.result.Verdict == evaluator.Allow && c.Denied > 0 && c.Allowed == 0)
		rep.Connections = append(rep.Connections, c)
	}
	slices.SortFunc(rep.Connections, func(a, b *observedConnection) int {
		return cmp.Or(cmp.Compare(a.Src.Namespace, b.Src.Namespace), cmp.Compare(a.Src.Name, b.Src.Name),
			cmp.Compare(a.Dst.Namespace, b.Dst.Namespace), cmp.Compare(a.Dst.Name, b.Dst.Name), cmp.Compare(a.Port, b.Port))
	})
	return rep
}

// podOf finds the pod a flow log's endpoint stands for.
func podOf(ix *evaluator.Index, pods []evaluator.Pod, e flows.Endpoint) *evaluator.Endpoint {
	for _, p := range pods {
		if p.Namespace == e.Namespace && e.Name != "" && strings.HasPrefix(p.Name, e.Name) && p.Node != "" && !p.Finished && len(p.IPs) > 0 {
			if ep, err := ix.PodEndpoint(p.Namespace, p.Name); err == nil {
				return ep
			}
		}
	}
	return nil
}

// writeObserved writes the connections decided otherwise, after the
// matrix's text.
func writeObserved(w io.Writer, rep observedReport, state string) error {
	decided := 0
	for _, c := range rep.Connections {
		if c.decidedOtherwise {
			decided++
		}
	}
	_, err := fmt.Fprintf(w, "\nObserved in Calico's flow logs (Goldmane at %s, the last %v): %d connections between pods evaluated, %d with a pod the input does not have.\n",
		rep.address, rep.window, len(rep.Connections), rep.Unmatched)
	if err != nil {
		return err
	}
	if decided == 0 {
		_, err = fmt.Fprintf(w, "%s decides each of them as Calico did.\n", state)
		return err
	}
	fmt.Fprintf(w, "%s decides %d of them otherwise than Calico did:\n", state, decided)
	for _, c := range rep.Connections {
		if !c.decidedOtherwise {
			continue
		}
		did := fmt.Sprintf("Calico allowed %d flows", c.Allowed)
		if c.Allowed == 0 {
			did = fmt.Sprintf("Calico denied %d flows", c.Denied)
		}
		fmt.Fprintf(w, "  %s/%s -> %s/%s %s %d: %s; here %s (%s)\n", c.Src.Namespace, c.Src.Name, c.Dst.Namespace, c.Dst.Name,
			c.Protocol, c.Port, did, strings.ToLower(string(c.result.Verdict)), c.result.Reason)
	}
	return nil
}
