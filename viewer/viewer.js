// buildlog log viewer: the page of GET /jobs/{id}.
//
// The log is read once (GET /jobs/{id}/bundle: every part with its arrival
// time), then followed live over GET /jobs/{id}/events (SSE; the browser
// resumes with its Last-Event-ID, so nothing is lost or repeated).  The text
// is kept as one string in part-number order with an index of line starts
// and of the SGR state at each line start; only the rows on screen are in
// the DOM (a virtual list), so the size of the log does not matter to the
// page.  Search runs over the whole text, not over what is rendered.
import { renderLine, advanceState, buildDom, cellText } from './ansi.js';
import { Folds, displayText } from './folds.js';

const $ = (id) => document.getElementById(id);
const logEl = $('log'), linesEl = $('lines'), spacerEl = $('spacer');
const jobMatch = /^\/jobs\/(\d+)$/.exec(location.pathname);
const jobId = jobMatch ? jobMatch[1] : '0';
const token = new URLSearchParams(location.search).get('token');
const LAST = 2147483647;
const MAXH = 8000000;			// px: browsers cap element heights; taller logs are scaled

// A URL of this job's API (the read token passed on, if the page had one).
function api(path, params = {}) {
  const u = new URL(`/jobs/${jobId}/${path}`, location.origin);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  if (token) u.searchParams.set('token', token);
  return u.pathname + u.search;
}

// A link to this page to give to someone (copy link, the line numbers): this
// page's address with hash, without its read token, which is not to travel
// with a shared link (whoever opens it reads with a token of their own).
const shareBase = (() => {
  const u = new URL(location.href);
  u.searchParams.delete('token');
  u.hash = '';
  return u.href;
})();
const shareUrl = (hash) => shareBase + hash;

// ---- the model: parts in number order, one text, a line index
// Parts are numbered 0, 1, ...; a log whose text was set whole (set_content,
// PUT /jobs/{id}/log) comes first as its head, part -1 (final when no
// numbered part follows it: the head alone is then the whole log).
let nums = [], offs = [], arrivals = [], sizes = [];	// sizes: of each part, in UTF-8 bytes
const have = new Set();
let doc = '';
let finalSeen = false, finalNum = -2;	// the highest part flagged final (-1: the head)
let tailFolded = false;			// the last line (no '\n') was looked at for sections
let starts = new Uint32Array(1 << 14), lstate = new Int32Array(1 << 14);
let nFull = 0, nLines = 0, committed = 0, curState = 0;
let folds = new Folds();
let docVersion = 0;

// Bytes of the UTF-8 form of s (the server's sizes are in bytes).
function utf8Length(s) {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    n += c < 0x800 ? 1 : 2;		// a surrogate pair: 4 bytes for its 2 code units
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) { const d = s.charCodeAt(i + 1); if (d >= 0xdc00 && d <= 0xdfff) i++; }
  }
  return n;
}

function grow(n) {
  if (n < starts.length) return;
  let cap = starts.length;
  while (cap <= n) cap *= 2;
  const s = new Uint32Array(cap); s.set(starts); starts = s;
  const t = new Int32Array(cap); t.set(lstate); lstate = t;
}

// Index the complete lines from the last committed offset on; the tail (a
// line without its '\n' yet) is shown but looked at for sections only at the end.
function indexMore() {
  let pos = committed;
  for (;;) {
    const nl = doc.indexOf('\n', pos);
    if (nl < 0) break;
    grow(nFull + 2);
    starts[nFull] = pos;
    lstate[nFull] = curState;
    const s = doc.slice(pos, nl);
    folds.line(nFull, s);
    if (s.indexOf('\x1b') >= 0) curState = advanceState(s, curState);
    nFull++;
    pos = nl + 1;
  }
  committed = pos;
  nLines = nFull;
  if (committed < doc.length) {
    starts[nFull] = committed;
    lstate[nFull] = curState;
    nLines = nFull + 1;
  }
}

function lineEnd(i) {
  if (i >= nFull) return doc.length;
  return (i + 1 < nLines ? starts[i + 1] : committed) - 1;
}
function rawLine(i) { return doc.slice(starts[i], lineEnd(i)); }

// The arrival time of a line: that of the part its first character came in.
function lineArrival(i) {
  const off = starts[i];
  let lo = 0, hi = offs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offs[mid] <= off) lo = mid; else hi = mid - 1;
  }
  return arrivals[lo];
}

