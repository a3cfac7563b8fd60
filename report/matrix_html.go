package report

import (
	"bytes"
	"compress/gzip"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"strings"
)

// The page's style and script, inlined into every page: the page fetches
// nothing and works offline.
var (
	//go:embed matrix_page.css
	pageStyle string
	//go:embed matrix_page.js
	pageScript string
)

// MatrixHTML prints one self-contained page: the matrix as a heat map of
// one small square per cell, drawn on a canvas from the compact encoding
// of pageData, with sticky row and column labels, a legend, the cell's
// details on hover and click, a filter by name, the cells that differ
// from plain isolation (isolation.go) and, with a comparison, the cells
// that change.
func MatrixHTML(w io.Writer, r MatrixReport) error {
	data, err := newPageData(r)
	if err != nil {
		return err
	}
	encoded, encoding, err := encodePageData(data)
	if err != nil {
		return err
	}
	page := struct {
		Scope, Policies, Classes, Compare, Empty, Skipped, Encoding string
		Notes                                                       []string
		Exceptions                                                  []exceptionName
		Style                                                       template.CSS
		Script, Data                                                template.JS
	}{Encoding: encoding, Scope: r.scope(), Policies: r.Policies, Classes: classesText(r.Matrix), Empty: strings.Join(r.Matrix.Empty, ", "),
		Skipped: strings.Join(r.Matrix.Skipped, "; "), Notes: r.Notes, Exceptions: exceptionNames[1:],
		Style: template.CSS(pageStyle), Script: template.JS(pageScript), Data: template.JS(encoded)}
	if r.Compare != nil {
		before, after, when := r.states()
		page.Compare = "Each square shows what changes " + when + ": red loses connectivity, green gains it, amber changes otherwise; unchanged squares are pale, in the colour of their verdict. Details show the cell " + before + " and " + after + "."
	}
	return matrixPage.Execute(w, page)
}

// compressAbove is the size of the data above which the page holds it
// compressed: a matrix of 1,000 projects with --compare on a cluster
// without isolation has tens of thousands of distinct cells, each with
// its own counts and deciding policies, and its details alone take
// 12 MB; they compress tenfold. Smaller pages keep their data readable.
const compressAbove = 256 << 10

// encodePageData writes the page's data as JSON, and above compressAbove
// as one JSON string holding the JSON gzipped and in base64, which the
// page's script inflates with the browser's own DecompressionStream. It
// returns the data and its encoding: "json" or "gzip".
func encodePageData(d *pageData) ([]byte, string, error) {
	encoded, err := json.Marshal(d)
	if err != nil || len(encoded) <= compressAbove {
		return encoded, "json", err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(encoded); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	out, err := json.Marshal(base64.StdEncoding.EncodeToString(buf.Bytes()))
	return out, "gzip", err
}

// The data is JSON inside a script element: encoding/json escapes <, >
// and &, so no string in it can close the element.
var matrixPage = template.Must(template.New("matrix").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>calico-pni matrix: who can reach whom</title>
<style>{{.Style}}</style>
</head>
<body>
<header>
<h1>Who can reach whom</h1>
<p>{{.Scope}}. Rows are sources, columns destinations.</p>
<p>Policies: {{.Policies}}.</p>
<p>{{.Classes}}</p>
{{if .Compare}}<p>{{.Compare}}</p>{{end}}
</header>
<noscript><p class="error">This page draws the matrix with its own inline script, which is turned off; calico-pni matrix -o text or -o csv print the same cells.</p></noscript>
<div id="controls">
<label>Filter <input id="filter" type="search" placeholder="project or namespace name" autocomplete="off"></label>
<label><input id="exceptions" type="checkbox"> Exceptions only <span id="exception-count"></span></label>
<label id="changes-control" hidden><input id="changes" type="checkbox"> Changes only <span id="change-count"></span></label>
<label>Square size <input id="size" type="range" min="2" max="24" step="1"></label>
</div>
<div id="legend"></div>
<p id="status" role="status"></p>
<p id="error" class="error" hidden></p>
<div id="main">
<div id="view"><div id="grid" tabindex="0"><div id="spacer"></div></div><canvas id="canvas"></canvas></div>
<aside id="detail"><p>Point at a square for who reaches whom and the deciding policy; click it for its details.</p></aside>
</div>
<div id="tooltip" hidden></div>
<details id="plain">
<summary>Exceptions: the cells that differ from plain isolation</summary>
<p>Plain isolation is Rancher's project network isolation: a namespace of a user project accepts connections from the namespaces of its own project and of the System project, on every port, and from nothing else. Namespaces of the System project and namespaces in no project are not isolated: plain isolation expects nothing of the cells into them. A cell without a pod pair is no exception.</p>
<ul>{{range .Exceptions}}<li><b>{{.Name}}</b>: {{.Why}}.</li>{{end}}</ul>
</details>
<footer>
{{if .Empty}}<p>Namespaces without a running pod, left out: {{.Empty}}.</p>{{end}}
{{if .Skipped}}<p>Pods left out: {{.Skipped}}.</p>{{end}}
{{range .Notes}}<p>Note: {{.}}</p>{{end}}
</footer>
<script type="application/json" id="matrix-data" data-encoding="{{.Encoding}}">{{.Data}}</script>
<script>{{.Script}}</script>
</body>
</html>
`))
