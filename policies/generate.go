package policies

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	"github.com/calico-pni/calico-pni/calico"
	"github.com/calico-pni/calico-pni/config"
	"github.com/calico-pni/calico-pni/rancher"
)

// Desired is everything calico-pni wants the cluster to hold.
type Desired struct {
	// Policies in the order they are written: allow policies by name, then
	// baseline policies by name. Removal goes the other way round.
	Policies []calico.Policy
	// Invalid lists policies that failed validation. They are not in
	// Policies and are never written; namespaces that need them are held
	// as they are and report why.
	Invalid []InvalidPolicy
	// Namespaces, by name, with the labels and status each should carry.
	Namespaces []NamespaceState
	// SystemProject is the System project's ID ("" if none was found) and
	// SystemProjectSource says how it was found.
	SystemProject       string
	SystemProjectSource string
	// Problems are findings about the whole cluster.
	Problems []string
	// Tier is calico-pni's own tier in tier mode (nil in default-tier
	// mode): it is written before the policies in it and removed after them.
	Tier *calico.Tier
	// RancherNamespaces counts the namespaces where Rancher's own project
	// network isolation has policies.
	RancherNamespaces int
}

// InvalidPolicy is a policy that would have been written but failed
// validation.
type InvalidPolicy struct {
	Name string
	Err  error
}

// NamespaceState is what one namespace should carry.
type NamespaceState struct {
	Name string
	// Labels are the calico-pni.io/ labels the namespace should have;
	// any other calico-pni.io/ label is removed. The map may be shared
	// with other namespaces: never change it.
	Labels map[string]string
	Status Status
	// Requires lists the policies that must be in place before the
	// namespace is isolated (every policy that will select it). Like
	// Status.Policies, it may be shared with other namespaces.
	Requires []string
}

// Policy orders. In the default tier, every calico-pni allow policy comes
// after Kubernetes NetworkPolicies (order 1000) so that a user's own Calico
// Deny at a lower order still wins. The baseline has no rules: selecting a
// namespace is all it does, and its order only says that it comes last.
// In calico-pni's own tier, the exceptions the platform guarantees
// (GuaranteeOrder, Allow) come before those tenants may narrow (AllowOrder,
// Pass), so that a connection both match is allowed outright.
const (
	GuaranteeOrder = 1000.0
	AllowOrder     = 2000.0
	BaselineOrder  = 10000.0
)

// Name prefixes: every policy's name starts with one. Policies in
// calico-pni's own tier are named apart from those in the default tier,
// so that both sets can exist at once while the enforcement mode changes
// (from Calico 3.32 names carry no tier prefix and must be unique across
// tiers).
const (
	NamePrefix     = "pni-"
	TierNamePrefix = "pni-tier-"
)

// TierMode reports whether calico-pni's policies go into its own tier:
// enforcement "tier", or "auto" on Calico 3.29 and later (the first
// release whose open-source edition has tiers).
func TierMode(cfg *config.Config, v calico.Version) bool {
	switch cfg.Enforcement {
	case config.EnforcementTier:
		return true
	case config.EnforcementAuto:
		return v.AtLeast(3, 29)
	}
	return false
}

// Generate computes the desired state of the cluster.
func Generate(snap Snapshot, cfg *config.Config) Desired {
	g := &generator{cfg: cfg, labelSets: map[string]map[string]string{}, strings: map[string]string{}, prefix: NamePrefix}
	if TierMode(cfg, snap.CalicoVersion) {
		g.tier, g.prefix = config.TierName, TierNamePrefix
		g.d.Tier = &calico.Tier{
			Name:        config.TierName,
			Description: "calico-pni's project walls: what the platform permits is allowed or passed on to the namespaces' own policies, everything else into or out of an isolated namespace is denied at the end of this tier.",
			Spec:        calico.TierSpec{Order: order(cfg.Tier.Order), DefaultAction: calico.Deny},
		}
	}
	return g.run(snap)
}

