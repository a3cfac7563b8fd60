// The script of `calico-pni matrix -o html` (report/matrix_html.go). It
// decodes the cells (report/matrix_page.go says how they are encoded),
// paints one pixel per visible cell into an image, and draws that image
// scaled on a canvas the size of the visible part of the grid, so that a
// million cells cost one canvas and a few DOM nodes. The row and column
// labels are drawn on the same canvas and stay in place while the grid
// scrolls.
(function () {
  'use strict';

  var VERDICT_COLOURS = ['#ffffff', '#2f9e44', '#f3d0cd', '#f59f00', '#5f6b76'];
  var CHANGE_COLOURS = [null, '#d6336c', '#2f9e44', '#f59f00'];
  var HIDDEN_COLOUR = '#eceef1';
  var LABEL_FONT = 'sans-serif';
  var MIN_LABELLED = 9;

  var page = {
    data: null, n: 0, cells: null, lower: [],
    colours: [], pale: [], exception: null, change: null,
    rows: [], cols: [], image: document.createElement('canvas'),
    size: 12, sizeChosen: false, labelWidth: 0, labelHeight: 0,
    hover: null, selected: null, drawPending: false
  };

  var el = {};
  ['grid', 'spacer', 'canvas', 'filter', 'exceptions', 'changes', 'changes-control', 'size', 'legend',
    'status', 'error', 'detail', 'tooltip', 'exception-count', 'change-count'].forEach(function (id) {
    el[id] = document.getElementById(id);
  });

  function fail(message) {
    el.error.textContent = 'The matrix cannot be shown: ' + message;
    el.error.hidden = false;
    document.body.dataset.state = 'error';
  }
  window.addEventListener('error', function (ev) { fail(ev.message); });

  // decode turns the cells' characters back into record numbers.
  function decode(data, n) {
    var symbol = new Int32Array(65536).fill(-1);
    var base = 0;
    data.alphabet.forEach(function (r) {
      for (var c = r[0]; c <= r[1]; c++) { symbol[c] = base++; }
    });
    var text = data.cells, width = data.width;
    if (text.length !== n * n * width) {
      throw new Error('the page holds ' + text.length + ' characters of cells where ' + n * n * width + ' were expected');
    }
    var out = new Int32Array(n * n);
    for (var i = 0, p = 0; i < out.length; i++) {
      var id = symbol[text.charCodeAt(p++)];
      if (width === 2 && id >= 0) {
        var low = symbol[text.charCodeAt(p++)];
        id = low < 0 ? -1 : id * base + low;
      }
      if (id < 0 || id >= data.records.length) { throw new Error('cell ' + i + ' names no record'); }
      out[i] = id;
    }
    return out;
  }

  function rgb(hex) {
    return [parseInt(hex.slice(1, 3), 16), parseInt(hex.slice(3, 5), 16), parseInt(hex.slice(5, 7), 16)];
  }

  // paleOf mixes a colour with white, for cells that did not change.
  function paleOf(c) {
    return c.map(function (v) { return Math.round(v + (255 - v) * 0.6); });
  }

  function css(c) { return 'rgb(' + c.join(', ') + ')'; }

  // prepare computes each record's colour and flags.
  function prepare() {
    var recs = page.data.records, compare = page.data.compare;
    page.exception = new Uint8Array(recs.length);
    page.change = new Uint8Array(recs.length);
    recs.forEach(function (rec, id) {
      var colour = rgb(VERDICT_COLOURS[rec[0]]);
      page.exception[id] = rec[1];
      if (compare) {
        page.change[id] = rec[4];
        colour = rec[4] === 0 ? paleOf(colour) : rgb(CHANGE_COLOURS[rec[4]]);
      }
      page.colours[id] = colour;
    });
  }

  // wanted says whether a cell is shown by the toggles.
  function wanted(id) {
    return (!el.exceptions.checked || page.exception[id] !== 0) && (!el.changes.checked || page.change[id] !== 0);
  }

  // select finds the rows and columns the filter and the toggles keep: a
  // row or column stays under a toggle when it has a cell the toggle
  // shows among the others kept.
  function select() {
    var n = page.n, f = el.filter.value.trim().toLowerCase();
    var kept = [];
    for (var g = 0; g < n; g++) {
      if (!f || page.lower[g].indexOf(f) >= 0) { kept.push(g); }
    }
    var rows = kept, cols = kept;
    if (el.exceptions.checked || el.changes.checked) {
      var rowHas = new Uint8Array(n), colHas = new Uint8Array(n);
      for (var a = 0; a < kept.length; a++) {
        var base = kept[a] * n;
        for (var b = 0; b < kept.length; b++) {
          if (wanted(page.cells[base + kept[b]])) { rowHas[kept[a]] = 1; colHas[kept[b]] = 1; }
        }
      }
      rows = kept.filter(function (g) { return rowHas[g]; });
      cols = kept.filter(function (g) { return colHas[g]; });
    }
    page.rows = rows;
    page.cols = cols;
  }

  // paint puts one pixel per kept cell into the image.
  function paint() {
    var rows = page.rows, cols = page.cols, n = page.n;
    var w = Math.max(cols.length, 1), h = Math.max(rows.length, 1);
    page.image.width = w;
    page.image.height = h;
    var ctx = page.image.getContext('2d');
    var img = ctx.createImageData(w, h);
    var px = img.data, hidden = rgb(HIDDEN_COLOUR);
    for (var r = 0; r < rows.length; r++) {
      var base = rows[r] * n, at = r * w * 4;
      for (var c = 0; c < cols.length; c++, at += 4) {
        var id = page.cells[base + cols[c]];
        var colour = wanted(id) ? page.colours[id] : hidden;
        px[at] = colour[0]; px[at + 1] = colour[1]; px[at + 2] = colour[2]; px[at + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  // measure sizes the label bands for the longest label, within limits.
  function measure() {
    var ctx = el.canvas.getContext('2d');
    ctx.font = '12px ' + LABEL_FONT;
    var longest = 0;
    page.data.groups.forEach(function (g) { longest = Math.max(longest, ctx.measureText(g).width); });
    page.labelWidth = Math.ceil(Math.min(Math.max(longest + 12, 60), 260));
    page.labelHeight = page.labelWidth;
  }

  function layout() {
    var s = page.size;
    el.spacer.style.width = (page.labelWidth + page.cols.length * s) + 'px';
    el.spacer.style.height = (page.labelHeight + page.rows.length * s) + 'px';
    el.grid.dataset.square = s;
    el.grid.dataset.labelWidth = page.labelWidth;
    el.grid.dataset.labelHeight = page.labelHeight;
  }

  function refresh() {
    select();
    if (!page.sizeChosen) {
      page.size = fitSize(Math.max(page.rows.length, page.cols.length));
      el.size.value = page.size;
    }
    paint();
    layout();
    status();
    requestDraw();
  }

  function requestDraw() {
    if (page.drawPending) { return; }
    page.drawPending = true;
    requestAnimationFrame(function () { page.drawPending = false; draw(); });
  }

  function fit(ctx, text, max) {
    if (ctx.measureText(text).width <= max) { return text; }
    var lo = 0, hi = text.length;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + '…').width <= max) { lo = mid; } else { hi = mid - 1; }
    }
    return text.slice(0, lo) + '…';
  }

  // draw draws the visible part of the grid, its labels and the hovered
  // and selected cells.
  function draw() {
    var grid = el.grid, canvas = el.canvas, dpr = window.devicePixelRatio || 1;
    var W = grid.clientWidth, H = grid.clientHeight;
    if (canvas.width !== Math.round(W * dpr) || canvas.height !== Math.round(H * dpr)) {
      canvas.width = Math.round(W * dpr);
      canvas.height = Math.round(H * dpr);
      canvas.style.width = W + 'px';
      canvas.style.height = H + 'px';
    }
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, W, H);
    var s = page.size, L = page.labelWidth, T = page.labelHeight;
    var sx = grid.scrollLeft, sy = grid.scrollTop;
    var C = page.cols.length, R = page.rows.length;
    var c0 = Math.max(0, Math.floor(sx / s)), r0 = Math.max(0, Math.floor(sy / s));
    var c1 = Math.min(C, Math.ceil((sx + W - L) / s)), r1 = Math.min(R, Math.ceil((sy + H - T) / s));
    ctx.save();
    ctx.beginPath();
    ctx.rect(L, T, Math.max(W - L, 0), Math.max(H - T, 0));
    ctx.clip();
    if (c1 > c0 && r1 > r0) {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(page.image, c0, r0, c1 - c0, r1 - r0, L + c0 * s - sx, T + r0 * s - sy, (c1 - c0) * s, (r1 - r0) * s);
      if (s >= 6) { gridLines(ctx, c0, c1, r0, r1, s, L - sx, T - sy); }
    }
    outline(ctx, page.hover, '#1a1a1a', 1);
    outline(ctx, visibleSelected(), '#1a73e8', 2);
    ctx.restore();
    labels(ctx, c0, c1, r0, r1, W, H);
  }

  function gridLines(ctx, c0, c1, r0, r1, s, x0, y0) {
    ctx.strokeStyle = 'rgba(255, 255, 255, 0.9)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (var c = c0; c <= c1; c++) { ctx.moveTo(x0 + c * s + 0.5, y0 + r0 * s); ctx.lineTo(x0 + c * s + 0.5, y0 + r1 * s); }
    for (var r = r0; r <= r1; r++) { ctx.moveTo(x0 + c0 * s, y0 + r * s + 0.5); ctx.lineTo(x0 + c1 * s, y0 + r * s + 0.5); }
    ctx.stroke();
  }

  // cellBox is where the cell at visible row r and column c is drawn.
  function cellBox(r, c) {
    var s = page.size;
    return { x: page.labelWidth + c * s - el.grid.scrollLeft, y: page.labelHeight + r * s - el.grid.scrollTop, s: s };
  }

  function outline(ctx, at, colour, width) {
    if (!at || at.r < 0 || at.c < 0) { return; }
    var b = cellBox(at.r, at.c);
    ctx.strokeStyle = colour;
    ctx.lineWidth = width;
    ctx.strokeRect(b.x - width / 2, b.y - width / 2, b.s + width, b.s + width);
  }

  function visibleSelected() {
    var sel = page.selected;
    if (!sel) { return null; }
    return { r: page.rows.indexOf(sel.from), c: page.cols.indexOf(sel.to) };
  }

  // labels draws the row and column names beside the visible cells when
  // the squares are large enough to read them, else only those of the
  // hovered cell.
  function labels(ctx, c0, c1, r0, r1, W, H) {
    var s = page.size, L = page.labelWidth, T = page.labelHeight;
    ctx.fillStyle = '#f6f7f8';
    ctx.fillRect(0, T, L, H - T);
    ctx.fillRect(L, 0, W - L, T);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, L, T);
    var hover = page.hover, groups = page.data.groups;
    var font = Math.min(12, s - 1);
    ctx.textBaseline = 'middle';
    ctx.fillStyle = '#222222';
    ctx.save();
    ctx.beginPath();
    ctx.rect(0, T, L, H - T);
    ctx.clip();
    ctx.textAlign = 'right';
    if (s >= MIN_LABELLED) {
      ctx.font = font + 'px ' + LABEL_FONT;
      for (var r = r0; r < r1; r++) {
        var y = cellBox(r, 0).y + s / 2;
        ctx.font = (hover && hover.r === r ? 'bold ' : '') + font + 'px ' + LABEL_FONT;
        ctx.fillText(fit(ctx, groups[page.rows[r]], L - 8), L - 4, y);
      }
    } else if (hover && hover.r >= 0) {
      bandLabel(ctx, groups[page.rows[hover.r]], L - 4, cellBox(hover.r, 0).y + s / 2, L - 8);
    }
    ctx.restore();
    ctx.save();
    ctx.beginPath();
    ctx.rect(L, 0, W - L, T);
    ctx.clip();
    ctx.translate(0, T);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = 'left';
    if (s >= MIN_LABELLED) {
      for (var c = c0; c < c1; c++) {
        var x = cellBox(0, c).x + s / 2;
        ctx.font = (hover && hover.c === c ? 'bold ' : '') + font + 'px ' + LABEL_FONT;
        ctx.fillText(fit(ctx, groups[page.cols[c]], T - 8), 4, x);
      }
    } else if (hover && hover.c >= 0) {
      ctx.textAlign = 'right';
      bandLabel(ctx, groups[page.cols[hover.c]], T - 4, cellBox(0, hover.c).x + s / 2, T - 8, true);
    }
    ctx.restore();
    ctx.font = '11px ' + LABEL_FONT;
    ctx.textAlign = 'left';
    ctx.fillStyle = '#555555';
    ctx.fillText('from ↓  to →', 6, T - 10);
  }

  // bandLabel writes one label on a background, for small squares.
  function bandLabel(ctx, text, x, y, max, rotated) {
    ctx.font = 'bold 12px ' + LABEL_FONT;
    var shown = fit(ctx, text, max), w = ctx.measureText(shown).width;
    ctx.fillStyle = '#fffff0';
    ctx.fillRect(rotated ? 4 : x - w - 2, y - 8, rotated ? max : w + 4, 16);
    ctx.fillStyle = '#222222';
    ctx.textAlign = 'right';
    ctx.fillText(shown, x, y);
  }

  // at finds the visible cell, row or column under a mouse position; r or
  // c is -1 over the labels.
  function at(ev) {
    var rect = el.grid.getBoundingClientRect();
    var x = ev.clientX - rect.left - el.grid.clientLeft, y = ev.clientY - rect.top - el.grid.clientTop;
    var s = page.size, L = page.labelWidth, T = page.labelHeight;
    if (x < 0 || y < 0 || x >= el.grid.clientWidth || y >= el.grid.clientHeight) { return null; }
    var c = x < L ? -1 : Math.floor((x - L + el.grid.scrollLeft) / s);
    var r = y < T ? -1 : Math.floor((y - T + el.grid.scrollTop) / s);
    if (r >= page.rows.length || c >= page.cols.length || (r < 0 && c < 0)) { return null; }
    return { r: r, c: c };
  }

  function recordAt(r, c) {
    var from = page.rows[r], to = page.cols[c];
    return { from: from, to: to, rec: page.data.records[page.cells[from * page.n + to]] };
  }

  function text(i) { return page.data.strings[i]; }

  function verdictName(v) { return page.data.verdicts[v].name; }

  function capitalized(s) { return s.charAt(0).toUpperCase() + s.slice(1); }

  function tooltip(ev, where) {
    var tip = el.tooltip, groups = page.data.groups;
    if (!where) { tip.hidden = true; return; }
    var lines;
    if (where.r < 0) {
      lines = ['to ' + groups[page.cols[where.c]]];
    } else if (where.c < 0) {
      lines = ['from ' + groups[page.rows[where.r]]];
    } else {
      var cell = recordAt(where.r, where.c), rec = cell.rec;
      lines = [groups[cell.from] + ' → ' + groups[cell.to]];
      if (page.data.compare) {
        lines.push(verdictName(rec[5]) + ' ' + page.data.states[0] + ', ' + verdictName(rec[0]) + ' ' + page.data.states[1] + ' (' + page.data.changes[rec[4]].name + ')');
      } else {
        lines.push(verdictName(rec[0]));
      }
      if (text(rec[3])) { lines.push('decided by ' + text(rec[3])); }
      if (rec[1]) { lines.push('exception: ' + page.data.exceptions[rec[1]].name); }
    }
    tip.textContent = lines.join('\n');
    tip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth) { x = ev.clientX - tip.offsetWidth - 8; }
    if (y + tip.offsetHeight > window.innerHeight) { y = ev.clientY - tip.offsetHeight - 8; }
    tip.style.left = Math.max(0, x) + 'px';
    tip.style.top = Math.max(0, y) + 'px';
  }

  function add(parent, tag, content, cls) {
    var node = document.createElement(tag);
    node.textContent = content;
    if (cls) { node.className = cls; }
    parent.appendChild(node);
    return node;
  }

  // describe fills the detail panel for the cell from group `from` to
  // group `to`.
  function describe(from, to) {
    var d = el.detail, data = page.data, rec = data.records[page.cells[from * page.n + to]];
    d.textContent = '';
    d.dataset.from = data.groups[from];
    d.dataset.to = data.groups[to];
    add(d, 'h2', data.groups[from] + ' → ' + data.groups[to]);
    var side = function (title, verdict, detail, decider) {
      if (title) { add(d, 'h3', title); }
      add(d, 'p', 'Verdict: ' + verdictName(verdict) + '.');
      add(d, 'p', detail ? detail + '.' : '');
      if (text(decider)) {
        var p = add(d, 'p', 'Decided by ');
        add(p, 'span', text(decider), 'decider');
      }
    };
    if (data.compare) {
      add(d, 'p', 'Change: ' + data.changes[rec[4]].name + ' (' + data.changes[rec[4]].why + ').');
      side(capitalized(data.states[1]), rec[0], text(rec[2]), rec[3]);
      side(capitalized(data.states[0]), rec[5], text(rec[6]), rec[7]);
    } else {
      side('', rec[0], text(rec[2]), rec[3]);
    }
    var ex = data.exceptions[rec[1]];
    add(d, 'h3', rec[1] ? 'Exception: ' + ex.name : 'No exception');
    add(d, 'p', ex.why.charAt(0).toUpperCase() + ex.why.slice(1) + '.');
  }

  function select_(where) {
    if (!where || where.r < 0 || where.c < 0) { return; }
    page.selected = { from: page.rows[where.r], to: page.cols[where.c] };
    describe(page.selected.from, page.selected.to);
    requestDraw();
  }

  // move steps the selection with the arrow keys.
  function move(ev) {
    var steps = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] }[ev.key];
    if (!steps || !page.rows.length || !page.cols.length) { return; }
    ev.preventDefault();
    var cur = visibleSelected() || { r: 0, c: 0 };
    var r = Math.min(Math.max(Math.max(cur.r, 0) + steps[0], 0), page.rows.length - 1);
    var c = Math.min(Math.max(Math.max(cur.c, 0) + steps[1], 0), page.cols.length - 1);
    select_({ r: r, c: c });
    var b = cellBox(r, c), g = el.grid;
    if (b.x < page.labelWidth) { g.scrollLeft -= page.labelWidth - b.x; }
    if (b.x + b.s > g.clientWidth) { g.scrollLeft += b.x + b.s - g.clientWidth; }
    if (b.y < page.labelHeight) { g.scrollTop -= page.labelHeight - b.y; }
    if (b.y + b.s > g.clientHeight) { g.scrollTop += b.y + b.s - g.clientHeight; }
  }

  function number(v) { return v.toLocaleString('en'); }

  // legend shows each colour with what it means and how many cells have
  // it.
  function legend() {
    var data = page.data, counts = {}, key;
    for (var i = 0; i < page.cells.length; i++) {
      var rec = data.records[page.cells[i]];
      key = data.compare ? (rec[4] ? 'c' + rec[4] : 'v' + rec[0]) : 'v' + rec[0];
      counts[key] = (counts[key] || 0) + 1;
    }
    var entries = [];
    if (data.compare) {
      for (var c = 1; c < data.changes.length; c++) {
        entries.push({ key: 'c' + c, colour: CHANGE_COLOURS[c], name: data.changes[c].name, why: data.changes[c].why });
      }
    }
    data.verdicts.forEach(function (v, i) {
      var colour = rgb(VERDICT_COLOURS[i]);
      entries.push({ key: 'v' + i, colour: css(data.compare ? paleOf(colour) : colour),
        name: (data.compare ? 'unchanged, ' : '') + v.name, why: v.why });
    });
    entries.push({ key: 'hidden', colour: HIDDEN_COLOUR, name: 'not shown', why: 'left out by "Exceptions only" or "Changes only"' });
    el.legend.textContent = '';
    entries.forEach(function (e) {
      if (e.key !== 'hidden' && !counts[e.key]) { return; }
      var item = add(el.legend, 'span', '');
      item.dataset.kind = e.key;
      var sw = add(item, 'span', '', 'swatch');
      sw.style.background = e.colour;
      var count = e.key === 'hidden' ? '' : ' (' + number(counts[e.key] || 0) + ')';
      item.appendChild(document.createTextNode(e.name + ': ' + e.why + count));
    });
  }

  function toggleCounts() {
    var ex = 0, ch = 0;
    for (var i = 0; i < page.cells.length; i++) {
      if (page.exception[page.cells[i]]) { ex++; }
      if (page.change[page.cells[i]]) { ch++; }
    }
    el['exception-count'].textContent = '(' + number(ex) + ' cells)';
    el['change-count'].textContent = '(' + number(ch) + ' cells)';
  }

  function status() {
    var n = page.n, R = page.rows.length, C = page.cols.length;
    el.status.dataset.rows = R;
    el.status.dataset.columns = C;
    el.status.textContent = 'Showing ' + number(R) + ' of ' + number(n) + ' rows and ' + number(C) + ' of ' + number(n) +
      ' columns: ' + number(R * C) + ' squares.' + (R && C ? '' : ' Nothing matches.');
  }

  // fitSize is the square size for k rows or columns, until the reader
  // picks one: large enough for the labels up to 150, else as many
  // columns as the grid's width holds, down to 3 pixels.
  function fitSize(k) {
    var fits = Math.floor((el.grid.clientWidth - page.labelWidth) / Math.max(k, 1));
    if (k <= 150) { return Math.max(12, Math.min(24, fits)); }
    return Math.max(3, Math.min(12, fits));
  }

  // load reads the page's data: JSON, or JSON gzipped in a base64 string
  // (report/matrix_html.go), inflated by the browser.
  function load() {
    var holder = document.getElementById('matrix-data');
    var content = JSON.parse(holder.textContent);
    if (holder.dataset.encoding !== 'gzip') { return Promise.resolve(content); }
    if (typeof DecompressionStream === 'undefined') {
      return Promise.reject(new Error('this browser cannot inflate the page\'s compressed data (it lacks DecompressionStream)'));
    }
    var binary = atob(content), bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(JSON.parse);
  }

  function start(data) {
    page.data = data;
    page.n = page.data.groups.length;
    page.cells = decode(page.data, page.n);
    page.lower = page.data.groups.map(function (g) { return g.toLowerCase(); });
    prepare();
    measure();
    el['changes-control'].hidden = !page.data.compare;
    legend();
    toggleCounts();
    el.filter.addEventListener('input', refresh);
    el.exceptions.addEventListener('change', refresh);
    el.changes.addEventListener('change', refresh);
    el.size.addEventListener('input', function () {
      page.sizeChosen = true;
      page.size = Number(el.size.value);
      layout();
      requestDraw();
    });
    el.grid.addEventListener('scroll', requestDraw);
    window.addEventListener('resize', requestDraw);
    el.grid.addEventListener('mousemove', function (ev) {
      var where = at(ev);
      page.hover = where;
      tooltip(ev, where);
      requestDraw();
    });
    el.grid.addEventListener('mouseleave', function () { page.hover = null; el.tooltip.hidden = true; requestDraw(); });
    el.grid.addEventListener('click', function (ev) { el.grid.focus(); select_(at(ev)); });
    el.grid.addEventListener('keydown', move);
    refresh();
    draw();
    document.body.dataset.state = 'ready';
  }

  load().then(start).catch(function (err) {
    fail(err && err.message || String(err));
    console.error(err);
  });
}());
