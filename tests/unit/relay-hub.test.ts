/**
 * The manager's side of the SSH relay (docs/links.md "The SSH relay"): the /proxy endpoint
 * (manager/relay/hub.ts) with a real HTTP server and a hand-written relay speaking the wire
 * format (apiKey checks, the allowlist, results once, a restarted relay, timeouts, bounds, bad
 * frames), the sealed credentials (manager/relay/secrets.ts), the server: and relay: targets
 * (common/target.ts), and the REST routes' refusals and answers (never a secret).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import { linkMessage } from '../../common/link.js';
import type { RelayExecuteData } from '../../common/relay.js';
import { parseTarget, selectServers, serverTerms, TargetError } from '../../common/target.js';
import { addressAllowed, hashRelayKey, RelayHub } from '../../manager/relay/hub.js';
import { SecretBox, SecretError } from '../../manager/relay/secrets.js';
import { buildServer } from '../../manager/server.js';
import { Store } from '../../manager/store/store.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { serverDeps, TEST_RELAY_CONFIG, TEST_STORE_CONFIG } from '../../testkit/server.js';

const log = pino({ level: 'silent' });
const KEY = 'k'.repeat(40);

describe('sealed credentials', () => {
  it('round-trips, bound to the server name; another key or name does not open it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-box-'));
    try {
      const box = SecretBox.open(dir);
      assert.equal(statSync(path.join(dir, 'relay.key')).mode & 0o777, 0o600);
      const sealed = box.seal('hunter2-secret', 'web1');
      assert.ok(!sealed.includes('hunter2'));
      assert.notEqual(box.seal('hunter2-secret', 'web1'), sealed, 'a fresh IV each time');
      assert.equal(box.open(sealed, 'web1'), 'hunter2-secret');
      assert.equal(SecretBox.open(dir).open(sealed, 'web1'), 'hunter2-secret', 'the key file is kept');
      assert.throws(() => box.open(sealed, 'web2'), SecretError);
      assert.throws(() => SecretBox.withKey(Buffer.alloc(32, 1)).open(sealed, 'web1'), SecretError);
      assert.throws(() => box.open(`${sealed.slice(0, -4)}AAAA`, 'web1'), SecretError);
      assert.throws(() => box.open('v1:AAAA', 'web1'), SecretError);
      assert.throws(() => box.open('plain', 'web1'), SecretError);
      writeFileSync(path.join(dir, 'relay.key'), Buffer.alloc(16));
      assert.throws(() => SecretBox.open(dir), /16 bytes, 32 expected/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('relay allowlists and targets', () => {
  it('matches addresses against CIDRs (IPv4, IPv6, mapped); [] allows any; junk allows nothing', () => {
    assert.equal(addressAllowed([], '1.2.3.4'), true);
    assert.equal(addressAllowed(['10.0.0.0/8'], '10.9.8.7'), true);
    assert.equal(addressAllowed(['10.0.0.0/8'], '::ffff:10.9.8.7'), true);
    assert.equal(addressAllowed(['10.0.0.0/8'], '11.0.0.1'), false);
    assert.equal(addressAllowed(['10.0.0.5'], '10.0.0.5'), true);
    assert.equal(addressAllowed(['10.0.0.5'], '10.0.0.6'), false);
    assert.equal(addressAllowed(['fd00::/8'], 'fd12::1'), true);
    assert.equal(addressAllowed(['garbage', '10.0.0.0/99'], '10.0.0.1'), false);
    assert.equal(addressAllowed(['10.0.0.0/8'], 'not-an-ip'), false);
  });

  it('server: and relay: targets select servers and nothing else', () => {
    const servers = [
      { name: 'web1', relay: 'r1' },
      { name: 'web2', relay: 'r1' },
      { name: 'db1', relay: 'r2' },
    ];
    const sel = (t: string) => {
      const terms = serverTerms(parseTarget(t));
      return terms ? selectServers(terms, servers).map((s) => s.name) : null;
    };
    assert.deepEqual(sel('server:web1'), ['web1']);
    assert.deepEqual(sel('server:web*'), ['web1', 'web2']);
    assert.deepEqual(sel('relay:r1'), ['web1', 'web2']);
    assert.deepEqual(sel('relay:r2,server:web2'), ['web2', 'db1']);
    assert.deepEqual(sel('relay:r1 server:*2'), ['web2']);
    assert.equal(sel('1-1-0'), null);
    assert.equal(sel('all'), null);
    assert.throws(() => sel('server:web1 box=1'), TargetError);
    assert.throws(() => sel('server:web1,1-1-0'), TargetError);
    assert.throws(() => sel('server:'), TargetError);
  });
});

describe('the /proxy endpoint', () => {
  let dir: string;
  let store: Store;
  let hub: RelayHub;
  let http: Server;
  let url: string;
  const metrics = new Registry();

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'muster-relayhub-'));
    store = Store.open(dir, TEST_STORE_CONFIG, log, metrics);
    hub = new RelayHub({
      cfg: { ...TEST_RELAY_CONFIG, max_pending_commands: 2, max_message_bytes: 4096, command_grace_ms: 0 },
      store,
      log,
      metrics,
    });
    store.relays.addRelay({ id: 'r1', hash: hashRelayKey(KEY), allow: [], created_by: 't', created_at: 0 });
    store.relays.addRelay({
      id: 'far',
      hash: hashRelayKey(KEY),
      allow: ['192.0.2.0/24'],
      created_by: 't',
      created_at: 0,
    });
    http = createServer();
    hub.attach(http);
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/proxy`;
  });
  after(async () => {
    await hub.close();
    http.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Connects as a relay; resolves with the socket once open, or the refusal's status. */
  const connect = (id: string, key: string, instance = 'i1') =>
    new Promise<WebSocket | number>((resolve) => {
      const u = new URL(url);
      u.searchParams.set('proxyId', id);
      u.searchParams.set('apiKey', key);
      u.searchParams.set('instanceId', instance);
      const ws = new WebSocket(u);
      ws.on('open', () => resolve(ws));
      ws.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(0));
    });
  const next = (ws: WebSocket) =>
    new Promise<{ type: string; id: string; data: Record<string, unknown> }>((r) =>
      ws.once('message', (b: Buffer) => r(JSON.parse(b.toString()))),
    );
  const cmd = (id: string, timeout = 5000): RelayExecuteData => ({
    commandId: id,
    serverId: 1,
    host: '10.0.0.5',
    port: 22,
    username: 'root',
    password: 'pw',
    command: 'uptime',
    timeout,
  });
  const counter = async (name: string, labels: string) =>
    (await metrics.getSingleMetricAsString(name))
      .split('\n')
      .find((l) => !l.startsWith('#') && l.includes(`"${labels}"`)) ?? '';

  it('refuses a short key, a wrong key, an unknown relay, an address outside the allowlist', async () => {
    assert.equal(await connect('r1', KEY.slice(0, 31)), 401);
    assert.equal(await connect('r1', 'x'.repeat(40)), 401);
    assert.equal(await connect('nobody', KEY), 401);
    assert.equal(await connect('../etc', KEY), 401);
    assert.equal(await connect('far', KEY), 403);
    assert.match(await counter('muster_manager_relay_refused_total', 'short_key'), / 1$/);
    assert.match(await counter('muster_manager_relay_refused_total', 'bad_key'), / 3$/);
    assert.match(await counter('muster_manager_relay_refused_total', 'address'), / 1$/);
  });

  it('sends execute_command, records a result once, acknowledges every copy', async () => {
    const ws = (await connect('r1', KEY)) as WebSocket;
    assert.ok(ws instanceof WebSocket);
    assert.equal(hub.connected('r1'), true);
    const got = next(ws);
    const outcome = hub.execute('r1', cmd('c1'));
    const msg = await got;
    assert.equal(msg.type, 'execute_command');
    assert.deepEqual(msg.data, cmd('c1'));
    const result = linkMessage('command_result', {
      commandId: 'c1',
      result: { stdout: 'up\n', stderr: '', exitCode: 0 },
      hostKey: `SHA256:${'A'.repeat(43)}`,
    });
    const ack = next(ws);
    ws.send(JSON.stringify(result));
    const o = await outcome;
    assert.ok(o.ok);
    assert.equal(o.result.result.stdout, 'up\n');
    const a = await ack;
    assert.deepEqual([a.type, a.id, a.data], ['command_result_received', result.id, { success: true }]);
    // The same result again (a resend after a reconnect): acknowledged, counted, not recorded.
    const ack2 = next(ws);
    ws.send(JSON.stringify(result));
    assert.equal((await ack2).type, 'command_result_received');
    assert.match(await metrics.getSingleMetricAsString('muster_manager_relay_duplicate_results_total'), / 1$/);
    ws.close();
  });

  it('ignores bad frames (not JSON, binary, not an envelope, bad data) without dropping the connection', async () => {
    const ws = (await connect('r1', KEY)) as WebSocket;
    const got = next(ws);
    const outcome = hub.execute('r1', cmd('c2'));
    await got;
    ws.send('{not json');
    ws.send(Buffer.from([1, 2, 3]));
    ws.send(JSON.stringify({ hello: 1 }));
    ws.send(JSON.stringify(linkMessage('command_result', { commandId: 'c2', result: { stdout: 1 } })));
    ws.send(JSON.stringify(linkMessage('something_else', {})));
    ws.send(
      JSON.stringify(
        linkMessage('command_result', { commandId: 'c2', result: { stdout: '', stderr: 'boom', exitCode: 1 } }),
      ),
    );
    const o = await outcome;
    assert.ok(o.ok);
    assert.equal(o.result.result.stderr, 'boom');
    assert.match(await counter('muster_manager_relay_messages_total', 'invalid'), / [3-9]$/);
    ws.close();
  });

  it('a relay that restarts (another instanceId) fails what the old process ran; a silent one times out', async () => {
    const ws = (await connect('r1', KEY, 'old')) as WebSocket;
    const got = next(ws);
    const lost = hub.execute('r1', cmd('c3'));
    await got;
    ws.terminate();
    const ws2 = (await connect('r1', KEY, 'new')) as WebSocket;
    const o = await lost;
    assert.ok(!o.ok);
    assert.equal(o.reason, 'lost');
    const t0 = Date.now();
    const silent = await hub.execute('r1', cmd('c4', 300));
    assert.ok(!silent.ok);
    assert.equal(silent.reason, 'timeout');
    assert.ok(Date.now() - t0 >= 250);
    ws2.close();
  });

  it('bounds: pending commands per relay, message size; an unconnected relay is unreachable', async () => {
    const ws = (await connect('r1', KEY)) as WebSocket;
    const p1 = hub.execute('r1', cmd('p1', 2000));
    const p2 = hub.execute('r1', cmd('p2', 2000));
    const p3 = await hub.execute('r1', cmd('p3', 2000));
    assert.ok(!p3.ok);
    assert.equal(p3.reason, 'refused');
    const dup = await hub.execute('r1', cmd('p1', 2000));
    assert.ok(!dup.ok && dup.reason === 'refused');
    const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    ws.send('x'.repeat(8192));
    assert.equal(await closed, 1009);
    await Promise.all([p1, p2]);
    const none = await hub.execute('nobody', cmd('p4'));
    assert.ok(!none.ok && none.reason === 'unreachable');
  });
});

