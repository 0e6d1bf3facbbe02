// Sections of a log in every common dialect, found line by line as the log
// grows: travis (travis_fold:start/end, travis_time durations), GitLab
// (section_start/section_end, [collapsed=true], [hide_duration=true]), GitHub
// Actions (::group::/::endgroup::, the older ##[group]/##[endgroup]) and
// Buildkite (--- / +++ / ~~~ headers, ^^^ +++, with or without the agent's
// ESC _bk;t=...BEL timestamp).
//
// travis and GitLab markers are written inside lines, as a terminal shows
// them: "travis_fold:end:NAME\r\e[0K" then the next command's output on the
// same physical line, "\e[0Ksection_end:T:A\r\e[0K\e[0Ksection_start:T:B\r\e[0K"
// and B's header on one line.  Each marker takes effect where it stands, in
// order: a line that shows text after a section's end marker (or that starts
// another section) is not in the ended section; a line whose end marker is
// followed by nothing visible (what \r\e[0K erased is not visible) is its
// section's last line.  The markers themselves are never shown.

const ANY = /travis_|section_|::(?:end)?group::|##\[(?:end)?group\]|^(?:\x1b_bk;t=\d+\x07)?(?:---|\+\+\+|~~~|\^\^\^) ?/;
const TRAVIS = /travis_(fold|time):(start|end):([^\s\x1b:]+)(?::start=(\d+),finish=(\d+),duration=(\d+)(?:,event=\w+)?)?/g;
const GITLAB = /section_(start|end):(\d+):([A-Za-z0-9_.\-]+)(?:\[([^\]\r\n\x1b]*)\])?/g;
const GITHUB = /^[ \t]*(?:::(group|endgroup)::|##\[(group|endgroup)\])(.*)$/;
const BKPREFIX = /^\x1b_bk;t=(\d+)\x07/;
const BUILDKITE = /^(---|\+\+\+|~~~) (.*)$/;
// unified diff headers look like Buildkite's: "--- a/x", "+++ b/x", /dev/null, a tab and a date
const DIFF = /^(?:---|\+\+\+) (?:[ab]\/|\/dev\/null|\S+\t)/;
// what erases the whole line so far: \r then \e[K (SGR between allowed), \e[2K
const ERASE = /\r(?:\x1b\[[0-9;]*m)*\x1b\[0?K|\x1b\[2K/g;
// escape sequences, control characters and blanks: nothing a reader sees
const INVISIBLE = /\x1b\[[0-?]*[ -\/]*[@-~]|\x1b[\]_P^X][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?|[\x00-\x20\x7f]/g;

function stripMarkers(s) {
  if (s.indexOf('travis_') >= 0) s = s.replace(TRAVIS, '');
  if (s.indexOf('section_') >= 0) s = s.replace(GITLAB, '');
  return s;
}

// What a line shows in place of its markers: travis and GitLab markers
// removed (their own \r\e[0K erases them on a terminal; without it they would
// show), a GitHub or Buildkite marker line as its title.
export function displayText(s) {
  const c = s.charCodeAt(0);
  if (c === 58 || c === 35 || c === 32 || c === 9) {	// ':', '#', blank
    const m = GITHUB.exec(s);
    if (m) return (m[1] || m[2]) === 'group' ? m[3] : '';
  } else if (c === 27 && BKPREFIX.test(s)) {
    const t = s.replace(BKPREFIX, '');
    const d = displayText(t);
    return d === t ? s : d;
  } else if (s.length > 3 && (s.startsWith('--- ') || s.startsWith('+++ ') || s.startsWith('~~~ ')) && !DIFF.test(s))
    return s.slice(4);
  else if (s.startsWith('^^^ +++')) return '';
  if (s.indexOf('travis_') >= 0 || s.indexOf('section_') >= 0) return stripMarkers(s);
  return s;
}

// Where the last character a reader sees in s stands (-1: none), the markers
// (marks, by offset), escapes, blanks and control characters aside: a line
// shows text after offset p when this is at or after p.  Once per line, so
// a line of many markers costs its length, not its length times its markers.
function lastShown(s, marks) {
  const pieces = [], at = [];
  let pos = 0;
  for (const mk of marks) {
    if (mk.at > pos) { pieces.push(s.slice(pos, mk.at)); at.push(pos); }
    pos = Math.max(pos, mk.end);
  }
  if (pos < s.length) { pieces.push(s.slice(pos)); at.push(pos); }
  const t = pieces.join('');
  let last = -1, p = 0;
  INVISIBLE.lastIndex = 0;
  for (let m; (m = INVISIBLE.exec(t));) {
    if (m.index > p) last = m.index - 1;
    p = m.index + m[0].length;
  }
  if (p < t.length) last = t.length - 1;
  if (last < 0) return -1;
  for (let k = 0, base = 0; k < pieces.length; base += pieces[k].length, k++)
    if (last < base + pieces[k].length) return at[k] + last - base;
  return -1;
}

export class Folds {
  constructor() {
    this.list = [];			// {start, end (-1 open), kind, name, open, ms, depth, id}
    this.stack = [];			// the open sections, outermost first (f.depth: its place)
    // the open sections by kind and by kind and name, outermost first: an end
    // marker finds its section at once, whatever else is open (no scan)
    this.byKind = new Map();
    this.byName = new Map();
    this.times = new Map();	// travis_time id -> line of its start
    this.lineMs = new Map();	// line -> duration of the command started there (travis_time)
    this.buildkite = null;	// the open Buildkite group (ends at the next header)
    this.bkExpanded = false;	// a Buildkite +++ or ^^^ +++ was seen
    this.finished = false;
    this.cur = -1;			// the line being read
    this.endedTravis = null;	// the last travis fold ended on that line, as its last line
  }

  open(i, kind, name, collapsed) {
    const f = { start: i, end: -1, kind, name, open: !collapsed, ms: null, depth: this.stack.length, id: this.list.length };
    this.list.push(f);
    this.stack.push(f);
    const put = (map, key) => { const l = map.get(key); if (l) l.push(f); else map.set(key, [f]); };
    put(this.byKind, kind);
    put(this.byName, kind + '\0' + name);
    return f;
  }

  // Close the innermost open section of kind (and name, if given): its last
  // line is i (never before its own first line), sections inside it end too.
  close(i, kind, name) {
    const open = name === undefined ? this.byKind.get(kind) : this.byName.get(kind + '\0' + name);
    if (!open) return null;
    const f = open[open.length - 1];
    // each section ended here is the innermost open one of its kind and name
    const drop = (map, key) => { const l = map.get(key); l.pop(); if (!l.length) map.delete(key); };
    for (let j = this.stack.length - 1; j >= f.depth; j--) {
      const g = this.stack[j];
      g.end = Math.max(i, g.start);
      drop(this.byKind, g.kind);
      drop(this.byName, g.kind + '\0' + g.name);
      if (g.kind === 'travis' && g.end === this.cur && (!this.endedTravis || g.id > this.endedTravis.id)) this.endedTravis = g;
    }
    this.stack.length = f.depth;
    return f;
  }

  // The innermost travis fold around a travis_time that started on line at
  // and ends on the line being read: open, or ended on this line as its last
  // line, and started at or before at.
  travisAround(at) {
    let best = null;
    const open = this.byKind.get('travis');
    if (open && open[0].start <= at) {
      let lo = 0, hi = open.length - 1;	// the last one started at or before at (starts ascend)
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (open[mid].start <= at) lo = mid; else hi = mid - 1; }
      best = open[lo];
    }
    const e = this.endedTravis;
    if (e && e.start <= at && (!best || e.id > best.id)) best = e;
    return best;
  }

  // Look at complete line i (raw text s) for markers.
  line(i, s) {
    if (!ANY.test(s)) return;
    if (i !== this.cur) { this.cur = i; this.endedTravis = null; }
    const marks = [];
    if (s.indexOf('travis_') >= 0) {
      TRAVIS.lastIndex = 0;
      for (let m; (m = TRAVIS.exec(s));) marks.push({ at: m.index, end: m.index + m[0].length, dialect: 'travis', m });
    }
    if (s.indexOf('section_') >= 0) {
      GITLAB.lastIndex = 0;
      for (let m; (m = GITLAB.exec(s));) marks.push({ at: m.index, end: m.index + m[0].length, dialect: 'gitlab', m });
    }
    if (marks.length) this.inline(i, s, marks);
    let t = s, at = null;	// at: the Buildkite agent's timestamp of the line (ms)
    if (t.charCodeAt(0) === 27) { const p = BKPREFIX.exec(t); if (p) { at = +p[1]; t = t.slice(p[0].length); } }
    let m;
    if ((m = GITHUB.exec(t))) {
      if ((m[1] || m[2]) === 'group') { this.close(i - 1, 'github'); this.open(i, 'github', m[3], true); }
      else this.close(i, 'github');
    } else if ((m = BUILDKITE.exec(t)) && !DIFF.test(t)) {
      // a group lasts from its header's timestamp to the next header's
      const prev = this.buildkite;
      if (prev && this.close(i - 1, 'buildkite') && at !== null && prev.at !== null) prev.ms = Math.max(0, at - prev.at);
      this.buildkite = this.open(i, 'buildkite', m[2], m[1] !== '+++');
      this.buildkite.header = m[1];
      this.buildkite.at = at;
      if (m[1] === '+++') this.bkExpanded = true;
    } else if (t.startsWith('^^^ +++') && this.buildkite) { this.buildkite.open = true; this.bkExpanded = true; }
  }

  // travis and GitLab markers of line i, in the order they stand.
  inline(i, s, marks) {
    if (marks.length > 1) marks.sort((a, b) => a.at - b.at);
    // where the text that survives on the line begins: after its last erase
    let live = 0;
    ERASE.lastIndex = 0;
    for (let e; (e = ERASE.exec(s));) live = e.index + e[0].length;
    const starts = (mk) => mk.m[2] === 'start' && (mk.dialect === 'gitlab' || mk.m[1] === 'fold');
    let lastStart = -1;
    for (let k = 0; k < marks.length; k++) if (starts(marks[k])) lastStart = k;
    let shown;			// lastShown(s, marks), once, when an end needs it
    for (let k = 0; k < marks.length; k++) {
      const { dialect, m } = marks[k];
      // an end leaves this line out of its section when the line shows text
      // of its own after the marker, or starts another section later on
      const after = () => {
        if (k < lastStart) return true;
        if (shown === undefined) shown = lastShown(s, marks);
        return shown >= Math.max(marks[k].end, live);
      };
      if (dialect === 'gitlab') {
        if (m[1] === 'start') {
          const opts = (m[4] || '').split(',');
          const f = this.open(i, 'gitlab', m[3], opts.includes('collapsed=true'));
          f.ts = +m[2];
          f.hideMs = opts.includes('hide_duration=true');
        } else {
          const f = this.close(after() ? i - 1 : i, 'gitlab', m[3]);
          if (f && f.ts !== undefined && !f.hideMs) f.ms = Math.max(0, (+m[2] - f.ts) * 1000);
        }
      } else if (m[1] === 'fold') {
        if (m[2] === 'start') this.open(i, 'travis', m[3], true);
        else this.close(after() ? i - 1 : i, 'travis', m[3]);
      } else if (m[2] === 'start') this.times.set(m[3], i);
      else if (m[6] !== undefined) {
        const ms = +m[6] / 1e6, at = this.times.get(m[3]);
        if (at !== undefined) this.lineMs.set(at, ms);
        // the innermost travis fold around it takes the duration
        const f = this.travisAround(at ?? i);
        if (f && f.ms === null) f.ms = ms;
      }
    }
  }

  // The log is complete: with no Buildkite group expanded (+++, ^^^ +++),
  // Buildkite expands the last --- group.
  finish() {
    if (this.finished) return;
    this.finished = true;
    if (this.bkExpanded) return;
    for (let k = this.list.length - 1; k >= 0; k--) {
      const f = this.list[k];
      if (f.kind === 'buildkite' && f.header === '---') { f.open = true; break; }
    }
  }
}
