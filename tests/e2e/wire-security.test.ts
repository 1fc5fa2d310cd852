/**
 * Access control on the wire (issue 11, docs/protocol.md "1a. Signed queries", "4. The manager's
 * answers to reports", docs/operations.md "Signed queries and report source checks"), on real
 * multicast across network namespaces:
 *
 *   mgr    muster manager signing its queries (query.signing.key_file)
 *   keyed  muster agent 1-1-0 holding the key: answers only signed queries
 *   plain  muster agent 1-2-0 without a key: answers any query, rate-limited per destination
 *   evil   a hostile host: raw datagrams, a report-counting HTTP sink, forged reports
 *   spec   the spec-only python manager (tests/interop/spec_manager.py)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { HeartbeatBody } from '../../common/protocol.js';
import type { NodeDetail } from '../../manager/views.js';
import {
  adminToken,
  metric,
  type Proc,
  ROOT,
  sets,
  startMuster,
  startProcess,
  watchDaemons,
} from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const run = promisify(execFile);
const PREFIX = 'mw';
const GROUP = '239.192.168.80';
const QUERY_PORT = 3980;
const MANAGER_PORT = 3926;
const SERVICE_PORT = 23980;
const SINK_PORT = 8080;
const PEER = path.join(ROOT, 'tests', 'interop', 'raw_peer.mjs');
const KEY = 'e2e-shared-query-key-0123456789';

describe(
  'signed queries, report source checks and reply rate limits across network namespaces',
  needs(missingRoot(), missingCommand('ip'), missingCommand('python3')),
  () => {
    let lan: Lan | undefined;
    const daemons = new Map<string, Proc>();
    const dirs: string[] = [];
    let sink: Proc | undefined;

    const tmp = (name: string) => {
      const d = mkdtempSync(path.join(os.tmpdir(), `muster-wire-${name}-`));
      dirs.push(d);
      return d;
    };
    const l = () => lan as Lan;
    const logs = (): string =>
      [...daemons, ...(sink ? [['sink', sink] as [string, Proc]] : [])]
        .map(([n, p]) => `----- ${n} -----\n${p.output().slice(-5000)}`)
        .join('\n');
    const { withLogs, until } = watchDaemons(() => [...daemons], logs);

    /** raw_peer.mjs `args` inside the namespace of `host`; resolves with its stdout. */
    const peer = async (host: string, args: string[], timeout = 20_000, token = ''): Promise<string> => {
      const r = await run('ip', ['netns', 'exec', l().ns(host), process.execPath, PEER, ...args], {
        timeout,
        maxBuffer: 8 << 20,
        env: { ...process.env, PEER_TOKEN: token },
      });
      return r.stdout;
    };
    const agentMetrics = (host: string) => peer(host, ['get', `http://${l().ip(host)}:${SERVICE_PORT}/metrics`]);
    // The API needs a login: the test admin's token, got by `muster login` inside the manager's namespace.
    const managerGet = async <T>(p: string): Promise<T> => {
      const base = `http://${l().ip('mgr')}:${MANAGER_PORT}`;
      const token = await adminToken(base, l().ns('mgr'));
      return JSON.parse(await peer('mgr', ['get', `${base}${p}`], 20_000, token)) as T;
    };
    const rejected = async (host: string) => {
      const text = await agentMetrics(host);
      const count = (reason: string) => metric(text, 'muster_agent_queries_rejected_total', { reason });
      return {
        unsigned: count('unsigned'),
        bad_signature: count('bad_signature'),
        stale: count('stale'),
        replay: count('replay'),
      };
    };
    /** Requests the sink has seen, by source address. */
    const sinkHits = (from?: string) =>
      (sink?.output() ?? '').split('\n').filter((x) => x.startsWith('REQ ') && (!from || x.split(' ')[1] === from))
        .length;
    const sendQueries = (json: unknown, count = 1, spreadMs = 0) =>
      peer('evil', [
        'send',
        GROUP,
        String(QUERY_PORT),
        l().ip('evil'),
        String(count),
        String(spreadMs),
        JSON.stringify(json),
      ]);

    before(
      () => {
        lan = createLan({ prefix: PREFIX, hosts: ['mgr', 'keyed', 'plain', 'evil', 'spec'] });
        const keyDir = tmp('keys');
        const keyFile = path.join(keyDir, 'query.key');
        writeFileSync(keyFile, `${KEY}\n`);
        chmodSync(keyFile, 0o600);
        daemons.set(
          'manager',
          startMuster(
            [
              'manager',
              ...sets({
                'multicast.interface': 'eth0',
                'query.heartbeat_interval_ms': 500,
                'query.resource_interval_ms': 1000,
                'query.signing.key_file': keyFile,
                'liveness.suspect_after_rounds': 2,
                'liveness.offline_after_rounds': 4,
                'log.level': 'warn',
                data_dir: tmp('manager'),
              }),
            ],
            { netns: l().ns('mgr') },
          ),
        );
        for (const [slot, host] of [
          [1, 'keyed'],
          [2, 'plain'],
        ] as const) {
          const args = sets({
            'multicast.interface': 'eth0',
            'identity.box_id': 1,
            'identity.slot_id': slot,
            'identity.cpu_id': 0,
            'report.jitter_ms': 100,
            'collect.interval_ms': 500,
            'log.level': 'warn',
            data_dir: tmp(host),
            ...(host === 'keyed' ? { 'query.signing.key_file': keyFile } : {}),
          });
          daemons.set(host, startMuster(['agent', ...args], { netns: l().ns(host) }));
        }
        sink = startProcess('ip', [
          'netns',
          'exec',
          l().ns('evil'),
          process.execPath,
          PEER,
          'sink',
          l().ip('evil'),
          String(SINK_PORT),
        ]);
      },
      { timeout: 20_000 },
    );

    after(
      async () => {
        await Promise.allSettled([...daemons.values(), ...(sink ? [sink] : [])].map((p) => p.stop()));
        try {
          lan?.destroy();
        } finally {
          for (const d of dirs) rmSync(d, { recursive: true, force: true });
        }
      },
      { timeout: 20_000 },
    );

    const online = async (id: string) => (await managerGet<NodeDetail>(`/api/v1/nodes/${id}`)).state === 'online';

    test(
      'the signing manager brings both boards online: the keyed agent verifies, the plain one ignores the fields',
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          await until('sink listening', async () => sink?.output().includes('LISTENING'), 20_000, 200);
          await until(
            '1-1-0 and 1-2-0 online',
            async () => (await online('1-1-0').catch(() => false)) && (await online('1-2-0').catch(() => false)),
            40_000,
            500,
          );
          const r = await rejected('keyed');
          assert.deepEqual(r, { unsigned: 0, bad_signature: 0, stale: 0, replay: 0 });
          const text = await agentMetrics('keyed');
          assert.ok(metric(text, 'muster_agent_reports_sent_total', { url: '/heartbeat' }) > 0);
        }),
    );

    test(
      'the keyed agent ignores an unsigned query, a forged one and a replay; no report reaches the sink',
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          const evil = l().ip('evil');
          const keyedIp = l().ip('keyed');
          const base = await rejected('keyed');
          const toSink = { manager_ip: evil, manager_port: SINK_PORT, url: '/heartbeat', jitter_ms: 0 };
          // Unsigned.
          await sendQueries({ api_version: 1, data: toSink }, 3, 0);
          // Forged: a made-up signature, and a real signature moved onto the sink's address.
          await sendQueries({ api_version: 1, data: { ...toSink, ts: Date.now(), sig: 'ab'.repeat(32) } }, 2, 0);
          const captured = (
            await peer('evil', ['capture', GROUP, String(QUERY_PORT), evil, '/heartbeat', '10000'])
          ).trim();
          const real = JSON.parse(captured) as { data: Record<string, unknown> };
          assert.equal(typeof real.data.sig, 'string');
          assert.equal(typeof real.data.ts, 'number');
          await sendQueries(
            { api_version: 1, data: { ...real.data, manager_ip: evil, manager_port: SINK_PORT } },
            1,
            0,
          );
          // A replay: the captured datagram verbatim (the agent accepted it when the manager sent it).
          await peer('evil', ['send', GROUP, String(QUERY_PORT), evil, '2', '0', captured]);
          const want = {
            unsigned: base.unsigned + 3,
            bad_signature: base.bad_signature + 3,
            stale: base.stale,
            replay: base.replay + 2,
          };
          await until(
            'the keyed agent to count them',
            async () => JSON.stringify(await rejected('keyed')) === JSON.stringify(want),
            10_000,
            300,
          );
          // A stale one: an old signature can only come from the key; the window check is in the unit tests.
          await new Promise((r) => setTimeout(r, 1000));
          assert.equal(sinkHits(keyedIp), 0, 'the keyed agent never reported to the sink');
          // The plain agent (no key) did answer the unsigned and forged queries naming the sink.
          assert.ok(sinkHits(l().ip('plain')) > 0, 'the plain agent answers unsigned queries');
          assert.ok(await online('1-1-0'), 'the keyed board stays online');
        }),
    );

    test(
      "a report for another board's host_ip from a different address is refused with 400; the board is unchanged",
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          const node = await managerGet<NodeDetail>('/api/v1/nodes/1-2-0');
          const good = node.heartbeat as HeartbeatBody['data'];
          assert.equal(good.host_ip, l().ip('plain'));
          const forged = { api_version: 1, data: { ...good, hostname: 'evil-twin', service_port: 6666 } };
          const out = (
            await peer('evil', ['post', `http://${l().ip('mgr')}:${MANAGER_PORT}/heartbeat`, JSON.stringify(forged)])
          ).trim();
          const [status, ...rest] = out.split(' ');
          assert.equal(status, '400', out);
          const body = JSON.parse(rest.join(' ')) as { error: string; field: string; message: string };
          assert.equal(body.field, '/data/host_ip');
          assert.match(
            body.message,
            new RegExp(`is not the address the report came from \\(${l().ip('evil').replace(/\./g, '\\.')}\\)`),
          );
          const after = await managerGet<NodeDetail>('/api/v1/nodes/1-2-0');
          assert.equal(after.heartbeat?.hostname, good.hostname);
          assert.equal(after.heartbeat?.service_port, good.service_port);
          const m = await peer('mgr', ['get', `http://${l().ip('mgr')}:${MANAGER_PORT}/metrics`]);
          assert.equal(
            metric(m, 'muster_manager_reports_rejected_total', { url: '/heartbeat', reason: 'source_mismatch' }),
            1,
          );
        }),
    );

    test(
      'a flood of 2,000 queries in a second naming a third party: bounded POSTs there, the real board stays online',
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          const plainIp = l().ip('plain');
          // Let the bucket of the sink refill after the earlier tests (burst 20 at 5/s: 4 s).
          await new Promise((r) => setTimeout(r, 4500));
          const hitsBefore = sinkHits(plainIp);
          const m0 = await agentMetrics('plain');
          const t0 = Date.now();
          const sent = await sendQueries(
            {
              api_version: 1,
              data: { manager_ip: l().ip('evil'), manager_port: SINK_PORT, url: '/heartbeat', jitter_ms: 0 },
            },
            2000,
            1000,
          );
          const floodMs = Date.now() - t0;
          await new Promise((r) => setTimeout(r, 1500));
          const hits = sinkHits(plainIp) - hitsBefore;
          const m1 = await agentMetrics('plain');
          const received =
            metric(m1, 'muster_agent_queries_received_total', { url: '/heartbeat' }) -
            metric(m0, 'muster_agent_queries_received_total', { url: '/heartbeat' });
          const dropped =
            metric(m1, 'muster_agent_queries_dropped_total', { reason: 'rate' }) -
            metric(m0, 'muster_agent_queries_dropped_total', { reason: 'rate' });
          // burst + rate × (time the flood took, plus the wait): config/agent.yaml defaults 20 and 5/s.
          const bound = 20 + Math.ceil(5 * ((floodMs + 1500) / 1000));
          const figures = `${sent.trim()}; flood ${floodMs} ms; agent received ${received}; POSTs at the sink ${hits}; dropped (rate) ${dropped}; bound ${bound}`;
          console.log(`# flood: ${figures}`);
          assert.ok(received > 1000, figures);
          assert.ok(hits <= bound, figures);
          assert.ok(hits >= 1, figures);
          // Every flood query beyond the bound is dropped by the rate limit (the manager's own
          // heartbeat queries of those ~3 s, at most 12, are counted in received too).
          assert.ok(received - dropped <= bound + 12, figures);
          // The real manager's board never went suspect: it keeps answering every round.
          const last = await managerGet<NodeDetail>('/api/v1/nodes/1-2-0');
          assert.equal(last.state, 'online', figures);
          const down = last.transitions.filter((t) => t.to !== 'online');
          assert.deepEqual(down, [], `the board never left online: ${figures}`);
        }),
    );

    test(
      'a spec-only manager (python) gets answers from the agent without a key, none from the keyed one',
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          const out = path.join(tmp('spec'), 'summary.json');
          const spec = startProcess('ip', [
            'netns',
            'exec',
            l().ns('spec'),
            'python3',
            path.join(ROOT, 'tests', 'interop', 'spec_manager.py'),
            '--group',
            GROUP,
            '--port',
            String(QUERY_PORT),
            '--iface',
            l().ip('spec'),
            '--http-port',
            String(MANAGER_PORT),
            '--rounds',
            '3',
            '--interval',
            '0.5',
            '--grace',
            '1.5',
            '--out',
            out,
          ]);
          const code = await spec.exited;
          assert.equal(code, 0, spec.output());
          const s = JSON.parse(readFileSync(out, 'utf8')) as { heartbeats: HeartbeatBody[]; errors: unknown[] };
          assert.deepEqual(s.errors, []);
          const from = s.heartbeats.map((h) => h.data.host_ip);
          assert.ok(from.filter((ip) => ip === l().ip('plain')).length >= 2, JSON.stringify(from));
          assert.ok(!from.includes(l().ip('keyed')), 'the keyed agent ignores unsigned queries');
          assert.ok((await rejected('keyed')).unsigned >= 5);
        }),
    );
  },
);
