/**
 * A board's screen end to end (docs/files.md "Screen"): Xvfb shows a known picture on its root
 * window (`xsetroot -solid`, then a bitmap with a red rectangle tiled over the whole screen with
 * `xsetroot -bitmap`); `muster screen` through the manager and the agent's X11 method (xwd,
 * decoded and encoded as PNG in JavaScript) saves a PNG whose pixels, decoded with pngjs, are the
 * picture's at known places. A board with no X11 socket, no Wayland socket and no frame buffer
 * answers "no display"; both captures are in the history.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import { adminToken, freePort, getJson, type Proc, runMuster, sets, startMuster, waitFor } from '../helpers/daemons.js';
import { missingCommand, needs } from '../helpers/need.js';

const W = 320;
const H = 240;
/** The rectangle drawn: x in [40, 120), y in [30, 90). */
const inRect = (x: number, y: number) => x >= 40 && x < 120 && y >= 30 && y < 90;
const BG = [0x20, 0x40, 0x80];
const FG = [0xff, 0x00, 0x00];
const TOKEN = 'screen-e2e-token-51ab';

/** An X bitmap (XBM) of the whole screen with the rectangle's bits set. */
function xbm(): string {
  const bytes: string[] = [];
  for (let y = 0; y < H; y++)
    for (let x0 = 0; x0 < W; x0 += 8) {
      let v = 0;
      for (let k = 0; k < 8; k++) if (inRect(x0 + k, y)) v |= 1 << k;
      bytes.push(`0x${v.toString(16).padStart(2, '0')}`);
    }
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += 12) lines.push(bytes.slice(i, i + 12).join(', '));
  return `#define r_width ${W}\n#define r_height ${H}\nstatic unsigned char r_bits[] = {\n   ${lines.join(',\n   ')}};\n`;
}

