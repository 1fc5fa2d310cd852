/**
 * Placement and business instances on real parts (docs/scheduling.md): a manager and four agents
 * in network namespaces on one bridge (tests/helpers/netns.ts), the real bar driver running real
 * processes, bundles served over HTTP from the manager's namespace, the operator's CLI run inside
 * that namespace.
 *
 * 1. `muster instance apply` of three bar components with `distinct: node`: three boards.
 * 2. A board's link cut past reschedule_after: its component is started on the fourth board.
 * 3. The link restored: the board still runs its copy, which is stopped; three run.
 * 4. A changed spec rolls out one component at a time, each new one RUNNING before its old stops,
 *    never fewer than three running.
 * 5. A manager SIGKILLed and restarted adopts the running components and starts none.
 * 6. A placement that cannot fit explains why (plan and a deploy without --node).
 * 7. `muster deploy start` without --node is placed, runs and stops.
 *
 * Four agents, not three: with `distinct: node`, the component of a lost board may only move to a
 * board that holds none of its siblings, so three components need a fourth board to move to.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { InstanceEvent, InstanceView } from '../../common/api/instances.js';
import { adminToken, type Proc, runMuster, sets, startMuster, watchDaemons } from '../helpers/daemons.js';
import { run } from '../helpers/images.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const PREFIX = 'mpl';
const AGENTS = ['a1', 'a2', 'a3', 'a4'] as const;
const MANAGER_PORT = 3926;
const FILES_PORT = 8765;
const TOKEN = 'placement-e2e-token-77c1';
const execFileP = promisify(execFile);

/** Serves `<dir>/<name>` at /bundles/<name> on host:port (run inside the manager's namespace). */
const FILES_JS = `
const http = require('node:http'), fs = require('node:fs'), path = require('node:path');
const [dir, host, port] = process.argv.slice(1);
http.createServer((req, res) => {
  const name = decodeURIComponent(String(req.url).replace(/^\\/bundles\\//, ''));
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) { res.statusCode = 404; return res.end(); }
  fs.readFile(path.join(dir, name), (e, b) => {
    if (e) { res.statusCode = 404; return res.end(); }
    res.setHeader('content-type', 'application/octet-stream');
    res.end(b);
  });
}).listen(Number(port), host, () => process.stdout.write('listening\\n'));
`;

