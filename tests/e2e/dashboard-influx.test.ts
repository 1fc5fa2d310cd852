/**
 * The board page's InfluxDB ranges in a real browser (docs/dashboard.md "Board", "Performance"):
 * a private influxd (testkit/influxd.ts, as tests/e2e/influx.test.ts starts it) holding 24 h of
 * 5 s samples of one board (testkit/influx-history.ts), a real manager with telemetry to it, and
 * Debian's Chromium (playwright-core, no download). The series route answers the 24 h range in
 * 720 buckets of 120 s with the right means; the page, on "24 h", draws those points on its
 * charts and says how long it took from the click to the last chart drawn (printed; the bound is
 * measured by bench/dashboard.ts --influx).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { SeriesReply } from '../../common/api/telemetry.js';
import { fakeHeartbeatData, fakeResourceData, heartbeatBody, resourceBody } from '../../testkit/bodies.js';
import { writeHistory } from '../../testkit/influx-history.js';
import { DASHBOARD_ARTIFACTS, launchChromium, login, missingChromium } from '../helpers/chromium.js';
import {
  apiFetch,
  freePort,
  getJson,
  type Proc,
  ROOT,
  sets,
  startMuster,
  testAdmin,
  waitFor,
} from '../helpers/daemons.js';
import { type Influxd, missingInfluxd, startInfluxd } from '../helpers/influxd.js';
import { needs } from '../helpers/need.js';

const NODE = '5-1-0';
const DB = 'dash';

describe('board charts over InfluxDB ranges in Chromium', needs(missingInfluxd(), missingChromium()), () => {
  let tmp: string;
  let influx: Influxd;
  let manager: Proc;
  let base: string;
  let browser: Browser;
  let page: Page;
  const logs = () => `--- manager:\n${manager?.output().slice(-3000)}\n--- influxd:\n${influx?.output().slice(-2000)}`;

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-dash-influx-'));
    execFileSync(process.execPath, [
      path.join(ROOT, 'scripts', 'build-dashboard.mjs'),
      '--out',
      path.join(tmp, 'dash'),
    ]);
    influx = await startInfluxd();
    const h = await writeHistory(influx.url, DB, NODE, { hours: 24, stepS: 5 });
    assert.equal(h.points, 5 * 17_280);
    const httpPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    manager = startMuster([
      'manager',
      ...sets({
        'multicast.interface': '127.0.0.1',
        'multicast.port': await freePort(),
        'http.host': '127.0.0.1',
        'http.port': httpPort,
        'query.heartbeat_interval_ms': 600_000,
        'query.resource_interval_ms': 600_000,
        data_dir: path.join(tmp, 'manager'),
        'deploy.token_file': path.join(tmp, 'no-token'),
        'dashboard.dir': path.join(tmp, 'dash'),
        'telemetry.influxdb.enabled': 'true',
        'telemetry.influxdb.url': influx.url,
        'telemetry.influxdb.database': DB,
        'telemetry.influxdb.flush_interval_ms': 200,
      }),
    ]);
    await waitFor('manager healthz', () => getJson(`${base}/healthz`), 30_000).catch((e: Error) =>
      assert.fail(`${e.message}\n${logs()}`),
    );
    // The board is known to the manager (a heartbeat and a report, posted from loopback).
    const ip = '127.79.0.1';
    for (const [p, body] of [
      ['heartbeat', heartbeatBody(fakeHeartbeatData(ip, 5, 1, 0))],
      ['resource', resourceBody(fakeResourceData(ip, 1))],
    ] as const) {
      const r = await fetch(`${base}/${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 200, await r.text());
    }
    browser = await launchChromium();
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  });

  after(async () => {
    await browser?.close();
    await manager?.stop();
    await influx?.destroy();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('the series route: 24 h in 720 buckets of 120 s, with the means of the samples', {
    timeout: 30_000,
  }, async () => {
    const res = await apiFetch(`${base}/api/v1/nodes/${NODE}/series?range=24h`);
    assert.equal(res.status, 200, `${await res.clone().text()}\n${logs()}`);
    const s = (await res.json()) as SeriesReply;
    assert.equal(s.step_s, 120);
    assert.equal(s.times.length, 720);
    const cpu = s.lines.find((l) => l.measurement === 'cpu' && l.field === 'usage_percent');
    assert.ok(cpu, JSON.stringify(s.lines.map((l) => `${l.measurement}.${l.field}`)));
    // Every whole bucket (24 samples, usage = index mod 24) has the mean 11.5.
    const whole = cpu.values.slice(2, -2).filter((v) => v !== null);
    assert.ok(whole.length >= 700, `${whole.length} buckets`);
    for (const v of whole) assert.equal(v, 11.5);
    for (const [m, f, tag] of [
      ['gpu', 'temperature', '0'],
      ['network', 'rx_rate', 'eth0'],
      ['disk', 'usage_percent', '/'],
    ])
      assert.ok(
        s.lines.some((l) => l.measurement === m && l.field === f && l.tag === tag),
        `${m}.${f} ${tag}`,
      );
    // 50,000 bytes per 5 s on eth0: 10,000 B/s.
    const rx = s.lines.find((l) => l.field === 'rx_rate')!.values.filter((v) => v !== null);
    assert.ok(
      rx.slice(2, -2).every((v) => Math.abs(v - 10_000) < 1),
      String(rx.slice(0, 5)),
    );
    const bad = await apiFetch(`${base}/api/v1/nodes/${NODE}/series?range=30d`);
    assert.equal(bad.status, 400);
  });

  it('the page draws the 24 h range from InfluxDB and times it', { timeout: 45_000 }, async () => {
    await login(page, base, 'admin', testAdmin().password);
    await page.goto(`${base}/#/node/${NODE}`);
    const charts = page.locator('section.charts-section');
    await page.getByRole('button', { name: '24 h' }).click();
    await page.locator('section.charts-section[data-range="24h"]:not([data-drawn-ms=""])').waitFor({ timeout: 30_000 });
    const ms = Number(await charts.getAttribute('data-drawn-ms'));
    const cpuChart = page.locator('figure.chart').filter({ hasText: 'CPU and memory' });
    assert.equal(Number(await cpuChart.getAttribute('data-points')), 720);
    assert.ok(Number(await cpuChart.getAttribute('data-values')) >= 1400, 'cpu and memory: ~720 points each');
    for (const title of ['Temperature', 'GPU usage', 'Network', 'Disk use', 'Load average'])
      assert.ok(
        Number(await page.locator('figure.chart').filter({ hasText: title }).getAttribute('data-values')) > 700,
        title,
      );
    // Ink on the canvas: the line was drawn.
    const inked = await cpuChart.locator('canvas').evaluate((el) => {
      const c = el as unknown as {
        width: number;
        height: number;
        getContext(t: '2d'): { getImageData(...a: number[]): { data: Uint8ClampedArray } };
      };
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
      return n;
    });
    assert.ok(inked > 1000, `${inked} inked pixels`);
    const measured = await page.evaluate(() => performance.getEntriesByName('muster:range').length);
    assert.ok(measured >= 1, 'the muster:range performance measure');
    await page.screenshot({ path: path.join(DASHBOARD_ARTIFACTS, 'board-24h.png'), fullPage: true });
    console.log(
      `# board page: 24 h of 5 s samples from InfluxDB drawn ${ms} ms after the click (load ${os.loadavg()[0]!.toFixed(1)})`,
    );
    // 7 d: the same day in buckets of 900 s, the rest empty.
    await page.getByRole('button', { name: '7 d' }).click();
    await page.locator('section.charts-section[data-range="7d"]:not([data-drawn-ms=""])').waitFor({ timeout: 30_000 });
    assert.equal(Number(await cpuChart.getAttribute('data-points')), 672);
    const v7 = Number(await cpuChart.getAttribute('data-values'));
    assert.ok(v7 >= 180 && v7 <= 200, `${v7} values: one day of 900 s buckets for cpu and memory`);
    await page.getByRole('button', { name: 'live' }).click();
    await page.locator('section.charts-section[data-range="live"]').waitFor();
  });
});