describe(
  'screen: Xvfb picture through muster screen; no display',
  needs(missingCommand('Xvfb'), missingCommand('xwd'), missingCommand('xsetroot')),
  () => {
    let tmp = '';
    let xvfb: ChildProcess | undefined;
    let display = '';
    let base = '';
    let manager: Proc | undefined;
    const agents: Proc[] = [];
    const logs = () => [manager, ...agents].map((p) => p?.output().slice(-3000)).join('\n-----\n');

    before(
      async () => {
        tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-screen-e2e-'));
        writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);
        // A display number whose socket is free.
        let n = 70 + (process.pid % 100);
        while (existsSync(`/tmp/.X11-unix/X${n}`) || existsSync(`/tmp/.X${n}-lock`)) n++;
        display = `:${n}`;
        xvfb = spawn('Xvfb', [display, '-screen', '0', `${W}x${H}x24`, '-nolisten', 'tcp', '-noreset'], {
          stdio: 'ignore',
        });
        await waitFor('Xvfb to listen', async () => existsSync(`/tmp/.X11-unix/X${n}`), 10_000, 50);
        const env = { ...process.env, DISPLAY: display };
        execFileSync('xsetroot', ['-solid', '#204080'], { env });
        writeFileSync(path.join(tmp, 'rect.xbm'), xbm());
        execFileSync('xsetroot', ['-bitmap', path.join(tmp, 'rect.xbm'), '-fg', '#ff0000', '-bg', '#204080'], { env });

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
            'query.heartbeat_interval_ms': 500,
            'deploy.token_file': path.join(tmp, 'token'),
            'log.level': 'warn',
            data_dir: path.join(tmp, 'manager'),
          }),
        ]);
        const empty = path.join(tmp, 'empty');
        mkdirSync(empty);
        for (const [slot, ip, screen] of [
          [1, '127.0.0.1', { 'screen.methods': '[x11]', 'screen.display': display }],
          [
            2,
            '127.0.0.2',
            {
              'screen.methods': '[x11, wayland, fb]',
              'screen.x11_socket_dir': empty,
              'screen.xdg_runtime_dir': empty,
              'screen.fb_device': path.join(empty, 'fb0'),
            },
          ],
        ] as const) {
          agents.push(
            startMuster([
              'agent',
              ...sets({
                'multicast.interface': '127.0.0.1',
                'multicast.port': mcastPort,
                'service.host': ip,
                'service.port': await freePort(),
                'report.host_ip': ip,
                'identity.box_id': 6,
                'identity.slot_id': slot,
                'identity.cpu_id': 0,
                'report.jitter_ms': 50,
                'auth.token_file': path.join(tmp, 'token'),
                data_dir: path.join(tmp, `agent${slot}`),
                ...screen,
              }),
            ]),
          );
        }
        await waitFor(
          'boards 6-1-0 and 6-2-0 online',
          async () => {
            const nodes = await getJson<{ id: string; state: string }[] | { nodes: { id: string; state: string }[] }>(
              `${base}/api/v1/nodes`,
            );
            const list = Array.isArray(nodes) ? nodes : nodes.nodes;
            return ['6-1-0', '6-2-0'].every((id) => list.some((x) => x.id === id && x.state === 'online'));
          },
          60_000,
          300,
        ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      },
      { timeout: 75_000 },
    );

    after(
      async () => {
        await Promise.allSettled([...agents, manager].map((p) => p?.stop()));
        xvfb?.kill('SIGTERM');
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      },
      { timeout: 20_000 },
    );

    test('muster screen saves a PNG with the picture at known places', { timeout: 30_000 }, async () => {
      const out = path.join(tmp, 'shot.png');
      const r = await runMuster(['--manager', base, 'screen', '6-1-0', '-o', out], { timeoutMs: 20_000 });
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      assert.match(r.output, /x11/);
      const png = PNG.sync.read(readFileSync(out));
      assert.equal(png.width, W);
      assert.equal(png.height, H);
      const px = (x: number, y: number) => [...png.data.subarray((y * W + x) * 4, (y * W + x) * 4 + 3)];
      for (const [x, y] of [
        [0, 0],
        [39, 30],
        [40, 29],
        [40, 30],
        [80, 60],
        [119, 89],
        [120, 89],
        [119, 90],
        [300, 200],
      ] as const) {
        assert.deepEqual(px(x, y), inRect(x, y) ? FG : BG, `pixel ${x},${y}`);
      }
    });

    test('muster screen --watch rewrites the file every interval; every capture is in the history', {
      timeout: 40_000,
    }, async () => {
      const out = path.join(tmp, 'watch.png');
      const count = async () => {
        const h = await runMuster(['--manager', base, 'history', '--json'], { timeoutMs: 20_000 });
        return (
          JSON.parse(h.output) as { history: { node: string; operation: string; result: number }[] }
        ).history.filter((e) => e.node === '6-1-0' && e.operation === 'screen' && e.result === 0).length;
      };
      const before = await count();
      const watch = startMuster(['--manager', base, 'screen', '6-1-0', '-o', out, '--watch', '1s'], {
        env: { ...process.env, MUSTER_TOKEN: await adminToken(base) },
      });
      try {
        await waitFor('three captures written', () => (watch.output().match(/6-1-0 → /g) ?? []).length >= 3, 25_000);
      } finally {
        await watch.stop();
      }
      const png = PNG.sync.read(readFileSync(out));
      assert.equal(png.width, W);
      assert.deepEqual([...png.data.subarray(0, 3)], inRect(0, 0) ? FG : BG);
      assert.ok((await count()) - before >= 3, 'each capture of the watch is in the history');
    });

    test('a board without a display answers "no display"; both captures are in the history', {
      timeout: 30_000,
    }, async () => {
      const r = await runMuster(['--manager', base, 'screen', '6-2-0', '-o', path.join(tmp, 'none.png')], {
        timeoutMs: 20_000,
      });
      assert.notEqual(r.code, 0);
      assert.match(r.output, /no display on this board/);
      assert.equal(existsSync(path.join(tmp, 'none.png')), false, 'no empty image is written');
      const h = await runMuster(['--manager', base, 'history', '--json'], { timeoutMs: 20_000 });
      const entries = (JSON.parse(h.output) as { history: { node: string; operation: string; result: number }[] })
        .history;
      assert.ok(entries.some((e) => e.node === '6-1-0' && e.operation === 'screen' && e.result === 0));
      assert.ok(entries.some((e) => e.node === '6-2-0' && e.operation === 'screen' && e.result === -1));
    });
  },
);
