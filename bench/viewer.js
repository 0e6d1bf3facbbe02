// Open time, responsiveness and memory of the log viewer on one big log, in
// Debian's chromium (puppeteer-core, headless); with BENCH_VIEWER_RAW=1 also
// the same browser showing the raw log as text/plain (the reference: minutes
// and gigabytes for 50 MB, so not by default); and the time to open a hostile
// log of sections (HOSTILE, its line count HLINES).  Run by bench/viewer.sh:
//   node bench/viewer.js BASE JOB LINES PUPPETEER RUNS HOSTILE HLINES
// (a job whose line count is 0 is not run)
'use strict';
const fs = require('fs');
const [base, job, lines, puppeteerPath, runsArg, hostileJob, hostileLines] = process.argv.slice(2);
const puppeteer = require(puppeteerPath);
const runs = +runsArg || 3;

// resident memory of the browser: every process of its tree, in MB
function treeRss(pid) {
  const kids = {};
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = +st.slice(st.lastIndexOf(')') + 2).split(' ')[1];
      (kids[ppid] = kids[ppid] || []).push(+d);
    } catch (e) { /* gone */ }
  }
  let kb = 0;
  const walk = (p) => {
    try { kb += +(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8')) || [0, 0])[1]; } catch (e) { /* gone */ }
    for (const k of kids[p] || []) walk(k);
  };
  walk(pid);
  return kb / 1024;
}

// the page's JS heap and DOM nodes, the browser's resident memory, into r
async function memory(page, browser, r) {
  const m = await page.metrics();
  r.heap = m.JSHeapUsedSize / 1e6;
  r.nodes = m.Nodes;
  r.rss = treeRss(browser.process().pid);
}

async function timed(fn) { const t = performance.now(); await fn(); return performance.now() - t; }

async function viewerRun(browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
  const r = {};
  const t0 = performance.now();
  await page.goto(`${base}/jobs/${job}`);
  await page.waitForSelector('.row', { timeout: 60000 });
  r.first = performance.now() - t0;
  await page.waitForSelector('html[data-ready]', { timeout: 60000 });
  r.loaded = performance.now() - t0;
  const got = await page.evaluate(() => document.getElementById('log').dataset.lines);
  if (got !== lines) throw new Error(`the page indexed ${got} lines, not ${lines}`);
  r.end = await timed(async () => {
    await page.keyboard.press('End');
    await page.waitForFunction((n) => !!document.querySelector(`.row[data-line="${n}"]`), { polling: 'raf' }, lines);
  });
  // scrolling: 30 steps through the log, each until its frame is drawn (two
  // frames, about 33 ms at 60 Hz, is the floor), and the long tasks (> 50 ms) meanwhile
  await page.keyboard.press('Home');
  Object.assign(r, await page.evaluate(async () => {
    const el = document.getElementById('log');
    let long = 0;
    const obs = new PerformanceObserver((l) => { long += l.getEntries().length; });
    obs.observe({ entryTypes: ['longtask'] });
    const frame = () => new Promise((ok) => requestAnimationFrame(ok));
    const t = performance.now();
    for (let i = 0; i < 30; i++) { el.scrollTop += 150000; await frame(); await frame(); }
    const scroll = (performance.now() - t) / 30;
    obs.disconnect();
    return { scroll, long };
  }));
  r.jump = await timed(async () => {
    await page.evaluate(() => { location.hash = '#L250000'; });
    await page.waitForFunction(() => document.querySelector('.row[data-line="250000"].sel'), { polling: 'raf' });
  });
  r.fold = await timed(async () => {
    await page.evaluate(() => { location.hash = '#L1'; });
    await page.waitForSelector('.row[data-line="1"] .tog');
    await page.click('.row[data-line="1"] .tog');
    await page.waitForFunction(() => document.querySelector('.row[data-line="1"] .tog').getAttribute('aria-expanded') === 'false' &&
      document.querySelector('.row[data-line="5002"]'), { polling: 'raf' });
  });
  r.search = await timed(async () => {
    await page.focus('#q');
    await page.keyboard.type('needle');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => / of /.test(document.getElementById('count').textContent), { polling: 50, timeout: 60000 });
  });
  r.search2 = await timed(async () => {
    await page.evaluate(() => { document.getElementById('q').value = 'line 4242 '; });
    await page.focus('#q');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /^1 of 1 /.test(document.getElementById('count').textContent), { polling: 50, timeout: 60000 });
  });
  await memory(page, browser, r);
  await page.close();
  return r;
}

