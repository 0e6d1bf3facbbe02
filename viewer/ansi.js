// ANSI rendering of one log line: SGR state (16/256/24-bit colours, bold,
// faint, italic, underline, inverse, strike, OSC 8 links), carriage return
// and erase-in-line as a terminal does them, control and bidi characters made
// visible.  Everything ends up as text nodes: log text is never parsed as HTML.

// Attribute bits of a state
export const BOLD = 1, FAINT = 2, ITALIC = 4, UNDERLINE = 8, INVERSE = 16, STRIKE = 32;
const DEFAULT = -1;			// default colour
const RGB = 0x1000000;		// 24-bit colour flag

// A state is {fg, bg, fl, link}.  Rendering a line works on state objects
// (a new one at each change, nothing kept); only the states lines start in
// are kept, interned as small ids for the line index (lstate), in a table
// that is bounded: at most MAX_LINKED of them carry an OSC 8 link (a link
// still open at the end of a line; one opened and closed within a line costs
// nothing), at most MAX_STATES in all.  Beyond those bounds, reached only by
// hostile logs, a line starts without the link (or in the default state).
const DEFAULT_STATE = Object.freeze({ fg: DEFAULT, bg: DEFAULT, fl: 0, link: '' });
const MAX_STATES = 65536, MAX_LINKED = 1024;
const states = [DEFAULT_STATE];
const stateIds = new Map([['-1,-1,0,', 0]]);
let linked = 0;

const keyOf = (s) => s.fg + ',' + s.bg + ',' + s.fl + ',' + s.link;

// The id of a state lines may start in (see the bounds above).
function intern(s) {
  let id = stateIds.get(keyOf(s));
  if (id !== undefined) return id;
  if (s.link && linked >= MAX_LINKED) return intern({ fg: s.fg, bg: s.bg, fl: s.fl, link: '' });
  if (states.length >= MAX_STATES) return 0;
  id = states.length;
  states.push(Object.freeze({ fg: s.fg, bg: s.bg, fl: s.fl, link: s.link }));
  stateIds.set(keyOf(s), id);
  if (s.link) linked++;
  return id;
}

// How many states are kept, and how many of them carry a link.
export function keptStates() { return { states: states.length, linked }; }

// The state (object) of an id.
export function stateOf(id) { return states[id] || DEFAULT_STATE; }

const same = (s, fg, bg, fl, link) => s.fg === fg && s.bg === bg && s.fl === fl && s.link === link;

// Apply the parameters of one SGR sequence (CSI ... m) to a state (the same
// object when nothing changed).
function applySgr(s, params) {
  let { fg, bg, fl } = s;
  const link = s.link;
  const p = params === '' ? ['0'] : params.split(/[;:]/);
  for (let i = 0; i < p.length; i++) {
    const n = p[i] === '' ? 0 : +p[i];
    if (n === 0) { fg = DEFAULT; bg = DEFAULT; fl = 0; }
    else if (n === 1) fl |= BOLD;
    else if (n === 2) fl |= FAINT;
    else if (n === 3) fl |= ITALIC;
    else if (n === 4 || n === 21) fl |= UNDERLINE;
    else if (n === 7) fl |= INVERSE;
    else if (n === 9) fl |= STRIKE;
    else if (n === 22) fl &= ~(BOLD | FAINT);
    else if (n === 23) fl &= ~ITALIC;
    else if (n === 24) fl &= ~UNDERLINE;
    else if (n === 27) fl &= ~INVERSE;
    else if (n === 29) fl &= ~STRIKE;
    else if (n >= 30 && n <= 37) fg = n - 30;
    else if (n === 39) fg = DEFAULT;
    else if (n >= 40 && n <= 47) bg = n - 40;
    else if (n === 49) bg = DEFAULT;
    else if (n >= 90 && n <= 97) fg = n - 90 + 8;
    else if (n >= 100 && n <= 107) bg = n - 100 + 8;
    else if (n === 38 || n === 48) {
      let c = null;
      if (p[i + 1] === '5' && i + 2 < p.length) { c = Math.min(255, +p[i + 2] || 0); i += 2; }
      else if (p[i + 1] === '2') {
        // 38;2;r;g;b or 38:2::r:g:b (an empty colour-space id)
        let j = i + 2;
        if (p.length - j >= 4 && p[j] === '') j++;
        const r = Math.min(255, +p[j] || 0), g = Math.min(255, +p[j + 1] || 0), b = Math.min(255, +p[j + 2] || 0);
        c = RGB | (r << 16) | (g << 8) | b;
        i = j + 2;
      }
      if (c !== null) { if (n === 38) fg = c; else bg = c; }
    }
  }
  return same(s, fg, bg, fl, link) ? s : { fg, bg, fl, link };
}

function withLink(s, link) {
  return s.link === link ? s : { fg: s.fg, bg: s.bg, fl: s.fl, link };
}

// Parse an OSC 8 body "8;params;URI"; the URI ('' ends the link), or null.
function osc8(body) {
  if (!body.startsWith('8;')) return null;
  const semi = body.indexOf(';', 2);
  return semi < 0 ? null : body.slice(semi + 1);
}

