/**
 * The core end-to-end test on real multicast: a manager and three agents, each in its own network
 * namespace on one bridge. Boards are found by the multicast query, report over HTTP, and are
 * observed the way an operator does, with the `muster` CLI run inside the manager's namespace.
 * A cut link takes a board suspect then offline; restoring it brings the same agent back online.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Answer } from '../../common/api/query.js';
import type { NodeDetail, NodeSummary } from '../../manager/views.js';
import { type Proc, runMuster, sets, startMuster, watchDaemons } from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const PREFIX = 'mt';
const AGENTS = ['a1', 'a2', 'a3'] as const;
const IDS = ['1-1-0', '1-2-0', '1-3-0'] as const;
const MANAGER_PORT = 3926;
const SERVICE_PORT = 23980;

describe(
  'multicast discovery and liveness across network namespaces',
  needs(missingRoot(), missingCommand('ip')),
  () => {
    let lan: Lan | undefined;
    let manager: Proc | undefined;
    const agents = new Map<string, Proc>();
    const dirs: string[] = [];
    let managerUrl = '';

    const tmp = (name: string) => {
      const d = mkdtempSync(path.join(os.tmpdir(), `muster-netns-${name}-`));
      dirs.push(d);
      return d;
    };
    const named = (): [string, Proc][] => [
      ...(manager ? [['manager', manager] as [string, Proc]] : []),
      ...[...agents].map(([h, p]) => [`agent ${h}`, p] as [string, Proc]),
    ];

    /** Every daemon's output (its tail), for assertion messages. */
    const logs = (): string =>
      named()
        .map(([name, p]) => {
          const out = p.output();
          const state = p.proc.exitCode ?? p.proc.signalCode ?? 'running';
          return `----- ${name} (pid ${p.proc.pid}, ${state}) -----\n${out.length > 6000 ? `...${out.slice(-6000)}` : out}`;
        })
        .join('\n');

    /** Runs a test body; on failure the daemons' output is appended to the error message. */
    const { withLogs, until } = watchDaemons(named, logs);

    /** `muster --manager <url> <args>` inside the manager's namespace; returns stdout+stderr. */
    const cli = async (args: string[]): Promise<string> => {
      const r = await runMuster(['--manager', managerUrl, ...args], { netns: lan?.ns('mgr') });
      if (r.code !== 0) throw new Error(`muster ${args.join(' ')} exited ${r.code}: ${r.output}`);
      return r.output;
    };
    const nodes = async (): Promise<NodeSummary[]> => JSON.parse(await cli(['nodes', '--json'])) as NodeSummary[];
    const node = async (id: string): Promise<NodeDetail> => JSON.parse(await cli(['node', id, '--json'])) as NodeDetail;
    const byId = (list: NodeSummary[]) => new Map(list.map((n) => [n.id, n]));
    type Alert = {
      kind: string;
      node: string;
      state: string;
      severity: string;
      message: string;
      resolved_at: string | null;
    };
    const offlineAlerts = async (id: string): Promise<Alert[]> =>
      (JSON.parse(await cli(['alerts', '--node', id, '--kind', 'node_offline', '--json'])) as { alerts: Alert[] })
        .alerts;

    before(
      () => {
        lan = createLan({ prefix: PREFIX, hosts: ['mgr', ...AGENTS] });
        managerUrl = `http://${lan.ip('mgr')}:${MANAGER_PORT}`;
        manager = startMuster(
          [
            'manager',
            ...sets({
              'multicast.interface': 'eth0',
              'query.heartbeat_interval_ms': 500,
              'query.resource_interval_ms': 1000,
              'liveness.suspect_after_rounds': 2,
              'liveness.offline_after_rounds': 4,
              'log.level': 'warn',
              data_dir: tmp('manager'),
            }),
          ],
          { netns: lan.ns('mgr') },
        );
        for (const [i, h] of AGENTS.entries()) {
          const args = sets({
            'multicast.interface': 'eth0',
            'identity.box_id': 1,
            'identity.slot_id': i + 1,
            'identity.cpu_id': 0,
            'report.jitter_ms': 100,
            data_dir: tmp(h),
            'collect.interval_ms': 500,
          });
          agents.set(h, startMuster(['agent', ...args], { netns: lan.ns(h) }));
        }
      },
      { timeout: 20_000 },
    );

    after(
      async () => {
        await Promise.allSettled(named().map(([, p]) => p.stop()));
        try {
          lan?.destroy();
        } finally {
          for (const d of dirs) rmSync(d, { recursive: true, force: true });
        }
      },
      { timeout: 20_000 },
    );

    test('all three boards come online with their own address and a complete report', { timeout: 60_000 }, () =>
      withLogs(async () => {
        const l = lan as Lan;
        // The agents log when they listen; until then a CLI poll would only take CPU from their start.
        await until(
          'the agents to start',
          async () => [...agents.values()].every((a) => a.output().includes('"agent started"')),
          30_000,
          100,
        );
        await until(
          'nodes 1-1-0, 1-2-0, 1-3-0 online with a resource report',
          async () => {
            const m = byId(await nodes());
            return IDS.every((id) => m.get(id)?.state === 'online' && m.get(id)?.resource_at);
          },
          20_000,
          500,
        );
        const details = await Promise.all(IDS.map((id) => node(id)));
        for (const [i, id] of IDS.entries()) {
          const n = details[i] as NodeDetail;
          const where = `node ${id}: ${JSON.stringify(n)}`;
          assert.equal(n.state, 'online', where);
          assert.equal(n.host_ip, l.ip(AGENTS[i] as string), where);
          assert.equal(n.conflict, null, where);
          const h = n.heartbeat;
          assert.ok(h, `no heartbeat in ${where}`);
          assert.equal(h.host_ip, n.host_ip, where);
          assert.equal(h.service_port, SERVICE_PORT, where);
          assert.ok(h.hostname, `hostname in ${where}`);
          assert.ok(h.cpu_arch, `cpu_arch in ${where}`);
          assert.ok(h.os_type, `os_type in ${where}`);
          const r = n.resource;
          assert.ok(r, `no resource report in ${where}`);
          assert.equal(r.host_ip, n.host_ip, where);
          assert.ok(r.resource.cpu.core_count > 0, `core_count in ${where}`);
          assert.ok(r.resource.memory.total > 0, `memory.total in ${where}`);
          assert.ok(
            r.resource.network.some((x) => x.interface === 'eth0'),
            `network entry for eth0 in ${where}`,
          );
          assert.ok(r.resource.disk.length > 0, `a disk in ${where}`);
          assert.ok(Array.isArray(r.resource.gpu), `gpu array in ${where}`);
          assert.ok(Array.isArray(r.component), `component array in ${where}`);
        }
      }),
    );

    test('`muster nodes` prints the three boards ONLINE', { timeout: 15_000 }, () =>
      withLogs(async () => {
        const l = lan as Lan;
        const out = await cli(['nodes']);
        const lines = out.split('\n');
        for (const [i, id] of IDS.entries()) {
          const row = lines.find((x) => x.startsWith(`${id} `));
          assert.ok(row, `no row for ${id} in:\n${out}`);
          assert.match(row, /\bONLINE\b/, `row of ${id} in:\n${out}`);
          assert.ok(row.includes(l.ip(AGENTS[i] as string)), `ip of ${id} in:\n${out}`);
        }
        assert.match(out, /3 nodes: 3 online, 0 suspect, 0 offline/, out);
      }),
    );

    test('a cut link takes its board suspect then offline; the others stay online', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const l = lan as Lan;
        const seen: string[] = [];
        // A neighbour leaving online fails the test at once (a retried poll would hide it).
        let violation: string | undefined;
        const othersOnline = (m: Map<string, NodeSummary>) => {
          for (const id of ['1-1-0', '1-3-0']) {
            const n = m.get(id);
            if (n?.state !== 'online') violation ??= `${id} left online while 1-2-0 was cut: ${JSON.stringify(n)}`;
          }
        };
        const watch = (what: string, want: (s: string | undefined) => boolean) =>
          until(
            what,
            async () => {
              const m = byId(await nodes());
              const s = m.get('1-2-0')?.state;
              if (seen.at(-1) !== s) seen.push(String(s));
              othersOnline(m);
              return violation !== undefined || want(s);
            },
            10_000,
          ).then(() => assert.equal(violation, undefined, violation));
        l.cut('a2');
        await watch('1-2-0 to leave online', (s) => s === 'suspect' || s === 'offline');
        await watch('1-2-0 to go offline', (s) => s === 'offline');

        const n = await node('1-2-0');
        const tr = n.transitions;
        const where = `states seen ${seen.join(' → ')}; transitions ${JSON.stringify(tr)}`;
        const down = tr.find((t) => t.from === 'online' && t.to === 'suspect');
        const off = tr.find((t) => t.from === 'suspect' && t.to === 'offline');
        assert.ok(down, `online→suspect missing: ${where}`);
        assert.ok(off, `suspect→offline missing: ${where}`);
        assert.match(down.reason, /missed \d+ heartbeat round/, where);
        assert.match(off.reason, /missed \d+ heartbeat round/, where);
        assert.ok(tr.indexOf(down) < tr.indexOf(off), where);
        // Offline raised an alert; `muster alerts` shows it open.
        const [alert] = await offlineAlerts('1-2-0');
        assert.equal(alert?.state, 'open', JSON.stringify(alert));
        assert.equal(alert.severity, 'critical');
        assert.match(alert.message, /offline: missed \d+ heartbeat rounds/);
        for (const id of ['1-1-0', '1-3-0']) assert.deepEqual(await offlineAlerts(id), [], `no alert for ${id}`);
        othersOnline(byId(await nodes()));
        assert.equal(violation, undefined, violation);
      }),
    );

    test('a restored link brings the same agent back online', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const l = lan as Lan;
        const a2 = agents.get('a2') as Proc;
        const pid = a2.proc.pid;
        const restoredAt = Date.now();
        l.restore('a2');
        await until(
          '1-2-0 back online',
          async () => {
            const m = byId(await nodes());
            return m.get('1-2-0')?.state === 'online';
          },
          15_000,
        );
        const n = await node('1-2-0');
        const back = n.transitions.at(-1);
        assert.ok(back, `no transitions: ${JSON.stringify(n)}`);
        const where = JSON.stringify(n.transitions);
        assert.equal(back.from, 'offline', where);
        assert.equal(back.to, 'online', where);
        assert.match(back.reason, /heartbeat/, where);
        assert.ok(Date.parse(back.at) >= restoredAt - 1000, `came back before the restore: ${where}`);
        assert.equal(n.host_ip, l.ip('a2'));
        // The agent rode out the cut: same process, never exited, started once.
        assert.equal(a2.proc.pid, pid);
        assert.equal(a2.proc.exitCode, null, 'agent a2 exited');
        assert.equal(a2.proc.signalCode, null, 'agent a2 was killed');
        assert.equal(a2.output().match(/"agent started"/g)?.length, 1, 'agent a2 started more than once');
        // Back online resolved the offline alert, and the history has the whole story.
        const alerts = await offlineAlerts('1-2-0');
        assert.equal(alerts.length, 1, JSON.stringify(alerts));
        assert.equal(alerts[0]?.state, 'resolved');
        assert.match(alerts[0]?.message ?? '', /back online/);
        const history = JSON.parse(await cli(['history', '--node', '1-2-0', '--kind', 'state', '--json'])) as {
          history: { operation: string }[];
        };
        assert.deepEqual(history.history.map((e) => e.operation).reverse(), ['online', 'suspect', 'offline', 'online']);
        const m = byId(await nodes());
        for (const id of IDS) assert.equal(m.get(id)?.state, 'online', `${id}: ${JSON.stringify(m.get(id))}`);
      }),
    );

    test('`muster query heartbeat` lists each board once', { timeout: 20_000 }, () =>
      withLogs(async () => {
        const l = lan as Lan;
        const r = JSON.parse(await cli(['query', 'heartbeat', '--json'])) as { url: string; answers: Answer[] };
        const where = JSON.stringify(r);
        assert.equal(r.url, '/heartbeat', where);
        assert.deepEqual(
          r.answers.map((a) => `${a.node} ${a.host_ip}`).sort(),
          IDS.map((id, i) => `${id} ${l.ip(AGENTS[i] as string)}`),
          where,
        );
      }),
    );
  },
);