describe('relay REST routes', () => {
  it('adds relays and servers (admin), lists them without secrets, refuses bad input', async () => {
    const d = serverDeps();
    const app = buildServer(d);
    await app.ready();
    try {
      const admin = await tokenHeaders(d.access, 'admin', 'admin');
      const viewer = await tokenHeaders(d.access, 'viewer', 'viewer');
      const post = (url: string, payload: object, headers = admin) =>
        app.inject({ method: 'POST', url, payload, headers });
      let r = await post('/api/v1/relays', { id: 'r1', allow: ['10.0.0.0/8'] }, viewer);
      assert.equal(r.statusCode, 403);
      r = await post('/api/v1/relays', { id: 'r1', allow: ['10.0.0.0/99'] });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/relays', { id: 'bad id' });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/relays', { id: 'r1', allow: ['10.0.0.0/8'] });
      assert.equal(r.statusCode, 201, r.body);
      const apiKey = (r.json() as { apiKey: string }).apiKey;
      assert.ok(apiKey.length >= 32);
      assert.equal(d.store.relays.relay('r1')?.hash, hashRelayKey(apiKey));
      assert.equal((await post('/api/v1/relays', { id: 'r1' })).statusCode, 409);

      const server = { name: 'web1', relay: 'r1', host: '10.0.0.5', username: 'root' };
      r = await post('/api/v1/servers', {
        ...server,
        password: 'pw-secret-1',
        privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----${'x'.repeat(40)}`,
      });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', server);
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', { ...server, privateKey: 'not a key at all, but long enough to pass' });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', { ...server, relay: 'r9', password: 'pw-secret-1' });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', { ...server, host: 'a b', password: 'pw-secret-1' });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', { ...server, password: 'pw-secret-1', extra: 1 });
      assert.equal(r.statusCode, 400);
      r = await post('/api/v1/servers', { ...server, password: 'pw-secret-1' });
      assert.equal(r.statusCode, 201, r.body);
      assert.equal((r.json() as { server: { port: number; target: string } }).server.target, 'server:web1');
      assert.ok(!r.body.includes('pw-secret-1'));
      const row = d.store.relays.server('web1');
      assert.ok(row && !row.secret.includes('pw-secret-1'));
      const list = await app.inject({ method: 'GET', url: '/api/v1/servers', headers: viewer });
      assert.equal(list.statusCode, 200);
      assert.ok(!list.body.includes('pw-secret-1') && !list.body.includes(row.secret));
      const relays = await app.inject({ method: 'GET', url: '/api/v1/relays', headers: viewer });
      const rv = (relays.json() as { relays: { id: string; connected: boolean; servers: number }[] }).relays;
      assert.deepEqual(
        rv.map((x) => [x.id, x.connected, x.servers]),
        [['r1', false, 1]],
      );
      assert.ok(!relays.body.includes(apiKey));
      r = await post('/api/v1/servers/web1/trust', {});
      assert.equal(r.statusCode, 200);
      assert.equal((await post('/api/v1/servers/nope/trust', {})).statusCode, 404);
      assert.equal((await app.inject({ method: 'DELETE', url: '/api/v1/relays/r1', headers: admin })).statusCode, 204);
      assert.equal(d.store.relays.server('web1'), undefined, 'its servers went with it');
      assert.equal(
        (await app.inject({ method: 'DELETE', url: '/api/v1/servers/web1', headers: admin })).statusCode,
        404,
      );
    } finally {
      await app.close();
      d.close();
    }
  });
});
