package replay

import (
	goparser "go/parser"
	gotoken "go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The reference evaluator shares no code with the product: no file of the
// package imports a calico-pni package but internal/testbed, except the
// test that compares the two evaluators.
func TestSharesNoCodeWithTheProduct(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/calico-pni/calico-pni/"
	for _, file := range files {
		f, err := goparser.ParseFile(gotoken.NewFileSet(), file, nil, goparser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, module) || path == module+"internal/testbed" {
				continue
			}
			if file != "crosscheck_test.go" {
				t.Errorf("%s imports %s: the replay must not share code with the product", file, path)
			}
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %v", files)
	}
}
