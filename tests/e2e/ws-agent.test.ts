/**
 * A muster agent on the WebSocket node link (docs/links.md "A muster agent on the link"): a real
 * manager and a real agent in network namespaces on one bridge, the multicast queries dropped at
 * the board (an nftables rule: 100 % of UDP to the query port), the agent in `link.mode:
 * websocket` with a link token made by `muster links tokens create`:
 *
 * - the board is listed ONLINE with LINK ws and its full report (heartbeat and resource bodies);
 * - a deploy goes through the link to the agent's deploy handler, which answers it;
 * - a task runs over the link (exec, exec_status) and its output comes back;
 * - the link is cut in the middle of a command and restored: the command ran once and its result
 *   arrives once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Proc, runMuster, sets, startMuster, waitFor } from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan, missingNft, run } from '../helpers/netns.js';

// The agent's command token goes through the environment: --set refuses secrets.
process.env.MUSTER_AGENT_AUTH_TOKEN = 'not-used-over-the-link';

const PREFIX = 'mln';
const PORT = 3926;
const QUERY_PORT = 3980;
const NODE = '5-2-0';

/** The first JSON document (an object printed from a line `{` to a line `}`) in a command's output. */
function firstJson(output: string): unknown {
  const lines = output.split('\n');
  const start = lines.findIndex((l) => l.startsWith('{'));
  const end = lines.findIndex((l, i) => i >= start && l.startsWith('}'));
  return JSON.parse(lines.slice(start, end + 1).join('\n'));
}