// Every part of the log here: the numbered parts 0..final all present (any
// head before them), or travis' "last" (2147483647) final, whose count is
// unknown; a final head (-1) is the whole log by itself.
function haveAll() {
  if (!finalSeen) return false;
  if (finalNum === LAST || finalNum < 0) return true;
  let k = 0;
  for (const n of nums) if (n >= 0 && n <= finalNum) k++;
  return k === finalNum + 1;
}

// The text of the k-th part the page has (in number order).
function partText(k) { return doc.slice(offs[k], k + 1 < offs.length ? offs[k + 1] : doc.length); }

// Add parts ({number, content, final, at, size (bytes, if known)}); appended ones extend the index,
// one that lands before a part already shown rebuilds it in number order.
function addParts(list) {
  const once = new Set();		// a number twice in one batch: its first copy
  const fresh = list.filter((p) => !have.has(p.number) && !once.has(p.number) && once.add(p.number));
  if (!fresh.length) return false;
  fresh.sort((a, b) => a.number - b.number);
  for (const p of fresh) {
    have.add(p.number);
    if (p.final) { finalSeen = true; if (p.number > finalNum) finalNum = p.number; }
  }
  const max = nums.length ? nums[nums.length - 1] : -Infinity;
  let wasOpen = null;
  // appended after a last line already read for sections: read it again
  if (fresh[0].number > max && !tailFolded) {
    for (const p of fresh) {
      nums.push(p.number); offs.push(doc.length); arrivals.push(p.at); sizes.push(p.size ?? utf8Length(p.content));
      doc += p.content;
    }
    indexMore();
  } else {
    const all = nums.map((n, k) => ({ number: n, at: arrivals[k], size: sizes[k], content: partText(k) }));
    for (const p of fresh) all.push(p);
    all.sort((a, b) => a.number - b.number);
    nums = []; offs = []; arrivals = []; sizes = [];
    const pieces = [];
    let len = 0;
    for (const p of all) {
      nums.push(p.number); offs.push(len); arrivals.push(p.at); sizes.push(p.size ?? utf8Length(p.content));
      pieces.push(p.content); len += p.content.length;
    }
    doc = pieces.join('');
    wasOpen = new Map(folds.list.filter((f) => f.user).map((f) => [f.kind + ':' + f.name + ':' + f.start, f.open]));
    folds = new Folds();
    nFull = 0; nLines = 0; committed = 0; curState = 0; tailFolded = false;
    indexMore();
  }
  if (haveAll()) {
    // the last line of a complete log, without its '\n', holds sections too
    if (nLines > nFull && !tailFolded) { folds.line(nFull, rawLine(nFull)); tailFolded = true; }
    folds.finish();
  }
  // a rebuilt index keeps the sections the reader opened or closed
  if (wasOpen) for (const f of folds.list) { const o = wasOpen.get(f.kind + ':' + f.name + ':' + f.start); if (o !== undefined) { f.open = o; f.user = true; } }
  docVersion++;
  return true;
}

// ---- rows: the lines not hidden in closed sections
let rows = new Int32Array(0), rowCount = 0;
let foldAt = new Map();

function rebuildRows() {
  foldAt = new Map();
  const hidden = [];
  let reach = -1;
  for (const f of folds.list) {
    // a line's toggle: the outermost section starting there that holds lines
    if (!foldAt.has(f.start) && (f.end < 0 || f.end > f.start)) foldAt.set(f.start, f);
    if (f.open || f.start <= reach) continue;
    const a = f.start + 1, b = f.end < 0 ? nLines - 1 : f.end;
    if (b >= a) { hidden.push([a, b]); reach = b; }
  }
  if (rows.length < nLines) rows = new Int32Array(Math.max(nLines, rows.length * 2));
  let r = 0, h = 0;
  for (let i = 0; i < nLines; i++) {
    while (h < hidden.length && hidden[h][1] < i) h++;
    if (h < hidden.length && hidden[h][0] <= i) { i = hidden[h][1]; continue; }
    rows[r++] = i;
  }
  rowCount = r;
  logEl.dataset.lines = nLines;
  logEl.dataset.rows = rowCount;
}

function rowOfLine(line) {
  let lo = 0, hi = rowCount - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (rows[mid] <= line) lo = mid; else hi = mid - 1;
  }
  return lo;
}

// Open every section that hides a line of a..b (one pass over the sections,
// whatever the range).
function reveal(a, b = a) {
  let changed = false;
  for (const f of folds.list) {
    // its hidden lines start+1..end (to the end of the log when never ended)
    if (!f.open && Math.max(a, f.start + 1) <= (f.end < 0 ? b : Math.min(b, f.end))) { f.open = true; f.user = true; changed = true; }
  }
  return changed;
}

