package report

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"slices"
	"unicode/utf8"

	"github.com/calico-pni/calico-pni/evaluator"
)

// pageData is the matrix as the HTML page's script reads it. A matrix of
// 1,000 projects has a million cells but a few thousand distinct ones:
// each distinct cell is a record, written once, and every cell is one
// character of Cells naming its record (two characters when there are
// more records than Alphabet has characters). The most frequent records
// get the characters that take one byte in UTF-8.
type pageData struct {
	Compare bool `json:"compare"`
	// States name the two states of a comparison: before, after.
	States []string `json:"states,omitempty"`
	// Groups are the rows' and columns' labels, in the matrix's order.
	Groups []string `json:"groups"`
	// Verdicts, Changes and Exceptions name the codes of the records.
	Verdicts   []exceptionName `json:"verdicts"`
	Changes    []exceptionName `json:"changes"`
	Exceptions []exceptionName `json:"exceptions"`
	// Strings holds every detail and deciding policy once; records refer
	// to them by index.
	Strings []string `json:"strings"`
	// Records are [verdict, exception, detail, decider], and with a
	// comparison [..., change, today's verdict, today's detail, today's
	// decider]: the first four then describe the cell under calico-pni's
	// policies.
	Records [][]int32 `json:"records"`
	// Alphabet lists the characters of Cells as ranges of code points, in
	// the order of the numbers they stand for.
	Alphabet [][2]rune `json:"alphabet"`
	// Width is the number of characters per cell; Cells holds the cells
	// row after row.
	Width int    `json:"width"`
	Cells string `json:"cells"`
}

// The codes of a record's verdict and change.
const (
	verdictNone int32 = iota
	verdictAllow
	verdictDeny
	verdictPartial
	verdictUndecided
)

const (
	unchanged int32 = iota
	changeLose
	changeGain
	changeOther
)

var verdictNames = []exceptionName{
	{"no pod pair", "no running pod on one side, or a single pod"},
	{"allow", "every pod pair, on every port asked"},
	{"deny", "no pod pair"},
	{"partial", "some pod pairs, or some ports only"},
	{"cannot be decided", "some pod pairs cannot be decided"},
}

var changeNames = []exceptionName{
	{"unchanged", "the same with calico-pni's policies"},
	{"loses connectivity", "fewer pod pairs allowed, or no longer every port"},
	{"gains connectivity", "more pod pairs allowed, or now every port"},
	{"changes otherwise", "other ports allowed, the same number of pod pairs"},
}

func verdictCode(v evaluator.Verdict) int32 {
	switch v {
	case evaluator.Allow:
		return verdictAllow
	case evaluator.Deny:
		return verdictDeny
	case evaluator.Partial:
		return verdictPartial
	case evaluator.Indeterminate:
		return verdictUndecided
	}
	return verdictNone
}

// pageRecord is a distinct cell of the page.
type pageRecord struct {
	verdict, exception, detail, decider         int32
	change, todayVerdict, todayDetail, todayDec int32
}

// pageBuilder collects the records and strings of a page.
type pageBuilder struct {
	protocol string
	compare  bool
	owners   Owners
	strings  []string
	stringIx map[string]int32
	seed     maphash.Seed
	// described remembers the detail and decider of every distinct cell,
	// by a hash of its content.
	described map[uint64][]describedCell
	// last is the last cell described on each side (the matrix shown,
	// and today's with a comparison), and lastRecord the last record.
	last       [2]describedCell
	lastRecord int32
	recordIx   map[pageRecord]int32
	records    []pageRecord
	counts     []int
}

type describedCell struct {
	cell            evaluator.Cell
	detail, decider int32
}

