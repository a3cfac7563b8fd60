package charttest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// question is one entry of questions.yaml, as Rancher's form reads it.
type question struct {
	Variable          string     `json:"variable"`
	Label             string     `json:"label"`
	Description       string     `json:"description"`
	Type              string     `json:"type"`
	Group             string     `json:"group"`
	Default           any        `json:"default"`
	Options           []string   `json:"options"`
	Min               *float64   `json:"min"`
	Max               *float64   `json:"max"`
	ShowIf            string     `json:"show_if"`
	ShowSubquestionIf any        `json:"show_subquestion_if"`
	Subquestions      []question `json:"subquestions"`
}

// loadQuestions returns every question, subquestions included, in order.
func loadQuestions(t testing.TB) []question {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "questions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Categories []string   `json:"categories"`
		Questions  []question `json:"questions"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		t.Fatalf("questions.yaml: %v", err)
	}
	var out []question
	for _, q := range doc.Questions {
		out = append(out, q)
		out = append(out, q.Subquestions...)
	}
	if len(out) == 0 {
		t.Fatal("questions.yaml has no questions")
	}
	return out
}

func readValues(t testing.TB, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return values
}

// lookup follows a question's variable through values, one map key per
// dotted segment, as Rancher's form reads and writes them.
func lookup(values map[string]any, path string) (any, bool) {
	v, err := mapPath(values, path)
	return v, err == nil
}

// mapPath follows path through nested maps only. A segment that would index
// a list, or go into anything but a map, is an error that says where: the
// form may write "a.0.b" into a list item or into a map key "0", and the
// chart must not depend on which.
func mapPath(values map[string]any, path string) (any, error) {
	var cur any = values
	var walked []string
	for _, key := range strings.Split(path, ".") {
		where := strings.Join(walked, ".")
		if where == "" {
			where = "the top level"
		}
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, fmt.Errorf("%s has no key %q", where, key)
			}
			cur = v
		case []any:
			return nil, fmt.Errorf("%q indexes the list %s: give the question a map path", key, where)
		default:
			return nil, fmt.Errorf("%s is a %T, not a map, so it has no key %q", where, cur, key)
		}
		walked = append(walked, key)
	}
	return cur, nil
}

// Every question's variable is a chain of map keys in values.yaml, never a
// list index, so that the form sets it whichever way it maps paths.
func TestQuestionPathsAreMapKeys(t *testing.T) {
	values := readValues(t, filepath.Join(chartDir(t), "values.yaml"))
	for _, q := range loadQuestions(t) {
		if _, err := mapPath(values, q.Variable); err != nil {
			t.Errorf("question %s: %v", q.Variable, err)
		}
	}
	// The check itself refuses what it is for.
	for path, want := range map[string]string{
		"config.monitoring.0.serviceAccounts": `"0" indexes the list config.monitoring`,
		"config.dns.mode.x":                   "config.dns.mode is a string, not a map",
		"config.nothing":                      `config has no key "nothing"`,
	} {
		if _, err := mapPath(values, path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("mapPath(%s): %v, want an error with %q", path, err, want)
		}
	}
}

// Every question of the install form names a value the chart has, of the
// question's type, with the same default, so that the form shows what
// the chart would do.
func TestQuestionsMatchValues(t *testing.T) {
	values := readValues(t, filepath.Join(chartDir(t), "values.yaml"))
	seen := map[string]bool{}
	for _, q := range loadQuestions(t) {
		where := "question " + q.Variable
		if seen[q.Variable] {
			t.Errorf("%s: asked twice", where)
		}
		seen[q.Variable] = true
		if q.Label == "" || q.Type == "" {
			t.Errorf("%s: needs a label and a type", where)
		}
		v, ok := lookup(values, q.Variable)
		if !ok {
			t.Errorf("%s: values.yaml has no %s", where, q.Variable)
			continue
		}
		if err := ofType(q, v); err != nil {
			t.Errorf("%s: values.yaml has %v: %v", where, v, err)
		}
		if q.Default != nil && fmt.Sprint(q.Default) != fmt.Sprint(v) {
			t.Errorf("%s: the form's default %v is not the chart's %v", where, q.Default, v)
		}
		if q.ShowSubquestionIf != nil {
			cond := q.ShowSubquestionIf
			switch q.Type {
			case "boolean":
				if _, ok := cond.(bool); !ok {
					t.Errorf("%s: show_subquestion_if %v is not true or false", where, cond)
				}
			case "enum":
				if !slices.Contains(q.Options, fmt.Sprint(cond)) {
					t.Errorf("%s: show_subquestion_if %v is not one of %v", where, cond, q.Options)
				}
			}
			if len(q.Subquestions) == 0 {
				t.Errorf("%s: show_subquestion_if without subquestions", where)
			}
		}
	}
	// The top-level questions all have a group, so that the form has tabs.
	data, _ := os.ReadFile(filepath.Join(chartDir(t), "questions.yaml"))
	var doc struct {
		Questions []question `json:"questions"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, q := range doc.Questions {
		if q.Group == "" {
			t.Errorf("question %s has no group", q.Variable)
		}
	}
}

// ofType checks a value against the question type Rancher renders.
func ofType(q question, v any) error {
	switch {
	case q.Type == "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("not a boolean")
		}
	case q.Type == "int":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			return fmt.Errorf("not a whole number")
		}
		if (q.Min != nil && f < *q.Min) || (q.Max != nil && f > *q.Max) {
			return fmt.Errorf("outside the question's min and max")
		}
	case q.Type == "string" || q.Type == "multiline":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("not a string")
		}
	case q.Type == "enum":
		s, ok := v.(string)
		if !ok || !slices.Contains(q.Options, s) {
			return fmt.Errorf("not one of %v", q.Options)
		}
	case strings.HasPrefix(q.Type, "array["):
		if _, ok := v.([]any); !ok {
			return fmt.Errorf("not a list")
		}
	case strings.HasPrefix(q.Type, "map["):
		if _, ok := v.(map[string]any); !ok {
			return fmt.Errorf("not a mapping")
		}
	default:
		return fmt.Errorf("question type %q is not one this chart uses", q.Type)
	}
	return nil
}

// The test values answer every question with something other than the
// default, so that TestEveryQuestion follows each answer to its effect.
func TestEveryQuestionFileAnswersAll(t *testing.T) {
	values := readValues(t, filepath.Join(chartDir(t), "values.yaml"))
	answers := readValues(t, everyQuestion)
	for _, q := range loadQuestions(t) {
		a, ok := lookup(answers, q.Variable)
		if !ok {
			t.Errorf("%s does not answer %s", everyQuestion, q.Variable)
			continue
		}
		if v, _ := lookup(values, q.Variable); sameJSON(withoutNulls(a), v) {
			t.Errorf("%s answers %s with the default %v", everyQuestion, q.Variable, v)
		}
	}
}
