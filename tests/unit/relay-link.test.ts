/**
 * The relay's link to the manager (agent/relay/link.ts, agent/relay/config.ts; docs/links.md "The
 * SSH relay") against a hand-written manager: the connection URL, framing validation (bad frames
 * ignored, a bad execute_command answered in the error shape without its values in the log), one
 * command id run once, results kept until acknowledged and resent after a reconnect; the config
 * refuses a short apiKey and an apiKey on the command line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { loadRelayConfig, type RelayConfig } from '../../agent/relay/config.js';
import { RelayLink } from '../../agent/relay/link.js';
import { ConfigError } from '../../common/config.js';
import { linkMessage } from '../../common/link.js';
import type { RelayExecuteData, RelayResultData } from '../../common/relay.js';

const KEY = 'relay-key-0123456789abcdefghijklmnop';

describe('relay config', () => {
  it('reads the apiKey from a file or the environment; refuses a short one and --set api_key', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-relaycfg-'));
    try {
      const file = path.join(dir, 'key');
      writeFileSync(file, `${KEY}\n`, { mode: 0o600 });
      const cfg = loadRelayConfig(undefined, [`api_key_file=${file}`], {});
      assert.equal(cfg.ssh.max_concurrent, 16);
      assert.equal(cfg.reconnect_interval_ms, 5000);
      assert.doesNotThrow(() => loadRelayConfig(undefined, [], { MUSTER_RELAY_API_KEY: KEY }));
      writeFileSync(file, 'short\n');
      assert.throws(() => loadRelayConfig(undefined, [`api_key_file=${file}`], {}), /at least 32 characters/);
      assert.throws(
        () => loadRelayConfig(undefined, [`api_key=${KEY}`], {}),
        (e) => e instanceof ConfigError && /ps/.test(e.message),
      );
      assert.throws(
        () => loadRelayConfig(undefined, ['manager_url=http://x/proxy'], { MUSTER_RELAY_API_KEY: KEY }),
        ConfigError,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('relay link', () => {
  let wss: WebSocketServer;
  let port = 0;
  const conns: { ws: WebSocket; url: URL }[] = [];
  const waiters: (() => void)[] = [];
  const logLines: string[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(c, _e, cb) {
        logLines.push(String(c));
        cb();
      },
    }),
  );
  const runs: RelayExecuteData[] = [];
  const release = new Map<string, () => void>();
  const pool = {
    run: (d: RelayExecuteData) =>
      new Promise<RelayResultData>((resolve) => {
        runs.push(d);
        const done = () =>
          resolve({ commandId: d.commandId, result: { stdout: `ran ${d.command}\n`, stderr: '', exitCode: 0 } });
        if (d.command === 'hold') release.set(d.commandId, done);
        else done();
      }),
  };
  let link: RelayLink;

  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    port = (wss.address() as AddressInfo).port;
    wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
      conns.push({ ws, url: new URL(req.url ?? '/', 'http://x') });
      for (const w of waiters.splice(0)) w();
    });
    const cfg: RelayConfig = {
      id: 'r1',
      manager_url: `ws://127.0.0.1:${port}/proxy`,
      api_key: '',
      api_key_file: '',
      tls_ca_file: '',
      reconnect_interval_ms: 200,
      ping_interval_ms: 10_000,
      max_message_bytes: 1 << 20,
      max_held_results: 3,
      ssh: {
        max_concurrent: 4,
        max_queued: 4,
        max_connections: 4,
        idle_close_ms: 1000,
        connect_timeout_ms: 1000,
        default_timeout_ms: 1000,
        max_output_bytes: 1024,
      },
      metrics: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' } as unknown as RelayConfig['log'],
    };
    link = new RelayLink(cfg, KEY, pool, new Registry(), log);
    link.start();
    await connection(0);
  });
  after(async () => {
    link.stop();
    await new Promise<void>((r) => wss.close(() => r()));
  });

  const connection = async (n: number) => {
    while (conns.length <= n) await new Promise<void>((r) => waiters.push(r));
    const c = conns[n] as { ws: WebSocket; url: URL };
    if (c.ws.readyState !== c.ws.OPEN) await new Promise((r) => c.ws.once('open', r));
    return c;
  };
  const next = (ws: WebSocket) =>
    new Promise<{ type: string; id: string; data: RelayResultData }>((r) =>
      ws.once('message', (b: Buffer) => r(JSON.parse(b.toString()))),
    );
  const exec = (id: string, command = 'uptime', extra: Record<string, unknown> = {}) =>
    JSON.stringify(
      linkMessage('execute_command', {
        commandId: id,
        serverId: 7,
        host: '10.0.0.5',
        port: 22,
        username: 'root',
        password: 'pw-never-logged',
        command,
        timeout: 1000,
        ...extra,
      }),
    );

  it('connects with proxyId, apiKey and an instanceId; runs a command and answers command_result', async () => {
    const { ws, url } = await connection(0);
    assert.equal(url.pathname, '/proxy');
    assert.equal(url.searchParams.get('proxyId'), 'r1');
    assert.equal(url.searchParams.get('apiKey'), KEY);
    assert.equal(url.searchParams.get('instanceId'), link.instanceId);
    const got = next(ws);
    ws.send(exec('c1'));
    const m = await got;
    assert.equal(m.type, 'command_result');
    assert.deepEqual(m.data, { commandId: 'c1', result: { stdout: 'ran uptime\n', stderr: '', exitCode: 0 } });
    ws.send(JSON.stringify(linkMessage('command_result_received', { success: true }, m.id)));
  });

  it('ignores bad frames; answers a bad execute_command in the error shape, its values kept out of the log', async () => {
    const { ws } = await connection(0);
    ws.send('{not json');
    ws.send(Buffer.from([0, 1]));
    ws.send(JSON.stringify({ no: 'envelope' }));
    ws.send(JSON.stringify(linkMessage('who_knows', {})));
    const got = next(ws);
    ws.send(exec('bad1', 'uptime', { port: 'twenty-two', password: 'pw-in-a-bad-message' }));
    const m = await got;
    assert.equal(m.data.commandId, 'bad1');
    assert.equal(m.data.result.exitCode, 1);
    assert.equal(m.data.result.stdout, '');
    assert.match(m.data.result.stderr, /bad execute_command: \/port/);
    assert.equal(m.data.failure, 'bad_request');
    assert.ok(!runs.some((r) => r.commandId === 'bad1'));
    const all = logLines.join('');
    assert.ok(!all.includes('pw-never-logged') && !all.includes('pw-in-a-bad-message') && !all.includes(KEY));
    ws.send(JSON.stringify(linkMessage('command_result_received', { success: true }, m.id)));
  });

  it('runs one command id once; keeps a result until acknowledged and resends it after a reconnect', async () => {
    const { ws } = await connection(0);
    ws.send(exec('c2', 'hold'));
    await new Promise((r) => setTimeout(r, 50));
    ws.send(exec('c2', 'hold')); // a repeat while running: nothing
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(runs.filter((r) => r.commandId === 'c2').length, 1);
    // The connection drops while the command runs; the result is produced meanwhile.
    ws.terminate();
    await new Promise((r) => setTimeout(r, 50));
    release.get('c2')?.();
    const { ws: ws2 } = await connection(1);
    const resent = await next(ws2);
    assert.equal(resent.type, 'command_result');
    assert.equal(resent.data.commandId, 'c2');
    // Not acknowledged: a repeated execute_command gets the same result again, not a second run.
    const again = next(ws2);
    ws2.send(exec('c2', 'hold'));
    assert.equal((await again).id, resent.id);
    assert.equal(runs.filter((r) => r.commandId === 'c2').length, 1);
    // Acknowledged: not sent after the next reconnect.
    ws2.send(JSON.stringify(linkMessage('command_result_received', { success: true }, resent.id)));
    await new Promise((r) => setTimeout(r, 50));
    ws2.terminate();
    const { ws: ws3 } = await connection(2);
    const quiet = await Promise.race([
      next(ws3).then(() => 'message'),
      new Promise((r) => setTimeout(() => r('quiet'), 300)),
    ]);
    assert.equal(quiet, 'quiet');
  });
});
