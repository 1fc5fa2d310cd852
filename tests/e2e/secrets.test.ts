/**
 * No secret in clear anywhere (issue 12; docs/operations.md "Running on a hostile network",
 * docs/configuration.md "Secrets"): a manager and an agent in network namespaces, the /deploy
 * token given to both through the environment (a secret is refused with --set), an operator API
 * token, and a deploy whose url carries credentials (http://user:password@host/...) fetched from a
 * sink on a third host. Afterwards the password, the API token, the /deploy token and the test
 * admin's password are searched for in: every line the daemons logged, every file under both
 * data directories (the SQLite database with its -wal and -shm, the bundle cache and its index),
 * the API's answers (nodes, node detail, deployments, history, alerts) and /proc/<pid>/cmdline of
 * every muster process. None is found; the redacted url is (so the deploy did go through).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import {
  adminToken,
  type Proc,
  ROOT,
  runMuster,
  sets,
  startMuster,
  startProcess,
  testAdmin,
  watchDaemons,
} from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const run = promisify(execFile);
const PREFIX = 'mh2s';
const MANAGER_PORT = 3926;
const SINK_PORT = 8080;
const PEER = path.join(ROOT, 'tests', 'interop', 'raw_peer.mjs');
const PASSWORD = 'Pw-in-the-url-4f1c9a';
const DEPLOY_TOKEN = 'deploy-token-secret-7d2e0b5a91';

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

describe('secrets never in logs, database, API answers or ps', needs(missingRoot(), missingCommand('ip')), () => {
  let lan: Lan | undefined;
  const daemons = new Map<string, Proc>();
  let sink: Proc | undefined;
  let tmp = '';
  const l = () => lan as Lan;
  const logs = (): string => [...daemons].map(([n, p]) => `----- ${n} -----\n${p.output().slice(-4000)}`).join('\n');
  const { withLogs, until } = watchDaemons(() => [...daemons], logs);
  const base = () => `http://${l().ip('mgr')}:${MANAGER_PORT}`;
  const get = async (p: string): Promise<string> =>
    (
      await run('ip', ['netns', 'exec', l().ns('mgr'), process.execPath, PEER, 'get', `${base()}${p}`], {
        env: { ...process.env, PEER_TOKEN: await adminToken(base(), l().ns('mgr')) },
        maxBuffer: 16 << 20,
      })
    ).stdout;

  before(
    async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-secrets-'));
      lan = createLan({ prefix: PREFIX, hosts: ['mgr', 'board', 'files'] });
      daemons.set(
        'manager',
        startMuster(
          [
            'manager',
            ...sets({
              'multicast.interface': 'eth0',
              'query.heartbeat_interval_ms': 500,
              'query.resource_interval_ms': 1000,
              'deploy.token_file': '',
              'deploy.timeout_ms': 20_000,
              data_dir: path.join(tmp, 'manager'),
            }),
          ],
          { netns: l().ns('mgr'), env: { MUSTER_MANAGER_DEPLOY_TOKEN: DEPLOY_TOKEN } },
        ),
      );
      daemons.set(
        'agent',
        startMuster(
          [
            'agent',
            ...sets({
              'multicast.interface': 'eth0',
              'identity.box_id': 1,
              'identity.slot_id': 1,
              'identity.cpu_id': 0,
              'report.jitter_ms': 100,
              'auth.token_file': '',
              'log.level': 'debug',
              data_dir: path.join(tmp, 'agent'),
            }),
          ],
          { netns: l().ns('board'), env: { MUSTER_AGENT_AUTH_TOKEN: DEPLOY_TOKEN } },
        ),
      );
      sink = startProcess('ip', [
        ...['netns', 'exec', l().ns('files'), process.execPath, PEER, 'sink', l().ip('files'), String(SINK_PORT)],
      ]);
      await until(
        '1-1-0 online',
        async () => JSON.parse(await get('/api/v1/nodes/1-1-0').catch(() => '{}')).state === 'online',
        30_000,
        500,
      );
    },
    { timeout: 45_000 },
  );

  after(
    async () => {
      await Promise.allSettled([...daemons.values(), ...(sink ? [sink] : [])].map((p) => p.stop()));
      try {
        lan?.destroy();
      } finally {
        if (tmp) rmSync(tmp, { recursive: true, force: true });
      }
    },
    { timeout: 20_000 },
  );

  test(
    'a deploy with credentials in its url, an API token and a /deploy token: none of them found anywhere',
    { timeout: 60_000 },
    () =>
      withLogs(async () => {
        const created = await runMuster(
          ['--manager', base(), 'tokens', 'create', '--name', 'ci', '--role', 'operator', '--json'],
          {
            netns: l().ns('mgr'),
          },
        );
        assert.equal(created.code, 0, created.output);
        const apiToken = String(
          (JSON.parse(created.output.slice(created.output.indexOf('{'))) as { token: string }).token,
        );
        assert.ok(apiToken.length >= 16);
        const url = `http://deployer:${PASSWORD}@${l().ip('files')}:${SINK_PORT}/bundles`;
        const deploy = await runMuster(
          [
            ...['--manager', base(), 'deploy', 'start', '--node', '1-1-0', '--type', 'bar', '--url', url],
            ...['--file', 'app-1.0.tgz', '--cpu', '1', '--memory', '32M', '--json'],
          ],
          { netns: l().ns('mgr'), env: { MUSTER_TOKEN: apiToken }, timeoutMs: 40_000 },
        );
        // The sink answers an empty body: the bundle is refused, but the deploy went all the way
        // to the agent and the agent fetched with the credentials.
        await until(
          'the agent to fetch from the sink',
          async () => sink?.output().includes('GET /bundles/app-1.0.tgz'),
          15_000,
          200,
        );
        await until(
          'the deployment to finish',
          async () =>
            (
              JSON.parse(await get('/api/v1/deployments')) as { deployments: { result: number | null }[] }
            ).deployments.some((d) => d.result !== null),
          20_000,
          500,
        );
        const answers = await Promise.all(
          [
            '/api/v1/nodes',
            '/api/v1/nodes/1-1-0',
            '/api/v1/deployments',
            '/api/v1/history?limit=1000',
            '/api/v1/alerts?limit=1000',
          ].map(async (p) => [`GET ${p}`, await get(p)] as const),
        );
        const history = answers.find(([w]) => w.startsWith('GET /api/v1/history'))?.[1] ?? '';
        assert.ok(history.includes('deploy.start'), 'the deploy is in the history');
        assert.ok(
          answers
            .find(([w]) => w === 'GET /api/v1/deployments')?.[1]
            .includes(`${l().ip('files')}:${SINK_PORT}/bundles`),
          'the redacted url is kept',
        );

        // The manager's store is flushed on its timer: let it write, then read every file.
        await new Promise((r) => setTimeout(r, 2500));
        const places: [string, string][] = [
          ...[...daemons].map(([n, p]) => [`${n} log`, p.output()] as [string, string]),
          ['CLI output (deploy)', deploy.output],
          ...answers.map(([w, text]) => [w, text] as [string, string]),
        ];
        const files = [...filesUnder(path.join(tmp, 'manager')), ...filesUnder(path.join(tmp, 'agent'))];
        assert.ok(
          files.some((f) => f.endsWith('-wal')),
          `the database's -wal is among the files: ${files.join(', ')}`,
        );
        for (const f of files) if (statSync(f).size < 256 << 20) places.push([f, readFileSync(f).toString('latin1')]);
        let muster = 0;
        for (const pid of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
          let cmd = '';
          try {
            cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
          } catch {
            continue;
          }
          if (!/muster/.test(cmd)) continue;
          muster++;
          places.push([`/proc/${pid}/cmdline (${cmd.slice(0, 80)})`, cmd]);
        }
        assert.ok(muster >= 2, 'the manager and the agent are among the processes');
        const secrets: [string, string][] = [
          ['the url password', PASSWORD],
          ['the API token', apiToken],
          ['the /deploy token', DEPLOY_TOKEN],
          ["the admin's password", testAdmin().password],
        ];
        const found: string[] = [];
        for (const [where, text] of places)
          for (const [what, secret] of secrets) if (text.includes(secret)) found.push(`${what} in ${where}`);
        console.log(
          `# searched ${places.length} places (${files.length} files, ${muster} muster processes, ${answers.length} API answers)`,
        );
        assert.deepEqual(found, []);
      }),
  );
});
