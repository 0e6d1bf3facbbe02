// The log viewer in a real browser (Debian's chromium driven by
// puppeteer-core): run by test/t/060_viewer.pl, which prepared jobs 1-10 and
// passes the base URL, a folder for screenshots and puppeteer's path; PGHOST
// and PGPORT name its cluster (for the parts this script writes while a page
// follows a job).  Prints TAP lines the .pl file passes on.
//
// Every check waits for the state it looks at (the page draws at its next
// frame, parts come over a stream): never a fixed sleep, never a read right
// after an action.  A wait that times out says what the page showed.
'use strict';
const { execFileSync } = require('child_process');
const [base, shots, puppeteerPath] = process.argv.slice(2);
const puppeteer = require(puppeteerPath);

let n = 0;
function ok(cond, name, diag) {
  n++;
  console.log(`${cond ? '' : 'not '}ok ${n} - ${name}`);
  if (!cond && diag !== undefined) console.log('# ' + String(diag).split('\n').join('\n# '));
  return cond;
}
const is = (got, want, name) => ok(got === want, name, `got:  ${JSON.stringify(got)}\nwant: ${JSON.stringify(want)}`);
const psql = (sql) => execFileSync('psql', ['-X', '-Atq', '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c', sql]).toString().trim();

// What the page shows: its status, its message and its rows on screen.
const snapshot = (page) => page.evaluate(() => {
  const st = document.getElementById('status');
  const msg = document.getElementById('message');
  return { status: `${st.dataset.state} (${st.textContent})`, message: msg.hidden ? '' : msg.textContent,
    rows: [...document.querySelectorAll('.row')].slice(0, 40).map((r) => `${r.dataset.line}${r.querySelector('.tog') ? (r.querySelector('.tog').getAttribute('aria-expanded') === 'true' ? 'v' : '>') : ' '} ${r.querySelector('.txt').textContent}`) };
}).catch((e) => ({ error: e.message }));

// Wait in the page for fn(arg) to be true; ok() saying what was waited for
// (and on a timeout, what the page showed instead).
async function waitFor(page, what, fn, arg, timeout = 20000) {
  try {
    await page.waitForFunction(fn, { timeout, polling: 50 }, arg);
    return ok(true, what);
  } catch (e) {
    return ok(false, what, `timed out after ${timeout} ms waiting for: ${what}\n${e.message}\nthe page showed: ${JSON.stringify(await snapshot(page), null, 1)}`);
  }
}

// The lines on screen are exactly lines, in order (the logs it is used on fit on one screen).
const showsLines = (page, what, lines) => waitFor(page, what, (want) =>
  [...document.querySelectorAll('.row')].map((r) => +r.dataset.line).join(',') === want, lines.join(','));
// The status of the page is state and every row's text joined is text.
const statusAndText = (page, what, state, text, timeout) => waitFor(page, what, ([st, want]) =>
  document.getElementById('status').dataset.state === st &&
  [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|') === want, [state, text], timeout);
// From now on, window.__atComplete: the rows' text at the moment the status first says "complete".
const noteComplete = (page) => page.evaluate(() => {
  const st = document.getElementById('status');
  window.__atComplete = null;
  new MutationObserver(() => {
    if (st.dataset.state === 'complete' && window.__atComplete === null)
      window.__atComplete = [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|');
  }).observe(st, { attributes: true, childList: true, characterData: true, subtree: true });
});
const rowText = (page, l) => page.evaluate((l) => {
  const t = document.querySelector(`.row[data-line="${l}"] .txt`);
  return t ? t.textContent : null;
}, l);
// Every row of the log, read from the screen: the page is scrolled from its
// top to its end a screen at a time (each screen drawn before it is read, each
// overlapping the last one, so no row is skipped); [[line, text], ...].
const allRows = (page) => page.evaluate(async () => {
  const log = document.getElementById('log'), lines = document.getElementById('lines');
  // set scrollTop, then wait until a frame drew the rows (the page replaces
  // #lines' children at every frame it draws)
  const scrollTo = (y) => new Promise((resolve, reject) => {
    const t = setTimeout(() => { mo.disconnect(); reject(new Error(`no frame drawn within 20 s at scrollTop ${y}`)); }, 20000);
    const mo = new MutationObserver(() => { mo.disconnect(); clearTimeout(t); resolve(); });
    mo.observe(lines, { childList: true });
    log.scrollTop = y;
    log.dispatchEvent(new Event('scroll'));
  });
  const out = [];
  await scrollTo(0);
  for (;;) {
    const rows = [...lines.querySelectorAll('.row')].map((r) => [+r.dataset.line, r.querySelector('.txt').textContent]);
    if (!rows.length) break;
    const last = out.length ? out[out.length - 1][0] : 0;
    if (out.length && rows[0][0] > last) throw new Error(`rows skipped between line ${last} and line ${rows[0][0]}`);
    for (const r of rows) if (r[0] > last) out.push(r);
    const before = log.scrollTop;
    const step = Math.max(1, log.clientHeight - 3 * lines.querySelector('.row').getBoundingClientRect().height);
    if (before + log.clientHeight >= log.scrollHeight) break;
    await scrollTo(before + step);
    if (log.scrollTop <= before) break;
  }
  return out;
});
// computed style of the span (or mark, a) holding exactly text in line l
const styleOf = (page, l, text) => page.evaluate((l, text) => {
  const el = [...document.querySelectorAll(`.row[data-line="${l}"] .txt *`)].find((e) => e.textContent === text);
  if (!el) return null;
  const s = getComputedStyle(el);
  return { color: s.color, bg: s.backgroundColor, weight: s.fontWeight, style: s.fontStyle,
    deco: s.textDecorationLine, opacity: s.opacity };
}, l, text);

// Tick or untick a checkbox of the bar (the page keeps them in localStorage).
async function setBox(page, id, on) {
  if (await page.$eval('#' + id, (b) => b.checked) !== on) await page.click('#' + id);
}

async function open(browser, path) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 700 });
  page.dialogs = 0;
  page.errors = [];
  page.on('dialog', (d) => { page.dialogs++; d.dismiss(); });
  page.on('pageerror', (e) => page.errors.push(e.message));
  await page.evaluateOnNewDocument(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
    localStorage.setItem('buildlog-theme', 'light');
  });
  await page.goto(base + path);
  await page.waitForSelector('html[data-ready]', { timeout: 20000 });
  return page;
}