// ---- settings
const prefs = {
  times: localStorage.getItem('buildlog-times') === '1',
  utc: localStorage.getItem('buildlog-utc') === '1',
  theme: localStorage.getItem('buildlog-theme') ||
    (window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'),
};
let follow = false;
let sel = null;			// {a, b}: selected lines (0-based), from the hash
let pendingHash = false;

function applyTheme() {
  document.documentElement.dataset.theme = prefs.theme;
  $('theme').textContent = prefs.theme === 'dark' ? 'light' : 'dark';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');
function fmtTime(ms) {
  if (ms === undefined || ms === null || isNaN(ms)) return ''.padEnd(23);
  const d = new Date(ms);
  if (prefs.utc)
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}
function fmtDur(ms) {
  if (ms === null || ms === undefined || isNaN(ms)) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

// ---- search over the whole log (the visible text of every line)
let plain = null, plainStarts = null, plainVersion = -1;
let matches = [], matchByLine = new Map(), cur = -1, query = '';
const SPECIAL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;
const MAX_MATCHES = 100000;

function visibleText(i) {
  const s = rawLine(i);
  const d = displayText(s);
  if (d === s && !SPECIAL.test(s)) return s;
  return cellText(renderLine(d, lstate[i]));
}

function buildPlain() {
  const pieces = new Array(nLines);
  plainStarts = new Uint32Array(nLines + 1);
  let len = 0;
  for (let i = 0; i < nLines; i++) {
    plainStarts[i] = len;
    pieces[i] = visibleText(i);
    len += pieces[i].length + 1;
  }
  plainStarts[nLines] = len;
  plain = pieces.join('\n');
  plainVersion = docVersion;
}

function runSearch(q) {
  query = q;
  matches = []; matchByLine = new Map(); cur = -1;
  if (q !== '') {
    if (plainVersion !== docVersion) buildPlain();
    const re = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gi');
    let line = 0;
    for (let m; matches.length < MAX_MATCHES && (m = re.exec(plain));) {
      if (m[0].length === 0) { re.lastIndex++; continue; }
      while (line + 1 < nLines && plainStarts[line + 1] <= m.index) line++;
      const from = m.index - plainStarts[line];
      matches.push({ line, from, to: from + m[0].length });
      let l = matchByLine.get(line);
      if (!l) matchByLine.set(line, (l = []));
      l.push(matches.length - 1);
    }
  }
  const list = $('matches');
  list.replaceChildren();
  list.hidden = matches.length === 0;
  for (let k = 0; k < Math.min(matches.length, 200); k++) {
    const a = document.createElement('a');
    a.href = '#L' + (matches[k].line + 1);
    a.textContent = 'L' + (matches[k].line + 1);
    a.dataset.match = k;
    list.appendChild(a);
  }
  if (matches.length) gotoMatch(firstMatchFrom(topLine()));
  else { $('count').textContent = q ? 'no match' : ''; invalidate(); }
}

function firstMatchFrom(line) {
  const k = matches.findIndex((m) => m.line >= line);
  return k < 0 ? 0 : k;
}

function gotoMatch(k) {
  if (!matches.length) return;
  cur = (k + matches.length) % matches.length;
  const m = matches[cur];
  $('count').textContent = `${cur + 1} of ${matches.length}${matches.length >= MAX_MATCHES ? '+' : ''} (line ${m.line + 1})`;
  if (reveal(m.line)) rebuildRows();
  setFollow(false);
  scrollToLine(m.line);
  invalidate();
}

// The search marks of a rendered line, in cell columns.
function marksOf(line, r) {
  const ks = matchByLine.get(line);
  if (!ks) return [];
  const pos = [];			// code-unit offset of each cell
  let o = 0;
  for (const c of r.ch) { pos.push(o); o += c.length; }
  pos.push(o);
  const cellAt = (u) => { let lo = 0, hi = pos.length - 1; while (lo < hi) { const mid = (lo + hi) >> 1; if (pos[mid] < u) lo = mid + 1; else hi = mid; } return lo; };
  return ks.map((k) => [cellAt(matches[k].from), cellAt(matches[k].to), k === cur]);
}

// ---- rendering of the rows on screen
const rowH = (() => {
  const probe = document.createElement('div');
  probe.className = 'row'; probe.textContent = 'x';
  linesEl.appendChild(probe);
  const h = probe.getBoundingClientRect().height || 18;
  probe.remove();
  return h;
})();
let cache = new Map();
let scheduled = false;
let lastSetTop = 0;		// where the page last scrolled itself

function invalidate() { cache = new Map(); schedule(); }
function schedule() { if (!scheduled) { scheduled = true; requestAnimationFrame(() => { scheduled = false; render(); }); } }

function geometry() {
  const total = rowCount * rowH, view = logEl.clientHeight;
  const height = Math.min(total, MAXH);
  const scale = total > MAXH && height > view ? (total - view) / (height - view) : 1;
  return { total, view, height, scale };
}

function topLine() {
  const g = geometry();
  const r = Math.floor((logEl.scrollTop * g.scale) / rowH);
  return rowCount ? rows[Math.min(rowCount - 1, Math.max(0, r))] : 0;
}

function setScrollTop(v) { logEl.scrollTop = v; lastSetTop = logEl.scrollTop; }

function scrollToLine(line, where = 0.3) {
  const g = geometry();
  const y = rowOfLine(line) * rowH - g.view * where;
  setScrollTop(Math.max(0, y / g.scale));
  schedule();
}

function scrollToEnd() {
  const g = geometry();
  setScrollTop(g.height);
  schedule();
}

function makeRow(line) {
  const div = document.createElement('div');
  div.className = 'row';
  div.dataset.line = line + 1;
  const a = document.createElement('a');
  a.className = 'ln';
  a.href = shareUrl('#L' + (line + 1));
  a.textContent = line + 1;
  div.appendChild(a);
  if (prefs.times) {
    const ts = document.createElement('span');
    ts.className = 'ts';
    ts.textContent = fmtTime(lineArrival(line));
    div.appendChild(ts);
  }
  const f = foldAt.get(line);
  if (f) {
    const b = document.createElement('button');
    b.className = 'tog';
    b.type = 'button';
    b.dataset.fold = line;
    b.setAttribute('aria-expanded', f.open ? 'true' : 'false');
    b.setAttribute('aria-label', (f.open ? 'Close' : 'Open') + ' section ' + f.name);
    b.textContent = f.open ? '\u25be' : '\u25b8';
    div.appendChild(b);
    div.classList.add('head');
  } else {
    const sp = document.createElement('span');
    sp.className = 'nofold';
    div.appendChild(sp);
  }
  const txt = document.createElement('span');
  txt.className = 'txt';
  const r = renderLine(displayText(rawLine(line)), lstate[line]);
  buildDom(txt, r, marksOf(line, r));
  div.appendChild(txt);
  let ms = folds.lineMs.get(line);
  if (f) {
    if (f.name !== cellText(r).trim()) {
      const sec = document.createElement('span');
      sec.className = 'sec';
      sec.textContent = f.name;
      div.appendChild(sec);
    }
    if (f.ms !== null) ms = f.ms;
    else if (f.end >= 0 && (f.kind === 'github' || f.kind === 'buildkite'))
      ms = lineArrival(f.end) - lineArrival(f.start);
  }
  if (ms !== undefined && ms !== null) {
    const d = document.createElement('span');
    d.className = 'dur';
    d.textContent = fmtDur(ms);
    div.appendChild(d);
  }
  return div;
}

function render() {
  if (dirty) refresh();
  const g = geometry();
  spacerEl.style.height = g.height + 'px';
  const virtTop = logEl.scrollTop * g.scale;
  const first = Math.max(0, Math.floor(virtTop / rowH));
  const count = Math.ceil(g.view / rowH) + 2;
  const frag = document.createDocumentFragment();
  const next = new Map();
  for (let r = first; r < Math.min(rowCount, first + count); r++) {
    const line = rows[r];
    let el = cache.get(line);
    if (!el) el = makeRow(line);
    next.set(line, el);
    el.classList.toggle('sel', sel !== null && line >= sel.a && line <= sel.b);
    frag.appendChild(el);
  }
  cache = next;
  linesEl.replaceChildren(frag);
  linesEl.style.transform = `translateY(${logEl.scrollTop - (virtTop - first * rowH)}px)`;
  const counted = (n, one) => `${n.toLocaleString('en')} ${one}${n === 1 ? '' : 's'}`;
  $('info').textContent = `${counted(nLines, 'line')}, ${counted(nums.length, 'part')}`;
  // what waited for this frame: every part the page has is drawn now
  if (drawnStatus && !queue.length && !flushing) { setStatus(...drawnStatus); drawnStatus = null; }
  if (drawnReady) { drawnReady = false; document.documentElement.dataset.ready = '1'; }
}

// ---- status, live stream
let es = null, complete = false;
let drawnStatus = null;		// [state, text] to show once the rows drawn hold every part
let drawnReady = false;		// html[data-ready] once the first load is drawn

function setStatus(state, text) {
  drawnStatus = null;
  const s = $('status');
  s.dataset.state = state;
  s.textContent = text || state;
}

// Show a status (complete) only once the screen holds every part the page
// has: after the parts still queued are in the model and a frame drew them.
function setStatusWhenDrawn(state, text) {
  if (queue.length) flush();
  dirty = true;
  drawnStatus = [state, text];
  schedule();
}

function setFollow(on) {
  follow = on;
  $('follow').checked = on;
}

function showMessage(text) {
  const m = $('message');
  m.textContent = text;
  m.hidden = !text;
}

// Numbers 0..P all here: the cursor to open the stream with (?after=P; the
// head, part -1, is sent only from the start, after=-1).
function prefix() {
  let p = -1;
  for (const n of nums) { if (n < 0) continue; if (n === p + 1) p = n; else break; }
  return p;
}

let queue = [], flushing = false;
function enqueue(p) {
  queue.push(p);
  if (!flushing) { flushing = true; setTimeout(flush, 0); }
}

function flush() {
  flushing = false;
  const batch = queue;
  queue = [];
  if (addParts(batch)) update();
}

// After the text changed: rows, the pending anchor, the tail if followed.
// (done at the next frame, once for any number of changes)
let dirty = false;
function update() {
  if (nums.length) showMessage('');
  dirty = true;
  schedule();
}

function refresh() {
  dirty = false;
  rebuildRows();
  cache = new Map();
  if (pendingHash) applyHash(true);
  if (follow) setScrollTop(geometry().height);
}

// ---- a log replaced while shown
// A log set whole again (set_content, PUT /jobs/{id}/log: a restart, an
// import, a removal) replaces the parts the page shows.  The stream cannot
// say so by itself: the new head has a number the page has (-1), a restarted
// run's parts too, and the change wakes no stream.  The page notices it
//  - at the stream's end, whose size and SHA-256 are not those of its text;
//  - when a part comes again (a stream read from the start) with other text;
//  - in the server's index of parts (the bundle's first line alone, read
//    after parts arrive, and while the stream is quiet: 5 s after its last
//    event, then 10, 20, 40, 60, 60 ... s): a part shown is gone or has
//    another size, or a head came that the page lacks;
// and then reads the log again from the start.
let modelGen = 0;			// bumped when the model is emptied (stale answers are dropped)
let replacements = 0;		// reads again for want of a matching end (bounded)
const QUIET_FIRST = 5000, QUIET_MAX = 60000;
let quietTimer = null, quietMs = QUIET_FIRST;

// Does the server's index ([[number, bytes, arrival, final], ...]) still hold
// what the page shows?
function sameParts(index) {
  const size = new Map(index.map((p) => [p[0], p[1]]));
  for (let k = 0; k < nums.length; k++) if (size.get(nums[k]) !== sizes[k]) return false;
  return !(size.has(-1) && !have.has(-1));
}

// Is the page's text the one an end event ({size, sha256}) describes?
async function sameAsEnd(end) {
  if (!end || typeof end.size !== 'number') return true;
  let bytes = 0;
  for (const n of sizes) bytes += n;
  if (bytes !== end.size) return false;
  if (typeof end.sha256 !== 'string' || !(window.crypto && crypto.subtle)) return true;	// not a secure context: the size alone
  const gen = modelGen;
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(doc)));
  return gen !== modelGen || [...d].map((x) => x.toString(16).padStart(2, '0')).join('') === end.sha256;
}

// Empty the model (the #L selection and the settings stay).
function resetModel() {
  modelGen++;
  if (es) { es.close(); es = null; }
  clearTimeout(quietTimer); clearTimeout(timesTimer);
  queue = []; liveNums.clear();
  nums = []; offs = []; arrivals = []; sizes = []; have.clear();
  doc = ''; finalSeen = false; finalNum = -2; tailFolded = false;
  nFull = 0; nLines = 0; committed = 0; curState = 0;
  folds = new Folds();
  docVersion++;
  complete = false;
  matches = []; matchByLine = new Map(); cur = -1;
  $('matches').replaceChildren(); $('matches').hidden = true; $('count').textContent = '';
  dirty = true;
  invalidate();
}

// The log on the server is not the one shown: read it again from the start.
function replaced() {
  resetModel();
  load();
}

// While live: look at the server's index when the stream has been quiet.
function quiet(fresh) {
  clearTimeout(quietTimer);
  if (fresh) quietMs = QUIET_FIRST;
  if (!complete) quietTimer = setTimeout(checkIndex, quietMs);
}

// Read the index (bundle?bytes=0); what it says about the page's parts: the
// same (true), replaced (false, read again), refused (the page stopped), or
// null (no answer).
async function readIndex() {
  const gen = modelGen;
  let res, head = null;
  try {
    res = await fetch(api('bundle', { bytes: 0 }));
    if (res.ok) head = JSON.parse(await res.text());
  } catch (e) {
    return { gen, same: null };
  }
  if (gen !== modelGen || complete) return { gen, same: null, stale: true };
  if (res.status === 401 || res.status === 403 || res.status === 410) { await refused(res); return { gen, same: null, stale: true }; }
  if (res.status === 404) {		// no log: any part shown is gone
    if (nums.length) replaced();
    return { gen, same: nums.length === 0 };
  }
  if (!head) return { gen, same: null };
  const same = sameParts(head.parts);
  if (!same) replaced();
  return { gen, same, head };
}

async function checkIndex() {
  const r = await readIndex();
  if (r.stale || r.same === false || r.gen !== modelGen || complete) return;
  quietMs = Math.min(quietMs * 2, QUIET_MAX);
  quiet(false);
}

// Parts received live carry the browser's clock until their stored arrival
// times are read (the bundle's index alone), half a second after the last one.
const liveNums = new Set();
let timesTimer = null;
async function fetchTimes() {
  const want = new Set(liveNums);
  liveNums.clear();
  const r = await readIndex();
  if (r.stale || r.same === false || r.gen !== modelGen) return;
  if (!r.head) {
    for (const n of want) liveNums.add(n);
    timesTimer = setTimeout(fetchTimes, 2000);
    return;
  }
  const at = new Map(r.head.parts.map((p) => [p[0], Date.parse(p[2])]));
  for (let k = 0; k < nums.length; k++) if (want.has(nums[k]) && at.has(nums[k])) arrivals[k] = at.get(nums[k]);
  if (prefs.times) invalidate();
}

async function recheck() {
  const gen = modelGen;
  try {
    const res = await fetch(api('bundle', { bytes: 0 }));
    if (res.status === 401 || res.status === 403 || res.status === 410) { await refused(res); return; }
  } catch (e) { /* the server is away: the stream tells */ }
  if (!complete && gen === modelGen) connect();
}

function connect() {
  if (es) es.close();
  const gen = modelGen;
  const me = es = new EventSource(api('events', { after: prefix() }));
  me.onopen = () => { setStatus('live'); quiet(true); };
  me.addEventListener('part', (e) => {
    const p = JSON.parse(e.data);
    quiet(true);
    if (have.has(p.number)) {
      // sent again (a stream read from the start): the same text, or a log replaced
      const k = nums.indexOf(p.number);
      if (k >= 0 && partText(k) !== p.content) replaced();
      return;
    }
    enqueue({ number: p.number, content: p.content, final: p.final, at: Date.now() });
    liveNums.add(p.number);
    clearTimeout(timesTimer);
    timesTimer = setTimeout(fetchTimes, 500);
  });
  me.addEventListener('end', async (e) => {
    // the parts before it may still wait in the queue: complete once drawn,
    // if the text is the one the end describes
    complete = true;
    me.close();
    clearTimeout(quietTimer);
    let end = null;
    try { end = JSON.parse(e.data); } catch (x) { /* no size: nothing to compare */ }
    if (queue.length) flush();
    const same = await sameAsEnd(end);
    if (gen !== modelGen) return;
    if (same || replacements >= 3) setStatusWhenDrawn('complete');
    else { replacements++; replaced(); }
  });
  me.onerror = () => {
    if (complete || me !== es) return;
    setStatus('reconnecting');
    // an HTTP error answer ends an EventSource: open a new one from what we
    // have, unless the server refuses this page for good (token, removed)
    if (me.readyState === EventSource.CLOSED) setTimeout(recheck, 2000);
  };
}

// Read the bundle (http_viewer.c) as it streams in: a JSON line of
// [number, bytes, arrival, final] per part, then the parts' bytes in that
// order.  Each part is decoded alone and shown as soon as its bytes are
// here, so the first screen does not wait for the end of a big log.
async function readBundle(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let head = null, buf = null, have = 0, next = 0, off = 0;
  let pending = new Uint8Array(0);
  let batch = [], batchBytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!head) {
      const joined = new Uint8Array(pending.length + value.length);
      joined.set(pending); joined.set(value, pending.length);
      const nl = joined.indexOf(10);
      if (nl < 0) { pending = joined; continue; }
      head = JSON.parse(dec.decode(joined.subarray(0, nl)));
      const total = head.parts.reduce((t, p) => t + p[1], 0);
      buf = new Uint8Array(total);
      const rest = joined.subarray(nl + 1, nl + 1 + total);
      buf.set(rest); have = rest.length;
      pending = null;
    } else {
      const n = Math.min(value.length, buf.length - have);
      buf.set(value.subarray(0, n), have); have += n;
    }
    // hand over parts in batches that double: the first screen comes
    // early, and the text is joined (flattened) only a few times
    while (next < head.parts.length && off + head.parts[next][1] <= have) {
      const [number, len, at, final] = head.parts[next++];
      batch.push({ number, content: dec.decode(buf.subarray(off, off + len)), final, at: Date.parse(at), size: len });
      off += len;
      batchBytes += len;
    }
    if (batch.length && (batchBytes >= Math.max(65536, off - batchBytes) || next === head.parts.length)) {
      if (addParts(batch)) update();
      batch = []; batchBytes = 0;
      await new Promise((r) => requestAnimationFrame(r));
    }
  }
  if (!head || next < head.parts.length) throw new Error('the log was cut short');
}