type generator struct {
	cfg *config.Config
	d   Desired
	// tier is calico-pni's tier in tier mode, "" in default-tier mode;
	// prefix starts every policy name.
	tier, prefix string
	// view is the set of policies being built: those enforced, or those
	// staged (see build).
	view view
	// shared are the policies whose selection is evaluated for each
	// namespace; projectPolicy and ownPolicy are looked up directly.
	shared        []built
	projectPolicy map[string]string
	ownPolicy     map[string]string
	all           []built
	// roleProjects lists, per role, the projects of namespaces offering it.
	roleProjects map[string]map[string]bool
	// lists holds the policy name lists namespaces share, by signature:
	// the values of sigKeys and membership in each of sigOnly.
	lists   map[string][]string
	sigKeys []string
	sigOnly []map[string]bool
	sig     []byte
	// labelSets and strings share identical outputs between namespaces.
	labelSets map[string]map[string]string
	strings   map[string]string
	// promoted is Snapshot.Promoted.
	promoted map[string]string
}

// built is a policy with the namespace selection it was built from.
type built struct {
	policy  calico.Policy
	selects calico.Selector
	// only, when set, narrows the namespaces the policy applies to: its
	// rules name their destination namespaces, and the others it selects
	// gain nothing from it (so their status does not list it and their
	// isolation does not wait for it).
	only map[string]bool
}

// nsInfo is a namespace during generation.
type nsInfo struct {
	ns     Namespace
	member rancher.Membership
	state  *NamespaceState
	// own is true for a namespace isolated on its own (in no project).
	own bool
	// rollout is what happens to a namespace that is to be isolated:
	// config.RolloutEnforce or config.RolloutStage ("" for the others).
	rollout string
}

// view is one set of policies: the enforced ones, which select namespaces
// by the isolated label, or the staged ones (Calico's staged kinds, never
// enforced), which select them by the staged label and are named apart, so
// that a staged policy previews the addition of a policy, not a change of
// an enforced one of the same name.
type view struct {
	rollout string
	label   string
	prefix  string
	staged  bool
}

// member reports whether a namespace belongs to the view being built.
func (g *generator) member(info *nsInfo) bool { return info.rollout == g.view.rollout }

// isolated selects the namespaces of the view being built.
func (g *generator) isolated() calico.Selector { return calico.Eq(g.view.label, "true") }

func (g *generator) run(snap Snapshot) Desired {
	g.promoted = snap.Promoted
	projects := GroupProjects(g.cfg, snap.Namespaces)
	infos := make([]*nsInfo, len(snap.Namespaces))
	byName := make(map[string]*nsInfo, len(snap.Namespaces))
	for i, ns := range snap.Namespaces {
		infos[i] = &nsInfo{ns: ns, member: projects.Of[ns.Name]}
		byName[ns.Name] = infos[i]
	}
	slices.SortFunc(infos, func(a, b *nsInfo) int { return cmp.Compare(a.ns.Name, b.ns.Name) })

	g.d.SystemProject, g.d.SystemProjectSource = projects.System, projects.SystemSource
	if g.d.SystemProject == "" {
		g.d.Problems = append(g.d.Problems, "no System project: systemProject is not configured and neither cattle-system nor kube-system is in a project; isolated namespaces accept traffic from their own project only")
	}

	// Projects offering each role, for roles restricted to consumers of
	// the same project.
	g.roleProjects = map[string]map[string]bool{}
	for _, info := range infos {
		for key := range info.ns.Labels {
			if role, ok := strings.CutPrefix(key, config.RoleLabelPrefix); ok && info.member.Project != "" {
				if g.roleProjects[role] == nil {
					g.roleProjects[role] = map[string]bool{}
				}
				g.roleProjects[role][info.member.Project] = true
			}
		}
	}

	staged := false
	for _, info := range infos {
		g.classify(info)
		g.checkRoles(info)
		staged = staged || info.rollout == config.RolloutStage
	}
	if g.d.Tier != nil {
		if err := calico.ValidateTier(*g.d.Tier); err != nil {
			g.d.Problems = append(g.d.Problems, err.Error())
		}
	}
	// With rollout: stage nothing is enforced, not even the baseline.
	if g.cfg.Rollout != config.RolloutStage {
		g.build(snap, infos, byName, view{rollout: config.RolloutEnforce, label: IsolatedLabel, prefix: g.prefix})
	}
	if staged {
		g.build(snap, infos, byName, view{rollout: config.RolloutStage, label: StagedLabel, prefix: g.prefix + "staged-", staged: true})
	}
	for _, p := range g.handover(snap) {
		if err := calico.Validate(p); err != nil {
			g.d.Invalid = append(g.d.Invalid, InvalidPolicy{Name: p.Name, Err: err})
			continue
		}
		g.d.Policies = append(g.d.Policies, p)
	}
	g.noteRancher(snap, byName)
	sortPolicies(g.d.Policies)
	g.d.Namespaces = make([]NamespaceState, 0, len(infos))
	for _, info := range infos {
		g.d.Namespaces = append(g.d.Namespaces, *info.state)
	}
	return g.d
}