async function server() {
  let r = await fetch(`${base}/jobs/1`);
  is(r.status, 200, 'GET /jobs/1 serves the page');
  is(r.headers.get('content-type'), 'text/html; charset=utf-8', 'as HTML');
  const csp = r.headers.get('content-security-policy') || '';
  ok(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp) && /default-src 'none'/.test(csp),
    'with a Content-Security-Policy without inline script', csp);
  const etag = r.headers.get('etag');
  r = await fetch(`${base}/jobs/1`, { headers: { 'If-None-Match': etag } });
  is(r.status, 304, 'If-None-Match with its ETag answers 304');
  r = await fetch(`${base}/viewer/viewer.js`);
  is(r.headers.get('content-type'), 'text/javascript; charset=utf-8', 'the script is served as JavaScript');
  is((await fetch(`${base}/viewer/nope.js`)).status, 404, 'an unknown asset is 404');
  is((await fetch(`${base}/jobs/1`, { method: 'POST' })).status, 405, 'POST /jobs/1 is 405');
  is((await fetch(`${base}/jobs/999/bundle`)).status, 404, 'the bundle of an unknown job is 404');
  is((await fetch(`${base}/jobs/99999`)).status, 200, 'the page is served for any job id');
  // the bundle: the index line, then exactly the parts' bytes, as /parts has them
  const bytes = Buffer.from(await (await fetch(`${base}/jobs/1/bundle`)).arrayBuffer());
  const nl = bytes.indexOf(10);
  const index = JSON.parse(bytes.subarray(0, nl).toString()).parts;
  const json = JSON.parse(await (await fetch(`${base}/jobs/1/parts`)).text()).log_parts;
  let off = nl + 1;
  const fromBundle = index.map(([number, len, at, final]) => {
    const content = bytes.subarray(off, off + len).toString();
    off += len;
    return { number, content, final, created_at: new Date(at).getTime() };
  });
  is(off, bytes.length, 'the bundle is its index line and the bytes it lists');
  is(JSON.stringify(fromBundle), JSON.stringify(json.map((p) => ({ number: p.number, content: p.content, final: p.final, created_at: new Date(p.created_at).getTime() }))),
    'the same parts, contents and arrival times as /parts');
}