/** GETs argv[1] with $MUSTER_TOKEN; prints { status, body }. */
const FETCH_JS = `
fetch(process.argv[1], { headers: { authorization: 'Bearer ' + process.env.MUSTER_TOKEN }, signal: AbortSignal.timeout(4000) })
  .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, body: await r.text() })))
  .catch((e) => process.stdout.write(JSON.stringify({ error: String(e && e.message || e) })));
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe(
  'placement: an instance placed, rescheduled, cleaned up and updated on four namespaced boards',
  needs(missingRoot('network namespaces and cgroups'), missingCommand('ip'), missingCommand('tar')),
  () => {
    let lan: Lan | undefined;
    let manager: Proc | undefined;
    let files: ChildProcess | undefined;
    const agents = new Map<string, Proc>();
    let tmp = '';
    let url = '';
    let token = '';
    const ids = AGENTS.map((_, i) => `1-${i + 1}-0`);
    const nodeOfHost = (h: string) => `1-${AGENTS.indexOf(h as (typeof AGENTS)[number]) + 1}-0`;
    const l = () => {
      if (!lan) throw new Error('no LAN');
      return lan;
    };
    const logs = () =>
      [
        `----- manager -----\n${manager?.output().slice(-6000)}`,
        ...[...agents].map(([h, p]) => `----- agent ${h} -----\n${p.output().slice(-2500)}`),
      ].join('\n');
    const { withLogs, until } = watchDaemons(
      () => [
        ...(manager ? [['manager', manager] as [string, Proc]] : []),
        ...[...agents].map(([h, p]) => [`agent ${h}`, p] as [string, Proc]),
      ],
      logs,
    );

    /** GET of the manager's API from inside its namespace. */
    const api = async <T>(p: string): Promise<T> => {
      const { stdout } = await execFileP(
        'ip',
        ['netns', 'exec', l().ns('mgr'), process.execPath, '-e', FETCH_JS, `${url}${p}`],
        {
          env: { ...process.env, MUSTER_TOKEN: token },
          timeout: 10_000,
        },
      );
      const r = JSON.parse(stdout) as { status?: number; body?: string; error?: string };
      if (r.status !== 200 || r.body === undefined) throw new Error(`GET ${p}: ${stdout}`);
      return JSON.parse(r.body) as T;
    };
    const status = () => api<{ instance: InstanceView }>('/api/v1/instances/radar').then((r) => r.instance);
    const history = async () =>
      (await api<{ events: InstanceEvent[] }>('/api/v1/instances/radar/history?limit=1000')).events.slice().reverse();
    /** `muster --manager <url> <args>` inside the manager's namespace. */
    const cli = (args: string[]) => runMuster(['--manager', url, ...args], { netns: l().ns('mgr'), timeoutMs: 30_000 });

    const specFile = (file: string) => {
      const f = path.join(tmp, `radar-${file}.yaml`);
      writeFileSync(
        f,
        [
          'instance_id: radar',
          'groups:',
          '  track:',
          '    count: 3',
          '    type: bar',
          `    url: http://${l().ip('mgr')}:${FILES_PORT}/bundles`,
          `    file: ${file}`,
          '    require: { cpu: 1, memory: 32M }',
          '    distinct: node',
          '    reschedule_after: 2s',
          '    restart: { delay: 500ms }',
          '    update: { max_parallel: 1, min_healthy: 1s }',
          '',
        ].join('\n'),
      );
      return f;
    };
    const live = (i: InstanceView) => i.components.filter((c) => c.phase === 'running' || c.phase === 'starting');

    /** The manager, in its namespace, with short rounds and reconcile passes. */
    const startManager = (): Proc =>
      startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': 'eth0',
            'query.heartbeat_interval_ms': 300,
            'query.resource_interval_ms': 500,
            'query.jitter_ms': 0,
            'liveness.suspect_after_rounds': 2,
            'liveness.offline_after_rounds': 4,
            'deploy.token': TOKEN,
            'deploy.token_file': path.join(tmp, 'no-such-file'),
            'deploy.progress_poll_ms': 200,
            'instances.reconcile_interval_ms': 400,
            'instances.reschedule_after_ms': 2000,
            data_dir: path.join(tmp, 'manager'),
          }),
        ],
        { netns: l().ns('mgr') },
      );

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-placement-e2e-'));
      const served = path.join(tmp, 'served');
      const src = path.join(tmp, 'src');
      mkdirSync(served);
      mkdirSync(src);
      writeFileSync(
        path.join(src, 'bar.yaml'),
        'name: tracker\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\nstop_grace_ms: 1000\n',
      );
      writeFileSync(path.join(src, 'run.sh'), 'while true; do sleep 1; done\n');
      await run('tar', ['czf', path.join(served, 'tracker-1.bar'), '-C', src, 'bar.yaml', 'run.sh']);
      writeFileSync(
        path.join(src, 'bar.yaml'),
        'name: tracker\nversion: "2.0"\ncommand: ["/bin/sh", "run.sh"]\nstop_grace_ms: 1000\n',
      );
      await run('tar', ['czf', path.join(served, 'tracker-2.bar'), '-C', src, 'bar.yaml', 'run.sh']);
      writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);

      lan = createLan({ prefix: PREFIX, hosts: ['mgr', ...AGENTS] });
      url = `http://${lan.ip('mgr')}:${MANAGER_PORT}`;
      files = spawn(
        'ip',
        ['netns', 'exec', lan.ns('mgr'), process.execPath, '-e', FILES_JS, served, lan.ip('mgr'), String(FILES_PORT)],
        {
          stdio: 'ignore',
        },
      );
      manager = startManager();
      for (const [i, h] of AGENTS.entries()) {
        agents.set(
          h,
          startMuster(
            [
              'agent',
              ...sets({
                'multicast.interface': 'eth0',
                'identity.box_id': 1,
                'identity.slot_id': i + 1,
                'identity.cpu_id': 0,
                'report.jitter_ms': 50,
                'collect.interval_ms': 500,
                'deploy.docker_socket': '',
                'deploy.reserved_cores': '[]',
                'deploy.stop_grace_ms': 1000,
                'auth.token_file': path.join(tmp, 'token'),
                data_dir: path.join(tmp, h),
              }),
            ],
            { netns: lan.ns(h) },
          ),
        );
      }
      await withLogs(async () => {
        token = await until(
          'the test admin logs in',
          () => adminToken(url, l().ns('mgr')).catch(() => ''),
          20_000,
          500,
        );
        await until(
          'four boards online with a resource report',
          async () => {
            const r = await api<{ nodes: { id: string; state: string; cpu_percent: number | null }[] }>(
              '/api/v1/nodes',
            );
            return ids.every((id) =>
              r.nodes.some((n) => n.id === id && n.state === 'online' && n.cpu_percent !== null),
            );
          },
          20_000,
          300,
        );
      });
    });

    after(async () => {
      // Bar workloads outlive their agent on purpose (re-adoption): remove the instance so that the
      // agents stop them, then kill by pid any process group a failed case left behind.
      const pids: number[] = [];
      try {
        if (manager && token) {
          await cli(['instance', 'rm', 'radar']);
          // Stopped and forgotten: the instance's GET turns 404.
          for (
            let i = 0;
            i < 25 &&
            (await status().then(
              () => true,
              () => false,
            ));
            i++
          )
            await sleep(200);
          const r = await api<{ components: { state: string; config: { id: string } }[] }>('/api/v1/components');
          for (const c of r.components)
            if (c.state === 'RUNNING' && /^\d+$/.test(c.config.id)) pids.push(Number(c.config.id));
        }
      } catch {
        // best effort
      }
      for (const p of agents.values()) await p.stop();
      await manager?.stop();
      files?.kill('SIGKILL');
      for (const pid of pids) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      lan?.destroy();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    let placed = new Map<string, string>(); // uuid → node

    it('apply: three components with distinct: node land on three boards', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const r = await cli(['instance', 'apply', specFile('tracker-1.bar')]);
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, /instance radar: apply makes version 1/);
        const inst = await until(
          'three RUNNING',
          async () => {
            const i = await status();
            return i.groups.track?.running === 3 && i.components.every((c) => c.reported === 'RUNNING') && i;
          },
          20_000,
          300,
        );
        placed = new Map(inst.components.map((c) => [c.uuid, c.node]));
        assert.equal(new Set(placed.values()).size, 3, `three boards: ${[...placed.values()]}`);
        const out = await cli(['instance', 'status', 'radar']);
        assert.equal(out.code, 0, out.output);
        assert.match(out.output, /track\s+3\s+3/);
      }),
    );

    let cutHost = '';
    let cutUuid = '';
    it('a board cut off past reschedule_after: its component starts on the fourth board', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const [uuid, node] = [...placed][0] as [string, string];
        cutUuid = uuid;
        cutHost = AGENTS[Number(node.split('-')[1]) - 1] as string;
        const spare = ids.find((id) => ![...placed.values()].includes(id));
        l().cut(cutHost);
        const inst = await until(
          'rescheduled and RUNNING on the spare board',
          async () => {
            const i = await status();
            const lost = i.components.find((c) => c.uuid === uuid);
            const moved = i.components.find((c) => c.index === lost?.index && c.uuid !== uuid && c.phase === 'running');
            return lost?.phase === 'lost' && moved?.node === spare && moved?.reported === 'RUNNING' && i;
          },
          20_000,
          300,
        );
        assert.equal(inst.groups.track?.running, 3);
        const h = await history();
        assert.ok(h.some((e) => e.action === 'lost' && e.uuid === uuid));
        assert.ok(h.some((e) => e.action === 'reschedule' && e.node === spare));
      }),
    );

    it('the link returns: the stale copy is stopped, count holds', { timeout: 30_000 }, () =>
      withLogs(async () => {
        l().restore(cutHost);
        await until(
          'the stale component stopped and forgotten',
          async () => {
            const i = await status();
            return !i.components.some((c) => c.uuid === cutUuid) && i.groups.track?.running === 3 && i;
          },
          20_000,
          300,
        );
        // Its board's next reports show it stopped (the stop was answered before they were sampled).
        await until(
          'the stale copy reported stopped by its board',
          async () => {
            const comps = await api<{ components: { node: string; uuid: string; state: string }[] }>(
              `/api/v1/components?node=${nodeOfHost(cutHost)}`,
            );
            const stale = comps.components.find((c) => c.uuid === cutUuid);
            return (!stale || stale.state === 'STOPPED') && comps;
          },
          5_000,
          250,
        );
        const h = await history();
        assert.ok(
          h.some((e) => e.action === 'stale' && e.uuid === cutUuid),
          'recorded as stale',
        );
      }),
    );

    it('a changed spec rolls out one at a time, each new RUNNING before its old stops', { timeout: 40_000 }, () =>
      withLogs(async () => {
        const before = await status();
        const olds = new Set(live(before).map((c) => c.uuid));
        assert.equal(olds.size, 3);
        const r = await cli(['instance', 'apply', specFile('tracker-2.bar')]);
        assert.equal(r.code, 0, r.output);
        assert.match(r.output, /update\s+track\[0\].*\(file\)/);
        let minRunning = 3;
        let maxLive = 3;
        await until(
          'version 2 everywhere',
          async () => {
            const i = await status();
            minRunning = Math.min(minRunning, i.components.filter((c) => c.phase === 'running').length);
            maxLive = Math.max(maxLive, live(i).length);
            return i.groups.track?.outdated === 0 && i.groups.track?.running === 3 && live(i).length === 3 && i;
          },
          35_000,
          250,
        );
        assert.equal(minRunning, 3, 'never fewer than three running');
        assert.ok(maxLive <= 4, `at most one extra at a time (saw ${maxLive})`);
        const h = (await history()).filter((e) => e.id > 0);
        const roll = h.filter((e) => e.action === 'update' || e.action === 'replaced');
        assert.deepEqual(
          roll.map((e) => e.action),
          ['update', 'replaced', 'update', 'replaced', 'update', 'replaced'],
          'one at a time',
        );
        for (const rep of roll.filter((e) => e.action === 'update')) {
          const running = h.find((e) => e.action === 'running' && e.uuid === rep.uuid);
          const stopped = roll.find((e) => e.action === 'replaced' && e.id > rep.id);
          assert.ok(running && stopped && running.id < stopped.id, `${rep.uuid} RUNNING before its old one stopped`);
        }
        const after = await status();
        assert.ok(live(after).every((c) => !olds.has(c.uuid) && c.version === 2));
      }),
    );

    it('a manager SIGKILLed and restarted adopts what runs and starts no duplicate', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const ours = async () =>
          (
            await api<{ components: { uuid: string; node: string; state: string; instance_id: string }[] }>(
              '/api/v1/components',
            )
          ).components
            .filter((c) => c.instance_id === 'radar' && c.state === 'RUNNING')
            .map((c) => `${c.uuid}@${c.node}`)
            .sort();
        // The reports catch up with the last stop of the update.
        const before = await until(
          'three RUNNING in the reports',
          async () => {
            const o = await ours();
            return o.length === 3 && o;
          },
          10_000,
          300,
        );
        const lastEvent = Math.max(...(await history()).map((e) => e.id));
        await manager?.stop('SIGKILL');
        manager = startManager();
        await until(
          'the restarted manager sees three RUNNING',
          async () => {
            const i = await status().catch(() => null);
            return i?.groups.track?.running === 3 && (await ours()).length === 3 && i;
          },
          20_000,
          300,
        );
        await sleep(1500); // several reconcile passes (instances.reconcile_interval_ms 400)
        assert.deepEqual(await ours(), before, 'the same three components, no new one');
        const after = (await history()).filter((e) => e.id > lastEvent);
        assert.deepEqual(
          after.filter((e) => ['start', 'restart', 'reschedule', 'update'].includes(e.action)),
          [],
          'nothing started',
        );
      }),
    );

    it('a placement that cannot fit explains why', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const big = path.join(tmp, 'big.yaml');
        writeFileSync(
          big,
          `instance_id: big\ngroups:\n  x:\n    count: 1\n    type: bar\n    url: http://${l().ip('mgr')}:${FILES_PORT}/bundles\n    file: tracker-1.bar\n    require: { cpu: 64, memory: 32M }\n`,
        );
        const plan = await cli(['instance', 'plan', big]);
        assert.equal(plan.code, 0, plan.output);
        assert.match(plan.output, /start\s+x\[0\]\s+new; cannot be placed: 4 nodes: 4 exhausted on cpu/);
        const start = await cli([
          ...['deploy', 'start', '--type', 'bar', '--url', `http://${l().ip('mgr')}:${FILES_PORT}/bundles`],
          ...['--file', 'tracker-1.bar', '--cpu', '1', '--memory', '32M', '--constraint', 'board_type = FPGA'],
        ]);
        assert.notEqual(start.code, 0);
        assert.match(start.output, /no node fits: 4 nodes: 4 filtered by board_type = FPGA/);
      }),
    );

    it('deploy start without --node is placed, runs, and stops', { timeout: 30_000 }, () =>
      withLogs(async () => {
        const start = await cli([
          ...['deploy', 'start', '--type', 'bar', '--url', `http://${l().ip('mgr')}:${FILES_PORT}/bundles`],
          ...['--file', 'tracker-1.bar', '--cpu', '1', '--memory', '16M', '--constraint', 'slot in 1,2,3,4'],
        ]);
        assert.equal(start.code, 0, start.output);
        const m =
          /deployment \S+: start bar (\S+) on node (\S+)\n {2}placed on \S+: score [\d.]+, (\d) of 4 nodes feasible/.exec(
            start.output,
          );
        assert.ok(m, start.output);
        assert.match(start.output, /result 0: /);
        const [, uuid, node] = m as unknown as [string, string, string];
        const stop = await cli(['deploy', 'stop', '--node', node, '--uuid', uuid]);
        assert.equal(stop.code, 0, stop.output);
      }),
    );
  },
);
