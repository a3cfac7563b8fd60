package report

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/calico-pni/calico-pni/evaluator"
)

// readPage renders r as HTML and reads its data back as a browser would:
// the JSON of the data element, and the cells decoded by this test's own
// reading of the format pageData documents.
func readPage(t *testing.T, r MatrixReport) (*pageData, []int, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := MatrixHTML(&buf, r); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	d := pageDataOf(t, page)
	symbol := map[rune]int{}
	for _, r := range d.Alphabet {
		for c := r[0]; c <= r[1]; c++ {
			symbol[c] = len(symbol)
		}
	}
	var ids []int
	var pending []int
	for _, c := range d.Cells {
		s, ok := symbol[c]
		if !ok {
			t.Fatalf("cell character %U is not in the alphabet", c)
		}
		pending = append(pending, s)
		if len(pending) == d.Width {
			id := pending[0]
			if d.Width == 2 {
				id = pending[0]*len(symbol) + pending[1]
			}
			ids = append(ids, id)
			pending = pending[:0]
		}
	}
	if n := len(d.Groups); len(ids) != n*n || len(pending) != 0 {
		t.Fatalf("%d cells for %d groups", len(ids), n)
	}
	return d, ids, page
}

// pageDataOf reads the data element of a page: JSON, or with
// data-encoding="gzip" a JSON string of the JSON gzipped, in base64.
func pageDataOf(t *testing.T, page string) *pageData {
	t.Helper()
	const open = `<script type="application/json" id="matrix-data" data-encoding="`
	start := strings.Index(page, open)
	if start < 0 {
		t.Fatal("no data element in the page")
	}
	rest := page[start+len(open):]
	encoding, rest, _ := strings.Cut(rest, `">`)
	end := strings.Index(rest, "</script>")
	content := []byte(rest[:end])
	switch encoding {
	case "gzip":
		var packed string
		if err := json.Unmarshal(content, &packed); err != nil {
			t.Fatalf("the compressed data is not a JSON string: %v", err)
		}
		raw, err := base64.StdEncoding.DecodeString(packed)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if content, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	case "json":
	default:
		t.Fatalf("data encoding %q", encoding)
	}
	var d pageData
	if err := json.Unmarshal(content, &d); err != nil {
		t.Fatalf("the page's data is not JSON: %v", err)
	}
	if big := len(content) > compressAbove; big != (encoding == "gzip") {
		t.Errorf("%d bytes of data encoded as %s; compress above %d", len(content), encoding, compressAbove)
	}
	return &d
}

func allowCell(pairs int, by string) evaluator.Cell {
	return evaluator.Cell{Verdict: evaluator.Allow, Pairs: pairs, Allowed: pairs, AllowedBy: []string{by}}
}

func denyCell(pairs int, by string) evaluator.Cell {
	return evaluator.Cell{Verdict: evaluator.Deny, Pairs: pairs, Denied: pairs, DeniedBy: []string{by}}
}

func partialCell(pairs, allowed int) evaluator.Cell {
	return evaluator.Cell{Verdict: evaluator.Partial, Pairs: pairs, Allowed: allowed, Denied: pairs - allowed, Partial: allowed,
		Ports: []evaluator.PortRange{{Min: 6379, Max: 6379}}, AllowedBy: []string{"pni-role-redis"}, DeniedBy: []string{"pni-deny-egress (end of tier default)"}}
}

// fourProjects is a matrix of a System project, two user projects and
// namespaces in no project, with a cell of every kind.
func fourProjects() MatrixReport {
	groups := []string{"(no project)", "p-a", "p-b", "p-sys"}
	undecided := evaluator.Cell{Verdict: evaluator.Indeterminate, Pairs: 4, Allowed: 2, Undecided: 2, Reason: "the source's address is unknown </script>"}
	cells := [][]evaluator.Cell{
		{allowCell(2, "no policy"), denyCell(6, "pni-deny-ingress (end of tier default)"), partialCell(6, 1), allowCell(4, "no policy")},
		{denyCell(6, "pni-deny-egress (end of tier default)"), partialCell(9, 6), partialCell(9, 3), undecided},
		{denyCell(6, "pni-deny-egress (end of tier default)"), denyCell(9, "pni-deny-egress (end of tier default)"), allowCell(6, "pni-project-p-b"), {}},
		{allowCell(4, "no policy"), allowCell(6, "pni-allow-from-system-project"), denyCell(4, "pni-deny-ingress (end of tier default)"), allowCell(2, "no policy")},
	}
	return MatrixReport{By: "project", Policies: "as they are in the cluster",
		Matrix:   &evaluator.Matrix{Protocol: "TCP", Groups: groups, Cells: cells, Pods: 9, Namespaces: 5, Classes: 5},
		Labels:   map[string]string{"p-sys": "p-sys (System)"},
		Projects: map[string]string{"(no project)": "", "p-a": "p-a", "p-b": "p-b", "p-sys": "p-sys"}, System: "p-sys"}
}

