// Command propagation measures, on the test bed's real API server, how
// long a committed write takes to reach a watcher of its kind, and how
// often a watcher of one kind sees a write before a watcher of another
// kind sees a write committed earlier: the part of the path from the API
// server to Felix that the test bed has (Typha and Felix watch each kind
// apart, as these watchers do). It makes the writes of a cold start —
// policies, then namespace labels, a step after the other, as calico-pni's
// plans do, with no wait between the steps — and reports the delays and
// the overtakes. docs/design.md uses the figures to bound --settle.
//
//	go run ./internal/propagation -namespaces 2000 -policies 200 -rounds 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/internal/testbed"
)

func main() {
	namespaces := flag.Int("namespaces", 2000, "namespaces labelled in each round")
	policies := flag.Int("policies", 200, "policies created in each round")
	rounds := flag.Int("rounds", 5, "rounds of policies then namespaces")
	workers := flag.Int("workers", 16, "writes at once, as calico-pni's --write-workers")
	flag.Parse()
	if err := run(*namespaces, *policies, *rounds, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "propagation:", err)
		os.Exit(1)
	}
}

// event is one write as the writer and the watcher saw it.
type event struct {
	kind      string
	rv        int64
	committed time.Time // when the writer had the answer
	seen      time.Time // when the watcher of its kind saw it
}

func run(namespaces, nPolicies, rounds, workers int) error {
	e, err := testbed.Start(testbed.Options{CalicoV1: true, CalicoVersion: "v3.28.5"})
	if err != nil {
		return err
	}
	defer e.Stop()
	ctx := context.Background()
	api := calico.API{Group: calico.GroupV1, Version: calico.Version{Major: 3, Minor: 28}}
	gnp := e.Dynamic.Resource(api.Resource("GlobalNetworkPolicy"))
	for i := range namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("ns-%05d", i)}}
		if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	var mu sync.Mutex
	seen := map[string]time.Time{} // kind/rv -> when watched
	watchKind := func(kind string, w watch.Interface) {
		for ev := range w.ResultChan() {
			u, ok := ev.Object.(interface{ GetResourceVersion() string })
			if !ok {
				continue
			}
			mu.Lock()
			seen[kind+"/"+u.GetResourceVersion()] = time.Now()
			mu.Unlock()
		}
	}
	nsWatch, err := e.Kube.CoreV1().Namespaces().Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer nsWatch.Stop()
	polWatch, err := gnp.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	defer polWatch.Stop()
	go watchKind("Namespace", nsWatch)
	go watchKind("GlobalNetworkPolicy", polWatch)

	var events []event
	record := func(kind, rv string) {
		n, _ := strconv.ParseInt(rv, 10, 64)
		mu.Lock()
		events = append(events, event{kind: kind, rv: n, committed: time.Now()})
		mu.Unlock()
	}
	for r := range rounds {
		if err := parallel(workers, nPolicies, func(i int) error {
			p := calico.Policy{Name: fmt.Sprintf("pni-r%d-%04d", r, i), Class: calico.ClassAllow, Spec: calico.GlobalNetworkPolicySpec{
				NamespaceSelector: "calico-pni.io/isolated == 'true'", Types: []calico.PolicyType{calico.Ingress},
				Ingress: []calico.Rule{{Action: calico.Allow}},
			}}
			u, err := gnp.Create(ctx, api.Object(p), metav1.CreateOptions{})
			if err == nil {
				record("GlobalNetworkPolicy", u.GetResourceVersion())
			}
			return err
		}); err != nil {
			return err
		}
		if err := parallel(workers, namespaces, func(i int) error {
			patch := fmt.Sprintf(`{"metadata":{"labels":{"calico-pni.io/round":"%d"}}}`, r)
			ns, err := e.Kube.CoreV1().Namespaces().Patch(ctx, fmt.Sprintf("ns-%05d", i), types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			if err == nil {
				record("Namespace", ns.ResourceVersion)
			}
			return err
		}); err != nil {
			return err
		}
	}
	// Wait for the watchers to see every write.
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		missing := 0
		for i := range events {
			if t, ok := seen[events[i].kind+"/"+strconv.FormatInt(events[i].rv, 10)]; ok {
				events[i].seen = t
			} else {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d writes never reached their watcher", missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
	report(events)
	return nil
}

func parallel(workers, n int, fn func(int) error) error {
	var g errgroup.Group
	g.SetLimit(workers)
	for i := range n {
		g.Go(func() error { return fn(i) })
	}
	return g.Wait()
}

// report prints the delay from commit to watcher by kind, and the
// overtakes: a write seen by its watcher before a write of the other kind
// committed earlier was seen by its own.
func report(events []event) {
	byKind := map[string][]time.Duration{}
	for _, ev := range events {
		byKind[ev.kind] = append(byKind[ev.kind], ev.seen.Sub(ev.committed))
	}
	fmt.Println("| kind | writes | delay p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	for _, kind := range []string{"GlobalNetworkPolicy", "Namespace"} {
		ds := byKind[kind]
		slices.Sort(ds)
		fmt.Printf("| %s | %d | %s | %s | %s |\n", kind, len(ds), pct(ds, 50), pct(ds, 99), ds[len(ds)-1].Round(100*time.Microsecond))
	}
	sort.Slice(events, func(i, j int) bool { return events[i].rv < events[j].rv })
	// For each write, the latest moment a write of the other kind
	// committed before it was seen: seeing this one earlier is an
	// overtake, by the difference.
	latestSeen := map[string]time.Time{}
	overtakes, worst := 0, time.Duration(0)
	for _, ev := range events {
		other := "Namespace"
		if ev.kind == "Namespace" {
			other = "GlobalNetworkPolicy"
		}
		if t := latestSeen[other]; t.After(ev.seen) {
			overtakes++
			worst = max(worst, t.Sub(ev.seen))
		}
		if ev.seen.After(latestSeen[ev.kind]) {
			latestSeen[ev.kind] = ev.seen
		}
	}
	fmt.Printf("\nwrites seen before a write of the other kind committed earlier: %d of %d (the most by %s)\n", overtakes, len(events), worst.Round(100*time.Microsecond))
}

func pct(ds []time.Duration, p int) time.Duration {
	return ds[(len(ds)-1)*p/100].Round(100 * time.Microsecond)
}
