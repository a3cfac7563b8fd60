package rancher

import (
	"strings"
	"testing"
)

func TestProjectOf(t *testing.T) {
	l := func(v string) map[string]string { return map[string]string{ProjectIDKey: v} }
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		trustLabel  bool
		project     string
		trust       Trust
		problem     string // part of the problem text; "" means none
	}{
		{"annotation and label agree", l("p-b6jcw"), l("c-abcde:p-b6jcw"), false, "p-b6jcw", TrustAnnotation, ""},
		{"annotation only", nil, l("c-abcde:p-b6jcw"), false, "p-b6jcw", TrustAnnotation, ""},
		{"local cluster", nil, l("local:p-mcb29"), false, "p-mcb29", TrustAnnotation, ""},
		{"label disagrees: annotation wins", l("p-mcb29"), l("c-abcde:p-b6jcw"), false, "p-b6jcw", TrustAnnotation, `label field.cattle.io/projectId="p-mcb29" disagrees`},
		{"label only, not trusted", l("p-b6jcw"), nil, false, "", Untrusted, "has no matching annotation"},
		{"label only, trusted by config", l("p-b6jcw"), nil, true, "p-b6jcw", TrustLabel, ""},
		{"label only, invalid", l("P_B6"), nil, true, "", Untrusted, "is not a Rancher project ID"},
		{"nothing", map[string]string{"team": "a"}, nil, false, "", Unassigned, ""},
		{"annotation without cluster", nil, l("p-b6jcw"), false, "", Untrusted, "is not of the form <cluster>:<project>"},
		{"annotation with empty project", nil, l("c-abcde:"), false, "", Untrusted, "is not of the form"},
		{"annotation with two colons", nil, l("c-a:p-b:c"), false, "", Untrusted, "is not of the form"},
		{"annotation with bad project", l("x"), l("c-abcde:P b"), false, "", Untrusted, "is not a Rancher project ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := ProjectOf(tt.labels, tt.annotations, tt.trustLabel)
			if m.Project != tt.project || m.Trust != tt.trust {
				t.Errorf("ProjectOf = %+v, want project %q trust %q", m, tt.project, tt.trust)
			}
			if tt.problem == "" && m.Problem != "" {
				t.Errorf("unexpected problem %q", m.Problem)
			}
			if tt.problem != "" && !strings.Contains(m.Problem, tt.problem) {
				t.Errorf("problem %q does not contain %q", m.Problem, tt.problem)
			}
		})
	}
}

func TestSystemProject(t *testing.T) {
	projects := map[string]string{"cattle-system": "p-sys01", "kube-system": "p-sys02"}
	lookup := func(ns string) string { return projects[ns] }

	if id, src := SystemProject("p-conf1", lookup); id != "p-conf1" || !strings.Contains(src, "configuration") {
		t.Errorf("override: %q from %q", id, src)
	}
	if id, src := SystemProject("", lookup); id != "p-sys01" || !strings.Contains(src, "cattle-system") {
		t.Errorf("cattle-system first: %q from %q", id, src)
	}
	delete(projects, "cattle-system")
	if id, src := SystemProject("", lookup); id != "p-sys02" || !strings.Contains(src, "kube-system") {
		t.Errorf("kube-system next: %q from %q", id, src)
	}
	delete(projects, "kube-system")
	if id, src := SystemProject("", lookup); id != "" || src != "" {
		t.Errorf("none: %q from %q", id, src)
	}
}