// build generates the policies of one view and the policy lists of its
// namespaces. The enforced view is built unless the rollout stages
// everything (its baseline exists even before any namespace is isolated);
// the staged one when a namespace is staged.
func (g *generator) build(snap Snapshot, infos []*nsInfo, byName map[string]*nsInfo, v view) {
	g.view = v
	g.shared, g.all = nil, nil
	g.projectPolicy = map[string]string{}
	g.ownPolicy = map[string]string{}
	projects := map[string]bool{}
	usedRoles := map[string]bool{}
	for _, info := range infos {
		if !g.member(info) {
			continue
		}
		if !info.own {
			projects[info.member.Project] = true
		}
		for _, role := range g.rolesUsed(info) {
			usedRoles[role] = true
		}
	}

	g.add(g.baseline()...)
	if g.d.SystemProject != "" {
		g.add(g.fromSystemProject())
	}
	if g.cfg.IsolateEgress {
		g.add(g.dns(), g.kubeAPI(snap))
	}
	g.add(g.workloads()...)
	if g.cfg.IngressController.Enabled {
		g.add(g.ingressController()...)
	}
	if g.cfg.HostNetwork.Enabled {
		g.add(g.fromHostNetwork(snap))
	}
	if g.cfg.ExternalServices.Enabled {
		g.add(g.externalServices(snap, byName)...)
	}
	if g.cfg.HostPorts.Enabled {
		g.add(g.hostPorts(snap, byName)...)
	}
	if g.cfg.IsolateEgress && g.cfg.Internet.Enabled && g.usesInternet(infos) {
		g.add(g.internet(snap))
	}
	for _, role := range g.cfg.RoleNames() {
		if usedRoles[role] {
			g.add(g.role(role))
		}
	}
	for _, p := range slices.Sorted(maps.Keys(projects)) {
		b := g.project(p)
		g.projectPolicy[p] = b.policy.Name
		g.all = append(g.all, b)
	}
	for _, info := range infos {
		if info.own && g.member(info) {
			b := g.namespaceOnItsOwn(info.ns.Name)
			g.ownPolicy[info.ns.Name] = b.policy.Name
			g.all = append(g.all, b)
		}
	}

	invalid := g.validate()
	g.prepareSelection()
	for _, info := range infos {
		if g.member(info) {
			g.selectedBy(info, invalid)
		}
	}
}

// add registers policies whose selection is evaluated per namespace.
func (g *generator) add(bs ...built) {
	g.shared = append(g.shared, bs...)
	g.all = append(g.all, bs...)
}

