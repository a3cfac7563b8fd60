package policies

import (
	"encoding/json"
	"slices"
)

// Labels and the annotation calico-pni writes on namespaces. They are the
// only keys of a namespace calico-pni ever changes.
const (
	// IsolatedLabel ("true") switches isolation on for a namespace. Every
	// calico-pni policy selects namespaces through it.
	IsolatedLabel = "calico-pni.io/isolated"
	// StagedLabel ("true") marks a namespace whose isolation is staged:
	// calico-pni's staged policies select it through this label, and
	// nothing is enforced.
	StagedLabel = "calico-pni.io/staged"
	// ProjectLabel holds the trusted project ID (from Rancher's guarded
	// annotation) of every namespace in a project. Policies match projects
	// with it instead of Rancher's label, which anyone who can edit the
	// namespace can change.
	ProjectLabel = "calico-pni.io/project"
	// ProjectBeforeLabel and ProjectAfterLabel carry a namespace's old and
	// new project while several namespaces move at once (transit.go); ""
	// stands for no project. Only plans of package plan write them, and
	// only for the length of one transition.
	ProjectBeforeLabel = "calico-pni.io/project-before"
	ProjectAfterLabel  = "calico-pni.io/project-after"
	// StatusAnnotation holds the namespace's Status as JSON.
	StatusAnnotation = "calico-pni.io/status"
	// LabelPrefix is the prefix of every key above.
	LabelPrefix = "calico-pni.io/"
)

// State is a namespace's isolation state.
type State string

// The states a namespace can be in.
const (
	// Isolated: the deny baseline applies, with calico-pni's exceptions.
	Isolated State = "isolated"
	// Exempt: never isolated (System project, or exempt by name).
	Exempt State = "exempt"
	// Open: not isolated (in no project, as under Rancher, or in a project
	// the rollout leaves out).
	Open State = "open"
	// Staged: what isolation would be is written as Calico staged
	// policies, evaluated against real traffic in Calico's flow logs but
	// not enforced.
	Staged State = "staged"
	// Error: something about the namespace needs an admin; Problems says
	// what and Isolated says whether the baseline applies.
	Error State = "error"
)

// Status is what calico-pni reports on each namespace, as JSON in the
// calico-pni.io/status annotation. It holds nothing that changes from one
// pass to the next unless the namespace's situation does, so it is written
// only when something real changes.
type Status struct {
	State    State  `json:"state"`
	Isolated bool   `json:"isolated"`
	Project  string `json:"project,omitempty"`
	// Tier is the Calico tier whose policies isolate the namespace:
	// calico-pni in tier mode, default otherwise (set when isolated).
	Tier string `json:"tier,omitempty"`
	// Reason says why the namespace is in its state.
	Reason string `json:"reason,omitempty"`
	// Policies lists, by their v3 names, the calico-pni policies that
	// apply to pods of the namespace (some only to certain pods).
	Policies []string `json:"policies,omitempty"`
	// Problems lists what calico-pni could not do as the namespace's
	// labels or annotations ask, and why.
	Problems []string `json:"problems,omitempty"`
	// Exposures lists the rules of policies calico-pni did not write that
	// open the namespace's walls (package exposures). They are
	// information, not problems: the namespace stays isolated.
	Exposures []Exposure `json:"exposures,omitempty"`
	// Rancher names the policies of Rancher's own project network
	// isolation in the namespace: they apply to its pods beside
	// calico-pni's walls until Rancher's isolation is switched off
	// (docs/migrate-from-rancher.md).
	Rancher []string `json:"rancher,omitempty"`
	// Transition, while the namespace moves between projects together
	// with others (transit labels), says from where to where; the status
	// that ends the move has none.
	Transition string `json:"transition,omitempty"`
	// Pending, on a staged namespace while calico-pni reads Calico's flow
	// logs (flows.enabled), says which real connections its staged walls
	// would deny. It is coarse on purpose, so that it changes only when
	// the picture does, not with every flow.
	Pending *Pending `json:"pending,omitempty"`
}

// Pending summarises the pending denies of a staged namespace: the flows
// Calico allowed that calico-pni's staged walls would deny, counted over
// the flow window (flows.window). Counts are rounded down to a power of
// ten and the peers are the three with most such flows, so that a
// namespace's status changes when the order of magnitude or the set of
// peers does, and at most once per summary interval (docs/flows.md).
type Pending struct {
	// Unavailable, when set, says why there is no flow evidence now
	// (flow logs not read, Goldmane unreachable or silent); the counts
	// are then left out.
	Unavailable string `json:"unavailable,omitempty"`
	// Flows is the number of flow log entries (one per 15-second
	// interval and side) denied by the walls, rounded down: "0", "1+",
	// "10+", "100+", ...
	Flows string `json:"flows,omitempty"`
	// TenantFlows counts, the same way, those that a tenant's own policy
	// would deny once the walls passed them on (tier mode); they do not
	// hold a promotion back.
	TenantFlows string `json:"tenantFlows,omitempty"`
	// Window is the length of the window counted over.
	Window string `json:"window,omitempty"`
	// Peers are the peers with most flows denied by the walls, sorted by
	// name; MorePeers counts the others.
	Peers     []PendingPeer `json:"peers,omitempty"`
	MorePeers int           `json:"morePeers,omitempty"`
	// ReadyAt is when the namespace's project passes the promotion gate
	// if it stays quiet (projects.promote.quietFor), rounded up to the
	// hour so that it changes at most hourly; LastDeny is the project's
	// latest unexpected pending deny, in words. `calico-pni status
	// --ready` reads both.
	ReadyAt  string `json:"readyAt,omitempty"`
	LastDeny string `json:"lastDeny,omitempty"`
}

// PendingPeer is one peer of a staged namespace's pending denies.
type PendingPeer struct {
	// Direction is ingress (the peer connects to the namespace) or egress.
	Direction string `json:"direction"`
	// Peer names the other end: "report (p-data)", "outside the cluster
	// (pub)".
	Peer string `json:"peer"`
	// Ports are the protocols and ports denied, sorted: "TCP 5432".
	Ports []string `json:"ports"`
}

// Exposure is one rule of a policy, not written by calico-pni, that lets
// other projects or outside addresses into an isolated namespace, or its
// pods out to them.
type Exposure struct {
	// Kind is the policy's kind: NetworkPolicy (Kubernetes),
	// CalicoNetworkPolicy or GlobalNetworkPolicy.
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	// Direction is ingress (lets in) or egress (lets out).
	Direction string `json:"direction"`
	// Opens says to whom, in words.
	Opens string `json:"opens"`
}

// AddProblem records a problem and puts the namespace in the error state.
func (s *Status) AddProblem(p string) {
	if !slices.Contains(s.Problems, p) {
		s.Problems = append(s.Problems, p)
	}
	s.State = Error
}

// Encode returns the annotation value.
func (s Status) Encode() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic("encoding a namespace status: " + err.Error())
	}
	return string(b)
}

// DecodeStatus reads an annotation value written by Encode.
func DecodeStatus(v string) (Status, error) {
	var s Status
	err := json.Unmarshal([]byte(v), &s)
	return s, err
}
