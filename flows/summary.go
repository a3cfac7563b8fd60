package flows

import (
	"cmp"
	"slices"
	"time"
)

// ProjectOf returns the Rancher project of a namespace, "" for none (or a
// namespace calico-pni does not know). Summaries and the gate ask it when
// they run, so that a namespace moved to another project counts there.
type ProjectOf func(namespace string) string

// Row is one line of the flat table of pending denies.
type Row struct {
	Project   string
	Namespace string
	Direction Direction
	Cause     Cause
	// PeerProject is the peer namespace's project.
	PeerProject   string
	PeerNamespace string
	PeerType      string
	PeerName      string
	Port          int
	Protocol      string
	Policy        string
	Folded        bool
	Flows         int64
	Connections   int64
	Last          time.Time
}

// Peer is a peer of a namespace with its counts.
type Peer struct {
	Project, Namespace string
	// Type and Name identify peers outside any namespace ("Network pub").
	Type, Name         string
	Flows, Connections int64
}

// NamespaceSummary is the pending denies of one namespace. The totals are
// those of the walls; Tenant* count those of later tiers (CauseTenant).
type NamespaceSummary struct {
	Namespace, Project             string
	Flows, Connections             int64
	TenantFlows, TenantConnections int64
	Last                           time.Time
	// TopPeers are the peers with most wall denies, most first.
	TopPeers []Peer
}

// ProjectSummary is the pending denies of one project's namespaces.
type ProjectSummary struct {
	Project string
	// Namespaces with pending denies, sorted.
	Namespaces                     []string
	Flows, Connections             int64
	TenantFlows, TenantConnections int64
	Last                           time.Time
}

// Summary is every view of the pending denies of a window.
type Summary struct {
	Rows       []Row
	Namespaces []NamespaceSummary
	Projects   []ProjectSummary
}

// Summarize groups pending denies (Store.Pending) by namespace and by
// project, keeping topPeers peers per namespace (0: all).
func Summarize(pending []KeyCounts, projectOf ProjectOf, topPeers int) Summary {
	projectOf = cached(projectOf)
	sum := Summary{Rows: make([]Row, 0, len(pending))}
	namespaces := map[string]*NamespaceSummary{}
	peers := map[string]map[Peer]Counts{}
	for _, p := range pending {
		k, c := p.Key, p.Counts
		row := Row{
			Project: projectOf(k.Namespace), Namespace: k.Namespace, Direction: k.Direction, Cause: k.Cause,
			PeerNamespace: k.PeerNamespace, PeerType: k.PeerType, PeerName: k.PeerName,
			Port: k.Port, Protocol: k.Protocol, Policy: k.Policy, Folded: k.Folded,
			Flows: c.Flows, Connections: c.Connections, Last: c.Last,
		}
		if k.PeerNamespace != "" {
			row.PeerProject = projectOf(k.PeerNamespace)
		}
		sum.Rows = append(sum.Rows, row)

		ns := namespaces[k.Namespace]
		if ns == nil {
			ns = &NamespaceSummary{Namespace: k.Namespace, Project: row.Project}
			namespaces[k.Namespace] = ns
			peers[k.Namespace] = map[Peer]Counts{}
		}
		if c.Last.After(ns.Last) {
			ns.Last = c.Last
		}
		if k.Cause == CauseTenant {
			ns.TenantFlows += c.Flows
			ns.TenantConnections += c.Connections
			continue
		}
		ns.Flows += c.Flows
		ns.Connections += c.Connections
		if !k.Folded {
			p := Peer{Project: row.PeerProject, Namespace: k.PeerNamespace, Type: k.PeerType, Name: k.PeerName}
			pc := peers[k.Namespace][p]
			pc.Flows += c.Flows
			pc.Connections += c.Connections
			peers[k.Namespace][p] = pc
		}
	}
	slices.SortFunc(sum.Rows, compareRows)
	for name, ns := range namespaces {
		ns.TopPeers = topOf(peers[name], topPeers)
		sum.Namespaces = append(sum.Namespaces, *ns)
	}
	slices.SortFunc(sum.Namespaces, func(a, b NamespaceSummary) int { return cmp.Compare(a.Namespace, b.Namespace) })
	sum.Projects = byProject(sum.Namespaces)
	return sum
}

// cached asks projectOf once per namespace.
func cached(projectOf ProjectOf) ProjectOf {
	if projectOf == nil {
		return func(string) string { return "" }
	}
	known := map[string]string{}
	return func(ns string) string {
		p, ok := known[ns]
		if !ok {
			p = projectOf(ns)
			known[ns] = p
		}
		return p
	}
}

func topOf(peers map[Peer]Counts, n int) []Peer {
	out := make([]Peer, 0, len(peers))
	for p, c := range peers {
		p.Flows, p.Connections = c.Flows, c.Connections
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int {
		switch {
		case a.Flows != b.Flows:
			return cmp.Compare(b.Flows, a.Flows)
		case a.Namespace != b.Namespace:
			return cmp.Compare(a.Namespace, b.Namespace)
		case a.Type != b.Type:
			return cmp.Compare(a.Type, b.Type)
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if n > 0 && len(out) > n {
		out = out[:n]
	}
	return out
}

func byProject(namespaces []NamespaceSummary) []ProjectSummary {
	index := map[string]int{}
	var out []ProjectSummary
	for _, ns := range namespaces {
		i, ok := index[ns.Project]
		if !ok {
			i = len(out)
			index[ns.Project] = i
			out = append(out, ProjectSummary{Project: ns.Project})
		}
		p := &out[i]
		p.Namespaces = append(p.Namespaces, ns.Namespace)
		p.Flows += ns.Flows
		p.Connections += ns.Connections
		p.TenantFlows += ns.TenantFlows
		p.TenantConnections += ns.TenantConnections
		if ns.Last.After(p.Last) {
			p.Last = ns.Last
		}
	}
	slices.SortFunc(out, func(a, b ProjectSummary) int { return cmp.Compare(a.Project, b.Project) })
	return out
}

// compareRows orders rows by project, namespace, direction, peer, port,
// protocol, cause and policy, comparing no more fields than it must.
func compareRows(a, b Row) int {
	switch {
	case a.Project != b.Project:
		return cmp.Compare(a.Project, b.Project)
	case a.Namespace != b.Namespace:
		return cmp.Compare(a.Namespace, b.Namespace)
	case a.Direction != b.Direction:
		return cmp.Compare(a.Direction, b.Direction)
	case a.PeerNamespace != b.PeerNamespace:
		return cmp.Compare(a.PeerNamespace, b.PeerNamespace)
	case a.PeerType != b.PeerType:
		return cmp.Compare(a.PeerType, b.PeerType)
	case a.PeerName != b.PeerName:
		return cmp.Compare(a.PeerName, b.PeerName)
	case a.Port != b.Port:
		return cmp.Compare(a.Port, b.Port)
	case a.Protocol != b.Protocol:
		return cmp.Compare(a.Protocol, b.Protocol)
	case a.Cause != b.Cause:
		return cmp.Compare(a.Cause, b.Cause)
	case a.Policy != b.Policy:
		return cmp.Compare(a.Policy, b.Policy)
	}
	return boolCompare(a.Folded, b.Folded)
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
