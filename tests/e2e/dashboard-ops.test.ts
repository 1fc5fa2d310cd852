/**
 * The dashboard's operations pages in a real browser (docs/dashboard.md "Exec", "Files", "Screen",
 * "Deploy", "Instances", "Console API"): Debian's Chromium driven by playwright-core against a real
 * manager and agent on 127.0.0.1 (the agent with files.roots set and no display). Runs a command
 * from the exec console and reads its output and exit codes; pushes a file from the browser (upload
 * with progress, then per-board progress), sees it in the board's directory listing and on disk,
 * deletes it; shows "no display" on the screen page; shows the scheduler's explanation when a
 * placed start fits nowhere; maps the seed console's command_set, exec and file onto the API;
 * a viewer sees none of the operator forms and the API refuses the same calls. Screenshots go to
 * test-artifacts/dashboard/ (gitignored).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DASHBOARD_ARTIFACTS, launchChromium, login as loginAs, missingChromium } from '../helpers/chromium.js';
import {
  adminToken,
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
import { missingRoot, needs } from '../helpers/need.js';

const NODE = '3-4-0';
const TOKEN = 'dashboard-ops-e2e-token-51af';
const VIEWER = { user: 'looker', password: 'viewer-password-2' };

describe(
  'dashboard operations pages in Chromium against a real manager and agent',
  needs(missingRoot('agent exec and files as root'), missingChromium()),
  () => {
    let tmp: string;
    let root: string;
    let base: string;
    let manager: Proc;
    let agent: Proc;
    let browser: Browser;
    let admin: BrowserContext;
    let page: Page;
    const logs = () => `--- manager:\n${manager?.output().slice(-3000)}\n--- agent:\n${agent?.output().slice(-3000)}`;
    const shot = (p: Page, name: string) =>
      p.screenshot({ path: path.join(DASHBOARD_ARTIFACTS, `${name}.png`), fullPage: true });
    const orFail = (e: Error) => assert.fail(`${e.message}\n${logs()}`);

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-dashboard-ops-'));
      root = path.join(tmp, 'root');
      mkdirSync(root);
      execFileSync(process.execPath, [
        path.join(ROOT, 'scripts', 'build-dashboard.mjs'),
        '--out',
        path.join(tmp, 'dash'),
      ]);
      writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);
      const httpPort = await freePort();
      const mcastPort = await freePort();
      base = `http://127.0.0.1:${httpPort}`;
      manager = startMuster([
        'manager',
        ...sets({
          'multicast.interface': '127.0.0.1',
          'multicast.port': mcastPort,
          'http.host': '127.0.0.1',
          'http.port': httpPort,
          'query.heartbeat_interval_ms': '500',
          'query.resource_interval_ms': '700',
          'deploy.token_file': path.join(tmp, 'token'),
          'dashboard.dir': path.join(tmp, 'dash'),
          'dashboard.events.interval_ms': '500',
          'exec.status_wait_ms': '2000',
          'log.level': 'warn',
          data_dir: path.join(tmp, 'manager'),
        }),
      ]);
      agent = startMuster([
        'agent',
        ...sets({
          'multicast.interface': '127.0.0.1',
          'multicast.port': mcastPort,
          'service.port': await freePort(),
          'identity.box_id': 3,
          'identity.slot_id': 4,
          'identity.cpu_id': '0',
          'report.jitter_ms': '50',
          'deploy.docker_socket': '',
          'exec.osreapi.port': 0,
          'exec.commands_dir': path.join(tmp, 'commands'),
          'files.roots': `[${root}]`,
          'files.min_free_bytes': 0,
          'screen.methods': '[fb]',
          'screen.fb_device': path.join(tmp, 'no-fb0'),
          data_dir: path.join(tmp, 'agent'),
          'auth.token_file': path.join(tmp, 'token'),
        }),
      ]);
      await waitFor('manager healthz', () => getJson(`${base}/healthz`), 30_000).catch(orFail);
      const r = await apiFetch(`${base}/api/v1/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: VIEWER.user, password: VIEWER.password, role: 'viewer' }),
      });
      assert.equal(r.status, 201, await r.text());
      await waitFor(
        'the board online',
        async () => {
          const n = await getJson<{ state: string }>(`${base}/api/v1/nodes/${NODE}`).catch(() => null);
          return n?.state === 'online';
        },
        30_000,
      ).catch(orFail);
      browser = await launchChromium();
      admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      page = await admin.newPage();
    });

    after(async () => {
      await browser?.close();
      await agent?.stop();
      await manager?.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    const login = (p: Page, user: string, password: string) => loginAs(p, base, user, password);

    it('runs a command from the exec console and shows its output, states and exit codes', {
      timeout: 40_000,
    }, async () => {
      await login(page, 'admin', testAdmin().password);
      await page.getByRole('link', { name: 'Exec' }).click();
      await page.getByLabel('Target').fill(`box=3 slot=4`);
      await page
        .locator('#target-preview')
        .filter({ hasText: `1 board: ${NODE}` })
        .waitFor();
      await page.getByLabel('Command', { exact: true }).fill('echo "dash-e2e-$((6*7))"; echo warn-line >&2');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      const out = page.locator('#task-output');
      await out
        .filter({ hasText: `[${NODE}] dash-e2e-42` })
        .waitFor({ timeout: 20_000 })
        .catch(orFail);
      await out.filter({ hasText: 'warn-line' }).waitFor();
      const row = page.locator(`#task-nodes tr[data-node="${NODE}"]`);
      await page.locator(`#task-nodes tr[data-node="${NODE}"][data-state="done"]`).waitFor({ timeout: 15_000 });
      assert.equal((await row.locator('.exit').textContent())?.trim(), '0');
      await page
        .locator('#task-summary')
        .filter({ hasText: /ended: 1 board, 1 done, 0 failed/ })
        .waitFor();
      // The recent tasks list is told when the task ends.
      await page.locator('#tasks tbody tr').first().filter({ hasText: 'done' }).waitFor({ timeout: 3000 });
      await shot(page, 'exec');
      // A failing command: its state and exit code.
      await page.getByLabel('Command', { exact: true }).fill('exit 3');
      await page.getByRole('button', { name: 'Run', exact: true }).click();
      await page.locator(`#task-nodes tr[data-node="${NODE}"][data-state="failed"]`).waitFor({ timeout: 15_000 });
      assert.equal((await page.locator(`#task-nodes tr[data-node="${NODE}"] .exit`).textContent())?.trim(), '3');
      assert.ok((await page.locator('#tasks tbody tr').count()) >= 2, 'both tasks in the recent list');
      // A bad target is explained before anything runs.
      await page.getByLabel('Target').fill('box=');
      await page.locator('.preview.error').waitFor();
    });

    it('the seed console maps command_set, exec and file onto the API', { timeout: 30_000 }, async () => {
      const auth = { authorization: `Bearer ${await adminToken(base)}`, 'content-type': 'application/json' };
      const post = async (p: string, body: unknown) => {
        const res = await fetch(`${base}/console${p}`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
        return { status: res.status, body: await res.text(), headers: res.headers };
      };
      const script = Buffer.from(`#!/bin/sh\necho "$1" > ${root}/from-console.txt\n`).toString('base64');
      assert.deepEqual(
        await post('/command_set', { operation: 'add', exec: 'writer', argument_count: 1, content_b64: script }).then(
          (r) => r.body,
        ),
        '"OK"',
      );
      // The catalog reaches the agent in the background: exec until the board has it.
      let last = { status: 0, body: '', headers: new Headers() };
      await waitFor(
        'console exec OK',
        async () => {
          last = await post('/exec', { exec: 'writer', args: ['seed-exec'], kwargs: {}, target: NODE });
          return last.body === '"OK"';
        },
        15_000,
      ).catch((e: Error) =>
        assert.fail(`${e.message}: ${last.status} ${last.headers.get('x-muster-error')}\n${logs()}`),
      );
      assert.match(last.headers.get('x-muster-task') ?? '', /^[0-9a-f-]{36}$/);
      assert.equal(readFileSync(path.join(root, 'from-console.txt'), 'utf8'), 'seed-exec\n');
      // The task is on the exec page like any other.
      await page.goto(`${base}/#/exec/${last.headers.get('x-muster-task')}`);
      await page.locator(`#task-nodes tr[data-node="${NODE}"][data-state="done"]`).waitFor();
      // file delete of that name in the root; an unknown board is NG 404.
      const del = await post('/file', {
        operation: 'delete',
        node: [NODE],
        file_num: 1,
        target_dir: root,
        names: ['from-console.txt'],
      });
      assert.equal(del.body, '"OK"', String(del.headers.get('x-muster-error')));
      assert.ok(!existsSync(path.join(root, 'from-console.txt')));
      const bad = await post('/file', { operation: 'delete', node: ['9-9-9'], file_num: 0, target_dir: root });
      assert.equal(bad.status, 404);
      assert.equal(bad.body, '"NG"');
      // screen: this board has no display.
      const scr = await post('/screen', { node: NODE });
      assert.equal(scr.body, '"NG"');
      assert.equal(scr.status, 503);
      assert.match(scr.headers.get('x-muster-error') ?? '', /display/);
    });

    it('pushes a file from the browser, sees it on the board, browses and deletes it', {
      timeout: 40_000,
    }, async () => {
      await page.goto(`${base}/#/files`);
      const content = `pushed from the dashboard ${Date.now()}\n`.repeat(2000);
      await page
        .locator('input[name="files"]')
        .setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from(content) });
      await page.locator('input[name="target"]').fill(NODE);
      await page.locator('#target-preview').filter({ hasText: NODE }).waitFor();
      await page.getByLabel('Directory on the boards').fill(`${root}/drop`);
      await page.getByLabel('Mode').fill('0640');
      await page.getByRole('button', { name: 'Push', exact: true }).click();
      await page
        .locator('#push-summary')
        .filter({ hasText: /ended: 1 of 1 boards done, 0 failed/ })
        .waitFor({ timeout: 20_000 })
        .catch(orFail);
      assert.equal(await page.locator(`#push-nodes tr[data-node="${NODE}"][data-state="done"]`).count(), 1);
      assert.equal(readFileSync(path.join(root, 'drop', 'hello.txt'), 'utf8'), content);
      await shot(page, 'files');
      // Browse the board's directory.
      await page.locator('input[name="browse-node"]').fill(NODE);
      await page.locator('input[name="browse-path"]').fill(`${root}/drop`);
      await page.getByRole('button', { name: 'List' }).click();
      const entry = page.locator('#listing tr[data-name="hello.txt"]');
      await entry.waitFor();
      assert.match((await entry.textContent()) ?? '', /file/);
      // Delete it.
      page.once('dialog', (d) => void d.accept());
      await page.locator('input[name="rm-target"]').fill(NODE);
      await page.getByLabel('Paths (one a line)').fill(`${root}/drop/hello.txt`);
      await page.getByRole('button', { name: 'Delete', exact: true }).click();
      await page.locator('#rm-results tr').filter({ hasText: 'file' }).waitFor();
      assert.ok(!existsSync(path.join(root, 'drop', 'hello.txt')));
    });

    it('the screen page says when a board has no display', { timeout: 20_000 }, async () => {
      await page.goto(`${base}/#/node/${NODE}`);
      await page.locator('#screen-link').click();
      await page.locator('#no-display').waitFor();
      await page.locator('#screen-refresh').click();
      await page.locator('#no-display').waitFor();
      await shot(page, 'screen');
    });

    it('a placed start that fits nowhere shows the scheduler explanation; instances page', {
      timeout: 20_000,
    }, async () => {
      await page.getByRole('link', { name: 'Deploy' }).click();
      await page.getByLabel('URL').fill('http://127.0.0.1:9/none');
      await page.getByLabel('File').fill('x.tgz');
      await page.getByLabel('Memory (MiB)').fill(String(64 * 1024 * 1024));
      await page.getByLabel('Constraints (one a line)').fill('box=3');
      await page.getByRole('button', { name: 'Start', exact: true }).click();
      const why = page.locator('#placement-refusal');
      await why.waitFor();
      assert.match((await why.textContent()) ?? '', /memory|fit/i);
      await shot(page, 'deploy');
      await page.getByRole('link', { name: 'Instances' }).click();
      await page.locator('#instances').waitFor();
      await page.getByRole('button', { name: 'Plan' }).click();
      await page.locator('#plan').waitFor();
      await shot(page, 'instances');
    });

    it('an admin creates and revokes a link token on the users page', { timeout: 20_000 }, async () => {
      await page.goto(`${base}/#/users`);
      await page.getByLabel('For node').fill(NODE);
      await page.getByRole('button', { name: 'Create link token' }).click();
      await page.getByRole('status').filter({ hasText: 'New link token' }).waitFor();
      const row = page.locator('#link-tokens tbody tr').filter({ hasText: NODE });
      await row.waitFor();
      await shot(page, 'users');
      page.once('dialog', (d) => void d.accept());
      await row.getByRole('button', { name: 'Revoke' }).click();
      await row.waitFor({ state: 'detached' });
    });

    it('a viewer sees no operator form, and the API refuses the same calls', { timeout: 30_000 }, async () => {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const v = await ctx.newPage();
      await login(v, VIEWER.user, VIEWER.password);
      await v.getByRole('link', { name: 'Exec' }).click();
      await v.locator('#tasks tbody tr').first().waitFor();
      assert.equal(await v.getByRole('button', { name: 'Run', exact: true }).count(), 0);
      assert.equal(await v.getByRole('button', { name: 'Kill the task' }).count(), 0);
      await v.getByRole('link', { name: 'Files' }).click();
      await v.getByRole('heading', { name: 'Browse a board' }).waitFor();
      assert.equal(await v.getByRole('button', { name: 'Push', exact: true }).count(), 0);
      assert.equal(await v.getByRole('button', { name: 'Delete', exact: true }).count(), 0);
      assert.equal(await v.getByRole('link', { name: 'Deploy' }).count(), 0);
      await v.getByRole('link', { name: 'Instances' }).click();
      await v.locator('#instances').waitFor();
      assert.equal(await v.getByRole('button', { name: 'Apply' }).count(), 0);
      // Plain fetch calls in the page (no helper function: the test's transpiler would name it).
      const statuses = await v.evaluate(
        async ({ node, dir }) => {
          const json = { 'content-type': 'application/json' };
          return [
            (
              await fetch('api/v1/tasks', {
                method: 'POST',
                headers: json,
                body: JSON.stringify({ target: node, steps: [{ command_content: 'id' }] }),
              })
            ).status,
            (
              await fetch('api/v1/files/remove', {
                method: 'POST',
                headers: json,
                body: JSON.stringify({ target: node, paths: [`${dir}/x`] }),
              })
            ).status,
            (await fetch('api/v1/files/uploads?name=x', { method: 'POST', body: 'x' })).status,
            (
              await fetch('console/exec', {
                method: 'POST',
                headers: json,
                body: JSON.stringify({ exec: 'writer', args: ['x'], kwargs: {}, target: node }),
              })
            ).status,
            (await fetch(`api/v1/nodes/${node}/files?path=${encodeURIComponent(dir)}`)).status,
          ];
        },
        { node: NODE, dir: root },
      );
      assert.deepEqual(statuses, [403, 403, 403, 403, 200]);
      await ctx.close();
    });
  },
);