async function load() {
  setStatus('loading');
  let res;
  try {
    res = await fetch(api('bundle'));
  } catch (e) {
    setStatus('reconnecting');
    setTimeout(load, 2000);
    return;
  }
  if (res.status === 404) showMessage('No log is known for this job yet; waiting for its first part.');
  else if (!res.ok) { await refused(res); whenDrawn(); return; }
  else {
    try {
      await readBundle(res);
    } catch (e) {
      setStatus('reconnecting');
      setTimeout(load, 2000);
      return;
    }
  }
  complete = haveAll();
  if (!location.hash && !complete) setFollow(true);
  refresh();
  if (location.hash) applyHash(true);
  if (complete) setStatusWhenDrawn('complete');
  else connect();
  whenDrawn();
}

// html[data-ready]: the first read is over and drawn (tests wait for it).
function whenDrawn() { drawnReady = true; schedule(); }

// A read the server refused for good: say why, in words (the problem+json
// detail too), and stop.  401/403: the read needs a token of this job
// (buildlog.http_read_tokens), passed in the page's address as ?token=.
async function refused(res) {
  let detail = '';
  try { detail = (await res.json()).detail || ''; } catch (e) { /* not problem+json */ }
  // a log removed while shown goes from the screen (a removal takes down what must not be read)
  if (res.status === 410 && nums.length) resetModel();
  if (es) { es.close(); es = null; }
  clearTimeout(quietTimer);
  complete = true;
  if (res.status === 410) {
    setStatus('removed');
    showMessage('The log of this job was removed.');
  } else if (res.status === 401 || res.status === 403) {
    setStatus('error', res.status === 401 ? 'token needed' : 'token refused');
    showMessage((token
      ? `The read token in this page's address does not give access to the log of job ${jobId}`
      : `Reading the log of job ${jobId} needs a read token: open this page with ?token=<token> in its address`) +
      ` (HTTP ${res.status}${detail ? ': ' + detail : ''}).`);
  } else {
    setStatus('error');
    showMessage(`The log could not be read (HTTP ${res.status}${detail ? ': ' + detail : ''}).`);
  }
}