// Where an escape sequence starting at i (s[i] is ESC) ends, and what it is.
// Returns [end, kind, payload]: kind 'csi' (payload params + final), 'osc', 'esc'.
function scanEscape(s, i) {
  const n = s.length;
  const c = s.charCodeAt(i + 1);
  if (c === 0x5b) {			// '[' CSI: parameter and intermediate bytes, one final byte
    let j = i + 2;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (d >= 0x40 && d <= 0x7e) return [j + 1, 'csi', s.slice(i + 2, j + 1)];
      if (d < 0x20 || d > 0x3f && d < 0x40) return [j, 'bad', ''];
      j++;
    }
    return [n, 'bad', ''];
  }
  // ']' OSC; '_' APC (Buildkite's timestamps), 'P' DCS, '^' PM, 'X' SOS:
  // strings up to BEL or ESC '\' (only OSC means anything here)
  if (c === 0x5d || c === 0x5f || c === 0x50 || c === 0x5e || c === 0x58) {
    const kind = c === 0x5d ? 'osc' : 'str';
    let j = i + 2;
    while (j < n) {
      const d = s.charCodeAt(j);
      if (d === 7) return [j + 1, kind, s.slice(i + 2, j)];
      if (d === 27 && s.charCodeAt(j + 1) === 0x5c) return [j + 2, kind, s.slice(i + 2, j)];
      if (d === 10) break;
      j++;
    }
    return [j, 'bad', ''];
  }
  return [Math.min(n, i + 2), 'esc', ''];
}

// The state after a whole line (only the escapes matter), as the id of a
// kept state: for the line index.
export function advanceState(s, id) {
  const from = stateOf(id);
  let st = from;
  let i = s.indexOf('\x1b');
  while (i >= 0) {
    const [end, kind, pay] = scanEscape(s, i);
    if (kind === 'csi' && pay.endsWith('m')) st = applySgr(st, pay.slice(0, -1));
    else if (kind === 'osc') { const l = osc8(pay); if (l !== null) st = withLink(st, l); }
    i = s.indexOf('\x1b', Math.max(end, i + 1));
  }
  return st === from ? id : intern(st);
}

// Characters that may reorder or hide text: shown as a visible marker.
const BIDI = /[\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/;

// The visible form of a control character, or null for a plain one.
function visibleControl(c, ch) {
  if (c < 0x20) return String.fromCharCode(0x2400 + c);	// control pictures
  if (c === 0x7f) return '\u2421';
  if (c >= 0x80 && c <= 0x9f) return '\ufffd';
  if (BIDI.test(ch)) return '<U+' + c.toString(16).toUpperCase().padStart(4, '0') + '>';
  return null;
}

export const MAX_COLUMNS = 10000;

// Render one line (no '\n') from the kept state id: cells of characters with
// their states (objects), a set of control cells, the state after it and the
// cut length.
export function renderLine(s, startId) {
  const ch = [], st = [], ctl = new Set();
  let state = stateOf(startId);
  let cur = 0, more = 0;
  const n = s.length;
  let i = 0;
  const put = (text, isCtl) => {
    if (cur >= MAX_COLUMNS) { more++; cur++; return; }
    while (ch.length < cur) { ch.push(' '); st.push(DEFAULT_STATE); }
    ch[cur] = text; st[cur] = state;
    if (isCtl) ctl.add(cur); else ctl.delete(cur);
    cur++;
  };
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 27) {
      const [end, kind, pay] = scanEscape(s, i);
      if (kind === 'csi') {
        const fin = pay.charAt(pay.length - 1), par = pay.slice(0, -1);
        if (fin === 'm') state = applySgr(state, par);
        else if (fin === 'K') {
          const m = +par || 0;
          if (m === 0) { ch.length = Math.min(ch.length, cur); st.length = ch.length; }
          else if (m === 1) for (let k = 0; k <= cur && k < ch.length; k++) { ch[k] = ' '; st[k] = DEFAULT_STATE; }
          else { ch.length = 0; st.length = 0; }
        } else if (fin === 'G') cur = Math.max(0, (+par || 1) - 1);
        else if (fin === 'C') cur += Math.max(1, +par || 1);
        else if (fin === 'D') cur = Math.max(0, cur - Math.max(1, +par || 1));
      } else if (kind === 'osc') {
        const l = osc8(pay);
        if (l !== null) state = withLink(state, l);
      }
      i = Math.max(end, i + 1);
      continue;
    }
    if (c === 13) { cur = 0; i++; continue; }
    if (c === 8) { cur = Math.max(0, cur - 1); i++; continue; }
    if (c === 9) { do put(' ', false); while (cur % 8 !== 0); i++; continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { put(s.slice(i, i + 2), false); i += 2; continue; }
    }
    const chr = s.charAt(i);
    const vis = (c < 0x20 || c >= 0x7f && c <= 0x9f || c >= 0x61c) ? visibleControl(c, chr) : null;
    put(vis === null ? chr : vis, vis !== null);
    i++;
  }
  if (ch.length > MAX_COLUMNS) { more += ch.length - MAX_COLUMNS; ch.length = MAX_COLUMNS; st.length = MAX_COLUMNS; }
  return { ch, st, ctl, end: state, more };
}

