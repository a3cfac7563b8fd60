// Package lease is calico-pni's leader election: the Lease its replicas
// campaign for, and the fence that lets the leader's writes through only
// while no other replica can have taken the lease over (fence.go).
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Settings are the leader election's.
type Settings struct {
	// Namespace and Name are the Lease's.
	Namespace, Name string
	// Identity is this replica's, unique (NewLock adds a random suffix).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's; the
	// fence lets writes go within RenewDeadline of a renewal.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// NewLock returns the lock on the leader Lease, behind the fence that
// guards the writes. The identity gets a random suffix, so that two
// replicas of one host (or one process, in tests) never share it.
func NewLock(s Settings, kube kubernetes.Interface) *Fence {
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: s.Namespace, Name: s.Name},
		Client:     kube.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: s.Identity + "_" + hex.EncodeToString(suffix)},
	}
	return NewFence(lock, s.RenewDeadline)
}

// Run campaigns for the lease until ctx ends, and runs lead while this
// replica holds it; losing the lease cancels lead's context and the
// replica campaigns again. client-go starts lead in a goroutine of its own
// and returns without waiting for it when the lease is lost, so a new
// term may begin while the last one is still ending: lead must wait for
// the last term itself (controller.Lead does).
func Run(ctx context.Context, s Settings, lock *Fence, log *slog.Logger, lead func(context.Context)) {
	id := lock.Identity()
	for ctx.Err() == nil {
		leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   s.LeaseDuration,
			RenewDeadline:   s.RenewDeadline,
			RetryPeriod:     s.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            s.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					log.Info("leading", "identity", id, "lease", lock.Describe())
					lead(lctx)
				},
				OnStoppedLeading: func() { log.Info("not leading", "identity", id) },
				OnNewLeader: func(leader string) {
					if leader != id {
						log.Info("standing by", "leader", leader)
					}
				},
			},
		})
	}
}
