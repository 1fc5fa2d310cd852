/**
 * Access control end to end (issue 11; docs/operations.md "Users and access"): a real manager and
 * a real agent on 127.0.0.1 (multicast on the loopback, ports picked for this file).
 *
 * - Without credentials every /api/v1 route of the registered route table (testkit/server.ts, the
 *   same build as the daemon's) answers 401; the protocol routes and /healthz stay open.
 * - A viewer gets 403 on deploy and rule changes; an operator deploys to the real agent (the
 *   bundle cannot be fetched, so the agent refuses it) and the history names the operator, not a
 *   forged x-muster-user; an admin manages users.
 * - A revoked token stops working at once, an expired one too; the login lockout bites and ends.
 * - The CLI: muster login then muster nodes; a wrong password exits non-zero with a clear message;
 *   the token file is 0600 in a 0700 directory; the initial password file is 0600 and its content
 *   is in no log.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import type { NodeSummary } from '../../manager/views.js';
import { routeTable, samplePath } from '../../testkit/server.js';
import {
  freePort,
  getJson,
  type Proc,
  runMuster,
  sets,
  startMuster,
  startProcess,
  testAdmin,
  waitFor,
} from '../helpers/daemons.js';

const IFACE = '127.0.0.1';
const NODE = '7-4-0';
const DEPLOY_TOKEN = 'access-test-deploy-token';

describe('access control: a manager and an agent on 127.0.0.1', () => {
  let tmp: string;
  let base: string;
  let manager: Proc;
  let agent: Proc;
  let adminAuth: Record<string, string>;
  const logs = () => `--- manager:\n${manager.output()}\n--- agent:\n${agent.output()}`;

  /** A request to the API as given (no token added); the status and the JSON body (null if empty). */
  const call = async (method: string, p: string, headers: Record<string, string> = {}, body?: unknown) => {
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown> | null, res };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const login = async (username: string, password: string) => call('POST', '/api/v1/login', {}, { username, password });
  /** A token of a new user with `role` (the admin adds the user, the user logs in). */
  const userToken = async (name: string, role: string) => {
    const add = await call('POST', '/api/v1/users', adminAuth, { username: name, password: `${name}-password`, role });
    assert.equal(add.status, 201, JSON.stringify(add.body));
    const r = await login(name, `${name}-password`);
    assert.equal(r.status, 200);
    return bearer(String(r.body?.token));
  };

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-access-'));
    const httpPort = await freePort();
    const servicePort = await freePort();
    const mcastPort = await freePort();
    base = `http://127.0.0.1:${httpPort}`;
    manager = startMuster([
      'manager',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'http.host': '127.0.0.1',
        'http.port': httpPort,
        'query.heartbeat_interval_ms': '500',
        'query.resource_interval_ms': '1000',
        'deploy.token': DEPLOY_TOKEN,
        'deploy.token_file': '',
        'auth.lockout.user_failures': 3,
        'auth.lockout.address_failures': 100,
        'auth.lockout.base_ms': 1500,
        data_dir: path.join(tmp, 'manager'),
      }),
    ]);
    agent = startMuster([
      'agent',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'service.host': '127.0.0.1',
        'service.port': servicePort,
        'identity.box_id': 7,
        'identity.slot_id': 4,
        'identity.cpu_id': 0,
        'auth.token': DEPLOY_TOKEN,
        'auth.token_file': '',
        data_dir: path.join(tmp, 'agent'),
      }),
    ]);
    await waitFor('the manager', async () => (await fetch(`${base}/healthz`)).ok, 20_000);
    const r = await login(testAdmin().user, testAdmin().password);
    assert.equal(r.status, 200, logs());
    adminAuth = bearer(String(r.body?.token));
  });

  after(async () => {
    await agent?.stop();
    await manager?.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('without credentials every /api/v1 route of the route table is 401; protocol and health stay open', async () => {
    const { api } = await routeTable();
    assert.ok(api.length >= 25);
    for (const r of api) {
      if (r.role === 'public') continue;
      const res = await call(r.method, samplePath(r.url), {}, r.method === 'GET' ? undefined : {});
      assert.equal(res.status, 401, `${r.method} ${r.url}`);
      assert.equal(res.res.headers.get('www-authenticate'), 'Bearer realm="muster"');
      assert.equal(res.body?.error, 'unauthorized');
      const bad = await call(r.method, samplePath(r.url), bearer(`mst_00000000_${'A'.repeat(43)}`));
      assert.equal(bad.status, 401, `${r.method} ${r.url} with an unknown token`);
    }
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
  });

  it('viewer 403 on deploy and rules; operator deploys to the real agent, recorded under its name; admin manages users', async () => {
    await waitFor(`node ${NODE} online`, async () => {
      const r = await getJson<{ nodes: NodeSummary[] }>(`${base}/api/v1/nodes`);
      return r.nodes.find((n) => n.id === NODE && n.state === 'online');
    });
    const viewer = await userToken('vic', 'viewer');
    const operator = await userToken('opal', 'operator');
    assert.equal((await call('GET', '/api/v1/nodes', viewer)).status, 200);
    const start = {
      node: NODE,
      mode: 'start',
      type: 'bar',
      url: 'http://127.0.0.1:1/',
      file: 'app.bar',
      require: { cpu: 0, memory: 1048576, gpu: 0 },
    };
    let r = await call('POST', '/api/v1/deployments', viewer, start);
    assert.equal(r.status, 403);
    assert.match(String(r.body?.message), /your role viewer cannot POST \/api\/v1\/deployments/);
    const rule = { metric: 'cpu.temperature', op: '>', threshold: 80 };
    assert.equal((await call('PUT', '/api/v1/alert-rules/hot', viewer, rule)).status, 403);
    assert.equal((await call('PUT', '/api/v1/alert-rules/hot', operator, rule)).status, 403);
    assert.equal((await call('PUT', '/api/v1/alert-rules/hot', adminAuth, rule)).status, 200);

    r = await call('POST', '/api/v1/deployments', { ...operator, 'x-muster-user': 'mallory' }, start);
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const id = String((r.body?.deployment as { id: string } | undefined)?.id);
    const done = await waitFor(
      'the deployment to finish',
      async () => {
        const d = await call('GET', `/api/v1/deployments/${id}`, operator);
        const rec = d.body?.deployment as
          | { finished_at: string | null; result: number | null; who: string }
          | undefined;
        return rec?.finished_at ? rec : null;
      },
      30_000,
    );
    assert.equal(done.who, 'opal');
    assert.notEqual(done.result, 0, 'the agent could not fetch the bundle');
    const h = await call('GET', `/api/v1/history?node=${NODE}&kind=operation`, viewer);
    const entries = h.body?.history as { operation: string; who: string }[];
    assert.ok(
      entries.some((e) => e.who === 'opal'),
      JSON.stringify(entries),
    );
    assert.ok(!JSON.stringify(entries).includes('mallory'));

    // The admin manages users: the viewer made operator, then removed (its session ends).
    assert.equal((await call('GET', '/api/v1/users', operator)).status, 403);
    r = await call('PUT', '/api/v1/users/vic/role', adminAuth, { role: 'operator' });
    assert.equal(r.status, 200);
    assert.equal((await call('GET', '/api/v1/whoami', viewer)).body?.role, 'operator');
    assert.equal((await call('DELETE', '/api/v1/users/vic', adminAuth)).status, 204);
    assert.equal((await call('GET', '/api/v1/nodes', viewer)).status, 401);
  });

  it('a revoked token stops at once; an expired one too', async () => {
    let r = await call('POST', '/api/v1/tokens', adminAuth, { name: 'ci', role: 'operator' });
    assert.equal(r.status, 201);
    const ci = bearer(String(r.body?.token));
    assert.equal((await call('GET', '/api/v1/nodes', ci)).status, 200);
    assert.equal((await call('DELETE', '/api/v1/tokens/ci', adminAuth)).status, 204);
    assert.equal((await call('GET', '/api/v1/nodes', ci)).status, 401);
    r = await call('POST', '/api/v1/tokens', adminAuth, { name: 'brief', role: 'viewer', expires_in_ms: 1500 });
    const brief = bearer(String(r.body?.token));
    assert.equal((await call('GET', '/api/v1/nodes', brief)).status, 200);
    await new Promise((res) => setTimeout(res, 1600));
    assert.equal((await call('GET', '/api/v1/nodes', brief)).status, 401);
  });

  it('login lockout bites after the failures and ends after its backoff', async () => {
    await call('POST', '/api/v1/users', adminAuth, { username: 'lou', password: 'lou-password', role: 'viewer' });
    for (let i = 0; i < 3; i++) assert.equal((await login('lou', 'wrong')).status, 401);
    const locked = await login('lou', 'lou-password');
    assert.equal(locked.status, 429);
    assert.equal(locked.body?.error, 'locked');
    await new Promise((res) => setTimeout(res, 1600));
    assert.equal((await login('lou', 'lou-password')).status, 200);
    const text = await (await fetch(`${base}/metrics`)).text();
    assert.match(text, /muster_manager_login_failures_total\{reason="locked"\} [1-9]/);
  });

  it('the CLI: login then nodes; a wrong password exits non-zero; the token file is 0600', async () => {
    const home = mkdtempSync(path.join(tmp, 'home-'));
    const cfg = path.join(home, '.config', 'muster', 'cli.yaml');
    const env = { MUSTER_CLI_CONFIG: cfg, MUSTER_TOKEN: '' };
    const a = testAdmin();
    // Without a login: a clear message, exit 5.
    let r = await runMuster(['--manager', base, 'nodes'], { env });
    assert.equal(r.code, 5, r.output);
    assert.match(r.output, /not logged in: run muster login/);
    // A wrong password from stdin.
    const wrong = startProcess(
      'sh',
      [
        '-c',
        `printf 'nope\\n' | "${process.execPath}" bin/muster.js --manager ${base} login --user admin --password-stdin`,
      ],
      {
        ...process.env,
        MUSTER_FROM_SOURCE: '1',
        ...env,
      },
    );
    assert.equal(await wrong.exited, 5, wrong.output());
    assert.match(wrong.output(), /login failed: wrong user name or password/);
    // The right one from stdin (never on the command line).
    const ok = startProcess(
      'sh',
      [
        '-c',
        `"${process.execPath}" bin/muster.js --manager ${base} login --user admin --password-stdin < "${a.passwordFile}"`,
      ],
      {
        ...process.env,
        MUSTER_FROM_SOURCE: '1',
        ...env,
      },
    );
    assert.equal(await ok.exited, 0, ok.output());
    assert.match(ok.output(), /logged in to .* as admin \(admin\)/);
    assert.equal(statSync(cfg).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(cfg)).mode & 0o777, 0o700);
    const stored = YAML.parse(readFileSync(cfg, 'utf8')) as { token: string };
    assert.match(stored.token, /^mss_/);
    r = await runMuster(['--manager', base, 'nodes'], { env });
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, new RegExp(NODE));
    // A viewer token from --token-file: 403 on deploy, with the role named.
    const t = await call('POST', '/api/v1/tokens', adminAuth, { name: 'cli-viewer', role: 'viewer' });
    const tokenFile = path.join(home, 'viewer.token');
    writeFileSync(tokenFile, String(t.body?.token), { mode: 0o600 });
    r = await runMuster(['--manager', base, '--token-file', tokenFile, 'query', 'heartbeat'], {
      env: { MUSTER_CLI_CONFIG: cfg, MUSTER_TOKEN: '' },
    });
    assert.equal(r.code, 5, r.output);
    assert.match(r.output, /your role viewer cannot POST \/api\/v1\/query/);
    r = await runMuster(['--manager', base, 'logout'], { env });
    assert.equal(r.code, 0, r.output);
    assert.equal((await call('GET', '/api/v1/nodes', bearer(stored.token))).status, 401, 'the session ended');
  });

  it('the initial password file is 0600 and its content is in no log', () => {
    const a = testAdmin();
    assert.equal(statSync(a.passwordFile).mode & 0o777, 0o600);
    assert.match(manager.output(), /initial-admin-password/);
    assert.ok(!manager.output().includes(a.password), 'the password is not logged');
    assert.ok(!agent.output().includes(a.password));
  });
});