// The visible text of a rendered line (what search looks at).
export function cellText(r) { return r.ch.join(''); }

// Only http and https links are followed; anything else is shown, not linked.
export function safeUrl(u) {
  try {
    const url = new URL(u);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch (e) {
    return null;
  }
}

function paletteRgb(n) {
  if (n < 232) {
    const k = n - 16, v = (x) => (x === 0 ? 0 : 55 + x * 40);
    return `rgb(${v(Math.floor(k / 36))}, ${v(Math.floor(k / 6) % 6)}, ${v(k % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g}, ${g}, ${g})`;
}

function colourCss(c) {
  if (c & RGB) return `rgb(${(c >> 16) & 255}, ${(c >> 8) & 255}, ${c & 255})`;
  return paletteRgb(c);
}

// Style an element for a state: classes for the 16 themed colours and the
// attributes, CSSOM (never a style attribute) for 256 and 24-bit colours.
function styleElement(el, s) {
  let fg = s.fg, bg = s.bg;
  const cls = [];
  if (s.fl & INVERSE) {
    [fg, bg] = [bg, fg];
    if (fg === DEFAULT) cls.push('ifg');
    if (bg === DEFAULT) cls.push('ibg');
  }
  if (fg !== DEFAULT) { if (fg < 16) cls.push('f' + fg); else el.style.color = colourCss(fg); }
  if (bg !== DEFAULT) { if (bg < 16) cls.push('b' + bg); else el.style.backgroundColor = colourCss(bg); }
  if (s.fl & BOLD) cls.push('sb');
  if (s.fl & FAINT) cls.push('sf');
  if (s.fl & ITALIC) cls.push('si');
  if (s.fl & UNDERLINE) cls.push('su');
  if (s.fl & STRIKE) cls.push('ss');
  if (cls.length) el.className = cls.join(' ');
}

const URL_RE = /\bhttps?:\/\/[^\s<>"'`\u2400-\u2421]*[^\s<>"'`.,;:!?)\]}\u2400-\u2421]/g;

// Append text with plain http(s) URLs linked.
function appendLinked(parent, text, linkify) {
  if (!linkify || text.indexOf('://') < 0) { parent.appendChild(document.createTextNode(text)); return; }
  let last = 0;
  URL_RE.lastIndex = 0;
  for (let m; (m = URL_RE.exec(text));) {
    const href = safeUrl(m[0]);
    if (!href) continue;
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    const a = document.createElement('a');
    a.href = href; a.rel = 'noopener noreferrer nofollow'; a.target = '_blank';
    a.textContent = m[0];
    parent.appendChild(a);
    last = m.index + m[0].length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

// Build the DOM of a rendered line into parent: runs of one state (and one
// search-mark status) become spans, OSC 8 links anchors when their URL is safe.
// marks: [[from, to, current], ...] in cell columns, ascending.
export function buildDom(parent, r, marks) {
  const n = r.ch.length;
  let mi = 0;
  const markAt = (k) => {
    while (mi < marks.length && marks[mi][1] <= k) mi++;
    return mi < marks.length && marks[mi][0] <= k ? mi : -1;
  };
  let k = 0;
  let linkEl = null, linkHref = null;
  while (k < n) {
    const s = r.st[k], m = markAt(k), isCtl = r.ctl.has(k);
    let j = k + 1;
    while (j < n && r.st[j] === s && markAt(j) === m && r.ctl.has(j) === isCtl) j++;
    const text = r.ch.slice(k, j).join('');
    let target = parent;
    if (s.link) {
      if (linkHref !== s.link) {
        const href = safeUrl(s.link);
        if (href) {
          linkEl = document.createElement('a');
          linkEl.href = href; linkEl.rel = 'noopener noreferrer nofollow'; linkEl.target = '_blank';
        } else {
          linkEl = document.createElement('span');
          linkEl.className = 'blocked';
          linkEl.title = 'link not followed (only http and https): ' + s.link.slice(0, 200);
        }
        linkHref = s.link;
        parent.appendChild(linkEl);
      }
      target = linkEl;
    } else {
      linkEl = null; linkHref = null;
    }
    let el;
    if (m >= 0) { el = document.createElement('mark'); if (marks[m][2]) el.className = 'cur'; }
    else el = document.createElement('span');
    styleElement(el, s);
    if (m >= 0 && el.className.indexOf('cur') < 0 && marks[m][2]) el.classList.add('cur');
    if (isCtl) { el.classList.add('ctl'); el.title = 'control character'; }
    if (m >= 0 || el.className || el.style.length) {
      if (s.link || isCtl) el.textContent = text; else appendLinked(el, text, true);
      target.appendChild(el);
    } else if (s.link || isCtl) target.appendChild(document.createTextNode(text));
    else appendLinked(target, text, true);
    k = j;
  }
  if (r.more > 0) {
    const el = document.createElement('span');
    el.className = 'more';
    el.textContent = ` \u2026 ${r.more} more characters (see the raw log)`;
    parent.appendChild(el);
  }
}
