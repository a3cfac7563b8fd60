package replay

import (
	"strings"
	"testing"
)

// The article's probes: its running pods (not the controller pod that
// has no address), the host-network pod as its node's address, the API
// server from default/kubernetes, and the internet.
func TestClusterProbes(t *testing.T) {
	p, err := ClusterProbes(articleCluster, articleWorkloads)
	if err != nil {
		t.Fatal(err)
	}
	pods, addrs := 0, 0
	for _, e := range p.Endpoints {
		if e.Pod != nil {
			pods++
		} else {
			addrs++
		}
	}
	if pods != 14 || addrs != 3 {
		t.Errorf("%d pods and %d addresses, want the 14 running pods, kube-proxy's host network, the API server and the internet", pods, addrs)
	}
	kp, err := p.Endpoint("kube-system/kube-proxy-worker-1")
	if err != nil || kp.Pod != nil || kp.Node != "worker-1" || kp.Addr.String() != "10.0.0.21" {
		t.Errorf("the host-network pod: %+v, %v", kp, err)
	}
	redis, err := p.Endpoint("redis/redis-master-0")
	if err != nil || redis.Pod.ServiceAccount != "redis" || len(redis.Pod.Ports) != 1 || redis.Pod.Ports[0] != (NamedPort{"redis", "TCP", 6379}) {
		t.Errorf("redis: %+v, %v", redis, err)
	}
	shop, err := p.Endpoint("shop/web-6f7c9d8b4-xk2lp")
	if err != nil || shop.Pod.ServiceAccountLabels["team"] != "shop" {
		t.Errorf("web's service account labels: %+v, %v", shop, err)
	}
	toAPI, fromInternet := 0, 0
	for _, c := range p.Conns {
		if c.Dst.Name == "api-server" && c.Port == 6443 {
			toAPI++
		}
		if c.Src.Name == "internet" {
			fromInternet++
		}
	}
	if toAPI != pods || fromInternet == 0 {
		t.Errorf("%d connections to the API server on 6443 and %d from the internet", toAPI, fromInternet)
	}
}

func TestSyntheticProbes(t *testing.T) {
	s := stateOf(t, projectStart)
	s.Namespaces["kube-system"] = map[string]string{}
	s.Namespaces["r"] = map[string]string{"network-policy/role_redis": "true"}
	p, err := SyntheticProbes(s)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := p.Endpoint("kube-system/coredns")
	if err != nil || dns.Pod.Labels["k8s-app"] != "kube-dns" {
		t.Fatalf("the DNS pod: %+v, %v", dns, err)
	}
	redis, udp := 0, 0
	for _, c := range p.Conns {
		if c.Port == 6379 {
			redis++
			if c.Dst.Pod.Namespace != "r" {
				t.Errorf("%s: only r has the redis role", c)
			}
		}
		if c.Protocol == "UDP" {
			udp++
		}
	}
	if pods := len(p.Endpoints) - 2; redis != pods-1 || udp != pods-1 {
		t.Errorf("%d connections to redis and %d to DNS among %d pods", redis, udp, pods)
	}
	if _, err := SyntheticProbes(NewState()); err == nil || !strings.Contains(err.Error(), "default/kubernetes") {
		t.Errorf("without the API server's EndpointSlice: %v", err)
	}
}
