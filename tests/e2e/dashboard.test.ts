/**
 * The web dashboard in a real browser (docs/dashboard.md): Debian's Chromium driven by
 * playwright-core (executablePath /usr/bin/chromium, no browser download) against a real manager
 * and agent on 127.0.0.1. Logs in; sees the local agent's board appear live in the chassis view
 * and the nodes table; opens its page and sees chart points drawn; starts and stops a bar
 * component from the page; sees an alert raised by a test rule; a viewer sees no operator action
 * and the API refuses one anyway; the page goes "not live" while the manager restarts and
 * recovers without a reload. Screenshots of the main pages go to test-artifacts/dashboard/
 * (gitignored) for a reviewer.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { NodeDetail } from '../../common/api/nodes.js';
import { DASHBOARD_ARTIFACTS, launchChromium, login as loginAs, missingChromium } from '../helpers/chromium.js';
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
import { type FileServer, run, serveDir } from '../helpers/images.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';

const NODE = '3-2-0';
const TOKEN = 'dashboard-e2e-token-7c1d';
const BUNDLE = 'sleeper.bar';
const VIEWER = { user: 'watcher', password: 'viewer-password-1' };

describe(
  'dashboard in Chromium against a real manager and agent',
  needs(missingRoot('bar components (process groups, cgroups)'), missingChromium(), missingCommand('tar')),
  () => {
    let tmp: string;
    let bundles: FileServer;
    let base: string;
    let managerArgs: string[];
    let manager: Proc;
    let agent: Proc;
    let browser: Browser;
    let admin: BrowserContext;
    let page: Page;
    const logs = () => `--- manager:\n${manager?.output().slice(-3000)}\n--- agent:\n${agent?.output().slice(-3000)}`;
    const shot = (p: Page, name: string) => p.screenshot({ path: path.join(DASHBOARD_ARTIFACTS, `${name}.png`) });

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-dashboard-e2e-'));
      // The page, built for this run (the manager reads it from dashboard.dir).
      execFileSync(process.execPath, [
        path.join(ROOT, 'scripts', 'build-dashboard.mjs'),
        '--out',
        path.join(tmp, 'dash'),
      ]);
      // A bar bundle that sleeps in a loop, served over http.
      const src = path.join(tmp, 'bundle-src');
      const served = path.join(tmp, 'served');
      mkdirSync(src);
      mkdirSync(served);
      writeFileSync(path.join(src, 'bar.yaml'), 'name: sleeper\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\n');
      writeFileSync(path.join(src, 'run.sh'), 'while true; do sleep 1; done\n');
      await run('tar', ['czf', path.join(served, BUNDLE), '-C', src, 'bar.yaml', 'run.sh']);
      bundles = await serveDir(served);
      writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);

      const httpPort = await freePort();
      const mcastPort = await freePort();
      base = `http://127.0.0.1:${httpPort}`;
      managerArgs = [
        'manager',
        ...sets({
          'multicast.interface': '127.0.0.1',
          'multicast.port': mcastPort,
          'http.host': '127.0.0.1',
          'http.port': httpPort,
          'query.heartbeat_interval_ms': '500',
          'query.resource_interval_ms': '700',
          'deploy.token_file': path.join(tmp, 'token'),
          'deploy.progress_poll_ms': '100',
          'dashboard.dir': path.join(tmp, 'dash'),
          'dashboard.events.interval_ms': '500',
          data_dir: path.join(tmp, 'manager'),
        }),
      ];
      manager = startMuster(managerArgs);
      agent = startMuster([
        'agent',
        ...sets({
          'multicast.interface': '127.0.0.1',
          'multicast.port': mcastPort,
          'service.port': await freePort(),
          'identity.box_id': 3,
          'identity.slot_id': 2,
          'identity.cpu_id': '0',
          'report.jitter_ms': '50',
          'deploy.reserved_cores': '[]',
          'deploy.stop_grace_ms': '2000',
          'deploy.docker_socket': '',
          data_dir: path.join(tmp, 'agent'),
          'auth.token_file': path.join(tmp, 'token'),
        }),
      ]);
      await waitFor('manager healthz', () => getJson(`${base}/healthz`), 30_000).catch((e: Error) =>
        assert.fail(`${e.message}\n${logs()}`),
      );
      // The viewer exists before the browser starts (admin API through the test admin's token).
      const r = await apiFetch(`${base}/api/v1/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: VIEWER.user, password: VIEWER.password, role: 'viewer' }),
      });
      assert.equal(r.status, 201, await r.text());

      browser = await launchChromium();
      admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      page = await admin.newPage();
    });

    after(async () => {
      await browser?.close();
      await agent?.stop();
      await manager?.stop();
      await bundles?.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    const login = (p: Page, user: string, password: string) => loginAs(p, base, user, password);

    it('refuses a wrong password, then logs in', { timeout: 30_000 }, async () => {
      await page.goto(base);
      await page.getByLabel('User').fill('admin');
      await page.getByLabel('Password').fill('not-the-password');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'Wrong user name or password' }).waitFor();
      await login(page, 'admin', testAdmin().password);
      assert.equal(await page.locator('#who').textContent(), 'admin (admin)');
      const cookies = await admin.cookies();
      const session = cookies.find((c) => c.name === 'muster_session');
      assert.ok(session?.httpOnly, 'the session cookie is HttpOnly');
      assert.equal(session?.sameSite, 'Strict');
    });

    it('shows the local agent live in the chassis view and the nodes table', { timeout: 40_000 }, async () => {
      // The board was not there when the page loaded (or arrives through the stream): no reload.
      const cell = page.locator(`.cell[data-node="${NODE}"]`);
      await cell.waitFor({ timeout: 30_000 }).catch((e: Error) => assert.fail(`${e.message}\n${logs()}`));
      await page.locator('#live-state[data-state="live"]').waitFor();
      assert.match((await cell.getAttribute('aria-label')) ?? '', /board 3-2-0, online, cpu \d/);
      await shot(page, 'chassis');
      await page.getByRole('link', { name: 'Nodes' }).click();
      const row = page.locator(`#nodes-table tr[data-node="${NODE}"]`);
      await row.waitFor();
      assert.match((await row.textContent()) ?? '', /3-2-0.*127\.0\.0\.1.*ONLINE/);
      // Sorting and filtering.
      await page.getByRole('button', { name: 'CPU %' }).click();
      assert.equal(await page.locator('th[aria-sort="ascending"]').textContent(), 'CPU % ▲');
      await page.getByLabel('Filter').fill('no-such-node');
      await page.locator(`#nodes-table tr[data-node="${NODE}"]`).waitFor({ state: 'detached' });
      await page.getByLabel('Filter').fill('3-2');
      await row.waitFor();
      await shot(page, 'nodes');
    });

    it('opens the board page and draws chart points', { timeout: 30_000 }, async () => {
      await page.locator(`#nodes-table tr[data-node="${NODE}"] a`).click();
      await page.getByRole('heading', { name: /Board 3-2-0/ }).waitFor();
      const cpuChart = page.locator('figure.chart').filter({ hasText: 'CPU and memory' });
      await waitFor('two chart points', async () => Number(await cpuChart.getAttribute('data-points')) >= 2, 15_000);
      // The canvas holds drawn pixels (not a blank plot).
      const inked = await cpuChart.locator('canvas').evaluate((el) => {
        // Runs in the page (the DOM types are not in this project's lib): a canvas's pixels.
        const c = el as unknown as {
          width: number;
          height: number;
          getContext(k: '2d'): {
            getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
          };
        };
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
        return n;
      });
      assert.ok(inked > 500, `only ${inked} pixels drawn`);
    });

    it('starts and stops a bar component from the page', { timeout: 60_000 }, async () => {
      await page.getByLabel('Type').selectOption('bar');
      await page.getByLabel('URL').fill(bundles.baseUrl);
      await page.getByLabel('File').fill(BUNDLE);
      await page.getByLabel('Cores').fill('1');
      await page.getByLabel('Memory (MiB)').fill('32');
      await page.getByRole('button', { name: 'Start', exact: true }).click();
      await page
        .getByRole('status')
        .filter({ hasText: /start .* sent/ })
        .waitFor();
      const running = page.locator('#components tr').filter({ hasText: 'RUNNING' });
      await running.waitFor({ timeout: 30_000 }).catch((e: Error) => assert.fail(`${e.message}\n${logs()}`));
      const uuid = await running.getAttribute('data-uuid');
      assert.ok(uuid);
      await shot(page, 'board');
      const detail = await getJson<NodeDetail>(`${base}/api/v1/nodes/${NODE}`);
      assert.equal(detail.resource?.component.find((c) => c.uuid === uuid)?.state, 'RUNNING');
      await running.getByRole('button', { name: /^stop / }).click();
      // The agent reports the component STOPPED (or drops it): either way it runs no more.
      const row = page.locator(`#components tr[data-uuid="${uuid}"]`);
      await waitFor(
        'the component stopped',
        async () => (await row.count()) === 0 || /STOPPED/.test((await row.textContent()) ?? ''),
        30_000,
      ).catch((e: Error) => assert.fail(`${e.message}\n${logs()}`));
      assert.equal(await row.locator('button.stop').count(), 0, 'no stop button on a stopped component');
      const deps = page.locator('section').filter({ hasText: 'Recent deployments' }).locator('tbody tr');
      await waitFor('both deployments ok', async () => (await deps.filter({ hasText: 'ok' }).count()) >= 2, 10_000);
      // The history page shows who did it.
      await page.getByRole('link', { name: 'History' }).click();
      await page
        .locator('#history tr')
        .filter({ hasText: 'deploy.stop' })
        .filter({ hasText: 'admin' })
        .first()
        .waitFor();
      await shot(page, 'history');
    });

    it('shows an alert raised by a test rule, on the alerts page and the chassis cell', {
      timeout: 30_000,
    }, async () => {
      const r = await apiFetch(`${base}/api/v1/alert-rules/e2e_busy`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          metric: 'memory.usage_percent',
          op: '>=',
          threshold: 0,
          for_ms: 0,
          severity: 'critical',
        }),
      });
      assert.equal(r.status, 200, await r.text());
      await page.getByRole('link', { name: 'Alerts' }).click();
      await page.locator('.alerts-table tr[data-rule="e2e_busy"]').first().waitFor({ timeout: 20_000 });
      await page.locator('#rules tr').filter({ hasText: 'e2e_busy' }).waitFor();
      await shot(page, 'alerts');
      await page.getByRole('link', { name: 'Chassis' }).click();
      await page.locator(`.cell[data-node="${NODE}"] .mark[title="open alert"]`).waitFor();
    });

    it('a viewer sees no operator action, and the API refuses one anyway', { timeout: 30_000 }, async () => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const v = await ctx.newPage();
      await login(v, VIEWER.user, VIEWER.password);
      assert.equal(await v.locator('#who').textContent(), `${VIEWER.user} (viewer)`);
      assert.equal(await v.getByRole('link', { name: 'Users' }).count(), 0);
      await v.goto(`${base}/#/node/${NODE}`);
      await v.getByRole('heading', { name: /Board 3-2-0/ }).waitFor();
      await v.locator('#components').waitFor();
      assert.equal(await v.getByRole('button', { name: 'Start', exact: true }).count(), 0);
      assert.equal(await v.locator('button.stop').count(), 0);
      await v.goto(`${base}/#/alerts`);
      await v.locator('#rules tr').filter({ hasText: 'e2e_busy' }).waitFor();
      assert.equal(await v.getByRole('button', { name: 'Save rule' }).count(), 0);
      // The same request the operator's form sends, from the viewer's page with its cookie.
      const status = await v.evaluate(async (node) => {
        const res = await fetch('api/v1/deployments', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ node, mode: 'stop', uuid: 'x' }),
        });
        return res.status;
      }, NODE);
      assert.equal(status, 403);
      await ctx.close();
    });

    it('a cookie request from another origin is refused (CSRF)', async () => {
      const cookie = (await admin.cookies()).find((c) => c.name === 'muster_session');
      const res = await fetch(`${base}/api/v1/alert-rules/e2e_busy`, {
        method: 'DELETE',
        headers: { cookie: `muster_session=${cookie?.value}`, origin: 'http://evil.example' },
      });
      assert.equal(res.status, 403);
      assert.equal(((await res.json()) as { error: string }).error, 'csrf');
    });

    it('goes "not live" while the manager restarts, then recovers without a reload', { timeout: 60_000 }, async () => {
      await page.getByRole('link', { name: 'Chassis' }).click();
      await page.locator('#live-state[data-state="live"]').waitFor();
      await page.evaluate(() => {
        (globalThis as unknown as { marker: number }).marker = 42;
      });
      await manager.stop();
      await page.locator('#live-state[data-state="down"]').waitFor({ timeout: 15_000 });
      assert.match((await page.locator('#live-state').textContent()) ?? '', /not live/);
      await shot(page, 'not-live');
      manager = startMuster(managerArgs);
      await page
        .locator('#live-state[data-state="live"]')
        .waitFor({ timeout: 30_000 })
        .catch((e: Error) => assert.fail(`${e.message}\n${logs()}`));
      await page.locator(`.cell[data-node="${NODE}"]`).waitFor();
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker: number }).marker),
        42,
        'the page was not reloaded',
      );
      assert.equal(await page.locator('#who').textContent(), 'admin (admin)', 'the session survived the restart');
      assert.ok(readdirSync(DASHBOARD_ARTIFACTS).length >= 5);
      assert.ok(readFileSync(path.join(DASHBOARD_ARTIFACTS, 'chassis.png')).length > 1000);
    });
  },
);