// TestMatrixPageCells reads every cell back from the page: its verdict,
// its detail as the text form writes it, its deciding policy and how it
// differs from plain isolation, stated here cell by cell.
func TestMatrixPageCells(t *testing.T) {
	r := fourProjects()
	d, ids, _ := readPage(t, r)
	wantGroups := []string{"(no project)", "p-a", "p-b", "p-sys (System)"}
	if fmt.Sprint(d.Groups) != fmt.Sprint(wantGroups) {
		t.Errorf("groups %q, want %q", d.Groups, wantGroups)
	}
	wantExceptions := [][]exception{
		{noException, noException, crossProjectAllow, noException},
		{noException, sameProjectGap, crossProjectAllow, noException},
		{noException, noException, noException, noException},
		{noException, noException, systemProjectGap, noException},
	}
	for i := range 4 {
		for j := range 4 {
			c := r.Matrix.Cells[i][j]
			rec := d.Records[ids[i*4+j]]
			if len(rec) != 4 {
				t.Fatalf("record %v: want 4 fields without a comparison", rec)
			}
			where := fmt.Sprintf("%s -> %s", r.Matrix.Groups[i], r.Matrix.Groups[j])
			if rec[0] != verdictCode(c.Verdict) {
				t.Errorf("%s: verdict %d, want %q", where, rec[0], c.Verdict)
			}
			if got, want := exception(rec[1]), wantExceptions[i][j]; got != want {
				t.Errorf("%s: exception %d, want %d", where, got, want)
			}
			if got, want := d.Strings[rec[2]], Owners(nil).cellDetail("TCP", c); got != want {
				t.Errorf("%s: detail %q, want %q", where, got, want)
			}
			if got, want := d.Strings[rec[3]], mainDecider(c); got != want {
				t.Errorf("%s: decider %q, want %q", where, got, want)
			}
		}
	}
	if d.Compare {
		t.Error("the page says it compares without a comparison")
	}
}

// TestMatrixPageCompare: with a comparison, each cell holds both sides
// and the change, as the CSV form names it; exceptions are judged on the
// cells under calico-pni's policies.
func TestMatrixPageCompare(t *testing.T) {
	today := fourProjects()
	future := fourProjects()
	future.Matrix.Cells[1][2] = denyCell(9, "pni-deny-ingress (end of tier default)") // loses
	future.Matrix.Cells[3][2] = allowCell(4, "pni-allow-from-system-project")         // gains
	moved := partialCell(9, 6)
	moved.Ports = []evaluator.PortRange{{Min: 80, Max: 80}}
	future.Matrix.Cells[1][1] = moved // other ports, same pairs
	r := today
	r.Compare = future.Matrix
	d, ids, _ := readPage(t, r)
	if !d.Compare {
		t.Fatal("the page does not say it compares")
	}
	wantChange := map[[2]int]int32{{1, 2}: changeLose, {3, 2}: changeGain, {1, 1}: changeOther}
	for i := range 4 {
		for j := range 4 {
			rec := d.Records[ids[i*4+j]]
			if len(rec) != 8 {
				t.Fatalf("record %v: want 8 fields with a comparison", rec)
			}
			tc, fc := today.Matrix.Cells[i][j], future.Matrix.Cells[i][j]
			where := fmt.Sprintf("%s -> %s", r.Matrix.Groups[i], r.Matrix.Groups[j])
			if rec[4] != wantChange[[2]int{i, j}] {
				t.Errorf("%s: change %d, want %d", where, rec[4], wantChange[[2]int{i, j}])
			}
			if rec[0] != verdictCode(fc.Verdict) || rec[5] != verdictCode(tc.Verdict) {
				t.Errorf("%s: verdicts %d (future), %d (today), want %q, %q", where, rec[0], rec[5], fc.Verdict, tc.Verdict)
			}
			if d.Strings[rec[2]] != Owners(nil).cellDetail("TCP", fc) || d.Strings[rec[6]] != Owners(nil).cellDetail("TCP", tc) {
				t.Errorf("%s: details %q, %q", where, d.Strings[rec[2]], d.Strings[rec[6]])
			}
		}
	}
	// The System project was shut out of p-b today, and is let in with
	// calico-pni's policies: no longer an exception.
	if got := exception(d.Records[ids[3*4+2]][1]); got != noException {
		t.Errorf("p-sys -> p-b with calico-pni's policies: exception %d, want none", got)
	}
	// p-a -> p-b loses its partial allow: no longer allowed across projects.
	if got := exception(d.Records[ids[1*4+2]][1]); got != noException {
		t.Errorf("p-a -> p-b with calico-pni's policies: exception %d, want none", got)
	}
}

