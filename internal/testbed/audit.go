package testbed

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The test API server keeps an audit log of every write to namespaces,
// Calico objects, Kubernetes NetworkPolicies and EndpointSlices (what
// decides connections), with the request and the stored object, and of lease
// writes (leader election). It is the wire record calico-pni's safety
// tests read: which writes the API server accepted, in which order, and
// from whom. kube-apiserver writes it synchronously (log backend, blocking
// mode), shortly after it answers the request.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted]
rules:
  - level: None
    verbs: [get, list, watch]
  - level: RequestResponse
    resources:
      - group: ""
        resources: [namespaces, namespaces/status, namespaces/finalize]
      - group: crd.projectcalico.org
      - group: projectcalico.org
      - group: networking.k8s.io
        resources: [networkpolicies]
      - group: discovery.k8s.io
        resources: [endpointslices]
  - level: Metadata
    resources:
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
`

// configureAudit writes the audit policy into dir and returns the flags
// that turn the log on.
func configureAudit(dir string) (map[string]string, string, error) {
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return nil, "", err
	}
	log := filepath.Join(dir, "audit.log")
	return map[string]string{
		"audit-policy-file":  policy,
		"audit-log-path":     log,
		"audit-log-format":   "json",
		"audit-log-mode":     "blocking",
		"audit-log-maxsize":  "0",
		"audit-log-compress": "false",
	}, log, nil
}

// Write is one write the API server accepted.
type Write struct {
	// Writer is the user who made it (the impersonated user, when the
	// client impersonated one).
	Writer string
	// Verb is create, update, patch or delete.
	Verb string
	// APIGroup and APIVersion are those of the request ("" and "v1" for
	// the core group).
	APIGroup, APIVersion string
	// Resource is the plural resource, with its subresource if any
	// ("namespaces/status").
	Resource string
	// Namespace is the namespace of a namespaced object; for a Namespace
	// the API server records the namespace's own name.
	Namespace string
	Name      string
	// Code is the HTTP status of the answer (the log keeps only 2xx).
	Code int
	// Object is what the API server stored (nil when the log has no
	// body, for a delete whose answer is a Status).
	Object *unstructured.Unstructured
	// ResourceVersion is that of Object ("" without one): one etcd
	// revision counter orders every commit. A no-op update answers with
	// the version it left in place, and a delete that removed the object
	// answers without one, or with the object's last version.
	ResourceVersion string
	// Request is the request body: the patch of a patch, the object of a
	// create or update.
	Request json.RawMessage
	// Received and Done are when the API server received the request
	// (requestReceivedTimestamp) and finished it (stageTimestamp of the
	// stage ResponseComplete); the write was committed in between.
	Received, Done time.Time
}

// String is a short form for test messages.
func (w Write) String() string {
	return fmt.Sprintf("%s %s %s %s", w.Writer, w.Verb, w.Resource, w.Name)
}

// WireLog reads the API server's audit log.
type WireLog struct {
	path string
}

// Wire returns the API server's record of writes.
func (e *Env) Wire() *WireLog { return &WireLog{path: e.auditPath} }

// Mark returns the position at the end of the log: Writes(mark) then
// returns only what comes after.
func (l *WireLog) Mark() (int64, error) {
	fi, err := os.Stat(l.path)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Writes returns the writes the API server accepted after the mark, in
// the order it received them. A write that a client sent after another
// returned comes after it; writes that overlapped in time were concurrent,
// and their order here is one in which they could have been committed.
// (The commit order itself is not in the record: the delete of a custom
// resource is answered with a Status, without a resourceVersion.)
func (l *WireLog) Writes(mark int64) ([]Write, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, fmt.Errorf("the API server's audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(mark, 0); err != nil {
		return nil, err
	}
	out, err := ReadWrites(f)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(out, func(a, b Write) int { return a.Received.Compare(b.Received) })
	return out, nil
}

// ReadWrites parses audit events, one JSON object a line (the API
// server's log format), and returns the writes that succeeded, in the
// order of the log.
func ReadWrites(r io.Reader) ([]Write, error) {
	var out []Write
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		w, ok, err := parseAuditEvent(line)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, w)
		}
	}
	return out, sc.Err()
}

type auditEvent struct {
	Stage string `json:"stage"`
	Verb  string `json:"verb"`
	User  struct {
		Username string `json:"username"`
	} `json:"user"`
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		APIGroup    string `json:"apiGroup"`
		APIVersion  string `json:"apiVersion"`
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestObject            json.RawMessage `json:"requestObject"`
	ResponseObject           map[string]any  `json:"responseObject"`
	RequestReceivedTimestamp time.Time       `json:"requestReceivedTimestamp"`
	StageTimestamp           time.Time       `json:"stageTimestamp"`
}

func parseAuditEvent(line []byte) (Write, bool, error) {
	var ev auditEvent
	if err := json.Unmarshal(line, &ev); err != nil {
		return Write{}, false, fmt.Errorf("audit log line %q: %w", truncate(string(line), 200), err)
	}
	switch ev.Verb {
	case "create", "update", "patch", "delete", "deletecollection":
	default:
		return Write{}, false, nil
	}
	// A write answered with an error committed nothing.
	if ev.Stage != "ResponseComplete" || ev.ObjectRef == nil || ev.ResponseStatus == nil || ev.ResponseStatus.Code < 200 || ev.ResponseStatus.Code >= 300 {
		return Write{}, false, nil
	}
	ref := ev.ObjectRef
	w := Write{
		Writer: ev.User.Username, Verb: ev.Verb, APIGroup: ref.APIGroup, APIVersion: ref.APIVersion,
		Resource: ref.Resource, Namespace: ref.Namespace, Name: ref.Name, Code: ev.ResponseStatus.Code,
		Request: ev.RequestObject, Received: ev.RequestReceivedTimestamp, Done: ev.StageTimestamp,
	}
	if ev.ImpersonatedUser != nil && ev.ImpersonatedUser.Username != "" {
		w.Writer = ev.ImpersonatedUser.Username
	}
	if ev.ObjectRef.Subresource != "" {
		w.Resource += "/" + ev.ObjectRef.Subresource
	}
	if ev.ResponseObject != nil && ev.ResponseObject["kind"] != "Status" {
		w.Object = &unstructured.Unstructured{Object: ev.ResponseObject}
		w.ResourceVersion = w.Object.GetResourceVersion()
	}
	return w, true, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// As returns a copy of cfg that acts as the given user (with the admin
// rights of system:masters), so that the wire record tells writers apart.
func As(cfg *rest.Config, user string) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:masters", "system:authenticated"}}
	return out
}

// WriteKubeconfigAs writes a kubeconfig into dir whose requests act as the
// given user, for daemons run as processes, and returns its path.
func (e *Env) WriteKubeconfigAs(dir, user string) (string, error) {
	cfg, err := clientcmd.Load(e.env.KubeConfig)
	if err != nil {
		return "", err
	}
	for _, auth := range cfg.AuthInfos {
		auth.Impersonate = user
		auth.ImpersonateGroups = []string{"system:masters", "system:authenticated"}
	}
	path := filepath.Join(dir, "kubeconfig-"+user)
	return path, clientcmd.WriteToFile(*cfg, path)
}
