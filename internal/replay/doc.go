// Package replay rebuilds, from the API server's audit log, every state a
// cluster passed through while calico-pni changed it, and judges each one
// with a reference evaluator of Calico's policy semantics: at no moment may
// a connection be denied that both the state before a change and the state
// after it allow, nor allowed that both deny.
//
// It is test infrastructure, never imported by the product. On purpose it
// shares no code with calico-pni's own policy packages (calico, evaluator,
// objects, policies, ...): it has its own selector parser, its own reading
// of Calico's and Kubernetes' objects and its own rule matching, written
// from Calico's documented behaviour and sources, so that a bug in the
// product's evaluator cannot hide a gap in the product's writes (it
// imports only internal/testbed, for the audit log's records; a test
// keeps it so, and only the cross-check test runs the product's
// evaluator, to compare). It is
// kept simple rather than fast; where it models a Calico behaviour, the
// comment names the Calico source it follows.
//
// The parts:
//
//   - Order puts the writes of an audit log in the order etcd committed
//     them.
//   - State holds what decides connections (namespaces and their labels,
//     Calico policies, tiers and network sets, Kubernetes NetworkPolicies,
//     EndpointSlices); Capture lists it from a live API server and Apply
//     replays one committed write on it.
//   - NewIndex and Index.Evaluate decide a connection in a State, the way
//     Felix would. What the evaluator does not model (host endpoints,
//     preDNAT, doNotTrack, applyOnForward, HTTP and ICMP matches, source
//     ports, ...) is an explicit error, never a verdict.
//   - Probes are the pods, addresses and connections a replay evaluates.
//   - Check replays the writes and reports every gap.
package replay
