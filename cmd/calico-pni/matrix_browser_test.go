package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpinput "github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/calico-pni/calico-pni/internal/synthetic"
)

// The HTML matrix is tested in Debian's Chromium, headless: `make browser`
// installs it. Without -short a missing browser fails these tests.
const chromiumPath = "/usr/bin/chromium"

// The synthetic cluster of these tests: 1,000 namespaces in 100 projects
// and the System project.
const browserNamespaces = 1000

// oracleMatrix is `matrix -o json` of the same cluster: what the page must
// show.
type oracleMatrix struct {
	Groups []string     `json:"groups"`
	Cells  []oracleCell `json:"cells"`
}

type oracleCell struct {
	From, To, Verdict   string
	AllowedBy, DeniedBy []string
}

func (m oracleMatrix) cell(from, to string) oracleCell {
	for _, c := range m.Cells {
		if c.From == from && c.To == to {
			return c
		}
	}
	panic(fmt.Sprintf("no cell %s -> %s", from, to))
}

// legendName is the legend's name of each verdict of the JSON form.
var legendName = map[string]string{"allow": "allow", "deny": "deny", "partial": "partial", "indeterminate": "cannot be decided", "none": "no pod pair"}

// matrixOutput runs matrix on a file and returns its output.
func matrixOutput(t *testing.T, path string, args ...string) string {
	t.Helper()
	code, stdout, stderr := calicoPNI(t, "", append([]string{"matrix", "-f", path, "--by", "project"}, args...)...)
	if code != exitOK {
		t.Fatalf("matrix %v: exit %d: %s", args, code, stderr)
	}
	return stdout
}

// systemProject is the synthetic clusters' System project.
var systemProject = synthetic.New(synthetic.Size{}).SystemProject

// label is the page's name of a group: the System project is marked.
func label(g string) string {
	if g == systemProject {
		return g + " (System)"
	}
	return g
}

// browser is one headless Chromium with one page, and what the page did
// that it must not: script errors, console errors, requests.
type browser struct {
	t        *testing.T
	ctx      context.Context
	mu       sync.Mutex
	problems []string
	requests []string
}

// needChromium fails the test when Chromium is missing; with -short it
// skips it.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if testing.Short() {
			t.Skipf("%s: %v (run `make browser` to install it)", chromiumPath, err)
		}
		t.Fatalf("the HTML matrix is tested in Chromium, and %s is missing (%v): run `make browser`, which installs Debian's chromium", chromiumPath, err)
	}
}

// openPage writes an HTML page and opens it in a new headless Chromium,
// with a new empty profile, and waits until the page's script has drawn
// it.
func openPage(t *testing.T, html string) *browser {
	t.Helper()
	needChromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "matrix.html")
	if err := os.WriteFile(page, []byte(html), 0o644); err != nil {
		t.Fatal(err)
	}
	// The background-networking flags keep Chromium from calling home,
	// which hangs it on a machine without internet.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1400, 1000))
	// A guard against a browser that never answers, not a measure.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	b := &browser{t: t}
	ctx, cancelTab := chromedp.NewContext(ctx, chromedp.WithListener(b.listen))
	t.Cleanup(cancelTab)
	b.ctx = ctx
	url := "file://" + page
	b.do(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body[data-state]")))
	if state := b.eval(`document.body.dataset.state + ' ' + document.getElementById('error').textContent`); state != "ready " {
		t.Fatalf("the page is not drawn: %s", state)
	}
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, p := range b.problems {
			t.Errorf("the page: %s", p)
		}
		for _, r := range b.requests {
			if r != url {
				t.Errorf("the page requested %s: it must stand alone", r)
			}
		}
	})
	return b
}

// listen runs in the tab's loop: it only records.
func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		text := ev.ExceptionDetails.Text
		if ev.ExceptionDetails.Exception != nil {
			text += " " + ev.ExceptionDetails.Exception.Description
		}
		b.problems = append(b.problems, "script error: "+text)
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			b.problems = append(b.problems, "console error")
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			b.problems = append(b.problems, "browser log: "+ev.Entry.Text)
		}
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatal(err)
	}
}

