// Package flows reads Calico's flow logs from Goldmane (Calico Open Source
// 3.30 and later) and turns them into the evidence calico-pni's staged
// rollout needs: which connections the staged walls would deny (pending
// denies), whether a staged project has been quiet long enough to be
// enforced, and whether calico-pni's evaluator predicts what Felix really
// did.
//
// The parts, from the wire inwards:
//
//   - Client streams flows from Goldmane's Flows.Stream over mutual TLS,
//     reconnects with backoff, resumes where it stopped, and feeds a Store.
//     It never blocks the code that reads the Store.
//   - Store keeps, in bounded memory, the pending denies of a sliding
//     window, the last time each was seen, the most recent observation of
//     each flow, and how long the evidence has been unbroken.
//   - Classify (pure) says whether a flow is a pending deny by calico-pni's
//     walls, from the flow's pending policy trace.
//   - Summarize, Gate and Compare (pure) turn a Store's snapshot into the
//     tables of `calico-pni status --pending`, the promotion gate of
//     `status --ready`, and the disagreements of `matrix --observed`.
//
// Everything that depends on time takes it as an argument or from a clock
// given to NewStore, so that tests run on a fake clock.
package flows