// ---- anchors: #L120, #L120-L140
function applyHash(scroll) {
  const m = /^#L(\d+)(?:-L?(\d+))?$/.exec(location.hash);
  pendingHash = false;
  if (!m) { sel = null; schedule(); return; }
  let a = +m[1] - 1, b = m[2] ? +m[2] - 1 : a;
  if (b < a) [a, b] = [b, a];
  sel = { a, b };
  if (a >= nLines) { pendingHash = true; return; }
  setFollow(false);
  if (reveal(a, Math.min(b, nLines - 1))) { rebuildRows(); cache = new Map(); }
  if (scroll !== false) scrollToLine(a);
  schedule();
}

// ---- events
logEl.addEventListener('scroll', () => {
  // scrolling up by hand stops following the tail
  if (follow && logEl.scrollTop < lastSetTop - 2) setFollow(false);
  schedule();
});
window.addEventListener('resize', schedule);
window.addEventListener('hashchange', () => applyHash(true));

linesEl.addEventListener('click', (e) => {
  const ln = e.target.closest('.ln');
  if (ln) {
    e.preventDefault();
    const line = +ln.parentNode.dataset.line - 1;
    if (e.shiftKey && sel) sel = { a: Math.min(sel.a, line), b: Math.max(sel.a, line) };
    else sel = { a: line, b: line };
    history.replaceState(null, '', sel.a === sel.b ? `#L${sel.a + 1}` : `#L${sel.a + 1}-L${sel.b + 1}`);
    schedule();
    return;
  }
  const tog = e.target.closest('.tog');
  if (tog) {
    const f = foldAt.get(+tog.dataset.fold);
    // the sections starting on the same line open and close together
    const open = !f.open;
    for (const g of folds.list) if (g.start === f.start) { g.open = open; g.user = true; }
    rebuildRows();
    invalidate();
    requestAnimationFrame(() => { const t = linesEl.querySelector(`.tog[data-fold="${f.start}"]`); if (t) t.focus(); });
  }
});

