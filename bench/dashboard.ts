/**
 * The dashboard with 1,000 boards, measured in Chromium (docs/dashboard.md; the bounds are the
 * issue's): the chassis view and the nodes table render in ≤ 1 s after login, and live updates
 * every 2 s (every board's report changes every 2 s) cause no long task over 50 ms (Long Tasks
 * API). The manager's HTTP server runs in this process on real dependencies (testkit/server.ts);
 * the 1,000 boards are the fleet simulator's (testkit/fleet.ts) reports, fed to its ingest every
 * 2 s, so the measurement is the page's and the event stream's, not the UDP path's.
 *
 * With --influx (the default when /usr/bin/influxd exists): a private influxd holds 24 h of 5 s
 * samples of board 1-1-0 (testkit/influx-history.ts); the board page's "24 h" is chosen --repeat
 * times, each timed by the page from the click to its last chart drawn (bound 500 ms, the median
 * and the worst are printed).
 *
 *   node --import tsx bench/dashboard.ts [--boards 1000] [--seconds 12] [--influx true|false] [--repeat 5]
 * Exits 1 when a bound is missed. Needs /usr/bin/chromium and a built dashboard (it builds one).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { Registry } from 'prom-client';
import { buildServer } from '../manager/server.js';
import { Telemetry } from '../manager/telemetry/index.js';
import { tokenHeaders } from '../testkit/auth.js';
import { fleetBoard, fleetHeartbeat, nextFleetResource } from '../testkit/fleet.js';
import { writeHistory } from '../testkit/influx-history.js';
import { startInfluxd } from '../testkit/influxd.js';
import { ROOT } from '../testkit/process.js';
import { serverDeps, TEST_TELEMETRY_CONFIG } from '../testkit/server.js';

/** The page's document, as far as this script reads it (the DOM types are not in this project's lib). */
type Doc = { document: { querySelectorAll(s: string): { length: number } } };

const { values } = parseArgs({
  options: {
    boards: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '12' },
    influx: { type: 'string', default: existsSync('/usr/bin/influxd') ? 'true' : 'false' },
    repeat: { type: 'string', default: '5' },
  },
});
const N = Number(values.boards);
const SECONDS = Number(values.seconds);
const INFLUX = values.influx === 'true';
const REPEAT = Number(values.repeat);

const tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-bench-dash-'));
execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-dashboard.mjs'), '--out', path.join(tmp, 'dash')]);
const d = serverDeps();
// The board page's ranges read this InfluxDB: 24 h of board 1-1-0, written before the page opens.
const influxd = INFLUX ? await startInfluxd() : null;
const history = influxd ? await writeHistory(influxd.url, 'bench', '1-1-0', { hours: 24, stepS: 5 }) : null;
const telemetry = influxd
  ? new Telemetry(
      {
        ...TEST_TELEMETRY_CONFIG,
        influxdb: {
          ...TEST_TELEMETRY_CONFIG.influxdb,
          enabled: true,
          url: influxd.url,
          database: 'bench',
          query: { max_points: 1000, timeout_ms: 10_000, max_concurrent: 4, max_reply_bytes: 8 << 20 },
        },
      },
      pino({ level: 'silent' }),
      new Registry(),
    )
  : d.telemetry;
