package flows

import (
	"strings"

	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/policies"
)

// Cause says whose policy would deny a pending deny.
type Cause string

// The causes.
const (
	// CauseWall: calico-pni's staged walls would deny the connection (no
	// exception of calico-pni's covers it).
	CauseWall Cause = "wall"
	// CauseTenant: the walls would let it through (Pass, tier mode), and
	// a policy in a later tier would deny it with staged policies in place.
	CauseTenant Cause = "tenant"
)

// Key is what pending denies are counted by: one side of a connection
// (the namespace whose policies would deny it, and the direction), its
// peer, port and protocol, and the policy that would decide.
type Key struct {
	Cause     Cause
	Direction Direction
	// Namespace is the namespace whose policies would deny: the
	// destination's for ingress, the source's for egress.
	Namespace string
	// PeerNamespace is the other end's namespace, "" for an endpoint in
	// none (an address outside the cluster, a host).
	PeerNamespace string
	// PeerType is the other end's endpoint type; PeerName is its name for
	// endpoints that are not pods ("pub" or "pvt" for a Network).
	PeerType string
	PeerName string
	Port     int
	Protocol string
	// Policy names what decides: for CauseWall the calico-pni staged
	// policy charged with the deny ("pni-tier-staged-deny-ingress"), for
	// CauseTenant the denying policy (PolicyString).
	Policy string
	// Folded marks the key that stands for every key of its namespace,
	// cause and direction that did not fit in memory (StoreOptions.MaxKeys):
	// the fields after Namespace are empty.
	Folded bool
}

// Prefixes of the names of calico-pni's staged policies: in the default
// tier and in calico-pni's own tier (policies/generate.go).
var stagedPrefixes = []string{policies.NamePrefix + "staged-", policies.TierNamePrefix + "staged-"}

// IsStagedWall reports whether a hit is one of calico-pni's staged
// policies.
func IsStagedWall(h Hit) bool {
	if h.Kind != KindStagedGlobalNetworkPolicy {
		return false
	}
	for _, p := range stagedPrefixes {
		if strings.HasPrefix(h.Name, p) {
			return true
		}
	}
	return false
}

// Classify says whether a flow is a pending deny, and what it is counted
// by. A pending deny is a flow Felix allowed whose pending trace (the
// verdict with staged policies in place) ends in Deny because of
// calico-pni's staged policies (CauseWall), or, in tier mode, after they
// passed it on (CauseTenant). Flows Felix denied already are not pending
// denies: enforcing isolation changes nothing for them.
//
// Calico's trace (Goldmane's PolicyTrace, seen on Calico 3.30+): a wall's
// deny reads as an EndOfTier hit with action Deny in the walls' tier
// (calico-pni in tier mode, default otherwise) whose trigger is the first
// staged policy that selected the endpoint; calico-pni's policies hold no
// Deny rules, but a Deny hit by one of them would count the same.
func Classify(f Flow) (Key, bool) {
	if f.Action != "allow" {
		return Key{}, false
	}
	decision, ok := Decision(f.Pending)
	if !ok || decision.Action != "deny" {
		return Key{}, false
	}
	key := sideKey(f)
	switch {
	case wallDeny(decision):
		key.Cause = CauseWall
		key.Policy = decision.Name
		if decision.Kind == KindEndOfTier {
			key.Policy = ""
			if decision.Trigger != nil {
				key.Policy = decision.Trigger.Name
			}
		}
	case passedByWalls(f.Pending) && decision.Tier != config.TierName:
		key.Cause = CauseTenant
		key.Policy = PolicyString(decision)
	default:
		return Key{}, false
	}
	return key, true
}

// wallDeny reports whether the deciding hit of a pending trace is
// calico-pni's: a Deny rule of a staged wall, the end of calico-pni's own
// tier (it holds calico-pni's policies only), or the end of another tier
// charged to a staged wall.
func wallDeny(h Hit) bool {
	if h.Kind != KindEndOfTier {
		return IsStagedWall(h)
	}
	if h.Tier == config.TierName {
		return true
	}
	return h.Trigger != nil && IsStagedWall(*h.Trigger)
}

// passedByWalls reports whether a staged wall passed the traffic on to
// the next tier.
func passedByWalls(trace []Hit) bool {
	for _, h := range trace {
		if h.Action != "pass" {
			continue
		}
		if IsStagedWall(h) || (h.Kind == KindEndOfTier && h.Tier == config.TierName) {
			return true
		}
	}
	return false
}

// sideKey fills the key's side, peer, port and protocol.
func sideKey(f Flow) Key {
	local, peer, dir := f.Side()
	k := Key{
		Direction:     dir,
		Namespace:     local.Namespace,
		PeerNamespace: peer.Namespace,
		PeerType:      peer.Type,
		Port:          f.Port,
		Protocol:      f.Protocol,
	}
	if peer.Type != WorkloadEndpoint {
		k.PeerName = peer.Name
	}
	return k
}
