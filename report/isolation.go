package report

import "github.com/calico-pni/calico-pni/evaluator"

// Plain isolation is the yardstick of the HTML page's "exceptions only"
// view: Rancher's project network isolation as its np-default policy
// states it, which calico-pni's pni-project-<id> and
// pni-allow-from-system-project policies reproduce (docs/policies.md). A
// namespace of a user project accepts connections from the namespaces of
// its own project and of the System project, and from nothing else. A
// namespace of the System project or of no project is not isolated:
// whether it is reached depends on the source's egress rules (DNS, the API
// server), so plain isolation expects nothing of it. docs/explain.md
// states the same rules for the page's readers.

// expectation is what plain isolation expects of a cell.
type expectation uint8

const (
	// expectNothing: the destination is not in a user project.
	expectNothing expectation = iota
	// expectSameProject: source and destination in the same user project,
	// every pod pair allowed.
	expectSameProject
	// expectFromSystem: from the System project into a user project,
	// every pod pair allowed.
	expectFromSystem
	// expectDeny: into a user project from another user project or from
	// a namespace in no project, every pod pair denied.
	expectDeny
)

// exception says how a cell differs from plain isolation.
type exception uint8

const (
	noException exception = iota
	// crossProjectAllow: plain isolation denies, some pod pair (or some
	// port) is allowed.
	crossProjectAllow
	// sameProjectGap: plain isolation allows within the project, some pod
	// pair or port is denied.
	sameProjectGap
	// systemProjectGap: plain isolation lets the System project in, some
	// pod pair or port is denied.
	systemProjectGap
	// undecidedException: plain isolation expects a verdict, and some pod
	// pair cannot be decided.
	undecidedException
)

// exceptionNames name the exceptions in the page, indexed by exception;
// the first stands for cells that are no exception.
var exceptionNames = []exceptionName{
	{"as plain isolation", "the cell is what plain isolation gives, or plain isolation expects nothing of it"},
	{"allowed across projects", "plain isolation denies traffic into a project from other projects and from namespaces in no project; here some pod pairs or ports are allowed"},
	{"denied within the project", "plain isolation lets every namespace of a project reach the others on every port; here some pod pairs or ports are denied"},
	{"System project shut out", "plain isolation lets the System project reach every project on every port; here some pod pairs or ports are denied"},
	{"cannot be decided", "plain isolation expects a verdict here, and some pod pairs cannot be decided"},
}

type exceptionName struct {
	Name string `json:"name"`
	Why  string `json:"why"`
}

// plainIsolation places groups in projects, as the matrix's command found
// them.
type plainIsolation struct {
	// project[i] is the project of group i, "" for a namespace in no
	// project; nil when the places are unknown, and then nothing is
	// expected of any cell.
	project []string
	system  string
}

// newPlainIsolation places the groups of m with the report's Projects and
// System.
func newPlainIsolation(r MatrixReport, m *evaluator.Matrix) plainIsolation {
	if r.Projects == nil {
		return plainIsolation{}
	}
	p := plainIsolation{project: make([]string, len(m.Groups)), system: r.System}
	for i, g := range m.Groups {
		p.project[i] = r.Projects[g]
	}
	return p
}

// expect is what plain isolation expects from group i to group j.
func (p plainIsolation) expect(i, j int) expectation {
	if p.project == nil {
		return expectNothing
	}
	from, to := p.project[i], p.project[j]
	switch {
	case to == "" || to == p.system:
		return expectNothing
	case from == to:
		return expectSameProject
	case from != "" && from == p.system:
		return expectFromSystem
	}
	return expectDeny
}

// classify says how a cell differs from what plain isolation expects of
// it. A cell without a pod pair is never an exception.
func classify(want expectation, c evaluator.Cell) exception {
	switch {
	case want == expectNothing || c.Verdict == "":
		return noException
	case c.Verdict == evaluator.Indeterminate:
		return undecidedException
	case want == expectDeny:
		if c.Verdict != evaluator.Deny {
			return crossProjectAllow
		}
	case c.Verdict != evaluator.Allow:
		if want == expectFromSystem {
			return systemProjectGap
		}
		return sameProjectGap
	}
	return noException
}
