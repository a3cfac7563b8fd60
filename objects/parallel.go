package objects

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"runtime"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/calico-pni/calico-pni/policies"
)

// Reading a large List in parallel. `kubectl get -A -o yaml` prints one
// List document; decoding YAML is most of the time explain spends on a
// large cluster, so the items of such a List are cut into chunks that are
// decoded and read on every CPU, each by a Reader of its own, and the
// Readers are merged in order. Anything else, or anything that does not
// decode this way, is read one object at a time, which also gives the
// precise error.

// minParallel is the size below which a file is read in one go.
const minParallel = 1 << 20

// readList reads data as one List in parallel. It returns false when data
// is not a single List document this reader can cut.
func (r *Reader) readList(source string, data []byte) (bool, error) {
	if len(data) < minParallel {
		return false, nil
	}
	var chunks [][]byte
	var ok bool
	jsonList := bytes.HasPrefix(bytes.TrimSpace(data), []byte("{"))
	if jsonList {
		chunks, ok = jsonItems(data)
	} else {
		chunks, ok = yamlItems(data)
	}
	if !ok {
		return false, nil
	}
	workers := runtime.GOMAXPROCS(0)
	parts := splitEven(len(chunks), workers*4)
	readers := make([]*Reader, len(parts))
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				sub := NewReader()
				sub.KeepSnapshot = r.KeepSnapshot
				readers[p] = sub
				errs[p] = sub.readItems(source, chunks, parts[p][0], parts[p][1], jsonList)
			}
		}()
	}
	for p := range parts {
		next <- p
	}
	close(next)
	wg.Wait()
	for p, sub := range readers {
		if errs[p] != nil {
			return true, errs[p]
		}
		if err := r.merge(sub); err != nil {
			return true, err
		}
	}
	return true, nil
}

// readItems reads items [from, to) of a List.
func (r *Reader) readItems(source string, items [][]byte, from, to int, jsonList bool) error {
	for i := from; i < to; i++ {
		var obj map[string]any
		var err error
		if jsonList {
			err = json.Unmarshal(items[i], &obj)
		} else {
			var seq []map[string]any
			err = yaml.Unmarshal(items[i], &seq)
			if err == nil && len(seq) == 1 {
				obj = seq[0]
			} else if err == nil {
				err = fmt.Errorf("not one object")
			}
		}
		where := fmt.Sprintf("%s: document 1, items[%d]", source, i)
		if err != nil {
			return fmt.Errorf("%s: not valid YAML or JSON: %w", where, err)
		}
		if obj == nil {
			return fmt.Errorf("%s: not an object", where)
		}
		if err := r.Add(where, obj); err != nil {
			return err
		}
	}
	return nil
}

// jsonItems cuts a JSON List into its items.
func jsonItems(data []byte) ([][]byte, bool) {
	var list struct {
		Kind  string            `json:"kind"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &list); err != nil || !strings.HasSuffix(list.Kind, "List") {
		return nil, false
	}
	out := make([][]byte, len(list.Items))
	for i, item := range list.Items {
		out[i] = item
	}
	return out, true
}

// yamlItems cuts a YAML List as kubectl prints it: top-level keys at
// column 0, "items:" followed by items that each start with "- " at
// column 0 and go on with indented lines.
func yamlItems(data []byte) ([][]byte, bool) {
	lines := bytes.SplitAfter(data, []byte("\n"))
	var items [][]byte
	inItems, sawList := false, false
	start := -1
	flush := func(end int) {
		if start >= 0 {
			items = append(items, bytes.Join(lines[start:end], nil))
			start = -1
		}
	}
	for i, line := range lines {
		trimmed := bytes.TrimRight(line, "\r\n")
		switch {
		case len(trimmed) == 0 || trimmed[0] == '#':
			continue
		case bytes.Equal(trimmed, []byte("---")) || bytes.Equal(trimmed, []byte("...")):
			if i > 0 && len(items) > 0 {
				return nil, false // more than one document
			}
		case bytes.HasPrefix(trimmed, []byte("- ")) && inItems:
			flush(i)
			start = i
		case trimmed[0] == ' ':
			if inItems && start < 0 {
				return nil, false
			}
		default:
			flush(i)
			inItems = bytes.Equal(trimmed, []byte("items:"))
			if bytes.HasPrefix(trimmed, []byte("kind: ")) && bytes.HasSuffix(trimmed, []byte("List")) {
				sawList = true
			}
		}
	}
	flush(len(lines))
	return items, sawList && len(items) > 0
}

func splitEven(n, parts int) [][2]int {
	if parts > n {
		parts = max(n, 1)
	}
	out := make([][2]int, 0, parts)
	for p := range parts {
		out = append(out, [2]int{n * p / parts, n * (p + 1) / parts})
	}
	return out
}

// merge adds what another Reader read, after what this one read.
func (r *Reader) merge(o *Reader) error {
	for key, at := range o.seenAt {
		if _, ok := r.seenAt[key]; ok {
			return fmt.Errorf("%s: this object appears twice", at)
		}
		r.seenAt[key] = at
	}
	c, oc := &r.cluster, &o.cluster
	c.Namespaces = append(c.Namespaces, oc.Namespaces...)
	c.Pods = append(c.Pods, oc.Pods...)
	c.ServiceAccounts = append(c.ServiceAccounts, oc.ServiceAccounts...)
	c.Nodes = append(c.Nodes, oc.Nodes...)
	c.Tiers = append(c.Tiers, oc.Tiers...)
	c.Policies = append(c.Policies, oc.Policies...)
	c.NetworkSets = append(c.NetworkSets, oc.NetworkSets...)
	c.HostEndpoints = append(c.HostEndpoints, oc.HostEndpoints...)
	c.Unsupported = append(c.Unsupported, oc.Unsupported...)
	if oc.EndpointToHostAction != "" {
		c.EndpointToHostAction = oc.EndpointToHostAction
	}
	r.notes = append(r.notes, o.notes...)
	if o.snap != nil {
		if r.snap == nil {
			r.snap = &policies.SnapshotBuilder{}
		}
		r.snap.Merge(o.snap)
	}
	for group, byKey := range o.calico {
		if r.calico[group] == nil {
			r.calico[group] = map[string]calicoPolicy{}
		}
		maps.Copy(r.calico[group], byKey)
	}
	maps.Copy(r.knpFromV3, o.knpFromV3)
	maps.Copy(r.knpSeen, o.knpSeen)
	for _, key := range o.sliceOrder {
		if mine, ok := r.slices[key]; ok {
			mine.Endpoints = append(mine.Endpoints, o.slices[key].Endpoints...)
			continue
		}
		r.slices[key] = o.slices[key]
		r.sliceOrder = append(r.sliceOrder, key)
	}
	if r.version == "" {
		r.version = o.version
	}
	return nil
}