const app = buildServer({
  ...d,
  telemetry,
  dashboard: {
    enabled: true,
    dir: path.join(tmp, 'dash'),
    console: false,
    events: { interval_ms: 2000, ping_ms: 15_000, max_clients: 8, max_buffer_bytes: 64 << 20 },
  },
});
await app.listen({ host: '127.0.0.1', port: 0 });
const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/`;
const viewerHeaders = await tokenHeaders(d.access, 'bench', 'viewer');
await d.access.addUser('viewer1', 'bench-password', 'viewer');

const boards = Array.from({ length: N }, (_, i) => fleetBoard(i, 1));
const report = (from = 0, to = N) => {
  for (let i = from; i < to; i++) {
    d.ingest.heartbeat(fleetHeartbeat(i).data);
    d.ingest.resource(nextFleetResource(i, boards[i]!).data);
  }
};
report();
// Every board reports once per 2 s, spread over the 2 s as a real fleet's jittered reports are
// (10 slices of N/10 boards, 200 ms apart).
let slice = 0;
const feeder = setInterval(() => {
  const k = slice++ % 10;
  report(Math.floor((k * N) / 10), Math.floor(((k + 1) * N) / 10));
}, 200);

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.addInitScript(() => {
  const g = globalThis as unknown as { longTasks: number[] };
  g.longTasks = [];
  // Runs in the page: the Long Tasks API (a DOM-only entry type, so named through a cast).
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) g.longTasks.push(e.duration);
  }).observe({ type: 'longtask' as 'mark', buffered: true });
});
await page.goto(base);
await page.getByLabel('User').fill('viewer1');
await page.getByLabel('Password').fill('bench-password');
const t0 = Date.now();
await page.getByRole('button', { name: 'Log in' }).click();
await page.waitForFunction(
  (n) => (globalThis as unknown as Doc).document.querySelectorAll('.cell[data-node]').length >= n,
  N,
  { timeout: 30_000 },
);
const chassisMs = Date.now() - t0;
/** Where the time after login went, from the page's marks: the snapshot's arrival, its reading. */
const marks = await page.evaluate(() => ({
  received: performance.getEntriesByName('muster:nodes-received')[0]?.startTime ?? Number.NaN,
  applied: performance.getEntriesByName('muster:nodes-applied')[0]?.startTime ?? Number.NaN,
  now: performance.now(),
}));
const t1 = Date.now();
await page.getByRole('link', { name: 'Nodes' }).click();
// The table holds all N rows (data-rows) and draws those in view (over 200 rows it is windowed).
await page.waitForFunction(
  (n) =>
    (globalThis as unknown as Doc).document.querySelectorAll(`#nodes-table[data-rows="${n}"] tbody tr[data-node]`)
      .length > 0,
  N,
  { timeout: 30_000 },
);
const tableMs = Date.now() - t1;
// For a reviewer (gitignored): what was measured.
const shots = path.join(ROOT, 'test-artifacts', 'dashboard');
mkdirSync(shots, { recursive: true });
await page.screenshot({ path: path.join(shots, 'bench-nodes.png') });

/**
 * The Long Tasks API's entries (wall time, ms) on `view` during SECONDS/2 of updates, and from a
 * Chromium trace of the same time the renderer main thread's longest task in wall time and in
 * CPU time (ms): on a shared machine the CPU time is the page's own cost, the wall time adds the
 * waiting for a core.
 */
const longTasks = async (view: string) => {
  await page.goto(`${base}#/${view}`);
  await page.waitForTimeout(1500);
  await page.evaluate(() => {
    (globalThis as unknown as { longTasks: number[] }).longTasks = [];
  });
  await browser.startTracing(page, { categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline'] });
  await page.waitForTimeout((SECONDS / 2) * 1000);
  const trace = JSON.parse((await browser.stopTracing()).toString()) as {
    traceEvents: {
      name: string;
      ph: string;
      pid: number;
      tid: number;
      dur?: number;
      tdur?: number;
      args?: { name?: string };
    }[];
  };
  const main = trace.traceEvents.find((e) => e.name === 'thread_name' && e.args?.name === 'CrRendererMain');
  const tasks = trace.traceEvents.filter(
    (e) => e.name === 'RunTask' && e.ph === 'X' && main && e.pid === main.pid && e.tid === main.tid,
  );
  const maxWall = Math.max(0, ...tasks.map((e) => (e.dur ?? 0) / 1000));
  const maxCpu = Math.max(0, ...tasks.map((e) => (e.tdur ?? 0) / 1000));
  if (process.env.BENCH_TRACE_DEBUG) {
    const top = tasks.sort((a, b) => (b.tdur ?? 0) - (a.tdur ?? 0)).slice(0, 3) as unknown as {
      ts: number;
      dur: number;
      tdur: number;
    }[];
    for (const t of top) {
      const inner = (
        trace.traceEvents as unknown as { name: string; ph: string; tid: number; ts: number; dur?: number }[]
      )
        .filter(
          (e) => e.tid === main!.tid && e.ph === 'X' && e.ts >= t.ts && e.ts <= t.ts + t.dur && (e.dur ?? 0) > 3000,
        )
        .map((e) => `${e.name} ${Math.round((e.dur ?? 0) / 1000)}`);
      console.error(view, Math.round(t.dur / 1000), Math.round(t.tdur / 1000), inner.join(', '));
    }
  }
  const entries = await page.evaluate(() => (globalThis as unknown as { longTasks: number[] }).longTasks);
  return { entries, maxWall, maxCpu, over50Cpu: tasks.filter((e) => (e.tdur ?? 0) > 50_000).length };
};
const chassisRun = await longTasks('');
const onChassis = chassisRun.entries;
await page.screenshot({ path: path.join(shots, 'bench-chassis.png') });
const tableRun = await longTasks('nodes');
const onTable = tableRun.entries;

/** The sizes of the `nodes` events of the stream over `ms`: the snapshot, then each diff. */
async function eventSizes(ms: number): Promise<number[]> {
  const c = new AbortController();
  const res = await fetch(`${base}api/v1/events`, { headers: viewerHeaders, signal: c.signal });
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  const sizes: number[] = [];
  let buf = '';
  const stop = setTimeout(() => c.abort(), ms);
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      buf += dec.decode(r.value, { stream: true });
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (block.startsWith('event: nodes')) sizes.push(Buffer.byteLength(block));
      }
    }
  } catch {
    // aborted: done
  }
  clearTimeout(stop);
  return sizes;
}
const sizes = await eventSizes(4500);

