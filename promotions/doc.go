// Package promotions is the durable record of the staged projects that
// calico-pni's promotion gate enforced (projects.promote.automatic): a
// ConfigMap in the daemon's own namespace, labelled with calico-pni's
// managed-by label, with one key per promoted project whose value says
// when it was promoted and on what evidence.
//
// The record outlives the daemon and its in-memory flow evidence: a
// restarted or new leader reads it and keeps the promoted projects
// enforced, although the evidence that promoted them starts again from
// nothing. Removing a project's key (kubectl edit) stages the project
// again, as any demotion does.
package promotions