func (b *browser) eval(expr string) string {
	b.t.Helper()
	return evalAs[string](b, expr)
}

func evalAs[T any](b *browser, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// shown is how many rows and columns the page says it shows.
func (b *browser) shown() (rows, cols int) {
	b.t.Helper()
	v := evalAs[[2]int](b, `[+document.getElementById('status').dataset.rows, +document.getElementById('status').dataset.columns]`)
	return v[0], v[1]
}

// drawn waits for the page's next two frames, after which every redraw
// asked for has been made.
func (b *browser) drawn() {
	b.t.Helper()
	evalAs[bool](b, `new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))`)
}

// geometry is where the grid is: the page publishes its label bands and
// square size on #grid.
type geometry struct {
	Left, Top, LabelWidth, LabelHeight, Square, ScrollLeft, ScrollTop, DPR float64
}

func (b *browser) geometry() geometry {
	return evalAs[geometry](b, `(() => {
		const g = document.getElementById('grid'), r = g.getBoundingClientRect();
		return {Left: r.left + g.clientLeft, Top: r.top + g.clientTop, LabelWidth: +g.dataset.labelWidth,
			LabelHeight: +g.dataset.labelHeight, Square: +g.dataset.square, ScrollLeft: g.scrollLeft,
			ScrollTop: g.scrollTop, DPR: devicePixelRatio};
	})()`)
}

// inGrid is the centre of the square at visible row r and column c,
// within the grid's canvas.
func (g geometry) inGrid(r, c int) (float64, float64) {
	return g.LabelWidth + (float64(c)+0.5)*g.Square - g.ScrollLeft, g.LabelHeight + (float64(r)+0.5)*g.Square - g.ScrollTop
}

// pixel is the colour drawn at the centre of the square at visible row r
// and column c.
func (b *browser) pixel(r, c int) string {
	b.t.Helper()
	g := b.geometry()
	x, y := g.inGrid(r, c)
	return b.eval(fmt.Sprintf(`(() => {
		const d = document.getElementById('canvas').getContext('2d').getImageData(%d, %d, 1, 1).data;
		return 'rgb(' + d[0] + ', ' + d[1] + ', ' + d[2] + ')';
	})()`, int(x*g.DPR), int(y*g.DPR)))
}

// legendColour is the colour of the legend's swatch for a name.
func (b *browser) legendColour(name string) string {
	b.t.Helper()
	colour := b.eval(fmt.Sprintf(`(() => {
		const item = [...document.querySelectorAll('#legend > span')].find(s => s.textContent.startsWith(%q));
		return item ? getComputedStyle(item.querySelector('.swatch')).backgroundColor : '';
	})()`, name+":"))
	if colour == "" {
		b.t.Fatalf("the legend has no %q", name)
	}
	return colour
}

// reveal scrolls the grid so that the square at visible row r and
// column c is in view, and waits until it is drawn.
func (b *browser) reveal(r, c int) {
	b.t.Helper()
	evalAs[bool](b, fmt.Sprintf(`(() => { const g = document.getElementById('grid'), s = +g.dataset.square;
		g.scrollLeft = Math.max(0, %d * s - 40); g.scrollTop = Math.max(0, %d * s - 40); return true; })()`, c, r))
	b.drawn()
}

// click clicks the square at visible row r and column c.
func (b *browser) click(r, c int) {
	b.t.Helper()
	g := b.geometry()
	x, y := g.inGrid(r, c)
	b.do(chromedp.MouseClickXY(g.Left+x, g.Top+y))
}

func (b *browser) hover(r, c int) {
	b.t.Helper()
	g := b.geometry()
	x, y := g.inGrid(r, c)
	b.do(chromedp.MouseEvent(cdpinput.DispatchMouseEventTypeMouseMoved, g.Left+x, g.Top+y))
}

// isolatedCluster is the page and the JSON form of the synthetic cluster
// with calico-pni installed.
func isolatedCluster(t *testing.T) (string, oracleMatrix) {
	needChromium(t)
	path := syntheticCluster(t, t.TempDir(), browserNamespaces, true)
	var m oracleMatrix
	if err := json.Unmarshal([]byte(matrixOutput(t, path, "-o", "json")), &m); err != nil {
		t.Fatal(err)
	}
	return matrixOutput(t, path, "-o", "html"), m
}

// TestBrowserMatrixRenders: the page draws one square per cell in the
// colour of its verdict, as the legend gives it, without a script error
// or a request, and names the cell under the mouse.
func TestBrowserMatrixRenders(t *testing.T) {
	html, m := isolatedCluster(t)
	if len(m.Groups) != 101 {
		t.Fatalf("%d groups in the synthetic cluster, want 100 projects and the System project", len(m.Groups))
	}
	if !strings.Contains(html, `id="matrix-data" data-encoding="json"`) {
		t.Fatal("the page does not hold its data as plain JSON")
	}
	b := openPage(t, html)
	if rows, cols := b.shown(); rows != len(m.Groups) || cols != len(m.Groups) {
		t.Errorf("the page shows %d rows and %d columns, want %d", rows, cols, len(m.Groups))
	}
	if got, want := b.eval(`document.getElementById('status').textContent`), "10,201 squares"; !strings.Contains(got, want) {
		t.Errorf("status %q, want %q", got, want)
	}
	b.drawn()
	colours := map[string]string{}
	seen := map[string]bool{}
	for r := range 6 {
		for c := range 30 {
			cell := m.cell(m.Groups[r], m.Groups[c])
			name := legendName[cell.Verdict]
			if colours[name] == "" {
				colours[name] = b.legendColour(name)
			}
			seen[cell.Verdict] = true
			if got := b.pixel(r, c); got != colours[name] {
				t.Errorf("square %s -> %s (%s) drawn %s, want the legend's %s", cell.From, cell.To, cell.Verdict, got, colours[name])
			}
		}
	}
	if len(seen) < 3 {
		t.Errorf("the squares checked have verdicts %v only; want allow, deny and partial among them", seen)
	}
	b.hover(2, 5)
	tip := b.eval(`document.getElementById('tooltip').hidden ? '' : document.getElementById('tooltip').textContent`)
	if want := label(m.Groups[2]) + " → " + label(m.Groups[5]); !strings.HasPrefix(tip, want) {
		t.Errorf("tooltip %q, want it to start with %q", tip, want)
	}
}

// TestBrowserMatrixFilter: typing a name keeps the rows and columns whose
// name holds it.
func TestBrowserMatrixFilter(t *testing.T) {
	html, m := isolatedCluster(t)
	b := openPage(t, html)
	for _, typed := range []string{"p-0004", "SYS", "no such project"} {
		// Empty the field, then type into it key by key.
		evalAs[bool](b, `(document.getElementById('filter').value = '') === ''`)
		b.do(chromedp.SendKeys(chromedp.CSS("#filter"), typed))
		if got := b.eval(`document.getElementById('filter').value`); got != typed {
			t.Fatalf("the filter holds %q after typing %q", got, typed)
		}
		var want []string
		for _, g := range m.Groups {
			if strings.Contains(strings.ToLower(label(g)), strings.ToLower(typed)) {
				want = append(want, g)
			}
		}
		if rows, cols := b.shown(); rows != len(want) || cols != len(want) {
			t.Errorf("filter %q: %d rows and %d columns shown, want %d (%v)", typed, rows, cols, len(want), want)
		}
		if len(want) == 0 {
			continue
		}
		b.drawn()
		last := len(want) - 1
		cell := m.cell(want[last], want[0])
		if got, colour := b.pixel(last, 0), b.legendColour(legendName[cell.Verdict]); got != colour {
			t.Errorf("filter %q: square %s -> %s drawn %s, want %s (%s)", typed, cell.From, cell.To, got, colour, cell.Verdict)
		}
	}
}

// TestBrowserMatrixDetail: a click on a square shows its cell in the
// detail panel, with the policies that decided it.
func TestBrowserMatrixDetail(t *testing.T) {
	html, m := isolatedCluster(t)
	b := openPage(t, html)
	b.drawn()
	for _, at := range [][2]int{{0, 1}, {3, 3}, {7, 2}} {
		b.click(at[0], at[1])
		cell := m.cell(m.Groups[at[0]], m.Groups[at[1]])
		got := evalAs[map[string]string](b, `(() => { const d = document.getElementById('detail');
			return {from: d.dataset.from || '', to: d.dataset.to || '', text: d.textContent}; })()`)
		if got["from"] != label(cell.From) || got["to"] != label(cell.To) {
			t.Errorf("clicked %s -> %s, the panel shows %s -> %s", cell.From, cell.To, got["from"], got["to"])
		}
		if want := "Verdict: " + legendName[cell.Verdict] + "."; !strings.Contains(got["text"], want) {
			t.Errorf("%s -> %s: panel %q lacks %q", cell.From, cell.To, got["text"], want)
		}
		deciders := slices.Concat(cell.AllowedBy, cell.DeniedBy)
		if len(deciders) == 0 {
			t.Fatalf("%s -> %s: the JSON form names no deciding policy", cell.From, cell.To)
		}
		for _, p := range deciders {
			if !strings.Contains(got["text"], p) {
				t.Errorf("%s -> %s: panel %q does not name %s", cell.From, cell.To, got["text"], p)
			}
		}
	}
}

// plainIsolation is the test's own statement of docs/explain.md's plain
// isolation, by project: into a user project, its own project and the
// System project are allowed, every other source denied; nothing is
// expected into the System project or namespaces in no project.
func plainIsolation(from, to string) string {
	switch {
	case to == systemProject || to == noProject:
		return ""
	case from == to || from == systemProject:
		return "allow"
	}
	return "deny"
}

// TestBrowserMatrixExceptions: "Exceptions only" keeps the rows and
// columns with a cell that differs from plain isolation, and blanks the
// other cells.
func TestBrowserMatrixExceptions(t *testing.T) {
	html, m := isolatedCluster(t)
	b := openPage(t, html)
	isException := map[[2]string]bool{}
	rowHas, colHas := map[string]bool{}, map[string]bool{}
	for _, c := range m.Cells {
		if want := plainIsolation(c.From, c.To); want != "" && c.Verdict != "none" && c.Verdict != want {
			isException[[2]string{c.From, c.To}] = true
			rowHas[c.From], colHas[c.To] = true, true
		}
	}
	if len(isException) == 0 || len(rowHas) == len(m.Groups) {
		t.Fatalf("%d exceptions in %d rows: the cluster does not test the view", len(isException), len(rowHas))
	}
	b.do(chromedp.Click(chromedp.CSS("#exceptions")))
	rows, cols := b.shown()
	if rows != len(rowHas) || cols != len(colHas) {
		t.Fatalf("exceptions only: %d rows and %d columns, want %d and %d", rows, cols, len(rowHas), len(colHas))
	}
	if got, want := b.eval(`document.getElementById('exception-count').textContent`), fmt.Sprintf("(%d cells)", len(isException)); got != want {
		t.Errorf("exception count %q, want %q", got, want)
	}
	var keptRows, keptCols []string
	for _, g := range m.Groups {
		if rowHas[g] {
			keptRows = append(keptRows, g)
		}
		if colHas[g] {
			keptCols = append(keptCols, g)
		}
	}
	b.drawn()
	hidden := b.legendColour("not shown")
	blank, marked := 0, 0
	for r := range min(len(keptRows), 8) {
		for c := range min(len(keptCols), 20) {
			cell := m.cell(keptRows[r], keptCols[c])
			want := hidden
			if isException[[2]string{cell.From, cell.To}] {
				want = b.legendColour(legendName[cell.Verdict])
				marked++
			} else {
				blank++
			}
			if got := b.pixel(r, c); got != want {
				t.Errorf("exceptions only: %s -> %s drawn %s, want %s", cell.From, cell.To, got, want)
			}
		}
	}
	if blank == 0 || marked == 0 {
		t.Errorf("%d blank and %d exception squares checked; want both", blank, marked)
	}
	b.do(chromedp.Click(chromedp.CSS("#exceptions")))
	if rows, cols := b.shown(); rows != len(m.Groups) || cols != len(m.Groups) {
		t.Errorf("exceptions only off: %d rows and %d columns, want all %d", rows, cols, len(m.Groups))
	}
}

// TestBrowserMatrixCompare: with --compare on a cluster without
// calico-pni, lost and gained cells have their colours, unchanged cells
// are pale, and "Changes only" blanks them and keeps the rows and columns
// that change.
func TestBrowserMatrixCompare(t *testing.T) {
	needChromium(t)
	path := syntheticCluster(t, t.TempDir(), browserNamespaces, false)
	var out struct {
		Preview oracleMatrix `json:"preview"`
		Changes []struct{ From, To, Change string }
	}
	if err := json.Unmarshal([]byte(matrixOutput(t, path, "--compare", "-o", "json")), &out); err != nil {
		t.Fatal(err)
	}
	m := out.Preview
	change := map[[2]string]string{}
	rowHas, colHas := map[string]bool{}, map[string]bool{}
	for _, c := range out.Changes {
		change[[2]string{c.From, c.To}] = c.Change
		rowHas[c.From], colHas[c.To] = true, true
	}
	if len(change) == 0 || len(change) == len(m.Cells) {
		t.Fatalf("%d of %d cells change: the cluster does not test the view", len(change), len(m.Cells))
	}
	html := matrixOutput(t, path, "--compare", "-o", "html")
	// This page is large enough to hold its data compressed: the test
	// covers the page's inflating of it.
	if !strings.Contains(html, `id="matrix-data" data-encoding="gzip"`) {
		t.Fatal("the compare page does not hold its data compressed")
	}
	b := openPage(t, html)
	colourOf := func(from, to string) string {
		switch change[[2]string{from, to}] {
		case "lose":
			return b.legendColour("loses connectivity")
		case "gain":
			return b.legendColour("gains connectivity")
		case "change":
			return b.legendColour("changes otherwise")
		}
		return b.legendColour("unchanged, " + legendName[m.cell(from, to).Verdict])
	}
	// Some cells of each kind, wherever they are in the grid.
	var sample [][2]int
	taken := map[string]int{}
	for i, from := range m.Groups {
		for j, to := range m.Groups {
			kind := change[[2]string{from, to}]
			if taken[kind] < 8 && (i+j)%3 == 0 || kind == "" && taken[kind] < 8 {
				taken[kind]++
				sample = append(sample, [2]int{i, j})
			}
		}
	}
	if taken[""] == 0 || taken["lose"] == 0 || taken["gain"] == 0 {
		t.Fatalf("the sample has %v cells of each kind; want unchanged, lost and gained ones", taken)
	}
	check := func(view string, hideUnchanged bool) {
		for _, at := range sample {
			from, to := m.Groups[at[0]], m.Groups[at[1]]
			want := colourOf(from, to)
			if hideUnchanged && change[[2]string{from, to}] == "" {
				want = b.legendColour("not shown")
			}
			b.reveal(at[0], at[1])
			if got := b.pixel(at[0], at[1]); got != want {
				t.Errorf("%s: %s -> %s (%q) drawn %s, want %s", view, from, to, change[[2]string{from, to}], got, want)
			}
		}
	}
	check("compare", false)
	b.do(chromedp.Click(chromedp.CSS("#changes")))
	if rows, cols := b.shown(); rows != len(rowHas) || cols != len(colHas) {
		t.Errorf("changes only: %d rows and %d columns, want %d and %d", rows, cols, len(rowHas), len(colHas))
	}
	if len(rowHas) != len(m.Groups) || len(colHas) != len(m.Groups) {
		t.Fatalf("the sample's places assume every row and column has a change; %d rows, %d columns do", len(rowHas), len(colHas))
	}
	check("changes only", true)
	b.do(chromedp.Click(chromedp.CSS("#changes")))
	check("changes only off", false)
	b.reveal(0, 0)
	b.click(0, 1)
	if text := b.eval(`document.getElementById('detail').textContent`); !strings.Contains(text, "Today") || !strings.Contains(text, "With calico-pni's policies") {
		t.Errorf("the compare panel %q lacks today's cell or calico-pni's", text)
	}
}
