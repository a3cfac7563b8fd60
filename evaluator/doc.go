// Package evaluator answers "is this connection allowed, and which policy
// decides?" the way Calico's dataplane (Felix) would, over every policy it
// is given: Calico GlobalNetworkPolicies and NetworkPolicies in their
// tiers, Kubernetes NetworkPolicies as Calico converts them, and, when
// asked, staged policies as if they were enforced.
//
// It is pure like package policies: a Cluster (a plain model of
// namespaces, pods, service accounts, Service endpoints, nodes, tiers and
// policies) goes in, an Index is built from it once, and Evaluate answers
// one connection at a time. Loading objects from files or from the API
// server, and printing results, happen outside this package.
//
// What Felix does, and where the evaluator follows it:
//
//   - Tiers in ascending order, an order left out last, ties by name
//     (felix/calc/policy_sorter.go, TierLess); inside a tier, policies by
//     order, then as the Calico version breaks ties (PolKVLess): up to
//     3.31 by v1 name, from 3.32 by name, namespace and kind (ties.go).
//   - Only policies that select the endpoint for the direction are
//     traversed; the first rule that matches decides: Allow and Deny end
//     the evaluation, Pass skips to the next tier, Log goes on. If policies
//     of a tier selected the endpoint and no rule decided, the tier's
//     default action applies (Deny unless the Tier says Pass); after the
//     last tier, the namespace's profile allows (felix/rules/endpoints.go).
//   - Egress of the source and ingress of the destination are evaluated
//     separately; the connection is allowed only if both allow it. Only pods
//     that are Calico workload endpoints have a side; outside addresses,
//     nodes and host-network pods have none, and a host never has its
//     traffic to a pod on the same node policed (felix/rules/static.go,
//     filterOutputChain).
//   - Selectors see the labels Calico gives a pod's endpoint: the pod's
//     own, projectcalico.org/namespace, /orchestrator and /serviceaccount,
//     the namespace's labels as pcns.<key> and the service account's as
//     pcsa.<key> (libcalico-go/lib/backend/k8s/conversion); the pod's own
//     labels with those prefixes are dropped, as the workload endpoint
//     update processor drops them.
//
// Anything it cannot model makes the verdict indeterminate, with the
// reason, never a guess: HTTP matches, host endpoints, source ports,
// policies with preDNAT, doNotTrack or applyOnForward that select an
// endpoint of the connection, a pod whose labels or address it does not
// know, and Kubernetes admin network policies. When a rule cannot be
// decided, both outcomes are followed; if they agree, the verdict stands.
package evaluator
