/**
 * The access check on the real server (manager/auth/guard.ts, manager/routes/auth.ts, users.ts,
 * tokens.ts; docs/operations.md "Users and access"), with fastify.inject: every registered
 * /api/v1 route but POST /login answers 401 without credentials (enumerated from the route table,
 * so a new route cannot slip through) and declares a role; a route without one is refused at
 * registration; the check runs before the body is parsed; roles give 403; login sets the cookie
 * and locks out; tokens are capped by their creator's role, revoked and expired at once; a cookie
 * change needs the same origin; history records the authenticated name, not x-muster-user; the
 * first start creates admin with its password in a 0600 file, named in the log, never logged.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import pino from 'pino';
import { CONSOLE_PREFIX } from '../../common/api/console.js';
import { createHttpServer } from '../../common/http.js';
import { Access } from '../../manager/auth/access.js';
import { installAccessGuard } from '../../manager/auth/guard.js';
import { loadManagerConfig } from '../../manager/config.js';
import { API_PREFIX, buildApiServer, buildReportServer, buildServer } from '../../manager/server.js';
import { AUTH_DEFAULTS, principal, tokenHeaders } from '../../testkit/auth.js';
import { metric } from '../../testkit/process.js';
import { routeTable, samplePath, serverDeps } from '../../testkit/server.js';

const log = pino({ level: 'silent' });

async function server() {
  const d = serverDeps();
  const app = buildServer(d);
  await app.ready();
  const admin = await tokenHeaders(d.access, 'admin', 'admin');
  return {
    d,
    app,
    admin,
    close: async () => {
      await app.close();
      d.close();
    },
  };
}

describe('access check: the route table', () => {
  it('every /api/v1 route but POST /login declares a role and answers 401 without credentials', async () => {
    const { api, all } = await routeTable();
    assert.ok(api.length >= 25, `only ${api.length} API routes found`);
    const consoleRoutes = all.filter((x) => x.url.startsWith(`${CONSOLE_PREFIX}/`));
    for (const r of all.filter((x) => !x.url.startsWith(`${API_PREFIX}/`) && !x.url.startsWith(`${CONSOLE_PREFIX}/`)))
      assert.ok(
        ['/heartbeat', '/resource', '/alert', '/healthz', '/metrics', '/', '/assets/:file'].includes(r.url),
        `open route ${r.url}`,
      );
    const { app, close } = await server();
    // The console API (docs/dashboard.md "Console API"): the same check; a refusal is the seed's "NG".
    assert.ok(consoleRoutes.length >= 9, `only ${consoleRoutes.length} console routes`);
    for (const r of consoleRoutes) {
      assert.ok(['viewer', 'operator', 'admin', 'public'].includes(r.role ?? ''), `${r.method} ${r.url}: no role`);
      if (r.role === 'public') {
        assert.equal(`${r.method} ${r.url}`, 'POST /console/login');
        continue;
      }
      const res = await app.inject({ method: r.method as 'GET', url: samplePath(r.url), payload: { x: 1 } });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url}`);
      assert.equal(res.body, '"NG"');
    }
    // The dashboard's files are public and hold no data.
    for (const r of all.filter((x) => x.url === '/' || x.url === '/assets/:file')) assert.equal(r.role, 'public');
    for (const r of api) {
      assert.ok(['viewer', 'operator', 'admin', 'public'].includes(r.role ?? ''), `${r.method} ${r.url}: no role`);
      if (r.role === 'public') {
        assert.equal(`${r.method} ${r.url}`, 'POST /api/v1/login');
        continue;
      }
      const res = await app.inject({ method: r.method as 'GET', url: samplePath(r.url), payload: { x: 1 } });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url}`);
      assert.equal(res.headers['www-authenticate'], 'Bearer realm="muster"');
      assert.equal((res.json() as { error: string }).error, 'unauthorized');
    }
    await close();
  });

  it('a route registered without config.role is refused at registration (fail closed)', async () => {
    const app = createHttpServer(log, 1 << 20);
    const d = serverDeps();
    const bad: FastifyPluginAsyncTypebox = async (api) => {
      installAccessGuard(api, d.access);
      api.get('/new-thing', async () => ({ ok: true }));
    };
    await assert.rejects(async () => {
      await app.register(bad, { prefix: API_PREFIX });
      await app.ready();
    }, /GET \/api\/v1\/new-thing declares no config\.role/);
    d.close();
  });

  it('refuses before the body is parsed: a bad or huge body without credentials is 401, not 400 or 413', async () => {
    const { app, close } = await server();
    let r = await app.inject({ method: 'POST', url: '/api/v1/deployments', payload: '{not json' });
    assert.equal(r.statusCode, 401);
    r = await app.inject({ method: 'PUT', url: '/api/v1/alert-rules/x', payload: 'x'.repeat(2 << 20) });
    assert.equal(r.statusCode, 401);
    await close();
  });
});

describe('access check: roles, login, tokens', () => {
  it('viewer reads, gets 403 on deploy, query and rules; operator deploys; admin manages users and tokens', async () => {
    const { app, d, admin, close } = await server();
    const viewer = await tokenHeaders(d.access, 'vera', 'viewer');
    const operator = await tokenHeaders(d.access, 'otto', 'operator');
    assert.equal((await app.inject({ url: '/api/v1/nodes', headers: viewer })).statusCode, 200);
    const deploy = { node: '1-1-0', mode: 'stop', uuid: 'u1' };
    let r = await app.inject({ method: 'POST', url: '/api/v1/deployments', headers: viewer, payload: deploy });
    assert.equal(r.statusCode, 403);
    assert.deepEqual(r.json(), {
      error: 'forbidden',
      message: 'your role viewer cannot POST /api/v1/deployments (needs operator)',
    });
    r = await app.inject({ method: 'POST', url: '/api/v1/query', headers: viewer, payload: { url: '/heartbeat' } });
    assert.equal(r.statusCode, 403);
    const rule = { metric: 'cpu.temperature', op: '>', threshold: 80 };
    r = await app.inject({ method: 'PUT', url: '/api/v1/alert-rules/hot', headers: operator, payload: rule });
    assert.equal(r.statusCode, 403);
    r = await app.inject({ method: 'PUT', url: '/api/v1/alert-rules/hot', headers: admin, payload: rule });
    assert.equal(r.statusCode, 200);
    // The operator's deploy reaches the deployer (the node is unknown: 404), recorded as otto's.
    r = await app.inject({ method: 'POST', url: '/api/v1/deployments', headers: operator, payload: deploy });
    assert.notEqual(r.statusCode, 403);
    r = await app.inject({ method: 'GET', url: '/api/v1/users', headers: operator });
    assert.equal(r.statusCode, 403);
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/users',
      headers: admin,
      payload: { username: 'nina', password: 'nina-password', role: 'operator' },
    });
    assert.equal(r.statusCode, 201);
    assert.deepEqual(Object.keys((r.json() as { user: object }).user).sort(), [
      'created_at',
      'name',
      'role',
      'updated_at',
    ]);
    r = await app.inject({ url: '/api/v1/users', headers: admin });
    assert.deepEqual(
      (r.json() as { users: { name: string }[] }).users.map((u) => u.name),
      ['admin', 'nina', 'otto', 'vera'],
    );
    assert.ok(!r.body.includes('argon2'), 'no hash in the answer');
    await close();
  });

  it('history records the authenticated name; a forged x-muster-user is ignored', async () => {
    const { app, d, close } = await server();
    const operator = await tokenHeaders(d.access, 'otto', 'operator');
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/query',
      headers: { ...operator, 'x-muster-user': 'mallory' },
      payload: { url: '/heartbeat', wait_ms: 0 },
    });
    assert.equal(r.statusCode, 200, r.body);
    const h = (await app.inject({ url: '/api/v1/history?kind=operation', headers: operator })).json() as {
      history: { operation: string; who: string }[];
    };
    const q = h.history.find((e) => e.operation === 'query');
    assert.match(q?.who ?? '', /^otto\/otto-/);
    assert.ok(!JSON.stringify(h).includes('mallory'));
    await close();
  });

  it('login: a session token and an HttpOnly SameSite=Strict cookie; a wrong password is 401; logout ends it', async () => {
    const { app, d, admin, close } = await server();
    await d.access.addUser('lena', 'lena-password', 'viewer');
    let r = await app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'lena', password: 'nope' } });
    assert.equal(r.statusCode, 401);
    assert.deepEqual(r.json(), { error: 'unauthorized', message: 'wrong user name or password' });
    r = await app.inject({ method: 'POST', url: '/api/v1/login', payload: { username: 'ghost', password: 'nope' } });
    assert.deepEqual(r.json(), { error: 'unauthorized', message: 'wrong user name or password' });
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'lena', password: 'lena-password' },
    });
    assert.equal(r.statusCode, 200);
    const body = r.json() as { token: string; user: string; role: string; expires_at: string };
    assert.equal(body.user, 'lena');
    assert.equal(body.role, 'viewer');
    assert.ok(Date.parse(body.expires_at) > Date.now() + 11 * 3600_000);
    const cookie = r.headers['set-cookie'] as string;
    assert.match(cookie, new RegExp(`^muster_session=${body.token}; Path=/; Max-Age=\\d+; HttpOnly; SameSite=Strict$`));
    const bearer = { authorization: `Bearer ${body.token}` };
    r = await app.inject({ url: '/api/v1/whoami', headers: bearer });
    assert.deepEqual(r.json(), { user: 'lena', role: 'viewer', via: 'session' });
    r = await app.inject({ url: '/api/v1/whoami', headers: { cookie: `a=b; muster_session=${body.token}` } });
    assert.equal(r.statusCode, 200);
    // A password change by the admin ends lena's sessions.
    r = await app.inject({
      method: 'PUT',
      url: '/api/v1/users/lena/password',
      headers: admin,
      payload: { password: 'lena-password-2' },
    });
    assert.equal(r.statusCode, 204);
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: bearer })).statusCode, 401);
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'lena', password: 'lena-password-2' },
    });
    const again = { authorization: `Bearer ${(r.json() as { token: string }).token}` };
    r = await app.inject({ method: 'POST', url: '/api/v1/logout', headers: again });
    assert.equal(r.statusCode, 204);
    assert.match(r.headers['set-cookie'] as string, /^muster_session=; Path=\/; Max-Age=0;/);
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: again })).statusCode, 401);
    await close();
  });

  it('a cookie change needs the same origin (CSRF); a bearer change does not', async () => {
    const { app, d, close } = await server();
    await d.access.addUser('olga', 'olga-password', 'operator');
    const r0 = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'olga', password: 'olga-password' },
    });
    const token = (r0.json() as { token: string }).token;
    const cookie = `muster_session=${token}`;
    const q = { url: '/heartbeat', wait_ms: 0 };
    const post = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/api/v1/query', headers: { host: 'mgr:3926', ...headers }, payload: q });
    const r = await post({ cookie });
    assert.equal(r.statusCode, 403);
    assert.equal((r.json() as { error: string }).error, 'csrf');
    assert.equal((await post({ cookie, origin: 'http://evil.example' })).statusCode, 403);
    assert.equal((await post({ cookie, 'sec-fetch-site': 'cross-site', origin: 'http://mgr:3926' })).statusCode, 403);
    assert.equal((await post({ cookie, origin: 'http://mgr:3926' })).statusCode, 200);
    assert.equal((await post({ cookie, 'sec-fetch-site': 'same-origin' })).statusCode, 200);
    assert.equal((await post({ authorization: `Bearer ${token}` })).statusCode, 200);
    await close();
  });

  it('login lockout: 429 with Retry-After for the failing address, not for another; counted', async () => {
    const { app, d, close } = await server();
    await d.access.addUser('adam', 'adam-password', 'admin');
    const login = (password: string, ip: string) =>
      app.inject({ method: 'POST', url: '/api/v1/login', remoteAddress: ip, payload: { username: 'adam', password } });
    for (let i = 0; i < 5; i++) assert.equal((await login('wrong', '10.9.9.9')).statusCode, 401);
    const r = await login('adam-password', '10.9.9.9');
    assert.equal(r.statusCode, 429);
    assert.equal(r.headers['retry-after'], '1');
    assert.equal((r.json() as { error: string }).error, 'locked');
    assert.equal((await login('adam-password', '10.1.1.1')).statusCode, 200, 'another address logs in');
    const text = await d.metrics.metrics();
    assert.equal(metric(text, 'muster_manager_login_failures_total', { reason: 'bad_password' }), 5);
    assert.equal(metric(text, 'muster_manager_login_failures_total', { reason: 'locked' }), 1);
    await close();
  });

  it('login bounds: an oversized body is 413 and a too long password 400, counted, never hashed', async () => {
    const { app, d, close } = await server();
    let r = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'admin', password: 'x'.repeat(5000) },
    });
    assert.equal(r.statusCode, 413);
    r = await app.inject({
      method: 'POST',
      url: '/api/v1/login',
      payload: { username: 'admin', password: 'x'.repeat(300) },
    });
    assert.equal(r.statusCode, 400);
    const text = await d.metrics.metrics();
    assert.equal(metric(text, 'muster_manager_login_failures_total', { reason: 'too_large' }), 1);
    assert.equal(metric(text, 'muster_manager_login_failures_total', { reason: 'bad_body' }), 1);
    await close();
  });

  it('tokens: never above the creator role, capped by it later, revoked and expired at once', async () => {
    const { app, d, admin, close } = await server();
    let r = await app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: admin,
      payload: { name: 'ci', role: 'operator' },
    });
    assert.equal(r.statusCode, 201);
    const created = r.json() as { token: string; info: { prefix: string; role: string } };
    assert.equal(created.info.prefix, created.token.slice(0, 12));
    const ci = { authorization: `Bearer ${created.token}` };
    r = await app.inject({ url: '/api/v1/tokens', headers: admin });
    assert.ok(!r.body.includes(created.token), 'the list never shows a token');
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: ci })).json().role, 'operator');
    // An operator session cannot create an admin token (the route needs admin anyway): the cap is in Access.
    assert.throws(
      () => d.access.createToken(principal('admin', 'operator'), 'x', 'admin'),
      /more than your role operator/,
    );
    // The creator demoted: the token follows.
    await d.access.addUser('boss', 'boss-password', 'admin');
    const boss = await tokenHeaders(d.access, 'boss', 'admin');
    r = await app.inject({
      method: 'PUT',
      url: '/api/v1/users/admin/role',
      headers: boss,
      payload: { role: 'viewer' },
    });
    assert.equal(r.statusCode, 200);
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: ci })).json().role, 'viewer');
    // Revoked: refused at the next request.
    r = await app.inject({ method: 'DELETE', url: '/api/v1/tokens/ci', headers: boss });
    assert.equal(r.statusCode, 204);
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: ci })).statusCode, 401);
    // Expired.
    const short = d.access.createToken(principal('boss'), 'short', 'viewer', 20);
    const h = { authorization: `Bearer ${short.token}` };
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: h })).statusCode, 200);
    await new Promise((res) => setTimeout(res, 30));
    assert.equal((await app.inject({ url: '/api/v1/whoami', headers: h })).statusCode, 401);
    // The last admin cannot be removed or demoted.
    r = await app.inject({ method: 'DELETE', url: '/api/v1/users/boss', headers: boss });
    assert.equal(r.statusCode, 409);
    await close();
  });

  it('/metrics with http.metrics_auth needs a token of any role; /healthz and reports stay open', async () => {
    const d = serverDeps();
    const app = buildServer({ ...d, metricsAuth: true });
    await app.ready();
    const viewer = await tokenHeaders(d.access, 'vera', 'viewer');
    assert.equal((await app.inject({ url: '/metrics' })).statusCode, 401);
    assert.equal((await app.inject({ url: '/metrics', headers: { authorization: 'Bearer nope' } })).statusCode, 401);
    const r = await app.inject({ url: '/metrics', headers: viewer });
    assert.equal(r.statusCode, 200);
    assert.ok(!r.body.includes(viewer.authorization.slice(7)), 'no token in the metrics');
    assert.equal((await app.inject({ url: '/healthz' })).statusCode, 200);
    await app.close();
    d.close();
  });
});

describe('first start', () => {
  it('creates admin with a random password in <data_dir>/initial-admin-password (0600), logs where, never the password', async () => {
    const lines: string[] = [];
    const logged = pino({ level: 'info' }, { write: (s: string) => lines.push(s) });
    const d = serverDeps();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-first-'));
    const access = new Access(d.store, AUTH_DEFAULTS, logged);
    const file = await access.bootstrap(dir);
    assert.equal(file, path.join(dir, 'initial-admin-password'));
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const password = readFileSync(file, 'utf8').trim();
    assert.equal(password.length, 32);
    assert.deepEqual(
      access.listUsers().map((u) => [u.name, u.role]),
      [['admin', 'admin']],
    );
    assert.equal((await access.login('admin', password, '127.0.0.1')).ok, true);
    assert.ok(
      lines.some((l) => l.includes(file)),
      'the file is named in the log',
    );
    assert.ok(!lines.join('').includes(password), 'the password is not in the log');
    assert.equal(await access.bootstrap(dir), null, 'users exist: nothing done');
    // A provisioned file (a test, an installer) is used as it is.
    const d2 = serverDeps();
    const own = path.join(dir, 'provisioned');
    writeFileSync(own, 'provisioned-pw\n', { mode: 0o644 });
    const a2 = new Access(d2.store, { ...AUTH_DEFAULTS, initial_admin_password_file: own }, logged);
    await a2.bootstrap(dir);
    assert.equal(statSync(own).mode & 0o777, 0o600);
    assert.equal((await a2.login('admin', 'provisioned-pw', '127.0.0.1')).ok, true);
    d.close();
    d2.close();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('split listeners and their config', () => {
  it('the report listener serves no API; the API listener no report route; both /healthz', async () => {
    const d = serverDeps();
    const reports = buildReportServer(d);
    const api = buildApiServer(d);
    const headers = await tokenHeaders(d.access);
    assert.equal((await reports.inject({ url: '/api/v1/nodes', headers })).statusCode, 404);
    assert.equal((await reports.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await reports.inject({ url: '/metrics' })).statusCode, 200);
    assert.equal((await api.inject({ url: '/api/v1/nodes', headers })).statusCode, 200);
    assert.equal((await api.inject({ url: '/api/v1/nodes' })).statusCode, 401);
    assert.equal((await api.inject({ url: '/healthz' })).statusCode, 200);
    assert.equal((await api.inject({ url: '/metrics' })).statusCode, 404);
    assert.equal((await api.inject({ method: 'POST', url: '/heartbeat', payload: {} })).statusCode, 404);
    await reports.close();
    await api.close();
    d.close();
  });

  it('config: HTTPS needs its own API port and both files; the API port cannot be the report port', () => {
    const load = (...sets: string[]) => loadManagerConfig(undefined, sets, {});
    assert.equal(load().http.api.port, 0);
    assert.throws(() => load('http.api.tls.cert_file=/c.pem'), /set both cert_file and key_file/);
    assert.throws(
      () => load('http.api.tls.cert_file=/c.pem', 'http.api.tls.key_file=/k.pem'),
      /HTTPS needs the API on its own port/,
    );
    assert.throws(() => load('http.api.port=3926'), /same as http.port/);
    assert.equal(
      load('http.api.port=3443', 'http.api.tls.cert_file=/c.pem', 'http.api.tls.key_file=/k.pem').http.api.port,
      3443,
    );
    assert.equal(load().auth.session_ttl_ms, 43_200_000);
    assert.deepEqual(load().auth, AUTH_DEFAULTS, 'testkit mirrors the shipped defaults');
  });
});
