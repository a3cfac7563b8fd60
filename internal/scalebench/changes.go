package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/calico-pni/calico-pni/config"
)

// configChanges times what an administrator changes in the whole cluster
// at once: the enforcement mode there and back (Calico 3.29 and later),
// then a promotion of staged projects to enforcement (3.30 and later;
// when fewer are staged, that many are staged first, and timed too).
func (b *bench) configChanges(ctx context.Context, cfg *config.Config) ([]Change, error) {
	var out []Change
	if b.api.Tiers {
		from := cfg.Enforcement
		if from == config.EnforcementAuto {
			from = config.EnforcementTier // what auto means where tiers are served
		}
		to := config.EnforcementTier
		if from == config.EnforcementTier {
			to = config.EnforcementDefaultTier
		}
		switched := cloneConfig(cfg)
		switched.Enforcement = to
		for _, step := range []struct {
			what string
			cfg  *config.Config
		}{{"enforcement " + from + " → " + to, switched}, {"enforcement " + to + " → " + from, cfg}} {
			c, err := b.reconfigure(ctx, step.what, step.cfg)
			if err != nil {
				return out, err
			}
			out = append(out, c)
		}
	}
	if !b.api.Staged || b.o.Promote == 0 {
		return out, nil
	}
	staged, enforced, err := b.projectsBy(ctx, cfg)
	if err != nil {
		return out, err
	}
	if len(staged) < b.o.Promote {
		// Nothing (or too little) is staged: stage some enforced projects first.
		n := min(b.o.Promote-len(staged), len(enforced))
		stage := cloneConfig(cfg)
		stage.Projects.Stage = append(stage.Projects.Stage, enforced[:n]...)
		c, err := b.reconfigure(ctx, fmt.Sprintf("stage %d enforced projects", n), stage)
		if err != nil {
			return out, err
		}
		out = append(out, c)
		cfg = stage
		staged = append(staged, enforced[:n]...)
	}
	promote := staged[:min(b.o.Promote, len(staged))]
	c, err := b.reconfigure(ctx, fmt.Sprintf("promote %d staged projects", len(promote)), promoted(cfg, promote, staged))
	return append(out, c), err
}

// promoted returns cfg with the projects of promote enforced and every
// other staged project still staged.
func promoted(cfg *config.Config, promote, staged []string) *config.Config {
	c := cloneConfig(cfg)
	if c.Rollout == config.RolloutStage {
		// Rollout stage stages everything: enforce the promoted projects
		// and list the rest of the staged ones by name.
		c.Rollout = config.RolloutEnforce
		c.Projects.Enforce = slices.Clone(promote)
		c.Projects.Stage = nil
		for _, p := range staged {
			if !slices.Contains(promote, p) {
				c.Projects.Stage = append(c.Projects.Stage, p)
			}
		}
		return c
	}
	// A project named in projects.enforce is enforced even when
	// projects.stage holds "*" (config.ProjectRollout).
	c.Projects.Enforce = append(c.Projects.Enforce, promote...)
	c.Projects.Stage = slices.DeleteFunc(c.Projects.Stage, func(p string) bool { return slices.Contains(promote, p) })
	return c
}

// projectsBy returns the projects of the cluster's namespaces that cfg
// stages and those it enforces, sorted.
func (b *bench) projectsBy(ctx context.Context, cfg *config.Config) (staged, enforced []string, err error) {
	d, err := b.desired(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, ns := range d.Namespaces {
		p := ns.Status.Project
		if p == "" || p == d.SystemProject || seen[p] {
			continue
		}
		seen[p] = true
		switch cfg.ProjectRollout(p) {
		case config.RolloutStage:
			staged = append(staged, p)
		case config.RolloutEnforce:
			enforced = append(enforced, p)
		}
	}
	slices.Sort(staged)
	slices.Sort(enforced)
	return staged, enforced, nil
}

// reconfigure gives the daemon a new configuration and measures how long
// until the cluster holds what it implies, and how many writes that took.
func (b *bench) reconfigure(ctx context.Context, what string, cfg *config.Config) (Change, error) {
	if err := cfg.Validate(); err != nil {
		return Change{}, fmt.Errorf("%s: %w", what, err)
	}
	desired, err := b.desired(ctx, cfg)
	if err != nil {
		return Change{}, fmt.Errorf("%s: %w", what, err)
	}
	before, err := b.d.quiet(2*time.Second, 5*time.Minute)
	if err != nil {
		return Change{}, err
	}
	b.logf("%s: %d policies, tier %v", what, len(desired.Policies), desired.Tier != nil)
	b.w.want(desired)
	start := time.Now()
	if err := b.d.reload(cfg); err != nil {
		return Change{}, err
	}
	if err := b.w.waitComplete(ctx, 30*time.Minute, b.d.exited); err != nil {
		return Change{}, fmt.Errorf("%s: %w; daemon log:\n%s", what, err, tail(b.d.log, 30))
	}
	took := time.Since(start)
	after, err := b.d.quiet(3*time.Second, 5*time.Minute)
	if err != nil {
		return Change{}, err
	}
	b.logf("%s took %s, %d writes", what, took.Round(time.Millisecond), after-before)
	return Change{What: what, Took: took, Writes: after - before}, nil
}

// cloneConfig copies a configuration through its JSON form, the form the
// daemon reads.
func cloneConfig(cfg *config.Config) *config.Config {
	b, err := json.Marshal(cfg)
	if err != nil {
		panic(fmt.Sprintf("encoding a configuration: %v", err))
	}
	var c config.Config
	if err := json.Unmarshal(b, &c); err != nil {
		panic(fmt.Sprintf("decoding a configuration: %v", err))
	}
	return &c
}