// newPageData encodes the report's matrix (and comparison) for the page.
func newPageData(r MatrixReport) (*pageData, error) {
	m := r.Matrix
	b := &pageBuilder{protocol: m.Protocol, compare: r.Compare != nil, stringIx: map[string]int32{}, seed: maphash.MakeSeed(),
		described: map[uint64][]describedCell{}, recordIx: map[pageRecord]int32{}, owners: r.Owners}
	b.intern("")
	n := len(m.Groups)
	future := futureCells(m, r.Compare)
	isolation := newPlainIsolation(r, m)
	ids := make([]int32, 0, n*n)
	for i := range m.Groups {
		for j := range m.Groups {
			today := &m.Cells[i][j]
			shown := today
			var rec pageRecord
			if b.compare {
				if f := future(i, j); f != nil {
					shown = f
				}
				rec = b.compared(today, shown)
			} else {
				rec.verdict, rec.detail, rec.decider = b.cell(today, 0)
			}
			rec.exception = int32(classify(isolation.expect(i, j), *shown))
			ids = append(ids, b.record(rec))
		}
	}
	d := &pageData{Compare: b.compare, Verdicts: verdictNames, Changes: changeNames, Exceptions: exceptionNames, Strings: b.strings}
	if b.compare {
		before, after, _ := r.states()
		d.States = []string{before, after}
	}
	for _, g := range m.Groups {
		d.Groups = append(d.Groups, r.label(g))
	}
	rank := b.rank()
	for _, id := range rank {
		d.Records = append(d.Records, b.records[id].fields(b.compare))
	}
	cells, width, err := encodeCells(ids, rank)
	if err != nil {
		return nil, err
	}
	d.Alphabet, d.Width, d.Cells = alphabetRanges, width, cells
	return d, nil
}

// futureCells returns the cell of the comparison from group i to group j
// of m; nil without a comparison, or for a group the comparison lacks (it
// has the same pods, so the same groups; a cell without its counterpart
// is shown unchanged).
func futureCells(m, compare *evaluator.Matrix) func(i, j int) *evaluator.Cell {
	if compare == nil {
		return func(int, int) *evaluator.Cell { return nil }
	}
	p := newPreview(compare)
	place := make([]int, len(m.Groups))
	for i, g := range m.Groups {
		place[i] = -1
		if k, ok := p.index[g]; ok {
			place[i] = k
		}
	}
	return func(i, j int) *evaluator.Cell {
		if place[i] < 0 || place[j] < 0 {
			return nil
		}
		return &compare.Cells[place[i]][place[j]]
	}
}

// compared is the record of a cell today and under calico-pni's policies,
// with the change as changes() finds it for the text and CSV forms.
func (b *pageBuilder) compared(today, future *evaluator.Cell) pageRecord {
	var rec pageRecord
	rec.verdict, rec.detail, rec.decider = b.cell(future, 0)
	rec.todayVerdict, rec.todayDetail, rec.todayDec = b.cell(today, 1)
	switch {
	case loses(*today, *future):
		rec.change = changeLose
	case gains(*today, *future):
		rec.change = changeGain
	case today.Verdict != future.Verdict || today.Allowed != future.Allowed || !slices.Equal(today.Ports, future.Ports):
		rec.change = changeOther
	}
	return rec
}

// cell returns the verdict code, detail and decider of a cell, each
// detail formatted once for all the cells alike.
func (b *pageBuilder) cell(c *evaluator.Cell, side int) (verdict, detail, decider int32) {
	// Neighbours in a row are often alike: compare with the last cell of
	// the same side before hashing.
	if last := &b.last[side]; last.cell.Verdict != "" && sameCell(&last.cell, c) {
		return verdictCode(c.Verdict), last.detail, last.decider
	}
	verdict, detail, decider = b.describe(c)
	b.last[side] = describedCell{cell: *c, detail: detail, decider: decider}
	return verdict, detail, decider
}

func (b *pageBuilder) describe(c *evaluator.Cell) (verdict, detail, decider int32) {
	h := b.hash(c)
	for _, known := range b.described[h] {
		if sameCell(&known.cell, c) {
			return verdictCode(c.Verdict), known.detail, known.decider
		}
	}
	known := describedCell{cell: *c, detail: b.intern(b.owners.cellDetail(b.protocol, *c)), decider: b.intern(b.owners.decider(mainDecider(*c)))}
	b.described[h] = append(b.described[h], known)
	return verdictCode(c.Verdict), known.detail, known.decider
}

