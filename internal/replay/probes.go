package replay

import (
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/calico-pni/calico-pni/internal/testbed"
)

// Probes are the endpoints of a fixture and the connections to check
// between them.
type Probes struct {
	Endpoints []*Endpoint
	Conns     []Conn
}

// Internet is the address probes use for a host outside the cluster
// (TEST-NET-2, RFC 5737).
var Internet = netip.MustParseAddr("198.51.100.7")

// Endpoint finds an endpoint by name ("namespace/pod", "internet",
// "api-server", ...) or address.
func (p *Probes) Endpoint(name string) (*Endpoint, error) {
	for _, e := range p.Endpoints {
		if e.Name == name || e.Addr.String() == name {
			return e, nil
		}
	}
	return nil, fmt.Errorf("no probe endpoint %q", name)
}

// Conn builds a connection between two endpoints named as Endpoint
// finds them.
func (p *Probes) Conn(src, dst, protocol string, port uint16) (Conn, error) {
	s, err := p.Endpoint(src)
	if err != nil {
		return Conn{}, err
	}
	d, err := p.Endpoint(dst)
	if err != nil {
		return Conn{}, err
	}
	return Conn{Src: s, Dst: d, Protocol: protocol, Port: port}, nil
}

// ClusterProbes builds the probes of cluster files (as `kubectl get -o
// yaml` prints them): every pod with an address (a host-network pod as
// the plain address of its node), an address on the internet, and the
// API server at the addresses of the EndpointSlice default/kubernetes.
// The connections: from every pod to every other pod on each of its
// container ports (TCP 80 if it has none), from every pod to the API
// server and to the internet (TCP 443), and from the internet to every
// pod on each of its ports.
func ClusterProbes(paths ...string) (*Probes, error) {
	var objs []*unstructured.Unstructured
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		o, err := testbed.DecodeObjects(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		objs = append(objs, o...)
	}
	p := &Probes{}
	saLabels := map[string]map[string]string{}
	for _, u := range objs {
		if u.GetKind() == "ServiceAccount" {
			saLabels[u.GetNamespace()+"/"+u.GetName()] = u.GetLabels()
		}
	}
	var pods []*Endpoint
	var apiPort uint16
	for _, u := range objs {
		switch u.GetKind() {
		case "Pod":
			ep, err := podProbe(u, saLabels)
			if err != nil {
				return nil, err
			}
			if ep != nil {
				p.Endpoints = append(p.Endpoints, ep)
				if ep.Pod != nil {
					pods = append(pods, ep)
				}
			}
		case "EndpointSlice":
			if u.GetNamespace() == "default" && u.GetLabels()[discoveryv1.LabelServiceName] == "kubernetes" {
				eps, port, err := apiServerProbes(u)
				if err != nil {
					return nil, err
				}
				p.Endpoints = append(p.Endpoints, eps...)
				apiPort = port
			}
		}
	}
	internet := &Endpoint{Name: "internet", Addr: Internet}
	p.Endpoints = append(p.Endpoints, internet)
	if err := p.check(); err != nil {
		return nil, err
	}
	api, _ := p.Endpoint("api-server")
	for _, src := range pods {
		for _, dst := range pods {
			if src != dst {
				p.Conns = append(p.Conns, toPorts(src, dst)...)
			}
		}
		if api != nil {
			p.Conns = append(p.Conns, Conn{Src: src, Dst: api, Protocol: "TCP", Port: apiPort})
		}
		p.Conns = append(p.Conns, Conn{Src: src, Dst: internet, Protocol: "TCP", Port: 443})
		p.Conns = append(p.Conns, toPorts(internet, src)...)
	}
	return p, nil
}