// classify decides a namespace's state, labels and reason. In order: an
// exempt name, the System project, an opt-out, a project, an untrusted
// claim (isolated on its own: fail closed), an opt-in or isolateUnassigned
// (isolated on its own), else open.
func (g *generator) classify(info *nsInfo) {
	st := &NamespaceState{Name: info.ns.Name}
	info.state = st
	m := info.member
	st.Status.Project = m.Project
	opt, optProblem := optInOut(info.ns)
	if opt == config.IsolationDisabled && !g.cfg.AllowOptOut {
		optProblem = fmt.Sprintf("annotation %s=%s is ignored: opting out is not allowed on this cluster (allowOptOut: false)", config.IsolationAnnotation, opt)
		opt = ""
	}
	switch pattern, exempt := g.exemptPattern(info.ns.Name); {
	case exempt:
		st.Status.State = Exempt
		st.Status.Reason = fmt.Sprintf("name matches %q in exemptNamespaces", pattern)
	case m.Project != "" && m.Project == g.d.SystemProject:
		st.Status.State = Exempt
		st.Status.Reason = fmt.Sprintf("in the System project %s (%s)", m.Project, g.d.SystemProjectSource)
	case opt == config.IsolationDisabled:
		st.Status.State = Exempt
		st.Status.Reason = fmt.Sprintf("opted out with the annotation %s=%s", config.IsolationAnnotation, opt)
	case m.Project != "":
		st.Status.State, st.Status.Isolated = Isolated, true
		st.Status.Reason = g.intern("in project " + m.Project)
	case m.Trust == rancher.Untrusted:
		// Something claims a project that cannot be believed: fail closed,
		// isolated on its own, in no project.
		st.Status.State, st.Status.Isolated = Isolated, true
		st.Status.Reason = "claims a project that cannot be trusted; isolated on its own, in no project"
		info.own = true
	case opt == config.IsolationEnabled:
		st.Status.State, st.Status.Isolated = Isolated, true
		st.Status.Reason = fmt.Sprintf("in no project; isolated on its own (annotation %s=%s)", config.IsolationAnnotation, opt)
		info.own = true
	case g.cfg.IsolateUnassigned:
		st.Status.State, st.Status.Isolated = Isolated, true
		st.Status.Reason = "in no project; isolated on its own (isolateUnassigned)"
		info.own = true
	default:
		st.Status.State = Open
		st.Status.Reason = "in no project; not isolated, as under Rancher (set isolateUnassigned, or annotate the namespace calico-pni.io/isolation=enabled, to isolate it)"
	}
	label := ""
	if st.Status.Isolated {
		label = g.decideRollout(info)
	}
	if label != "" {
		st.Status.Tier = calico.DefaultTier
		if g.tier != "" {
			st.Status.Tier = g.tier
		}
	}
	st.Labels = g.labelSet(label, m.Project)
	for _, p := range []string{m.Problem, optProblem} {
		if p != "" {
			st.Status.AddProblem(p)
		}
	}
}

func (g *generator) exemptPattern(name string) (string, bool) {
	for _, p := range g.cfg.ExemptNamespaces {
		if globMatch(p, name) {
			return p, true
		}
	}
	return "", false
}

// labelSet returns the calico-pni labels of a namespace. Namespaces with
// the same labels share one map, which nobody may change.
func (g *generator) labelSet(switchLabel, project string) map[string]string {
	key := project + "/" + switchLabel
	if set, ok := g.labelSets[key]; ok {
		return set
	}
	set := map[string]string{}
	if project != "" {
		set[ProjectLabel] = project
	}
	if switchLabel != "" {
		set[switchLabel] = "true"
	}
	g.labelSets[key] = set
	return set
}

