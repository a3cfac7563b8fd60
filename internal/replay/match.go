package replay

import "net/netip"

// ruleMatches says whether a rule matches a connection: its IP version
// and protocols, its source on the connection's source and its
// destination on the connection's destination, whichever side the
// policy governs.
func (ix *Index) ruleMatches(r rule, t traffic) bool {
	version := 6
	if t.conn.Src.Addr.Is4() {
		version = 4
	}
	switch {
	case r.ipVersion != 0 && r.ipVersion != version:
		return false
	case r.protocol != nil && *r.protocol != t.protocol:
		return false
	case r.notProtocol != nil && *r.notProtocol == t.protocol:
		return false
	}
	return ix.entityMatches(r.src, t.conn.Src, t, false) && ix.entityMatches(r.dst, t.conn.Dst, t, true)
}

// entityMatches matches one side of a rule on an endpoint. Felix matches
// by address: nets on the endpoint's address, selectors on the IP set of
// every endpoint they select (see inSelected), destination ports on the
// connection's port, services on the addresses (and, as a destination,
// ports) of the Service's EndpointSlices.
func (ix *Index) entityMatches(e entity, ep *Endpoint, t traffic, dst bool) bool {
	switch {
	case len(e.nets) > 0 && !covered(e.nets, ep.Addr):
		return false
	case covered(e.notNets, ep.Addr):
		return false
	case e.selector != nil && !ix.inSelected(e.selector, ep):
		return false
	case e.notSelector != nil && ix.inSelected(e.notSelector, ep):
		return false
	case e.service != nil && !ix.inService(*e.service, ep, t, dst):
		return false
	}
	if !dst {
		return true // source ports are refused when a rule is read
	}
	if !e.ports.empty() && !ix.portMatches(e.ports, e.selector, ep, t) {
		return false
	}
	return e.notPorts.empty() || !ix.portMatches(e.notPorts, nil, ep, t)
}

func covered(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// inSelected says whether an endpoint's address is in a selector's IP
// set: the addresses of the pods it selects and the nets of the network
// sets it selects (felix/labelindex). So a plain address matches a
// selector through a network set that covers it, and `notSelector:
// all()` excludes every address a network set covers.
func (ix *Index) inSelected(sel selector, ep *Endpoint) bool {
	if ep.Pod != nil && sel.matches(ix.podLabels(ep.Pod)) {
		return true
	}
	for _, s := range ix.sets {
		if covered(s.nets, ep.Addr) && sel.matches(ix.setLabels(s)) {
			return true
		}
	}
	return false
}

// inService matches a Service's endpoints: as a destination its address,
// port and protocol (Felix's IP-port set), as a source its address.
func (ix *Index) inService(svc serviceRef, ep *Endpoint, t traffic, dst bool) bool {
	for _, se := range ix.services[svc] {
		if se.addr != ep.Addr {
			continue
		}
		if !dst || (se.port == t.conn.Port && se.protocol == t.protocol) {
			return true
		}
	}
	return false
}

// portMatches matches the destination port: a number or range, or a
// named port of the destination pod with the rule's protocol. Felix
// resolves a named port on the endpoints the rule's selector selects
// that have a port of that name and protocol (felix/labelindex,
// named_port_index.go), so only a pod can match one.
func (ix *Index) portMatches(ports portList, sel selector, ep *Endpoint, t traffic) bool {
	for _, r := range ports.ranges {
		if r.lo <= t.conn.Port && t.conn.Port <= r.hi {
			return true
		}
	}
	if len(ports.names) == 0 || ep.Pod == nil {
		return false
	}
	if sel != nil && !sel.matches(ix.podLabels(ep.Pod)) {
		return false
	}
	for _, name := range ports.names {
		for _, np := range ep.Pod.Ports {
			proto, _ := protocolByName(np.Protocol)
			if np.Name == name && proto == t.protocol && np.Port == t.conn.Port {
				return true
			}
		}
	}
	return false
}