func podProbe(u *unstructured.Unstructured, saLabels map[string]map[string]string) (*Endpoint, error) {
	var pod corev1.Pod
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &pod); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	name := pod.Namespace + "/" + pod.Name
	var ips []netip.Addr
	for _, ip := range pod.Status.PodIPs {
		a, err := netip.ParseAddr(ip.IP)
		if err != nil {
			return nil, fmt.Errorf("pod %s: address %q: %w", name, ip.IP, err)
		}
		ips = append(ips, a)
	}
	if len(ips) == 0 && pod.Status.PodIP != "" {
		a, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil {
			return nil, fmt.Errorf("pod %s: address %q: %w", name, pod.Status.PodIP, err)
		}
		ips = append(ips, a)
	}
	if len(ips) == 0 {
		return nil, nil // not running: no endpoint
	}
	if pod.Spec.HostNetwork {
		// Not a Calico workload endpoint: its traffic is its node's.
		return &Endpoint{Name: name, Addr: ips[0], Node: pod.Spec.NodeName}, nil
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	p := &Pod{
		Namespace: pod.Namespace, Name: pod.Name, Labels: pod.Labels, ServiceAccount: sa,
		ServiceAccountLabels: saLabels[pod.Namespace+"/"+sa], IPs: ips, Node: pod.Spec.NodeName,
	}
	for _, c := range pod.Spec.Containers {
		for _, port := range c.Ports {
			proto := string(port.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			p.Ports = append(p.Ports, NamedPort{Name: port.Name, Protocol: proto, Port: uint16(port.ContainerPort)})
		}
	}
	return &Endpoint{Name: name, Addr: ips[0], Pod: p, Node: pod.Spec.NodeName}, nil
}

// apiServerProbes are the endpoints of the kubernetes Service, named
// api-server (then api-server-2, ...), and their port.
func apiServerProbes(u *unstructured.Unstructured) ([]*Endpoint, uint16, error) {
	var es discoveryv1.EndpointSlice
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &es); err != nil {
		return nil, 0, fmt.Errorf("EndpointSlice default/kubernetes: %w", err)
	}
	port := uint16(443)
	if len(es.Ports) > 0 && es.Ports[0].Port != nil {
		port = uint16(*es.Ports[0].Port)
	}
	var out []*Endpoint
	for _, ep := range es.Endpoints {
		for _, a := range ep.Addresses {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return nil, 0, fmt.Errorf("EndpointSlice default/kubernetes: address %q: %w", a, err)
			}
			name := "api-server"
			if len(out) > 0 {
				name = fmt.Sprintf("api-server-%d", len(out)+1)
			}
			out = append(out, &Endpoint{Name: name, Addr: addr})
		}
	}
	return out, port, nil
}

// toPorts connects src to each container port of a pod (TCP 80 if it
// has none).
func toPorts(src, dst *Endpoint) []Conn {
	if len(dst.Pod.Ports) == 0 {
		return []Conn{{Src: src, Dst: dst, Protocol: "TCP", Port: 80}}
	}
	var out []Conn
	for _, p := range dst.Pod.Ports {
		out = append(out, Conn{Src: src, Dst: dst, Protocol: p.Protocol, Port: p.Port})
	}
	return out
}

// check refuses probes the evaluator would misjudge: two endpoints at
// one address (selectors match by address).
func (p *Probes) check() error {
	seen := map[netip.Addr]string{}
	for _, e := range p.Endpoints {
		if other, ok := seen[e.Addr]; ok && (e.Pod != nil || p.podAt(e.Addr)) {
			return fmt.Errorf("probe endpoints %s and %s share the address %s", other, e.Name, e.Addr)
		}
		seen[e.Addr] = e.Name
	}
	return nil
}

func (p *Probes) podAt(a netip.Addr) bool {
	for _, e := range p.Endpoints {
		if e.Pod != nil && e.Addr == a {
			return true
		}
	}
	return false
}