$('matches').addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a) return;
  e.preventDefault();
  gotoMatch(+a.dataset.match);
});

$('search').addEventListener('submit', (e) => e.preventDefault());
$('q').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') {
    e.preventDefault();
    const q = $('q').value;
    if (q !== query || plainVersion !== docVersion) runSearch(q);
    else gotoMatch(e.shiftKey ? cur - 1 : cur + 1);
  } else if (e.key === 'Escape') { $('q').blur(); logEl.focus(); }
});
$('next').addEventListener('click', () => { if ($('q').value !== query) runSearch($('q').value); else gotoMatch(cur + 1); });
$('prev').addEventListener('click', () => { if ($('q').value !== query) runSearch($('q').value); else gotoMatch(cur - 1); });
$('follow').addEventListener('change', (e) => { setFollow(e.target.checked); if (follow) scrollToEnd(); });
$('times').addEventListener('change', (e) => { prefs.times = e.target.checked; localStorage.setItem('buildlog-times', prefs.times ? '1' : '0'); invalidate(); });
$('utc').addEventListener('change', (e) => { prefs.utc = e.target.checked; localStorage.setItem('buildlog-utc', prefs.utc ? '1' : '0'); invalidate(); });
$('theme').addEventListener('click', () => { prefs.theme = prefs.theme === 'dark' ? 'light' : 'dark'; localStorage.setItem('buildlog-theme', prefs.theme); applyTheme(); });
$('unfold').addEventListener('click', () => { for (const f of folds.list) { f.open = true; f.user = true; } rebuildRows(); invalidate(); });
$('fold').addEventListener('click', () => { for (const f of folds.list) { f.open = false; f.user = true; } rebuildRows(); invalidate(); });
$('copy').addEventListener('click', () => {
  const url = shareUrl(location.hash);
  const box = $('linkbox');
  const show = () => { box.value = url; box.hidden = false; box.select(); };
  if (navigator.clipboard) navigator.clipboard.writeText(url).then(() => { $('copy').textContent = 'copied'; setTimeout(() => { $('copy').textContent = 'copy link'; }, 1500); }, show);
  else show();
});