// decideRollout applies the rollout to a namespace that is to be
// isolated, and returns the label that switches it on (isolated or
// staged; "" when the rollout leaves it open). A namespace isolated in no
// project follows rollout alone.
func (g *generator) decideRollout(info *nsInfo) string {
	st := &info.state.Status
	mode := config.RolloutEnforce
	if info.own {
		if g.cfg.Rollout == config.RolloutStage {
			mode = config.RolloutStage
		}
	} else {
		mode = g.cfg.ProjectRollout(info.member.Project)
	}
	promoted, isPromoted := g.promoted[info.member.Project]
	if mode == config.RolloutStage && isPromoted && !info.own && g.cfg.Rollout != config.RolloutStage {
		mode = config.RolloutEnforce
		st.Reason = g.intern(st.Reason + "; " + promoted)
	}
	info.rollout = mode
	switch mode {
	case config.RolloutEnforce:
		return IsolatedLabel
	case config.RolloutStage:
		why := "projects.stage"
		if g.cfg.Rollout == config.RolloutStage {
			why = "rollout: stage"
		}
		st.State, st.Isolated = Staged, false
		st.Reason = g.intern(fmt.Sprintf("%s; staged, not enforced (%s): Calico's flow logs show what isolation would deny", st.Reason, why))
		return StagedLabel
	}
	st.State, st.Isolated = Open, false
	st.Reason = g.intern(fmt.Sprintf("in project %s, which neither projects.enforce nor projects.stage names: not isolated", info.member.Project))
	return ""
}

// intern returns one copy of each distinct reason text.
func (g *generator) intern(s string) string {
	if v, ok := g.strings[s]; ok {
		return v
	}
	g.strings[s] = s
	return s
}

// globMatch matches a name against a pattern with at most one '*', as
// calico.Glob does in a selector.
func globMatch(pattern, name string) bool {
	prefix, suffix, found := strings.Cut(pattern, "*")
	if !found {
		return pattern == name
	}
	return len(name) >= len(prefix)+len(suffix) && strings.HasPrefix(name, prefix) && strings.HasSuffix(name, suffix)
}