async function rendering(browser) {
  const page = await open(browser, '/jobs/1');
  const red = await styleOf(page, 2, 'red');
  is(red && red.color, 'rgb(207, 34, 46)', 'SGR 31: the theme red');
  const bg = await styleOf(page, 2, 'boldgreen');
  ok(bg && bg.weight === '700' && bg.color === 'rgb(17, 99, 41)', 'SGR 1;32: bold green', JSON.stringify(bg));
  is((await styleOf(page, 2, 'c196') || {}).color, 'rgb(255, 0, 0)', 'SGR 38;5;196: 256 colours');
  is((await styleOf(page, 2, 'rgb') || {}).color, 'rgb(1, 2, 3)', 'SGR 38;2;1;2;3: 24-bit colour');
  is((await styleOf(page, 2, 'ital') || {}).style, 'italic', 'SGR 3: italic');
  is((await styleOf(page, 2, 'under') || {}).deco, 'underline', 'SGR 4: underline');
  is((await styleOf(page, 2, 'faint') || {}).opacity, '0.6', 'SGR 2: faint');
  const inv = await styleOf(page, 2, 'inv');
  ok(inv && inv.bg === 'rgb(31, 35, 40)' && inv.color === 'rgb(255, 255, 255)', 'SGR 7: inverse swaps the default colours', JSON.stringify(inv));
  is((await styleOf(page, 2, 'bgblue') || {}).bg, 'rgb(9, 105, 218)', 'SGR 44: background');
  is((await styleOf(page, 4, 'over') || {}).color, 'rgb(130, 80, 223)', 'a colour carries over to the next line');
  const after = await page.evaluate(() => getComputedStyle(document.querySelector('.row[data-line="4"] .txt')).color);
  is(await page.evaluate(() => {
    const t = document.querySelector('.row[data-line="4"] .txt');
    return [...t.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join('');
  }), ' after', 'after SGR 0 the text is unstyled');
  is(after, 'rgb(31, 35, 40)', 'in the default colour');
  is(await rowText(page, 19), 'progress 100%', '\\r overwrites: a progress bar shows its last state');
  is(await rowText(page, 20), 'xy', '\\e[K erases the rest of the line');
  const links = await page.evaluate(() => [...document.querySelectorAll('.row[data-line="21"] .txt a')].map((a) => [a.getAttribute('href'), a.textContent]));
  is(JSON.stringify(links), JSON.stringify([['https://example.com/a?b=1', 'https://example.com/a?b=1'], ['https://example.org/', 'osc link']]),
    'a plain URL (without its full stop) and an OSC 8 hyperlink are links');

  // sections, collapsed or not as their dialect says, with durations
  const head = (l) => page.evaluate((l) => {
    const r = document.querySelector(`.row[data-line="${l}"]`);
    if (!r) return null;
    const t = r.querySelector('.tog');
    return { open: t ? t.getAttribute('aria-expanded') : null, text: r.querySelector('.txt').textContent,
      dur: (r.querySelector('.dur') || {}).textContent || '' };
  }, l);
  const present = (l) => page.evaluate((l) => !!document.querySelector(`.row[data-line="${l}"]`), l);
  let h = await head(5);
  ok(h && h.open === 'false' && h.text === '$ bundle install' && h.dur === '1.23 s', 'travis fold: closed, its command shown, travis_time duration', JSON.stringify(h));
  ok(!(await present(6)) && !(await present(8)), 'its lines are hidden');
  h = await head(9);
  ok(h && h.open === 'false' && h.text === 'Building' && h.dur === '42.00 s', 'GitLab section [collapsed=true]: closed, 42 s from its timestamps', JSON.stringify(h));
  h = await head(12);
  ok(h && h.open === 'false' && h.text === 'My group', 'GitHub ::group::: closed, titled without the marker', JSON.stringify(h));
  ok(!(await present(13)), 'its line is hidden');
  h = await head(15);
  ok(h && h.open === 'false' && h.text === 'bk one' && !(await present(16)), 'Buildkite ---: closed', JSON.stringify(h));
  h = await head(17);
  ok(h && h.open === 'true' && h.text === 'bk two' && await present(18), 'Buildkite +++: open', JSON.stringify(h));
  h = await head(41);
  ok(h && h.open === null && h.text === '--- a/file.c' && (await head(42) || {}).text === '+++ b/file.c', 'a unified diff header is not a Buildkite section', JSON.stringify(h));
  await page.click('.row[data-line="5"] .tog');
  await waitFor(page, 'a click opens the travis fold', () => !!document.querySelector('.row[data-line="7"]'));
  is(await rowText(page, 6), 'inside 1', 'its first line shown in place');
  await page.screenshot({ path: `${shots}/viewer-rendering.png` });

  // timestamps from the parts' arrival times, in UTC
  const parts = JSON.parse(await (await fetch(`${base}/jobs/1/parts`)).text()).log_parts;
  const utc = (iso) => new Date(iso).toISOString().replace('T', ' ');
  await setBox(page, 'times', true);
  await setBox(page, 'utc', true);
  await waitFor(page, 'line 1: the arrival time of part 0, UTC', ([l, w]) => document.querySelector(`.row[data-line="${l}"] .ts`)?.textContent === w, [1, utc(parts[0].created_at)]);
  await waitFor(page, 'line 5: the arrival time of part 1', ([l, w]) => document.querySelector(`.row[data-line="${l}"] .ts`)?.textContent === w, [5, utc(parts[1].created_at)]);
  ok(utc(parts[0].created_at) !== utc(parts[1].created_at), 'the parts arrived at different times');
  await setBox(page, 'utc', false);
  const local = new Date(parts[0].created_at);
  const p2 = (x, w = 2) => String(x).padStart(w, '0');
  await waitFor(page, 'local time shown', (want) => document.querySelector('.row[data-line="1"] .ts').textContent === want,
    `${local.getFullYear()}-${p2(local.getMonth() + 1)}-${p2(local.getDate())} ${p2(local.getHours())}:${p2(local.getMinutes())}:${p2(local.getSeconds())}.${p2(local.getMilliseconds(), 3)}`);

  // anchors: a range by shift-click, and a linked line that opens its section
  await page.click('.row[data-line="22"] .ln');
  await page.keyboard.down('Shift');
  await page.click('.row[data-line="25"] .ln');
  await page.keyboard.up('Shift');
  await waitFor(page, 'shift-click makes the range #L22-L25', () => location.hash === '#L22-L25');
  await waitFor(page, 'lines 22-25 selected', () => [...document.querySelectorAll('.row.sel')].map((r) => r.dataset.line).join() === '22,23,24,25');
  await page.click('#copy');
  await waitFor(page, '"copy link" copies it (or shows it to copy)', () => document.getElementById('copy').textContent === 'copied' || !document.getElementById('linkbox').hidden);
  const copied = await page.evaluate(() => (document.getElementById('linkbox').hidden ? navigator.clipboard.readText() : document.getElementById('linkbox').value));
  is(copied, `${base}/jobs/1#L22-L25`, 'the link of the range');
  // dark theme
  await page.click('#theme');
  await waitFor(page, 'dark theme: dark background', () => getComputedStyle(document.body).backgroundColor === 'rgb(13, 17, 23)');
  is((await styleOf(page, 2, 'red') || {}).color, 'rgb(255, 123, 114)', 'dark theme: its own red');
  await page.screenshot({ path: `${shots}/viewer-dark.png` });
  ok(page.errors.length === 0, 'no script error', page.errors.join('\n'));
  await page.close();

  const linked = await open(browser, '/jobs/1#L13');
  await waitFor(linked, '#L13 opens its closed GitHub group and selects the line', () => {
    const r = document.querySelector('.row[data-line="13"]');
    if (!r || !r.classList.contains('sel')) return false;
    const a = r.getBoundingClientRect(), v = document.getElementById('log').getBoundingClientRect();
    return a.top >= v.top && a.bottom <= v.bottom;
  });
  await linked.close();
  const raw = await (await fetch(`${base}/jobs/1/log`)).text();
  const plainHref = await (async () => { const p = await open(browser, '/jobs/1'); const h = await p.$eval('#plain', (a) => a.getAttribute('href')); const r2 = await p.$eval('#raw', (a) => a.getAttribute('href')); await p.close(); return [r2, h]; })();
  is(JSON.stringify(plainHref), JSON.stringify(['/jobs/1/log', '/jobs/1/log?deansi=1']), 'raw and ANSI-stripped download links');
  const plain = await (await fetch(base + plainHref[1])).text();
  ok(raw.includes('\x1b[31m') && !plain.includes('\x1b') && plain.includes('red boldgreen'), 'the stripped download has no escapes');
}

async function hostile(browser) {
  const page = await open(browser, '/jobs/2');
  // drawn whole (complete only once its rows are on screen), and a frame after that
  await waitFor(page, 'the hostile log is drawn, complete', () => document.getElementById('status').dataset.state === 'complete');
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  is(await page.evaluate(() => window.__pwned), undefined, 'hostile log: nothing in it ran');
  is(page.dialogs, 0, 'no dialog opened');
  is(await page.evaluate(() => window.__csp.length), 0, 'the page itself breaks no CSP rule');
  is(await page.evaluate(() => document.querySelectorAll('#log script, #log img, #log svg, #log iframe, #log object, #log embed').length), 0,
    'no script, img, svg, iframe, object or embed element in the log');
  is(await page.evaluate(() => [...document.querySelectorAll('#log *')].filter((e) => [...e.attributes].some((a) => /^on/i.test(a.name) || a.name === 'style' && /url|expression/i.test(a.value))).length), 0,
    'no event handler attribute in the log');
  is(await page.evaluate(() => [...document.querySelectorAll('#log a')].filter((a) => !/^https?:/.test(a.href)).length), 0,
    'every link is http or https');
  is(await rowText(page, 1), '<script>window.__pwned=1</script>', 'a script tag is shown as text');
  is(await rowText(page, 2), '"><img src=x onerror="window.__pwned=2"> \'><svg onload=window.__pwned=3>', 'attribute breakouts are shown as text');
  is(await rowText(page, 4), 'click data javascript:alert(1)', 'javascript: and data: OSC 8 links keep their text, not their link');
  is(await page.evaluate(() => document.querySelectorAll('.row[data-line="4"] .blocked').length), 2, 'both marked as links not followed');
  const bidi = await rowText(page, 5);
  ok(!/[\u202a-\u202e\u2066-\u2069]/.test(bidi) && bidi.includes('<U+202E>evil<U+202C>') && bidi.includes('\u2401\u2407\u2421'),
    'bidi overrides and control characters are shown, not obeyed', JSON.stringify(bidi));
  is((await styleOf(page, 6, 'deep') || {}).weight, '700', '10,000 nested SGR sequences: one bold state');
  is(await rowText(page, 7), 'huge bad', 'out-of-range colour numbers take no text with them');
  is(JSON.stringify([(await styleOf(page, 7, 'huge') || {}).color, (await styleOf(page, 7, 'bad') || {}).color]),
    JSON.stringify(['rgb(238, 238, 238)', 'rgb(255, 255, 255)']), 'and are clamped to 255');
  ok(/^A{10000} \u2026 190000 more characters/.test(await rowText(page, 8) || ''), 'a 200,000-character line is cut at 10,000 columns, saying so');
  // the CSP is enforced: an inline script added to the page does not run
  await page.evaluate(() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1'; document.body.appendChild(s); });
  await waitFor(page, 'the CSP refused an inline script', () => window.__csp.some((v) => /^script-src/.test(v)));
  is(await page.evaluate(() => window.__inline), undefined, 'which did not run');
  await page.screenshot({ path: `${shots}/viewer-hostile.png` });
  await page.close();
}

async function big(browser) {
  const page = await open(browser, '/jobs/4');
  is(await page.evaluate(() => document.getElementById('log').dataset.lines), '20000', '20,000 lines indexed');
  const rows = await page.evaluate(() => document.querySelectorAll('.row').length);
  ok(rows > 10 && rows < 100, 'only the rows on screen are in the DOM', rows);
  await page.keyboard.press('/');
  await waitFor(page, '/ focuses the search', () => document.activeElement.id === 'q');
  await page.keyboard.type('needle');
  await page.keyboard.press('Enter');
  await waitFor(page, 'search finds both matches, the first at line 15000', () => document.getElementById('count').textContent === '1 of 2 (line 15000)');
  await waitFor(page, 'line 15000 on screen with the match highlighted', () => {
    const m = document.querySelector('.row[data-line="15000"] mark.cur');
    return m && m.textContent === 'NEEDLE';
  });
  await page.keyboard.press('Enter');
  await waitFor(page, 'Enter goes to the next match', () => document.getElementById('count').textContent === '2 of 2 (line 17000)');
  await page.keyboard.down('Shift'); await page.keyboard.press('Enter'); await page.keyboard.up('Shift');
  await waitFor(page, 'Shift+Enter goes back', () => document.getElementById('count').textContent === '1 of 2 (line 15000)');
  await page.keyboard.press('Escape');
  await page.keyboard.press('End');
  await waitFor(page, 'End shows the last line', () => !!document.querySelector('.row[data-line="20000"]'));
  await page.keyboard.press('Home');
  await waitFor(page, 'Home shows the first line', () => !!document.querySelector('.row[data-line="1"]'));
  await page.close();
}

// A log archived in S3 and purged from the database: the same page, read back from S3.
async function archived(browser) {
  const page = await open(browser, '/jobs/5');
  await waitFor(page, 'an archived (purged) log shows as complete', () => document.getElementById('status').dataset.state === 'complete');
  is(await rowText(page, 1), 'archived line 1', 'its first line, read back from S3');
  is(await rowText(page, 2), 'archived line 2', 'its second line');
  const s = await styleOf(page, 1, 'archived');
  is(s && s.color, 'rgb(77, 45, 0)', 'its colours are rendered (SGR 33, the theme yellow)');
  await page.close();
}

async function live(browser) {
  const part = (nums, final = -1) => psql(`select buildlog.write_parts(array_fill(3::bigint, array[${nums.length}]), '{${nums}}',
    array(select 'live ' || x || E'\\n' from unnest('{${nums}}'::int[]) x), array(select x = ${final} from unnest('{${nums}}'::int[]) x))`);
  const page = await open(browser, '/jobs/3');
  await waitFor(page, 'a running job is live', () => document.getElementById('status').dataset.state === 'live');
  is(await page.evaluate(() => document.getElementById('follow').checked), true, 'and followed');
  // the rows on screen at the moment the status first says "complete"
  await page.evaluate(() => {
    const st = document.getElementById('status');
    window.__atComplete = null;
    new MutationObserver(() => {
      if (st.dataset.state === 'complete' && window.__atComplete === null)
        window.__atComplete = [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|');
    }).observe(st, { attributes: true, childList: true, characterData: true, subtree: true });
  });
  const texts = () => page.evaluate(() => [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|'));
  part([5]);
  await waitFor(page, 'part 5 shown live, after a gap', () => /live 2\|live 5$/.test([...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|')));
  const created5 = JSON.parse(await (await fetch(`${base}/jobs/3/parts?after=4`)).text()).log_parts[0].created_at;
  await setBox(page, 'times', true);
  await setBox(page, 'utc', true);
  await waitFor(page, 'a part received live shows its stored arrival time', (w) => {
    const r = [...document.querySelectorAll('.row')].find((x) => x.querySelector('.txt').textContent === 'live 5');
    return r && r.querySelector('.ts') && r.querySelector('.ts').textContent === w;
  }, new Date(created5).toISOString().replace('T', ' '));
  await setBox(page, 'times', false);
  part([3]);
  await waitFor(page, 'the late part 3 inserted at its place', () => /live 2\|live 3\|live 5$/.test([...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|')));
  part([4]);
  await waitFor(page, 'and part 4', () => /live 3\|live 4\|live 5$/.test([...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|')));
  const pid = psql("select pid from pg_stat_activity where backend_type = 'buildlog http'");
  psql(`select pg_terminate_backend(${pid})`);
  await waitFor(page, 'the dropped stream shows as reconnecting', () => document.getElementById('status').dataset.state === 'reconnecting');
  part([7, 6]);
  await waitFor(page, 'live again once the worker is back', () => document.getElementById('status').dataset.state === 'live', undefined, 40000);
  await waitFor(page, 'parts 6 and 7, written while it was away, shown', () => /live 7$/.test([...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|')));
  part([8], 8);
  // "complete" only once every part is drawn: the status and the text together
  await statusAndText(page, 'the final part: complete, every line once, in part order', 'complete',
    [0, 1, 2, 3, 4, 5, 6, 7, 8].map((x) => 'live ' + x).join('|'));
  is(await page.evaluate(() => window.__atComplete), [0, 1, 2, 3, 4, 5, 6, 7, 8].map((x) => 'live ' + x).join('|'),
    'at the moment the status said complete, every line was already on screen');
  is(await texts(), [0, 1, 2, 3, 4, 5, 6, 7, 8].map((x) => 'live ' + x).join('|'), 'and it stays so (no line drawn twice later)');
  await page.screenshot({ path: `${shots}/viewer-live.png` });
  ok(page.errors.length === 0, 'no script error', page.errors.join('\n'));
  await page.close();
}

// Sections in the byte shapes their producers write (060 job 6): markers
// inside lines, several on one line, split across parts.  What a person sees
// is the lines on screen: with every section closed (their default) the line
// after a section's end is there, and opening a section shows exactly its lines.
const toggle = (page, l) => page.click(`.row[data-line="${l}"] .tog`);
const headOf = (page, l) => page.evaluate((l) => {
  const r = document.querySelector(`.row[data-line="${l}"]`);
  if (!r) return null;
  const t = r.querySelector('.tog');
  return { open: t ? t.getAttribute('aria-expanded') : null, text: r.querySelector('.txt').textContent,
    dur: (r.querySelector('.dur') || {}).textContent || '' };
}, l);

async function sections(browser) {
  const page = await open(browser, '/jobs/6');
  await waitFor(page, 'job 6 complete', () => document.getElementById('status').dataset.state === 'complete');
  await showsLines(page, 'sections closed: the line after each end is shown, the sections\' lines are not',
    [1, 4, 5, 6, 7, 9, 10, 11, 12, 13, 19, 20, 23]);
  let h = await headOf(page, 1);
  ok(h && h.open === 'false' && h.text === '$ bundle install' && h.dur === '2.50 s',
    'travis fold (its end marker split across two parts): closed, its command shown, its travis_time', JSON.stringify(h));
  h = await headOf(page, 4);
  ok(h && h.open === null && h.text === '$ bundle exec rake' && h.dur === '1.20 s',
    'travis_time:end, travis_fold:end, travis_time:start and "$ bundle exec rake" on one line: the command, outside the fold, with its own time', JSON.stringify(h));
  is(await rowText(page, 5), 'rake output', 'its output after it');
  h = await headOf(page, 7);
  ok(h && h.open === 'false' && h.text === 'Preparing environment' && h.dur === '3.00 s', 'GitLab section [collapsed=true]: closed, 3 s', JSON.stringify(h));
  h = await headOf(page, 9);
  ok(h && h.open === 'true' && h.text === 'Executing "step_script" stage' && h.dur === '7.00 s',
    'section_end, then section_start (split across parts) and its header on one line: the next section\'s head, open, outside the one ended', JSON.stringify(h));
  is(await rowText(page, 12), 'Job succeeded', 'text after a section_end on its line: shown after the section');
  h = await headOf(page, 13);
  ok(h && h.open === 'false' && h.text === 'outer head', 'nested travis folds: the outer one closed', JSON.stringify(h));
  is(await rowText(page, 19), 'after a ghost end', 'an end marker without a start: the marker hidden, its line a plain line');
  h = await headOf(page, 20);
  ok(h && h.open === 'false' && h.text === 'gh group', 'GitHub group after them: closed', JSON.stringify(h));
  h = await headOf(page, 23);
  ok(h && h.open === 'false' && h.text === '$ never ended', 'a fold never ended: closed, to the end of the log', JSON.stringify(h));
  ok(!(await page.evaluate(() => document.getElementById('log').textContent.includes('travis_') || document.getElementById('log').textContent.includes('section_'))),
    'no marker text on screen');

  await toggle(page, 1);
  await showsLines(page, 'the travis fold opened: exactly its two lines appear', [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 19, 20, 23]);
  await toggle(page, 9);
  await showsLines(page, 'the open GitLab section closed: its two lines go, "Job succeeded" stays', [1, 2, 3, 4, 5, 6, 7, 9, 12, 13, 19, 20, 23]);
  await toggle(page, 7);
  await showsLines(page, 'the collapsed GitLab section opened: its line', [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 19, 20, 23]);
  await toggle(page, 13);
  await showsLines(page, 'the outer fold opened: its lines, the inner fold closed, the line where the inner one ended (mid-line marker) in the outer',
    [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 17, 18, 19, 20, 23]);
  is(await rowText(page, 17), 'back in outer', 'what \\r\\e[0K erased before the mid-line marker is not shown');
  await toggle(page, 15);
  await showsLines(page, 'the inner fold opened: its one line', [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 23]);
  await toggle(page, 23);
  await waitFor(page, 'the fold never ended opened: the lines to the end (the last without its newline)',
    () => [...document.querySelectorAll('.row')].map((r) => r.dataset.line).slice(-3).join() === '23,24,25');
  await page.screenshot({ path: `${shots}/viewer-sections.png` });
  ok(page.errors.length === 0, 'no script error', page.errors.join('\n'));
  await page.close();

  // Buildkite with the agent's timestamps (ESC _bk;t=...BEL before every line)
  const bk = await open(browser, '/jobs/7');
  await showsLines(bk, 'Buildkite with timestamps: ~~~ and --- closed, the last --- open (no +++ in the log)', [1, 3, 5, 6]);
  is(JSON.stringify(await Promise.all([1, 3, 5].map((l) => headOf(bk, l)))),
    JSON.stringify([{ open: 'false', text: 'Preparing working directory', dur: '200 ms' }, { open: 'false', text: 'Building', dur: '200 ms' }, { open: 'true', text: 'Testing', dur: '' }]),
    'their titles without the timestamp, durations from the timestamps of one header to the next');
  is(await rowText(bk, 6), 'test line', 'a timestamped line shows its text alone');
  await bk.close();

  // A running log whose fold end marker is split between the part the page
  // read and the next one it receives live.
  const live = await open(browser, '/jobs/8');
  await waitFor(live, 'job 8 live, its fold closed', () => document.getElementById('status').dataset.state === 'live' &&
    [...document.querySelectorAll('.row')].map((r) => r.dataset.line).join() === '1');
  psql(`select buildlog.write_parts('{8,8}', '{1,2}', array[E'd:dl\\r\\x1b[0K$ next\\n', ''], '{f,t}')`);
  await waitFor(live, 'the rest of the marker received live: the fold ends, "$ next" is shown after it, complete',
    () => document.getElementById('status').dataset.state === 'complete' &&
      [...document.querySelectorAll('.row')].map((r) => r.dataset.line + ' ' + r.querySelector('.txt').textContent).join('|') === '1 $ download|3 $ next');
  ok(live.errors.length === 0, 'no script error', live.errors.join('\n'));
  await live.close();
}

// Logs set whole (set_content, PUT /jobs/{id}/log): the page reads them as
// their head, part -1, before any numbered part.
async function setWhole(browser) {
  // 11: colours, a travis fold, CJK and emoji, set whole: complete at once
  const want11 = ['imported whole', '成功 success ✅', '$ install 依赖 📦', 'dep 1', 'dep 2', '', '日本語 テキスト 🎉 done', 'last 👍🏽 line'];
  const page = await open(browser, '/jobs/11');
  await statusAndText(page, 'a log set whole: complete, its fold closed, its other lines (CJK, emoji) shown', 'complete',
    [0, 1, 2, 6, 7].map((k) => want11[k]).join('|'));
  is(await page.evaluate(() => [document.getElementById('log').dataset.lines, document.getElementById('info').textContent].join(' / ')),
    '8 / 8 lines, 1 part', 'its 8 lines, in one part (the head)');
  is((await styleOf(page, 2, '成功 success') || {}).color, 'rgb(17, 99, 41)', 'its colours rendered (SGR 32, the theme green)');
  const last = await styleOf(page, 8, 'last 👍🏽 line');
  ok(last && last.weight === '700' && last.color === 'rgb(207, 34, 46)', 'SGR 1;31 around emoji: bold red', JSON.stringify(last));
  ok((await headOf(page, 3) || {}).open === 'false', 'the travis fold of a log set whole is a closed section');
  await toggle(page, 3);
  await statusAndText(page, 'opened: every line of the log set whole, in order', 'complete', want11.join('|'));
  await page.screenshot({ path: `${shots}/viewer-set-whole.png` });
  ok(page.errors.length === 0, 'no script error', page.errors.join('\n'));
  await page.close();

  // 12: 30,000 lines set whole, archived and purged: read back from S3
  const want12 = [];
  for (let x = 1; x <= 30000; x++) want12.push([x, x % 1000 === 0 ? `imported ${x} 中文 ✅` : `imported ${x} ${'='.repeat(70)}`]);
  const big = await open(browser, '/jobs/12');
  await waitFor(big, 'a purged log set whole (30,000 lines, read back from S3): complete, every line indexed', () =>
    document.getElementById('status').dataset.state === 'complete' && document.getElementById('log').dataset.lines === '30000');
  is(await big.evaluate(() => document.getElementById('info').textContent), '30,000 lines, 1 part', 'in one part, the head');
  await big.setViewport({ width: 1100, height: 4000 });
  const rows12 = await allRows(big).catch((e) => e.message);
  ok(Array.isArray(rows12) && rows12.length === 30000 && rows12.every((r, k) => r[0] === want12[k][0] && r[1] === want12[k][1]),
    'scrolled from top to end: every one of its 30,000 lines shown once, in order, with its text',
    Array.isArray(rows12) ? `${rows12.length} rows; first wrong: ${JSON.stringify(rows12.find((r, k) => !want12[k] || r[0] !== want12[k][0] || r[1] !== want12[k][1]))}` : rows12);
  ok(big.errors.length === 0, 'no script error', big.errors.join('\n'));
  await big.close();

  // 13: a head, then late parts while the page watches
  const part = (nums, final = -1) => psql(`select buildlog.write_parts(array_fill(13::bigint, array[${nums.length}]), '{${nums}}',
    array(select 'late ' || x || E'\\n' from unnest('{${nums}}'::int[]) x), array(select x = ${final} from unnest('{${nums}}'::int[]) x))`);
  const live = await open(browser, '/jobs/13');
  await statusAndText(live, 'a log set whole given part 0: the head\'s lines first, then part 0\'s, live', 'live', 'head line 1|head line 2|late 0');
  await live.evaluate(() => {
    const st = document.getElementById('status');
    window.__atComplete = null;
    new MutationObserver(() => {
      if (st.dataset.state === 'complete' && window.__atComplete === null)
        window.__atComplete = [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|');
    }).observe(st, { attributes: true, childList: true, characterData: true, subtree: true });
  });
  part([2]);
  await statusAndText(live, 'part 2 received live, after the head and part 0', 'live', 'head line 1|head line 2|late 0|late 2');
  part([1]);
  await statusAndText(live, 'the late part 1 inserted at its place', 'live', 'head line 1|head line 2|late 0|late 1|late 2');
  part([3], 3);
  const all13 = 'head line 1|head line 2|late 0|late 1|late 2|late 3';
  await statusAndText(live, 'the final part: complete, every line once, the head first, then the parts in order', 'complete', all13);
  is(await live.evaluate(() => window.__atComplete), all13, 'at the moment the status said complete, every line was on screen');
  is(await live.evaluate(() => document.getElementById('info').textContent), '6 lines, 5 parts', 'the head and parts 0-3');
  ok(live.errors.length === 0, 'no script error', live.errors.join('\n'));
  await live.close();
}

// Hostile sections (060 job 14): 40,000 GitLab sections started (open) and
// never ended, then 40,000 travis and GitLab end markers matching none of
// them, each of those lines with an OSC 8 link of its own (every other one
// left open at the line's end).  The page gets to its complete state (no
// speed asserted) and shows every line as it should.
async function hostileSections(browser) {
  const page = await open(browser, '/jobs/14');
  await waitFor(page, 'hostile sections: complete, 80,000 lines, every one a row (the sections are open)', () =>
    document.getElementById('status').dataset.state === 'complete' &&
    document.getElementById('log').dataset.lines === '80000' && document.getElementById('log').dataset.rows === '80000', undefined, 120000);
  // the rows on three screens (its start, where the ends begin, its end), each
  // row's text exactly (reading all 80,000 off the screen takes minutes under
  // load: the 30,000 lines set whole are read whole), and what search counts
  const want = (l) => (l <= 40000 ? `step ${l}` : `after ${l - 40000} L`);
  const screenRight = async (what, must) => {
    const rows = await page.evaluate(() => [...document.querySelectorAll('.row')].map((r) => [+r.dataset.line, r.querySelector('.txt').textContent]));
    ok(rows.length >= 20 && rows.every((r, k) => r[1] === want(r[0]) && (k === 0 || r[0] === rows[k - 1][0] + 1)) &&
      rows.some((r) => r[0] === must), what, JSON.stringify(rows.slice(0, 5)) + ' ... ' + JSON.stringify(rows.slice(-3)));
  };
  await screenRight('its first screen: lines 1 on, each its own text', 1);
  is(JSON.stringify(await headOf(page, 1)), JSON.stringify({ open: 'true', text: 'step 1', dur: '' }),
    'the section started on line 1: open, titled, no duration (never ended)');
  await page.evaluate(() => { location.hash = '#L40000'; });
  await waitFor(page, 'and the one started on line 40,000 (the innermost): the same', () => {
    const r = document.querySelector('.row[data-line="40000"].sel');
    return r && r.querySelector('.tog') && r.querySelector('.tog').getAttribute('aria-expanded') === 'true' &&
      r.querySelector('.txt').textContent === 'step 40000' && !r.querySelector('.dur');
  });
  await screenRight('around line 40,000: the last starts, then the ends (their markers not shown)', 40001);
  await page.keyboard.press('End');
  await waitFor(page, 'End: line 80,000 on screen', () => !!document.querySelector('.row[data-line="80000"]'));
  await screenRight('its last screen, to line 80,000', 80000);
  await page.keyboard.press('Home');
  await waitFor(page, 'Home: line 1 on screen', () => !!document.querySelector('.row[data-line="1"]'));
  const search = async (q, says, what) => {
    await page.$eval('#q', (i, q) => { i.value = q; }, q);
    await page.focus('#q');
    await page.keyboard.press('Enter');
    await waitFor(page, what, (w) => document.getElementById('count').textContent === w, says);
  };
  await search('step ', '1 of 40000 (line 1)', 'search: "step " on 40,000 lines, the first at line 1');
  await search('after ', '1 of 40000 (line 40001)', 'search: "after " on the other 40,000, the first at line 40,001');
  await search('section_', 'no match', 'no GitLab marker text in any line');
  await search('travis_', 'no match', 'no travis marker text in any line');
  await page.$eval('#q', (i) => { i.value = ''; i.blur(); });
  await page.setViewport({ width: 1100, height: 700 });
  await page.evaluate(() => { location.hash = '#L40002'; });
  await waitFor(page, 'a link left open at the end of a line goes on in the next one, up to that line\'s own link', (want) => {
    const a = [...document.querySelectorAll('.row[data-line="40002"] .txt a')].map((e) => [e.href, e.textContent]);
    return JSON.stringify(a) === want;
  }, JSON.stringify([['https://e.x/1', 'after 2 '], ['https://e.x/2', 'L']]));
  const kept = await page.evaluate(async () => (await import('/viewer/ansi.js')).keptStates());
  ok(kept.linked <= 1024 && kept.states <= 2048, 'the states lines start in stay bounded: at most 1,024 with a link (20,000 lines leave theirs open), links opened and closed within a line keep none',
    JSON.stringify(kept));
  await page.evaluate(() => { location.hash = '#L79999'; });
  await waitFor(page, 'past that bound a line starts without the link left open (its own links still links)', (want) =>
    JSON.stringify([79999, 80000].map((l) => [...document.querySelectorAll(`.row[data-line="${l}"] .txt a`)].map((e) => [e.href, e.textContent]))) === want,
  JSON.stringify([[['https://e.x/39999', 'L']], [['https://e.x/40000', 'L']]]));
  await page.click('#fold');
  await showsLines(page, 'close all: line 1 alone (its section holds every other line)', [1]);
  await page.click('#unfold');
  await waitFor(page, 'open all: 80,000 rows again', () => document.getElementById('log').dataset.rows === '80000');
  ok(page.errors.length === 0, 'no script error', page.errors.join('\n'));
  await page.close();
}

// Logs replaced while the page watches them: set whole again (a change that
// wakes no stream), restarted (set_content(job, NULL)) and run again with
// parts of the same numbers and sizes (only the end's SHA-256 tells), removed.
async function replacedWhileWatched(browser) {
  const watch = async (job, text) => {
    const page = await open(browser, `/jobs/${job}`);
    await statusAndText(page, `job ${job} live: ${text}`, 'live', text);
    await noteComplete(page);
    return page;
  };
  const again = await watch(15, 'first import 1|first import 2|run 0');
  const restarted = await watch(16, 'old 0|old 1|old 2');
  const removed = await watch(17, 'soon removed live');
  psql(`select buildlog.set_content(15, E'second import 1\\nsecond import 2\\nsecond import 3\\n')`);
  psql('select buildlog.set_content(16, NULL)');
  psql(`select buildlog.write_parts('{16,16,16,16}', '{0,1,2,3}', array[E'new 0\\n', E'new 1\\n', E'new 2\\n', E'new 3\\n'], '{f,f,f,t}')`);
  psql('select buildlog.set_content(17, NULL, 7)');
  // a page draws (and so completes a read) only while it is the visible one
  const restartedText = 'new 0|new 1|new 2|new 3';
  await restarted.bringToFront();
  await statusAndText(restarted, 'restarted and run again while watched: the stream\'s end does not match the page\'s text, the page reads the log again: the new run alone, complete',
    'complete', restartedText);
  is(await restarted.evaluate(() => window.__atComplete), restartedText, 'it never said complete over the old text');
  const againText = 'second import 1|second import 2|second import 3';
  await again.bringToFront();
  await statusAndText(again, 'set whole again while watched (no stream woken): the page finds it in the server\'s index and reads the log again: the new text, complete',
    'complete', againText, 60000);
  is(await again.evaluate(() => window.__atComplete), againText, 'it never said complete over the old text');
  is(await again.evaluate(() => document.getElementById('info').textContent), '3 lines, 1 part', 'the new head alone');
  await removed.bringToFront();
  await waitFor(removed, 'removed while watched: the page says so, no line left', () =>
    document.getElementById('status').dataset.state === 'removed' && !document.getElementById('message').hidden &&
    document.querySelectorAll('.row').length === 0, undefined, 60000);
  for (const p of [again, restarted, removed]) {
    ok(p.errors.length === 0, 'no script error', p.errors.join('\n'));
    await p.close();
  }
}

// A removed log (set_content(job, NULL, removed_by)): 410, the page says so.
async function removed(browser) {
  const page = await open(browser, '/jobs/9');
  await waitFor(page, 'a removed log: the status says removed, the page why', () =>
    document.getElementById('status').dataset.state === 'removed' &&
    document.getElementById('message').textContent === 'The log of this job was removed.' && !document.getElementById('message').hidden);
  is(await page.evaluate(() => document.querySelectorAll('.row').length), 0, 'no line shown');
  await page.close();
}

// buildlog.http_read_tokens = on: a read token in the page's address is
// passed to every read of the page; without one the page says what is missing.
async function tokens(browser) {
  psql('alter system set buildlog.http_read_tokens = on');
  psql('select pg_reload_conf()');
  const deadline = Date.now() + 20000;
  let code = 0;
  while (Date.now() < deadline && (code = (await fetch(`${base}/jobs/10/bundle`)).status) !== 401)
    await new Promise((r) => setTimeout(r, 100));	// polling the server for the reload, with a deadline
  is(code, 401, 'reads need a token once the reload reached the HTTP worker');
  const t10 = psql("select buildlog.issue_token(10, 'read')");
  const t11 = psql("select buildlog.issue_token(11, 'read')");

  const page = await open(browser, '/jobs/10');
  await waitFor(page, 'without a token: an error that says a read token is needed, not an empty log', () =>
    document.getElementById('status').dataset.state === 'error' &&
    /needs a read token: open this page with \?token=/.test(document.getElementById('message').textContent) &&
    /HTTP 401/.test(document.getElementById('message').textContent));
  is(await page.evaluate(() => document.querySelectorAll('.row').length), 0, 'no line shown');
  await page.close();

  const other = await open(browser, `/jobs/10?token=${t11}`);
  await waitFor(other, 'another job\'s token: the page says the token does not give access', () =>
    document.getElementById('status').dataset.state === 'error' &&
    /token in this page's address does not give access to the log of job 10 \(HTTP 403/.test(document.getElementById('message').textContent));
  await other.close();

  const good = await browser.newPage();
  const urls = [];
  good.on('request', (r) => urls.push(r.url()));
  good.errors = [];
  good.on('pageerror', (e) => good.errors.push(e.message));
  await good.setViewport({ width: 1100, height: 700 });
  await good.goto(`${base}/jobs/10?token=${t10}`);
  await good.waitForSelector('html[data-ready]', { timeout: 20000 });
  await waitFor(good, 'with its read token: the log, live', () => document.getElementById('status').dataset.state === 'live' &&
    [...document.querySelectorAll('.row .txt')].map((t) => t.textContent).join('|') === 'token line 0');
  psql(`select buildlog.write_parts('{10,10}', '{1,2}', array[E'token line 1\\n', ''], '{f,t}')`);
  await statusAndText(good, 'parts received over its event stream, then complete', 'complete', 'token line 0|token line 1');
  const reads = urls.filter((u) => /\/jobs\/10\/(bundle|events)/.test(u)).map((u) => new URL(u));
  ok(reads.some((u) => u.pathname.endsWith('/bundle')) && reads.some((u) => u.pathname.endsWith('/events')) &&
    reads.every((u) => u.searchParams.get('token') === t10), 'the page passed the token to /bundle and /events as ?token=',
    reads.map((u) => u.pathname + (u.searchParams.get('token') === t10 ? ' (token)' : ' (no token)')).join(', '));
  const raw = await good.$eval('#raw', (a) => a.getAttribute('href'));
  is((await fetch(base + raw)).status, 200, 'the raw download link carries the token too');
  // links given to others carry no token: "copy link" of a shift-click range, the line numbers
  await good.click('.row[data-line="1"] .ln');
  await good.keyboard.down('Shift');
  await good.click('.row[data-line="2"] .ln');
  await good.keyboard.up('Shift');
  await waitFor(good, 'shift-click makes the range #L1-L2, the token stays in the page\'s address', (t) =>
    location.hash === '#L1-L2' && new URLSearchParams(location.search).get('token') === t, t10);
  await good.click('#copy');
  await waitFor(good, '"copy link" copies the range\'s link (or shows it to copy)', () =>
    document.getElementById('copy').textContent === 'copied' || !document.getElementById('linkbox').hidden);
  const copied = await good.evaluate(() => (document.getElementById('linkbox').hidden ? navigator.clipboard.readText() : document.getElementById('linkbox').value));
  is(copied, `${base}/jobs/10#L1-L2`, 'the link copied keeps the job and the lines, not the read token');
  is(await good.$eval('.row[data-line="2"] .ln', (a) => a.href), `${base}/jobs/10#L2`, 'a line number links to its line without the token');
  ok(good.errors.length === 0, 'no script error', good.errors.join('\n'));
  await good.close();
  psql('alter system reset buildlog.http_read_tokens');
  psql('select pg_reload_conf()');
}

(async () => {
  const browser = await puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  await browser.defaultBrowserContext().overridePermissions(base, ['clipboard-read', 'clipboard-write', 'clipboard-sanitized-write']);
  try {
    await server();
    await rendering(browser);
    await hostile(browser);
    await big(browser);
    await archived(browser);
    await live(browser);
    await sections(browser);
    await hostileSections(browser);
    await removed(browser);
    await setWhole(browser);
    await replacedWhileWatched(browser);
    await tokens(browser);
  } catch (e) {
    ok(false, 'the browser test ran to its end', e.stack);
  } finally {
    await browser.close();
  }
  console.log(`1..${n}`);
})();
