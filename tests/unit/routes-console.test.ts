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

  it('exec, screen, command_set, file: bodies validated, roles checked before anything runs', async () => {
    const good: [string, unknown, Record<string, string>, number][] = [
      ['/exec', { exec: 'cmd', args: ['a', 'b', 'c'], kwargs: { A: '1', B: '2', C: '3' } }, operator, 403],
      [
        '/command_set',
        { operation: 'add', exec: 'screenshot', argument_count: 1, generate_file: 'c:\\result' },
        admin,
        403,
      ],
      ['/file', { operation: 'add', node: ['1-1-0', '1-2-0'], file_num: 3, target_dir: 'c:\\files' }, operator, 403],
    ];
    for (const [url, body] of good) ng(await req('POST', url, viewer, body), 403, /cannot POST/);
    ng(await req('POST', '/command_set', operator, good[1]![1]), 403);
    const bad: [string, unknown][] = [
      ['/exec', { exec: 'cmd', args: 'a,b', kwargs: {} }],
      ['/exec', { exec: '', args: [], kwargs: {} }],
      ['/exec', { exec: 'cmd', args: Array(100).fill('x'), kwargs: {} }],
      ['/exec', { exec: 'cmd', args: [], kwargs: { A: 1 } }],
      ['/screen', {}],
      ['/screen', { node: 'no such/node' }],
      ['/command_set', { operation: 'rename', exec: 'x' }],
      ['/command_set', { operation: 'add', exec: 'x', argument_count: -2 }],
      ['/command_set', { operation: 'add', exec: 'x', content_b64: 5 }],
      ['/file', { operation: 'add', node: [], file_num: 1, target_dir: '/x' }],
      ['/file', { operation: 'add', node: ['1-1-0'], file_num: 1 }],
      ['/file', { operation: 'delete', node: ['1-1-0'], file_num: 1, target_dir: '/x', names: ['a/b'] }],
    ];
    for (const [url, body] of bad) ng(await req('POST', url, admin, body), 400);
    ng(await req('POST', '/exec', admin, '{'.repeat(100)), 400);
  });

  it('command_set: add and delete map onto /api/v1/commands; add needs the script', async () => {
    const script = Buffer.from('#!/bin/sh\necho "$@"\n').toString('base64');
    // The seed's body alone has no script: NG 400 naming the extension field.
    ng(
      await req('POST', '/command_set', admin, {
        operation: 'add',
        exec: 'screenshot',
        argument_count: 1,
        generate_file: '/tmp/r',
      }),
      400,
      /content_b64/,
    );
    const add = await req('POST', '/command_set', admin, {
      operation: 'add',
      exec: 'echoer',
      argument_count: 1,
      generate_file: '/tmp/result',
      content_b64: script,
    });
    assert.equal(add.statusCode, 200, add.body);
    assert.equal(add.body, '"OK"');
    const list = (await app.inject({ method: 'GET', url: '/api/v1/commands', headers: admin })).json();
    const entry = list.commands.find((c: { name: string }) => c.name === 'echoer');
    assert.equal(entry?.argument_count, 1);
    assert.equal(entry?.generate_file, '/tmp/result');
    // A bad name or script is the API's refusal, passed on.
    ng(await req('POST', '/command_set', admin, { operation: 'add', exec: '../x', content_b64: script }), 400);
    ng(await req('POST', '/command_set', admin, { operation: 'delete', exec: 'nothing' }), 404, /nothing/);
    const del = await req('POST', '/command_set', admin, { operation: 'delete', exec: 'echoer' });
    assert.equal(del.body, '"OK"');
    assert.ok(!(await app.inject({ method: 'GET', url: '/api/v1/commands', headers: admin })).json().commands.length);
  });

  it('exec: a task of the command on the target, waited for; NG with the task id when a board fails', async () => {
    const script = Buffer.from('#!/bin/sh\necho hi\n').toString('base64');
    assert.equal(
      (await req('POST', '/command_set', admin, { operation: 'add', exec: 'hello', content_b64: script })).body,
      '"OK"',
    );
    // An unknown command, a target matching nothing, a bad target: the API's 400.
    ng(await req('POST', '/exec', operator, { exec: 'nope', args: [], kwargs: {} }), 400, /no command nope/);
    ng(
      await req('POST', '/exec', operator, { exec: 'hello', args: [], kwargs: {}, target: '9-9-9' }),
      400,
      /matches no node/,
    );
    ng(await req('POST', '/exec', operator, { exec: 'hello', args: [], kwargs: {}, target: 'box=' }), 400, /target/);
    // These boards cannot be reached: the task runs and fails, "NG" 502 with its id.
    const r = await req('POST', '/exec', operator, { exec: 'hello', args: ['a'], kwargs: { A: '1' }, target: '1-1-0' });
    ng(r, 502, /task .* failed: 1 of 1 nodes failed \(1-1-0/);
    const id = String(r.headers['x-muster-task']);
    const task = (await app.inject({ method: 'GET', url: `/api/v1/tasks/${id}`, headers: viewer })).json().task;
    assert.deepEqual(task.nodes, ['1-1-0']);
    assert.deepEqual(task.steps, [{ command: 'hello', args: ['a'], kwargs: { A: '1' } }]);
    assert.match(task.who, /^otto\//, 'run as the caller');
  });

  it('screen: the node in the body; the API refusal passed on as NG', async () => {
    ng(await req('POST', '/screen', viewer, { node: '9-9-9' }), 404);
    // The board cannot be reached.
    ng(await req('POST', '/screen', viewer, { node: '1-1-0' }), 502, /unreachable/);
    ng(await req('POST', '/screen', {}, { node: '1-1-0' }), 401);
  });

  it('file: add pushes uploads to the nodes, delete removes names in target_dir; counts checked', async () => {
    const up = await app.inject({
      method: 'POST',
      url: '/api/v1/files/uploads?name=a.txt',
      headers: { ...operator, 'content-type': 'application/octet-stream' },
      payload: Buffer.from('hello\n'),
    });
    assert.equal(up.statusCode, 201, up.body);
    const upload = up.json().upload.id as string;
    const body = { operation: 'add', node: ['1-1-0'], file_num: 1, target_dir: '/srv/files', uploads: [upload] };
    ng(await req('POST', '/file', operator, { ...body, file_num: 2 }), 400, /file_num/);
    ng(await req('POST', '/file', operator, { ...body, node: ['7-7-7'] }), 404, /no node 7-7-7/);
    ng(await req('POST', '/file', operator, { ...body, uploads: ['nope'] }), 400, /upload/);
    ng(await req('POST', '/file', operator, { ...body, target_dir: 'c:\\files' }), 400, /to/);
    // The board cannot be reached: the push ends failed, NG 502 naming it.
    const r = await req('POST', '/file', operator, body);
    ng(r, 502, /1 of 1 boards failed \(1-1-0/);
    const push = (
      await app.inject({ method: 'GET', url: `/api/v1/files/pushes/${r.headers['x-muster-push']}`, headers: viewer })
    ).json().push;
    assert.equal(push.to, '/srv/files');
    assert.equal(push.target, '1-1-0');
    const del = {
      operation: 'delete',
      node: [...d.registry.nodes.keys()].sort(),
      file_num: 1,
      target_dir: '/srv/files',
      names: ['a.txt'],
    };
    ng(await req('POST', '/file', operator, { ...del, file_num: 3 }), 400, /file_num/);
    ng(await req('POST', '/file', operator, del), 502, /2 removals failed \(1-1-0 \/srv\/files\/a.txt/);
    ng(await req('POST', '/file', viewer, del), 403);
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