// checkRoles records which configured roles an isolated namespace uses,
// reports role labels that name no configured role, and reports a
// consumer label the role's consumers setting ignores.
func (g *generator) checkRoles(info *nsInfo) {
	var keys []string
	for key := range info.ns.Labels {
		if strings.HasPrefix(key, config.RoleLabelPrefix) || strings.HasPrefix(key, config.AllowLabelPrefix) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	for _, key := range keys {
		var role, kind string
		if r, ok := strings.CutPrefix(key, config.RoleLabelPrefix); ok {
			role, kind = r, "offers"
		} else if r, ok := strings.CutPrefix(key, config.AllowLabelPrefix); ok {
			role, kind = r, "consumes"
		} else {
			continue
		}
		r, ok := g.cfg.Roles[role]
		if !ok {
			// The internet label shares the allow_ prefix of the article's
			// conventions but is no role.
			if key == g.cfg.Internet.Label {
				continue
			}
			info.state.Status.AddProblem(fmt.Sprintf("label %s %s role %q, which the configuration does not define; add roles.%s with its ports, or remove the label (calico-pni does not guess ports)", key, kind, role, role))
			continue
		}
		if kind == "consumes" {
			if why := g.consumerIgnored(role, r, info.member.Project); why != "" {
				info.state.Status.AddProblem(fmt.Sprintf("label %s is ignored: %s", key, why))
			}
		}
	}
}

// rolesUsed returns the configured roles a namespace offers or consumes.
func (g *generator) rolesUsed(info *nsInfo) []string {
	var out []string
	for key := range info.ns.Labels {
		role, ok := strings.CutPrefix(key, config.RoleLabelPrefix)
		if !ok {
			role, ok = strings.CutPrefix(key, config.AllowLabelPrefix)
		}
		if _, configured := g.cfg.Roles[role]; ok && configured {
			out = append(out, role)
		}
	}
	return out
}

// consumerIgnored says why a namespace of project may not consume a role,
// or "" if it may.
func (g *generator) consumerIgnored(role string, r config.Role, project string) string {
	switch r.Consumers {
	case config.ConsumersSameProject:
		if project == "" {
			return fmt.Sprintf("role %s accepts consumers of its own project only (roles.%s.consumers: %s), and this namespace is in no project", role, role, r.Consumers)
		}
		if !g.roleProjects[role][project] {
			return fmt.Sprintf("role %s accepts consumers of its own project only (roles.%s.consumers: %s), and project %s has no namespace offering it", role, role, r.Consumers, project)
		}
	case config.ConsumersProjects:
		if !slices.Contains(r.Projects, project) {
			return fmt.Sprintf("role %s accepts consumers of the projects %v only (roles.%s.projects)", role, r.Projects, role)
		}
	}
	return ""
}

// validate drops invalid policies from the output and returns them by name.
func (g *generator) validate() map[string]error {
	invalid := map[string]error{}
	for _, b := range g.all {
		if g.view.staged {
			b.policy.Staged = true
			b.policy.Spec.StagedAction = calico.StagedSet
		}
		if err := calico.Validate(b.policy); err != nil {
			invalid[b.policy.Name] = err
			g.d.Invalid = append(g.d.Invalid, InvalidPolicy{Name: b.policy.Name, Err: err})
			g.d.Problems = append(g.d.Problems, err.Error())
			continue
		}
		g.d.Policies = append(g.d.Policies, b.policy)
	}
	return invalid
}

// sortPolicies orders policies as they are written: allow policies, then
// baseline policies, each by namespace and name.
func sortPolicies(ps []calico.Policy) {
	slices.SortFunc(ps, func(a, b calico.Policy) int {
		if a.Class != b.Class {
			if a.Class == calico.ClassAllow {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.Kind(), b.Kind()))
	})
}

// policyName joins a prefix and an ID into the stem of a policy name that,
// after a name prefix of length reserved, is a DNS-1123 label; long IDs
// are shortened with a hash so that two IDs never share a name.
func policyName(prefix, id string, reserved int) string {
	name := prefix + id
	if reserved+len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("%s%s-%08x", prefix, strings.TrimRight(id[:63-reserved-len(prefix)-9], "-"), h.Sum32())
}

func order(f float64) *float64 { return &f }

// isolated selects namespaces calico-pni has switched isolation on for.
func isolated() calico.Selector { return calico.Eq(IsolatedLabel, "true") }

func inProject(id string) calico.Selector { return calico.Eq(ProjectLabel, id) }

// allow assembles an allow policy named prefix+stem. In tier mode it goes
// into calico-pni's tier: an exception the platform guarantees allows
// (before the others); any other passes its traffic on to the tenants'
// policies in the tiers after, which may narrow it.
func (g *generator) allow(stem string, guarantee bool, description string, selects calico.Selector, podSelector calico.Selector, ingress, egress []calico.Rule) built {
	b := allowPolicy(g.view.prefix+stem, description, selects, podSelector, ingress, egress)
	if g.tier == "" {
		return b
	}
	spec := &b.policy.Spec
	spec.Tier = g.tier
	if guarantee {
		spec.Order = order(GuaranteeOrder)
		b.policy.Description += " In calico-pni's tier it is allowed whatever the namespace's own policies say."
		return b
	}
	spec.Ingress, spec.Egress = passing(spec.Ingress), passing(spec.Egress)
	b.policy.Description += " In calico-pni's tier it is passed on to the namespace's own policies, which may narrow it."
	return b
}

// passing returns a copy of rules with Allow turned into Pass.
func passing(rules []calico.Rule) []calico.Rule {
	if rules == nil {
		return nil
	}
	out := make([]calico.Rule, len(rules))
	for i, r := range rules {
		if r.Action == calico.Allow {
			r.Action = calico.Pass
		}
		out[i] = r
	}
	return out
}

// allowPolicy assembles a GlobalNetworkPolicy of the allow class.
func allowPolicy(name, description string, selects calico.Selector, podSelector calico.Selector, ingress, egress []calico.Rule) built {
	spec := calico.GlobalNetworkPolicySpec{
		Order:             order(AllowOrder),
		NamespaceSelector: selects.String(),
		Ingress:           ingress,
		Egress:            egress,
	}
	if podSelector != nil {
		spec.Selector = podSelector.String()
	}
	if ingress != nil {
		spec.Types = append(spec.Types, calico.Ingress)
	}
	if egress != nil {
		spec.Types = append(spec.Types, calico.Egress)
	}
	return built{
		policy:  calico.Policy{Name: name, Class: calico.ClassAllow, Description: description, Spec: spec},
		selects: selects,
	}
}