// The hostile log of sections: from navigation to html[data-ready] (every
// part read and indexed), to the status "complete", the longest task the page
// ran meanwhile (the time the tab was frozen), the ANSI states it keeps, its
// heap; the lines checked.
async function hostileRun(browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
  await page.evaluateOnNewDocument(() => {
    window.__longest = 0;
    new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longest = Math.max(window.__longest, e.duration); })
      .observe({ entryTypes: ['longtask'] });
  });
  const r = {};
  const t0 = performance.now();
  await page.goto(`${base}/jobs/${hostileJob}`);
  await page.waitForSelector('html[data-ready]', { timeout: 600000 });
  r.loaded = performance.now() - t0;
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'complete', { timeout: 600000, polling: 50 });
  r.complete = performance.now() - t0;
  const got = await page.evaluate(() => [document.getElementById('log').dataset.lines, document.getElementById('log').dataset.rows, window.__longest]);
  if (got[0] !== hostileLines || got[1] !== hostileLines) throw new Error(`the page shows ${got[1]} rows of ${got[0]} lines, not ${hostileLines}`);
  r.longest = got[2];
  // the states the page keeps for its line index (a viewer without
  // keptStates() kept them all: count its ids)
  r.kept = await page.evaluate(async () => {
    const m = await import('/viewer/ansi.js');
    if (m.keptStates) return m.keptStates().states;
    let n = 0;
    while (m.stateOf(n) !== undefined) n++;
    return n;
  });
  r.end = await timed(async () => {
    await page.keyboard.press('End');
    await page.waitForFunction((n) => !!document.querySelector(`.row[data-line="${n}"]`), { polling: 'raf' }, hostileLines);
  });
  await memory(page, browser, r);
  await page.close();
  return r;
}

async function rawRun(browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
  const t0 = performance.now();
  await page.goto(`${base}/jobs/${job}/log`, { waitUntil: 'load', timeout: 120000 });
  const r = { loaded: performance.now() - t0 };
  await memory(page, browser, r);
  await page.close();
  return r;
}

const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

(async () => {
  const launch = () => puppeteer.launch({ executablePath: '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const view = [], raw = [], hostile = [];
  for (let i = 0; i < runs; i++) {
    if (+hostileLines > 0) {
      const b = await launch();
      const idle = treeRss(b.process().pid);
      const h = await hostileRun(b); h.rss -= idle; hostile.push(h);
      await b.close();
    }
    if (!(+lines > 0)) continue;
    // a fresh browser per run: memory is the page's, not the leftovers of the last
    let b = await launch();
    const idle = treeRss(b.process().pid);
    const v = await viewerRun(b); v.rss -= idle; view.push(v);
    await b.close();
    if (process.env.BENCH_VIEWER_RAW === '1') {
      b = await launch();
      const idle2 = treeRss(b.process().pid);
      const w = await rawRun(b); w.rss -= idle2; raw.push(w);
      await b.close();
    }
  }
  const col = (rs, k) => median(rs.map((r) => r[k]));
  const f = (x) => x.toFixed(0);
  console.log(`runs: ${runs} (medians)`);
  if (hostile.length) {
    console.log(`hostile sections (${hostileLines} lines): data-ready ${f(col(hostile, 'loaded'))} ms, complete ${f(col(hostile, 'complete'))} ms, longest task ${f(col(hostile, 'longest'))} ms, End ${f(col(hostile, 'end'))} ms`);
    console.log(`hostile sections: ${f(col(hostile, 'kept'))} ANSI states kept for the line index, JS heap ${f(col(hostile, 'heap'))} MB, DOM nodes ${f(col(hostile, 'nodes'))}, browser RSS growth ${f(col(hostile, 'rss'))} MB`);
  }
  if (!view.length) return;
  console.log(`viewer: first screen ${f(col(view, 'first'))} ms, whole log indexed ${f(col(view, 'loaded'))} ms`);
  console.log(`viewer: jump to end ${f(col(view, 'end'))} ms, scroll step ${col(view, 'scroll').toFixed(1)} ms (two frames; ${col(view, 'long')} long tasks in 30 steps), #L250000 ${f(col(view, 'jump'))} ms, open a section ${f(col(view, 'fold'))} ms`);
  console.log(`viewer: first search ${f(col(view, 'search'))} ms (builds the search text), next search ${f(col(view, 'search2'))} ms`);
  console.log(`viewer: JS heap ${f(col(view, 'heap'))} MB, DOM nodes ${f(col(view, 'nodes'))}, browser RSS growth ${f(col(view, 'rss'))} MB`);
  if (!raw.length) return;
  console.log(`raw text/plain page: loaded ${f(col(raw, 'loaded'))} ms, DOM nodes ${f(col(raw, 'nodes'))}, browser RSS growth ${f(col(raw, 'rss'))} MB`);
  console.log(`ratios viewer/raw: open (first screen) ${(col(view, 'first') / col(raw, 'loaded')).toFixed(2)}, memory ${(col(view, 'rss') / col(raw, 'rss')).toFixed(2)}`);
})().catch((e) => { console.error(e); process.exit(1); });
