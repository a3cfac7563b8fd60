package report

import (
	"testing"

	"github.com/calico-pni/calico-pni/evaluator"
)

// TestPlainIsolationExpects states plain isolation (docs/explain.md) cell
// by cell: a user project admits its own project and the System project;
// nothing is expected of cells into the System project or into a
// namespace in no project.
func TestPlainIsolationExpects(t *testing.T) {
	byProject := MatrixReport{Projects: map[string]string{"(no project)": "", "p-a": "p-a", "p-b": "p-b", "p-sys": "p-sys"}, System: "p-sys"}
	byNamespace := MatrixReport{Projects: map[string]string{"shop": "p-a", "cart": "p-a", "bank": "p-b", "ingress": "p-sys", "loose": ""}, System: "p-sys"}
	tests := []struct {
		r        MatrixReport
		from, to string
		want     expectation
	}{
		{byProject, "p-a", "p-a", expectSameProject},
		{byProject, "p-sys", "p-a", expectFromSystem},
		{byProject, "p-b", "p-a", expectDeny},
		{byProject, "(no project)", "p-a", expectDeny},
		{byProject, "p-a", "p-sys", expectNothing},
		{byProject, "p-a", "(no project)", expectNothing},
		{byProject, "p-sys", "p-sys", expectNothing},
		{byProject, "(no project)", "(no project)", expectNothing},
		{byNamespace, "shop", "cart", expectSameProject},
		{byNamespace, "shop", "shop", expectSameProject},
		{byNamespace, "bank", "shop", expectDeny},
		{byNamespace, "loose", "shop", expectDeny},
		{byNamespace, "ingress", "bank", expectFromSystem},
		{byNamespace, "shop", "ingress", expectNothing},
		{byNamespace, "loose", "loose", expectNothing},
		// Without places, nothing is expected.
		{MatrixReport{}, "p-b", "p-a", expectNothing},
	}
	for _, tt := range tests {
		m := &evaluator.Matrix{Groups: []string{tt.from, tt.to}}
		if got := newPlainIsolation(tt.r, m).expect(0, 1); got != tt.want {
			t.Errorf("%s -> %s: expected %d, want %d", tt.from, tt.to, got, tt.want)
		}
	}
	// Without a System project, the System project's former namespaces
	// are one more user project.
	r := byProject
	r.System = ""
	m := &evaluator.Matrix{Groups: []string{"p-sys", "p-a"}}
	if got := newPlainIsolation(r, m).expect(0, 1); got != expectDeny {
		t.Errorf("without a System project: %d, want expectDeny", got)
	}
}

// TestClassify: every verdict against every expectation.
func TestClassify(t *testing.T) {
	verdicts := []evaluator.Verdict{"", evaluator.Allow, evaluator.Deny, evaluator.Partial, evaluator.Indeterminate}
	want := map[expectation][]exception{
		expectNothing:     {noException, noException, noException, noException, noException},
		expectSameProject: {noException, noException, sameProjectGap, sameProjectGap, undecidedException},
		expectFromSystem:  {noException, noException, systemProjectGap, systemProjectGap, undecidedException},
		expectDeny:        {noException, crossProjectAllow, noException, crossProjectAllow, undecidedException},
	}
	for exp, row := range want {
		for i, v := range verdicts {
			if got := classify(exp, evaluator.Cell{Verdict: v}); got != row[i] {
				t.Errorf("expectation %d, verdict %q: %d, want %d", exp, v, got, row[i])
			}
		}
	}
	if len(exceptionNames) != int(undecidedException)+1 {
		t.Errorf("%d exception names for %d exceptions", len(exceptionNames), undecidedException+1)
	}
}