func (b *pageBuilder) hash(c *evaluator.Cell) uint64 {
	var h maphash.Hash
	h.SetSeed(b.seed)
	var buf [8]byte
	num := func(v int) {
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		h.Write(buf[:])
	}
	text := func(s string) {
		h.WriteString(s)
		h.WriteByte(0)
	}
	text(string(c.Verdict))
	text(c.Reason)
	for _, v := range []int{c.Pairs, c.Allowed, c.Denied, c.Undecided, c.Partial, len(c.Ports), len(c.AllowedBy)} {
		num(v)
	}
	for _, p := range c.Ports {
		num(int(p.Min)<<16 | int(p.Max))
	}
	for _, s := range c.AllowedBy {
		text(s)
	}
	for _, s := range c.DeniedBy {
		text(s)
	}
	return h.Sum64()
}

// sameCell compares what a cell's detail and decider are made of.
func sameCell(a, b *evaluator.Cell) bool {
	return a.Verdict == b.Verdict && a.Reason == b.Reason && a.Pairs == b.Pairs && a.Allowed == b.Allowed &&
		a.Denied == b.Denied && a.Undecided == b.Undecided && a.Partial == b.Partial &&
		slices.Equal(a.Ports, b.Ports) && slices.Equal(a.AllowedBy, b.AllowedBy) && slices.Equal(a.DeniedBy, b.DeniedBy)
}

func (b *pageBuilder) intern(s string) int32 {
	if i, ok := b.stringIx[s]; ok {
		return i
	}
	i := int32(len(b.strings))
	b.strings = append(b.strings, s)
	b.stringIx[s] = i
	return i
}

func (b *pageBuilder) record(rec pageRecord) int32 {
	id, ok := b.lastRecord, len(b.records) > 0 && b.records[b.lastRecord] == rec
	if !ok {
		id, ok = b.recordIx[rec]
	}
	if !ok {
		id = int32(len(b.records))
		b.recordIx[rec] = id
		b.records = append(b.records, rec)
		b.counts = append(b.counts, 0)
	}
	b.counts[id]++
	b.lastRecord = id
	return id
}

// rank orders the records by how many cells they stand for, most first,
// then in the order they were met.
func (b *pageBuilder) rank() []int32 {
	order := make([]int32, len(b.records))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(b.counts[y], b.counts[x]) })
	return order
}

func (r pageRecord) fields(compare bool) []int32 {
	if !compare {
		return []int32{r.verdict, r.exception, r.detail, r.decider}
	}
	return []int32{r.verdict, r.exception, r.detail, r.decider, r.change, r.todayVerdict, r.todayDetail, r.todayDec}
}

// alphabetRanges are the characters that stand for records, in order:
// printable ASCII, then the rest of the Basic Multilingual Plane. Left
// out are what a JSON string inside a script element would have to
// escape (the quote, the backslash, <, >, &, U+2028, U+2029), and what
// HTML's parser reports as an error in its input (control characters,
// noncharacters), and the byte order mark.
var alphabetRanges = [][2]rune{
	{0x20, 0x21}, {0x23, 0x25}, {0x27, 0x3b}, {0x3d, 0x3d}, {0x3f, 0x5b}, {0x5d, 0x7e},
	{0xa0, 0x2027}, {0x202a, 0xd7ff}, {0xe000, 0xfdcf}, {0xfdf0, 0xfefe}, {0xff00, 0xfffd},
}

var alphabet = func() []rune {
	var out []rune
	for _, r := range alphabetRanges {
		for c := r[0]; c <= r[1]; c++ {
			out = append(out, c)
		}
	}
	return out
}()

// encodeCells writes the record of every cell, as ranked, with one
// character per cell, or two when there are more records than
// characters.
func encodeCells(ids, rank []int32) (string, int, error) {
	place := make([]int32, len(rank))
	for p, id := range rank {
		place[id] = int32(p)
	}
	base := len(alphabet)
	width := 1
	if len(rank) > base {
		width = 2
	}
	if len(rank) > base*base {
		return "", 0, fmt.Errorf("the matrix has %d distinct cells, more than the HTML page can hold (%d); use -o csv or -o json", len(rank), base*base)
	}
	out := make([]byte, 0, len(ids)*width)
	for _, id := range ids {
		p := int(place[id])
		if width == 2 {
			out = utf8.AppendRune(out, alphabet[p/base])
			p %= base
		}
		out = utf8.AppendRune(out, alphabet[p])
	}
	return string(out), width, nil
}
