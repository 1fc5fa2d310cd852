/**
 * Access control end to end (docs/operations.md "Users and access"): a real manager and a real
 * agent in network namespaces on one bridge, and every request of the test (raw HTTP with curl,
 * and the CLI) issued from a third namespaced host:
 *
 *   mgr    muster manager (multicast on eth0)
 *   board  muster agent 7-4-0
 *   op     the operator's host: `ip netns exec` of curl and of the muster CLI
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
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import type { NodeSummary } from '../../manager/views.js';
import { routeTable, samplePath } from '../../testkit/server.js';
import { type Proc, runMuster, sets, startMuster, startProcess, testAdmin, waitFor } from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const execFileP = promisify(execFile);
const PREFIX = 'macc';
const MANAGER_PORT = 3926;
const NODE = '7-4-0';
const DEPLOY_TOKEN = 'access-test-deploy-token';

describe(
  'access control: a manager and an agent in network namespaces, requests from a third host',
  needs(missingRoot(), missingCommand('ip'), missingCommand('curl')),
  () => {
    let tmp: string;
    let lan: Lan | undefined;
    let base: string;
    let manager: Proc;
    let agent: Proc;
    let adminAuth: Record<string, string>;
    const logs = () => `--- manager:\n${manager.output()}\n--- agent:\n${agent.output()}`;
    const opNs = () => (lan as Lan).ns('op');

    /**
     * A request as given (no token added), sent by curl inside the operator's namespace: the status,
     * the response headers and the body text.
     */
    const request = async (method: string, p: string, headers: Record<string, string> = {}, body?: unknown) => {
      const args = ['netns', 'exec', opNs(), 'curl', '-sS', '-i', '--max-time', '10', '-X', method, '-H', 'Expect:'];
      const all = { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) };
      for (const [k, v] of Object.entries(all)) args.push('-H', `${k}: ${v}`);
      if (body !== undefined) args.push('--data-binary', JSON.stringify(body));
      args.push(`${base}${p}`);
      const { stdout } = await execFileP('ip', args, { timeout: 15_000, maxBuffer: 8 << 20 });
      const end = stdout.indexOf('\r\n\r\n');
      assert.ok(end >= 0, `${method} ${p}: no HTTP response from curl: ${stdout}`);
      const [statusLine = '', ...lines] = stdout.slice(0, end).split('\r\n');
      const status = Number(/^HTTP\/\S+ (\d{3})/.exec(statusLine)?.[1]);
      const h = new Headers();
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) h.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
      }
      return { status, headers: h, text: stdout.slice(end + 4) };
    };
    /** A request to the API as given (no token added); the status and the JSON body (null if empty). */
    const call = async (method: string, p: string, headers: Record<string, string> = {}, body?: unknown) => {
      const res = await request(method, p, headers, body);
      return {
        status: res.status,
        body: (res.text ? JSON.parse(res.text) : null) as Record<string, unknown> | null,
        headers: res.headers,
      };
    };
    const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
    const login = async (username: string, password: string) =>
      call('POST', '/api/v1/login', {}, { username, password });
    /** A token of a new user with `role` (the admin adds the user, the user logs in). */
    const userToken = async (name: string, role: string) => {
      const add = await call('POST', '/api/v1/users', adminAuth, {
        username: name,
        password: `${name}-password`,
        role,
      });
      assert.equal(add.status, 201, JSON.stringify(add.body));
      const r = await login(name, `${name}-password`);
      assert.equal(r.status, 200);
      return bearer(String(r.body?.token));
    };

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-access-'));
      lan = createLan({ prefix: PREFIX, hosts: ['mgr', 'board', 'op'] });
      base = `http://${lan.ip('mgr')}:${MANAGER_PORT}`;
      manager = startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': 'eth0',
            'http.port': MANAGER_PORT,
            'query.heartbeat_interval_ms': '500',
            'query.resource_interval_ms': '1000',
            'deploy.token_file': '',
            'auth.lockout.user_failures': 3,
            'auth.lockout.address_failures': 100,
            'auth.lockout.base_ms': 1500,
            data_dir: path.join(tmp, 'manager'),
          }),
        ],
        // A secret is refused with --set (ps shows it): the token comes from the environment.
        { netns: lan.ns('mgr'), env: { MUSTER_MANAGER_DEPLOY_TOKEN: DEPLOY_TOKEN } },
      );
      agent = startMuster(
        [
          'agent',
          ...sets({
            'multicast.interface': 'eth0',
            'identity.box_id': 7,
            'identity.slot_id': 4,
            'identity.cpu_id': 0,
            'auth.token_file': '',
            data_dir: path.join(tmp, 'agent'),
          }),
        ],
        { netns: lan.ns('board'), env: { MUSTER_AGENT_AUTH_TOKEN: DEPLOY_TOKEN } },
      );
      await waitFor('the manager', async () => (await request('GET', '/healthz')).status === 200, 20_000);
      const r = await login(testAdmin().user, testAdmin().password);
      assert.equal(r.status, 200, logs());
      adminAuth = bearer(String(r.body?.token));
    });

    after(async () => {
      await agent?.stop();
      await manager?.stop();
      try {
        lan?.destroy();
      } finally {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('without credentials every /api/v1 route of the route table is 401; protocol and health stay open', async () => {
      const { api } = await routeTable();
      assert.ok(api.length >= 25);
      for (const r of api) {
        if (r.role === 'public') continue;
        const res = await call(r.method, samplePath(r.url), {}, r.method === 'GET' ? undefined : {});
        assert.equal(res.status, 401, `${r.method} ${r.url}`);
        assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="muster"');
        assert.equal(res.body?.error, 'unauthorized');
        const bad = await call(r.method, samplePath(r.url), bearer(`mst_00000000_${'A'.repeat(43)}`));
        assert.equal(bad.status, 401, `${r.method} ${r.url} with an unknown token`);
      }
      assert.equal((await request('GET', '/healthz')).status, 200);
      assert.equal((await request('GET', '/metrics')).status, 200);
    });

    it('viewer 403 on deploy and rules; operator deploys to the real agent, recorded under its name; admin manages users', async () => {
      await waitFor(`node ${NODE} online`, async () => {
        const r = await call('GET', '/api/v1/nodes', adminAuth);
        assert.equal(r.status, 200);
        return (r.body as { nodes: NodeSummary[] } | null)?.nodes.find((n) => n.id === NODE && n.state === 'online');
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
      const { text } = await request('GET', '/metrics');
      assert.match(text, /muster_manager_login_failures_total\{reason="locked"\} [1-9]/);
    });

    it('the CLI: login then nodes; a wrong password exits non-zero; the token file is 0600', async () => {
      const home = mkdtempSync(path.join(tmp, 'home-'));
      const cfg = path.join(home, '.config', 'muster', 'cli.yaml');
      const env = { MUSTER_CLI_CONFIG: cfg, MUSTER_TOKEN: '' };
      const netns = opNs();
      const a = testAdmin();
      // Without a login: a clear message, exit 5.
      let r = await runMuster(['--manager', base, 'nodes'], { env, netns });
      assert.equal(r.code, 5, r.output);
      assert.match(r.output, /not logged in: run muster login/);
      // A wrong password from stdin.
      const wrong = startProcess(
        'ip',
        [
          'netns',
          'exec',
          netns,
          'sh',
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
        'ip',
        [
          'netns',
          'exec',
          netns,
          'sh',
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
      r = await runMuster(['--manager', base, 'nodes'], { env, netns });
      assert.equal(r.code, 0, r.output);
      assert.match(r.output, new RegExp(NODE));
      // A viewer token from --token-file: 403 on deploy, with the role named.
      const t = await call('POST', '/api/v1/tokens', adminAuth, { name: 'cli-viewer', role: 'viewer' });
      const tokenFile = path.join(home, 'viewer.token');
      writeFileSync(tokenFile, String(t.body?.token), { mode: 0o600 });
      r = await runMuster(['--manager', base, '--token-file', tokenFile, 'query', 'heartbeat'], {
        env: { MUSTER_CLI_CONFIG: cfg, MUSTER_TOKEN: '' },
        netns,
      });
      assert.equal(r.code, 5, r.output);
      assert.match(r.output, /your role viewer cannot POST \/api\/v1\/query/);
      r = await runMuster(['--manager', base, 'logout'], { env, netns });
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
  },
);