// SyntheticProbes builds the probes of a synthetic cluster, as the soak
// has them: one pod in every namespace of the states (labels app=probe,
// service account default), the cluster's DNS pod, Prometheus and
// Rancher's agent where their namespaces exist, the API server at the
// addresses of the states' EndpointSlice default/kubernetes, and an
// address on the internet. The connections: pod to pod TCP 80, and TCP
// 6379 to namespaces that carry the redis role label in any of the
// states; UDP 53 to the DNS pod; each pod to the API server and to the
// internet (TCP 443), and from the internet to each pod (TCP 80).
func SyntheticProbes(states ...*State) (*Probes, error) {
	namespaces := map[string]bool{}
	redis := map[string]bool{}
	var api []*Endpoint
	var apiPort uint16
	for _, s := range states {
		for ns, l := range s.Namespaces {
			namespaces[ns] = true
			if _, ok := l["network-policy/role_redis"]; ok {
				redis[ns] = true
			}
		}
		for k, u := range s.Objects {
			if api == nil && k.Resource == "endpointslices" && k.Namespace == "default" && u.GetLabels()[discoveryv1.LabelServiceName] == "kubernetes" {
				eps, port, err := apiServerProbes(u)
				if err != nil {
					return nil, err
				}
				api, apiPort = eps, port
			}
		}
	}
	if len(api) == 0 {
		return nil, fmt.Errorf("no state holds the EndpointSlice default/kubernetes, which says where the API server is")
	}
	p := &Probes{}
	var pods []*Endpoint
	addPod := func(pod *Pod) {
		n := len(pods) + 1
		pod.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 244, byte(n / 250), byte(n%250 + 1)})}
		ep := &Endpoint{Name: pod.Namespace + "/" + pod.Name, Addr: pod.IPs[0], Pod: pod}
		pods = append(pods, ep)
		p.Endpoints = append(p.Endpoints, ep)
	}
	for _, ns := range slices.Sorted(maps.Keys(namespaces)) {
		addPod(&Pod{Namespace: ns, Name: "probe", Labels: map[string]string{"app": "probe"}, ServiceAccount: "default"})
	}
	var dns *Endpoint
	for _, sp := range specialPods {
		if namespaces[sp.Namespace] {
			pod := sp
			pod.Labels = maps.Clone(sp.Labels)
			addPod(&pod)
			if pod.Name == "coredns" {
				dns = pods[len(pods)-1]
			}
		}
	}
	internet := &Endpoint{Name: "internet", Addr: Internet}
	p.Endpoints = append(p.Endpoints, api...)
	p.Endpoints = append(p.Endpoints, internet)
	for _, a := range pods {
		for _, b := range pods {
			if a == b {
				continue
			}
			p.Conns = append(p.Conns, Conn{Src: a, Dst: b, Protocol: "TCP", Port: 80})
			if redis[b.Pod.Namespace] {
				p.Conns = append(p.Conns, Conn{Src: a, Dst: b, Protocol: "TCP", Port: 6379})
			}
		}
		if dns != nil && dns != a {
			p.Conns = append(p.Conns, Conn{Src: a, Dst: dns, Protocol: "UDP", Port: 53})
		}
		p.Conns = append(p.Conns, Conn{Src: a, Dst: api[0], Protocol: "TCP", Port: apiPort},
			Conn{Src: a, Dst: internet, Protocol: "TCP", Port: 443}, Conn{Src: internet, Dst: a, Protocol: "TCP", Port: 80})
	}
	return p, p.check()
}

// specialPods are the pods of the platform a synthetic cluster has.
var specialPods = []Pod{
	{Namespace: "kube-system", Name: "coredns", ServiceAccount: "coredns", Labels: map[string]string{"k8s-app": "kube-dns"}},
	{Namespace: "cattle-monitoring-system", Name: "prometheus", ServiceAccount: "rancher-monitoring-prometheus", Labels: map[string]string{"app": "prometheus"}},
	{Namespace: "cattle-system", Name: "cattle-agent", ServiceAccount: "cattle", Labels: map[string]string{"app": "cattle-agent"}},
}
