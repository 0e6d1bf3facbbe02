// Sections of a log in every common dialect, found line by line as the log
// grows: travis (travis_fold:start/end, travis_time durations), GitLab
// (section_start/section_end, [collapsed=true]), GitHub Actions
// (::group::/::endgroup::) and Buildkite (--- / +++ / ~~~ headers, ^^^ +++).

const ANY = /travis_|section_|^::(?:end)?group::|^(?:---|\+\+\+|~~~|\^\^\^) ?/;
const TRAVIS = /travis_(fold|time):(start|end):([^\r\n\x1b:]+)(?::start=(\d+),finish=(\d+),duration=(\d+))?/g;
const GITLAB = /section_(start|end):(\d+):([A-Za-z0-9_.\-]+)(?:\[([^\]\r\x1b]*)\])?/g;
const GITHUB = /^::(group|endgroup)::(.*)$/;
const BUILDKITE = /^(---|\+\+\+|~~~) (.*)$/;
// unified diff headers look like Buildkite's: "--- a/x", "+++ b/x", /dev/null, a tab and a date
const DIFF = /^(?:---|\+\+\+) (?:[ab]\/|\/dev\/null|\S+\t)/;

// What a line shows in place of its GitHub or Buildkite marker (others are
// erased by their own \r\e[0K).
export function displayText(s) {
  if (s.charCodeAt(0) === 58) {		// ':'
    const m = GITHUB.exec(s);
    if (m) return m[1] === 'group' ? m[2] : '';
  } else if (s.length > 3 && (s.startsWith('--- ') || s.startsWith('+++ ') || s.startsWith('~~~ ')) && !DIFF.test(s))
    return s.slice(4);
  else if (s.startsWith('^^^ +++')) return '';
  return s;
}

export class Folds {
  constructor() {
    this.list = [];			// {start, end (-1 open), kind, name, open, ms, depth}
    this.stack = [];
    this.times = new Map();	// travis_time id -> line of its start
    this.lineMs = new Map();	// line -> duration of the command started there (travis_time)
    this.buildkite = null;	// the open Buildkite group (ends at the next header)
  }

  open(i, kind, name, collapsed) {
    const f = { start: i, end: -1, kind, name, open: !collapsed, ms: null, depth: this.stack.length };
    this.list.push(f);
    this.stack.push(f);
    return f;
  }

  // Close the innermost open section of kind (and name, if given) at line i.
  close(i, kind, name) {
    for (let k = this.stack.length - 1; k >= 0; k--) {
      const f = this.stack[k];
      if (f.kind === kind && (name === undefined || f.name === name)) {
        for (let j = this.stack.length - 1; j >= k; j--) if (this.stack[j].end < 0) this.stack[j].end = i;
        this.stack.length = k;
        return f;
      }
    }
    return null;
  }

  // Look at complete line i (raw text s) for markers.
  line(i, s) {
    if (!ANY.test(s)) return;
    if (s.indexOf('travis_') >= 0) {
      TRAVIS.lastIndex = 0;
      for (let m; (m = TRAVIS.exec(s));) {
        if (m[1] === 'fold') {
          if (m[2] === 'start') this.open(i, 'travis', m[3], true);
          else this.close(i, 'travis', m[3]);
        } else if (m[2] === 'start') this.times.set(m[3], i);
        else if (m[6] !== undefined) {
          const ms = +m[6] / 1e6, at = this.times.get(m[3]);
          if (at !== undefined) this.lineMs.set(at, ms);
          // the innermost travis fold around it takes the duration
          for (let k = this.list.length - 1; k >= 0; k--) {
            const f = this.list[k];
            if (f.kind === 'travis' && f.start <= (at ?? i) && (f.end < 0 || f.end >= i)) { if (f.ms === null) f.ms = ms; break; }
          }
        }
      }
    }
    if (s.indexOf('section_') >= 0) {
      GITLAB.lastIndex = 0;
      for (let m; (m = GITLAB.exec(s));) {
        if (m[1] === 'start') {
          const f = this.open(i, 'gitlab', m[3], /(?:^|,)collapsed=true(?:,|$)/.test(m[4] || ''));
          f.ts = +m[2];
        } else {
          const f = this.close(i, 'gitlab', m[3]);
          if (f && f.ts !== undefined) f.ms = Math.max(0, (+m[2] - f.ts) * 1000);
        }
      }
    }
    let m;
    if ((m = GITHUB.exec(s))) {
      if (m[1] === 'group') { this.close(i - 1, 'github'); this.open(i, 'github', m[2], true); }
      else this.close(i, 'github');
    } else if ((m = BUILDKITE.exec(s)) && !DIFF.test(s)) {
      if (this.buildkite) this.close(i - 1, 'buildkite');
      this.buildkite = this.open(i, 'buildkite', m[2], m[1] !== '+++');
    } else if (s.startsWith('^^^ +++') && this.buildkite) this.buildkite.open = true;
  }
}
