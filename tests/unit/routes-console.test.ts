/**
 * The console API of the original specification (manager/routes/console.ts, docs/dashboard.md
 * "Console API") on the real server with fastify.inject: each endpoint with good and bad input,
 * the seed's exact bodies ("OK"/"NG", strings in status, YYYY/MM/DD and HH:MM:SS:mmm), login with
 * the session cookie and its CSRF rule, roles, and "NG" with the reason in X-Muster-Error for every
 * refusal.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { FastifyInstance } from 'fastify';
import {
  CONSOLE_DATE_PATTERN,
  CONSOLE_TIME_PATTERN,
  type ConsoleAlertRecord,
  type ConsoleNodeRecord,
  type ConsoleStatus,
} from '../../common/api/console.js';
import { alertRecord, consoleTime, joinArguments, nodeRecord } from '../../manager/routes/console.js';
import { buildServer } from '../../manager/server.js';
import { tokenHeaders } from '../../testkit/auth.js';
import { fleetHeartbeat, fleetResource } from '../../testkit/fleet.js';
import { serverDeps } from '../../testkit/server.js';

describe('console API /console/', () => {
  let d: ReturnType<typeof serverDeps>;
  let app: FastifyInstance;
  let admin: { authorization: string };
  let viewer: { authorization: string };
  let operator: { authorization: string };

  before(async () => {
    d = serverDeps();
    app = buildServer(d);
    await app.ready();
    admin = await tokenHeaders(d.access, 'admin', 'admin');
    viewer = await tokenHeaders(d.access, 'vera', 'viewer');
    operator = await tokenHeaders(d.access, 'otto', 'operator');
    // Two boards with reports, and their history and alerts.
    for (const i of [0, 1]) {
      const hb = fleetHeartbeat(i);
      assert.equal(d.ingest.heartbeat(hb.data), null);
      d.ingest.resource(fleetResource(i).data);
    }
    const at = Date.parse('2022-01-02T20:20:20.020Z');
    d.store.addHistory({
      at,
      node: '1-1-0',
      kind: 'operation',
      operation: 'deploy.start',
      args: { uuid: 'u1', file: 'a.tgz' },
      result: 0,
      message: 'ok',
      who: 'admin',
    });
    d.store.addHistory({
      at: at + 1,
      node: '1-1-0',
      kind: 'operation',
      operation: 'deploy.stop',
      args: { uuid: 'u1' },
      result: 3,
      message: 'no',
      who: 'admin',
    });
    d.alerts.raise(
      {
        kind: 'node_offline',
        rule: 'node_offline',
        severity: 'critical',
        node: '1-1-0',
        message: 'node 1-1-0 offline',
      },
      at,
    );
  });
  after(async () => {
    await app.close();
    d.close();
  });

  const req = (method: 'GET' | 'POST', url: string, headers: Record<string, string> = admin, payload?: unknown) =>
    app.inject({
      method,
      url: `/console${url}`,
      headers,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
  const ng = (
    r: { statusCode: number; body: string; headers: Record<string, unknown> },
    status: number,
    why?: RegExp,
  ) => {
    assert.equal(r.statusCode, status, r.body);
    assert.equal(r.body, '"NG"');
    assert.match(String(r.headers['content-type']), /application\/json/);
    if (why) assert.match(String(r.headers['x-muster-error']), why);
  };

  it('login: "OK" with the session cookie; "NG" for a wrong password, a bad body, a huge body', async () => {
    await d.access.addUser('carla', 'carla-password', 'viewer');
    const good = await app.inject({
      method: 'POST',
      url: '/console/login',
      payload: { username: 'carla', password: 'carla-password' },
    });
    assert.equal(good.statusCode, 200);
    assert.equal(good.body, '"OK"');
    const cookie = String(good.headers['set-cookie']);
    assert.match(cookie, /^muster_session=mss_[^;]+; Path=\/; Max-Age=\d+; HttpOnly; SameSite=Strict$/);
    // The cookie works for the console and the API.
    const jar = { cookie: cookie.split(';')[0] as string };
    assert.equal((await req('GET', '/status', jar)).statusCode, 200);
    assert.equal((await app.inject({ method: 'GET', url: '/api/v1/whoami', headers: jar })).json().user, 'carla');
    // A cookie change from another origin is refused (CSRF); the same origin passes.
    ng(await req('POST', '/logout', { ...jar, origin: 'http://evil.example' }), 403, /same origin/);
    const out = await req('POST', '/logout', { ...jar, 'sec-fetch-site': 'same-origin' });
    assert.equal(out.body, '"OK"');
    ng(await req('GET', '/status', jar), 401);

    ng(
      await app.inject({
        method: 'POST',
        url: '/console/login',
        payload: { username: 'carla', password: 'wrong-password' },
      }),
      401,
      /wrong user name or password/,
    );
    ng(await app.inject({ method: 'POST', url: '/console/login', payload: { username: 'carla' } }), 400, /password/);
    ng(
      await app.inject({
        method: 'POST',
        url: '/console/login',
        payload: { username: 'carla', password: 'x', extra: 1 },
      }),
      400,
    );
    ng(
      await app.inject({
        method: 'POST',
        url: '/console/login',
        headers: { 'content-type': 'application/json' },
        payload: '{not json',
      }),
      400,
    );
    ng(
      await app.inject({
        method: 'POST',
        url: '/console/login',
        payload: { username: 'carla', password: 'p'.repeat(5000) },
      }),
      413,
    );
  });

  it('status: every node with nodename, memory_used, memory_max and cpu as strings', async () => {
    const r = await req('GET', '/status', viewer);
    assert.equal(r.statusCode, 200);
    const body = r.json() as ConsoleStatus;
    assert.deepEqual(Object.keys(body), ['nodes']);
    assert.equal(body.nodes.length, 2);
    for (const n of body.nodes) {
      assert.deepEqual(Object.keys(n), ['nodename', 'memory_used', 'memory_max', 'cpu']);
      for (const v of Object.values(n)) assert.equal(typeof v, 'string');
      assert.match(n.memory_used, /^\d+$/);
      assert.ok(Number(n.memory_used) <= Number(n.memory_max));
      assert.match(n.cpu, /^\d+(\.\d+)?$/);
    }
    const first = d.registry.nodes.get(body.nodes[0]!.nodename);
    assert.ok(first, 'nodename is the node id');
    ng(await req('GET', '/status', {}), 401, /not logged in/);
    ng(await req('GET', '/status', { authorization: 'Bearer mst_00000000_AAAA' }), 401);
  });

  it('node_history: the seed records, newest first, with filters; bad queries are NG 400', async () => {
    const r = await req('GET', '/node_history?node=1-1-0', viewer);
    assert.equal(r.statusCode, 200);
    const list = r.json() as ConsoleNodeRecord[];
    const stop = list.find((x) => x.operation === 'deploy.stop');
    const start = list.find((x) => x.operation === 'deploy.start');
    assert.deepEqual(start, {
      node: '1-1-0',
      date: '2022/01/02',
      timestamp: '20:20:20:020',
      operation: 'deploy.start',
      arguments: 'uuid=u1,file=a.tgz',
      result: 'OK',
    });
    assert.equal(stop?.result, 'NG');
    assert.ok(list.indexOf(stop!) < list.indexOf(start!), 'newest first');
    for (const x of list) {
      assert.match(x.date, new RegExp(CONSOLE_DATE_PATTERN));
      assert.match(x.timestamp, new RegExp(CONSOLE_TIME_PATTERN));
    }
    assert.equal((await req('GET', '/node_history?limit=1', viewer)).json().length, 1);
    ng(await req('GET', '/node_history?limit=0', viewer), 400, /limit/);
    ng(await req('GET', '/node_history?limit=5000', viewer), 400);
    ng(await req('GET', '/node_history?node=../etc', viewer), 400);
    ng(await req('GET', '/node_history?bogus=1', viewer), 400);
  });

  it('alert_history: disconnection for an offline node, with content; bad queries NG', async () => {
    const r = await req('GET', '/alert_history', viewer);
    assert.equal(r.statusCode, 200);
    const list = r.json() as ConsoleAlertRecord[];
    assert.deepEqual(
      list.find((a) => a.node === '1-1-0'),
      {
        node: '1-1-0',
        date: '2022/01/02',
        timestamp: '20:20:20:020',
        alert: 'disconnection',
        content: 'node 1-1-0 offline',
      },
    );
    assert.deepEqual((await req('GET', '/alert_history?node=9-9-9', viewer)).json(), []);
    ng(await req('GET', '/alert_history?before=abc', viewer), 400);
  });

  it('exec, screen, command_set, file: bodies validated, roles checked, NG 501 until the services exist', async () => {
    const good: [string, unknown, Record<string, string>][] = [
      ['/exec', { exec: 'cmd', args: ['a', 'b', 'c'], kwargs: { A: '1', B: '2', C: '3' } }, operator],
      ['/screen', { node: '1-1-0' }, operator],
      ['/command_set', { operation: 'add', exec: 'screenshot', argument_count: 1, generate_file: 'c:\\result' }, admin],
      ['/file', { operation: 'add', node: ['1-1-0', '1-2-0'], file_num: 3, target_dir: 'c:\\files' }, operator],
    ];
    for (const [url, body, who] of good) {
      ng(await req('POST', url, viewer, body), 403, /cannot POST/);
      ng(await req('POST', url, who, body), 501, /not have yet/);
    }
    ng(await req('POST', '/command_set', operator, good[2]![1]), 403);
    const bad: [string, unknown][] = [
      ['/exec', { exec: 'cmd', args: 'a,b', kwargs: {} }],
      ['/exec', { exec: '', args: [], kwargs: {} }],
      ['/exec', { exec: 'cmd', args: Array(100).fill('x'), kwargs: {} }],
      ['/exec', { exec: 'cmd', args: [], kwargs: { A: 1 } }],
      ['/screen', {}],
      ['/screen', { node: 'no such/node' }],
      ['/command_set', { operation: 'rename', exec: 'x' }],
      ['/command_set', { operation: 'add', exec: 'x', argument_count: -1 }],
      ['/file', { operation: 'add', node: [], file_num: 1, target_dir: '/x' }],
      ['/file', { operation: 'add', node: ['1-1-0'], file_num: 1 }],
    ];
    for (const [url, body] of bad) ng(await req('POST', url, admin, body), 400);
    ng(await req('POST', '/exec', admin, '{'.repeat(100)), 400);
  });

  it('an unknown console path is NG 404', async () => {
    ng(await req('GET', '/nothing', admin), 404, /no console route/);
  });

  it('the mapping helpers', () => {
    assert.deepEqual(consoleTime('2026-12-01T03:04:05.006Z'), { date: '2026/12/01', timestamp: '03:04:05:006' });
    assert.equal(joinArguments(null), '');
    assert.equal(joinArguments({ a: 'x', b: 2, c: { d: 1 } }), 'a=x,b=2,c={"d":1}');
    const h = {
      id: 1,
      at: '2022-01-02T00:00:00.000Z',
      node: null,
      kind: 'component' as const,
      operation: 'FAILED',
      args: null,
      result: null,
      message: null,
      who: 'manager',
      ref: null,
    };
    assert.equal(nodeRecord(h).result, 'NG');
    assert.equal(nodeRecord({ ...h, operation: 'RUNNING' }).result, 'OK');
    assert.equal(nodeRecord(h).node, '');
    const a = alertRecord({
      id: 1,
      kind: 'threshold',
      rule: 'cpu_hot',
      severity: 'warning',
      node: null,
      metric: 'cpu.temperature',
      instance: null,
      value: 90,
      threshold: 85,
      op: '>=',
      message: 'hot',
      source: 'manager',
      state: 'open',
      first_seen: '2022-01-02T00:00:00.000Z',
      last_seen: '2022-01-02T00:00:00.000Z',
      resolved_at: null,
    });
    assert.equal(a.alert, 'cpu_hot');
    assert.equal(a.node, '');
  });
});