/** The board page's "24 h" from InfluxDB, REPEAT times: ms from the click to the last chart drawn. */
const rangeMs: number[] = [];
const dataMs: number[] = [];
if (influxd) {
  await page.goto(`${base}#/node/1-1-0`);
  for (let k = 0; k < REPEAT; k++) {
    await page.getByRole('button', { name: 'live' }).click();
    await page
      .locator('section.charts-section[data-range="live"]:not([data-drawn-ms=""])')
      .waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: '24 h' }).click();
    const done = page.locator('section.charts-section[data-range="24h"]:not([data-drawn-ms=""])');
    await done.waitFor({ timeout: 30_000 });
    rangeMs.push(Number(await done.getAttribute('data-drawn-ms')));
    // Of which: the answer's arrival (the manager and InfluxDB) after the click.
    dataMs.push(
      await page.evaluate(
        () =>
          (performance.getEntriesByName('muster:range-data').at(-1)?.startTime ?? Number.NaN) -
          (performance.getEntriesByName('muster:range-start').at(-1)?.startTime ?? Number.NaN),
      ),
    );
  }
  await page.screenshot({ path: path.join(shots, 'bench-board-24h.png'), fullPage: true });
}
clearInterval(feeder);
await browser.close();
await app.close();
d.close();
await influxd?.destroy();
rmSync(tmp, { recursive: true, force: true });

const worst = Math.max(0, ...onChassis, ...onTable);
const rangeWorst = Math.max(0, ...rangeMs);
const ok = chassisMs <= 1000 && tableMs <= 1000 && worst <= 50 && rangeWorst <= 500;
console.log(`dashboard with ${N} boards (Chromium ${browser.version()}):`);
console.log(`  chassis view rendered ${chassisMs} ms after login (bound 1000)`);
console.log(
  `    (snapshot read in ${Math.round(marks.applied - marks.received)} ms; cells drawn ${Math.round(marks.now - marks.applied)} ms after, as the bench saw it)`,
);
console.log(`  nodes table rendered ${tableMs} ms after the click (bound 1000)`);
console.log(
  `  long tasks during ${SECONDS} s of 2 s updates: chassis ${onChassis.length} (max ${Math.round(Math.max(0, ...onChassis))} ms), table ${onTable.length} (max ${Math.round(Math.max(0, ...onTable))} ms) (bound: none over 50 ms)`,
);
console.log(
  `    traced: longest task chassis ${Math.round(chassisRun.maxWall)} ms wall / ${Math.round(chassisRun.maxCpu)} ms CPU, table ${Math.round(tableRun.maxWall)} ms wall / ${Math.round(tableRun.maxCpu)} ms CPU; tasks over 50 ms of CPU: ${chassisRun.over50Cpu + tableRun.over50Cpu}`,
);
const kb = (b: number | undefined) => `${((b ?? 0) / 1024).toFixed(0)} KiB`;
console.log(
  `  event stream: snapshot ${kb(sizes[0])}, then diffs of ${sizes.slice(1).map(kb).join(', ') || 'none'} per 2 s (every board's figures change every 2 s)`,
);
if (history) {
  const sorted = [...rangeMs].sort((a, b) => a - b);
  console.log(
    `  board page, 24 h of 5 s samples from InfluxDB (${history.points} points): drawn ${sorted[Math.floor(sorted.length / 2)]} ms after the click (median of ${sorted.length}; worst ${rangeWorst} ms; bound 500); the answer arrived after ${dataMs.map((x) => Math.round(x)).join(', ')} ms`,
  );
}
console.log(
  `  load average ${os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ')} (${os.cpus().length} cores)`,
);
console.log(ok ? 'all bounds met' : 'a bound is missed');
process.exit(ok ? 0 : 1);