describe(
  'a muster agent on the WebSocket link, where multicast cannot reach',
  needs(missingRoot(), missingCommand('ip'), missingNft()),
  () => {
    let tmp: string;
    let lan: Lan | undefined;
    let manager: Proc;
    let agent: Proc;
    let base: string;
    const logs = () => `--- manager:\n${manager?.output()}\n--- agent:\n${agent?.output()}`;
    const cli = (args: string[], timeoutMs = 60_000) =>
      runMuster(['--manager', base, ...args], { netns: (lan as Lan).ns('mgr'), timeoutMs });
    const nodeJson = async () => {
      const r = await cli(['node', NODE, '--json'], 15_000);
      return r.code === 0 ? (JSON.parse(r.output) as Record<string, unknown>) : null;
    };

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-wsagent-'));
      lan = createLan({ prefix: PREFIX, hosts: ['mgr', 'board'] });
      base = `http://${lan.ip('mgr')}:${PORT}`;
      manager = startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': 'eth0',
            'multicast.port': QUERY_PORT,
            'http.port': PORT,
            'query.heartbeat_interval_ms': 500,
            'query.resource_interval_ms': 1000,
            'link.ping_interval_ms': 1000,
            'exec.status_wait_ms': 2000,
            data_dir: path.join(tmp, 'manager'),
          }),
        ],
        { netns: lan.ns('mgr') },
      );
      await waitFor('the manager', async () => (await cli(['nodes'], 15_000)).code === 0, 20_000);
      const t = await cli(['links', 'tokens', 'create', '--node', NODE, '--json']);
      assert.equal(t.code, 0, t.output);
      const token = (JSON.parse(t.output.trim().split('\n').at(-1) as string) as { token: string }).token;
      const tokenFile = path.join(tmp, 'link.token');
      writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
      // Multicast cannot reach the board: every query datagram is dropped at its door.
      run('ip', [
        'netns',
        'exec',
        lan.ns('board'),
        'nft',
        `add table inet mln_block; add chain inet mln_block in { type filter hook input priority 0; }; add rule inet mln_block in udp dport ${QUERY_PORT} counter drop`,
      ]);
      agent = startMuster(
        [
          'agent',
          ...sets({
            'multicast.interface': 'eth0',
            'multicast.port': QUERY_PORT,
            'identity.box_id': 5,
            'identity.slot_id': 2,
            'identity.cpu_id': 0,
            'link.mode': 'websocket',
            'link.websocket.url': `ws://${lan.ip('mgr')}:${PORT}/api/v1/ws`,
            'link.websocket.token_file': tokenFile,
            'link.websocket.heartbeat_interval_ms': 1000,
            'link.websocket.resource_interval_ms': 1000,
            'link.websocket.ping_interval_ms': 1000,
            'link.websocket.backoff_base_ms': 200,
            'link.websocket.backoff_max_ms': 2000,
            'collect.interval_ms': 500,
            'auth.token_file': '',
            data_dir: path.join(tmp, 'agent'),
          }),
        ],
        { netns: lan.ns('board') },
      );
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

    it('is listed ONLINE with LINK ws and its full report', async () => {
      const n = await waitFor(
        'the board with a resource report',
        async () => {
          const j = await nodeJson();
          return j && j.state === 'online' && j.resource !== null ? j : null;
        },
        30_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${logs()}`);
      });
      assert.equal(n.link, 'ws');
      assert.equal((n.heartbeat as { service_port: number }).service_port, 23980);
      assert.equal((n.heartbeat as { host_ip: string }).host_ip, lan?.ip('board'));
      assert.ok((n.resource as { resource: { cpu: { core_count: number } } }).resource.cpu.core_count > 0);
      const rule = run('ip', ['netns', 'exec', (lan as Lan).ns('board'), 'nft', 'list', 'table', 'inet', 'mln_block']);
      // The board is a member of no group and drops the query port: no query reaches its agent.
      assert.match(rule, /udp dport 3980 counter packets \d+ bytes \d+ drop/, rule);
      const nodes = await cli(['nodes']);
      assert.match(nodes.output, new RegExp(`^${NODE}\\s.*ONLINE.*\\bws$`, 'm'), nodes.output);
    });

    it('takes a deploy over the link, through its deploy handler', async () => {
      const r = await cli([
        'deploy',
        'start',
        '--node',
        NODE,
        '--type',
        'bar',
        '--url',
        'http://127.0.0.1:9/bundles',
        '--file',
        'app-1.0.tgz',
        '--cpu',
        '1',
        '--memory',
        '32M',
        '--json',
      ]);
      const rec = firstJson(r.output) as { result: number; message: string };
      // The agent answered: its own refusal (the bundle cannot be fetched), not a transport failure.
      assert.ok(rec.result > 0, `${JSON.stringify(rec)}\n${logs()}`);
      assert.doesNotMatch(rec.message, /not connected|cannot reach|did not answer/);
    });

    it('runs a task over the link', async () => {
      const r = await cli(['exec', '--target', NODE, '--json', '--', 'echo hello-$((40+2))']);
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      assert.match(r.output, /hello-42/);
    });

    it('a link cut in the middle of a command: the command ran once, its result arrives once', async () => {
      const marks = path.join(tmp, 'runs');
      const script = `echo run >> ${marks}; sleep 5; echo finished-once`;
      const run = cli(['exec', '--target', NODE, '--json', '--', script], 80_000);
      await waitFor('the command to start', () => {
        try {
          return readFileSync(marks, 'utf8').length > 0;
        } catch {
          return false;
        }
      });
      lan?.cut('board');
      await new Promise((r) => setTimeout(r, 4000));
      lan?.restore('board');
      const r = await run;
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      const task = firstJson(r.output) as {
        state: string;
        results: { state: string; steps: { stdout: string }[] }[];
      };
      assert.equal(task.results.length, 1);
      assert.equal(task.results[0]?.state, 'done');
      assert.equal((JSON.stringify(task.results[0]?.steps).match(/finished-once/g) ?? []).length, 1);
      assert.equal(readFileSync(marks, 'utf8'), 'run\n', 'the command ran exactly once');
      assert.match(agent.output(), /WebSocket link (closed|silent)/, 'the link did break');
    });
  },
);