document.addEventListener('keydown', (e) => {
  const inField = e.target instanceof HTMLInputElement;
  if ((e.ctrlKey || e.metaKey) && e.key === 'f') { e.preventDefault(); $('q').focus(); $('q').select(); return; }
  if (inField || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = e.key;
  if (k === '/') { e.preventDefault(); $('q').focus(); $('q').select(); }
  else if (k === 'n') gotoMatch(cur + 1);
  else if (k === 'N') gotoMatch(cur - 1);
  else if (k === 'f') { setFollow(!follow); if (follow) scrollToEnd(); }
  else if (k === 't') $('times').click();
  else if (k === 'u') $('utc').click();
  else if (k === 'd') $('theme').click();
  else if (k === 'g' || k === 'Home') { e.preventDefault(); setScrollTop(0); schedule(); }
  else if (k === 'G' || k === 'End') { e.preventDefault(); scrollToEnd(); }
  else if (k === 'j') { setScrollTop(logEl.scrollTop + rowH); }
  else if (k === 'k') { setScrollTop(logEl.scrollTop - rowH); }
});

// ---- start
$('title').textContent = `job ${jobId}`;
document.title = `job ${jobId} - buildlog`;
$('raw').href = api('log');
$('raw').download = `job-${jobId}.log`;
$('plain').href = api('log', { deansi: 1 });
$('plain').download = `job-${jobId}.txt`;
$('times').checked = prefs.times;
$('utc').checked = prefs.utc;
applyTheme();
logEl.focus();
load();