// TestMatrixPageEscapes: a reason that looks like markup stays data.
func TestMatrixPageEscapes(t *testing.T) {
	r := fourProjects()
	r.Notes = []string{"<b>bold</b>"}
	_, _, page := readPage(t, r)
	if n := strings.Count(page, "</script>"); n != 2 {
		t.Errorf("%d </script> in the page, want 2 (data and script)", n)
	}
	if strings.Contains(page, "<b>bold") {
		t.Error("a note was written as markup")
	}
}

// bigMatrix is a matrix of n groups shaped like the synthetic cluster's:
// groups of unequal sizes (so pod pair counts vary from cell to cell),
// one allow per project on the diagonal, redis consumers reaching redis
// roles on one port, everything else denied.
func bigMatrix(n int) MatrixReport {
	groups := make([]string, n)
	projects := map[string]string{}
	size := make([]int, n)
	role, consumer := make([]bool, n), make([]bool, n)
	for i := range groups {
		groups[i] = fmt.Sprintf("p-%05d", i)
		projects[groups[i]] = groups[i]
		size[i] = max(1, 1300/(i+1))
		role[i], consumer[i] = i%13 == 5, i%4 == 1
	}
	cells := make([][]evaluator.Cell, n)
	for i := range cells {
		cells[i] = make([]evaluator.Cell, n)
		for j := range cells[i] {
			pairs := size[i] * size[j]
			switch {
			case i == j:
				cells[i][j] = allowCell(size[i]*(size[i]-1)+1, "pni-project-"+groups[i])
			case consumer[i] && role[j]:
				cells[i][j] = partialCell(pairs, max(1, pairs/7))
			default:
				cells[i][j] = denyCell(pairs, "pni-deny-egress (end of tier default)")
			}
		}
	}
	return MatrixReport{By: "project", Policies: "as they are in the cluster", Projects: projects,
		Matrix: &evaluator.Matrix{Protocol: "TCP", Groups: groups, Cells: cells, Pods: n, Namespaces: n, Classes: n}}
}

// TestMatrixPageSizeAt1000Projects: a million cells fit in a page of
// less than 5 MB, with one character per cell.
func TestMatrixPageSizeAt1000Projects(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a page of a million cells")
	}
	r := bigMatrix(1000)
	d, ids, page := readPage(t, r)
	if len(page) >= 5<<20 {
		t.Errorf("the page takes %d bytes, want under 5 MB", len(page))
	}
	if d.Width != 1 {
		t.Errorf("%d characters per cell for %d records, want 1", d.Width, len(d.Records))
	}
	for _, k := range []int{0, 1, 5, 1005, 999_999, 777_777} {
		i, j := k/1000, k%1000
		if got, want := d.Strings[d.Records[ids[k]][2]], Owners(nil).cellDetail("TCP", r.Matrix.Cells[i][j]); got != want {
			t.Errorf("cell %d, %d: %q, want %q", i, j, got, want)
		}
	}
	t.Logf("page %d bytes, %d records, %d strings", len(page), len(d.Records), len(d.Strings))
}

// TestMatrixPageTwoCharacters: with more distinct cells than the
// alphabet has characters, each cell takes two, and reads back the same.
func TestMatrixPageTwoCharacters(t *testing.T) {
	n := 0
	for n*n <= len(alphabet) {
		n += 10
	}
	r := bigMatrix(n)
	for i := range r.Matrix.Cells {
		for j := range r.Matrix.Cells[i] {
			r.Matrix.Cells[i][j] = denyCell(i*n+j+1, "pni-deny-ingress (end of tier default)")
		}
	}
	d, ids, _ := readPage(t, r)
	if d.Width != 2 {
		t.Fatalf("width %d for %d records, want 2", d.Width, len(d.Records))
	}
	if utf8.RuneCountInString(d.Cells) != 2*n*n {
		t.Errorf("%d characters for %d cells", utf8.RuneCountInString(d.Cells), n*n)
	}
	for k, id := range ids {
		want := fmt.Sprintf("deny (%d pod pairs)", k+1)
		if got := d.Strings[d.Records[id][2]]; !strings.HasPrefix(got, want) {
			t.Fatalf("cell %d: %q, want %q", k, got, want)
		}
	}
}
