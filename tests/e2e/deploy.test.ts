/**
 * Deploy end to end on real parts, on one machine: the CLI → the manager's REST API → the agent's
 * POST /deploy → the real docker and bar drivers, then back through the agent's /resource reports.
 * Multicast stays on 127.0.0.1 and a port picked for this file. Docker fixtures (dockerd, a local
 * registry holding muster-test/busybox:1) come from tests/helpers/images.ts, without internet.
 *
 * Agents: A (the workloads, token T), B (a different token: the manager's is wrong for it), and C
 * (standalone, auth.disabled, for the interop check with a spec-only body sent by plain fetch).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { DeploymentRecord } from '../../manager/deploy.js';
import type { ComponentView, NodeDetail } from '../../manager/views.js';
import {
  apiFetch,
  freePort,
  getJson,
  type Proc,
  runMuster,
  sets,
  startMuster,
  testAdmin,
  waitFor,
} from '../helpers/daemons.js';
import { docker, type FileServer, run, serveDir, setupTestImages, type TestImages } from '../helpers/images.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';

const IFACE = '127.0.0.1';
const A = '7-4-0';
const B = '7-5-0';
const TOKEN = 'deploy-e2e-token-1f9c';
const BUNDLE = 'looper.bar';
const U_DOCKER = `e2e-docker-${process.pid}`;
const U_BAR = `e2e-bar-${process.pid}`;
const U_CRASH = `e2e-crash-${process.pid}`;
const CRASHER = 'crasher.bar';

/** Runs `muster <args>` to completion within `ms` (killed and failed when it keeps running). */
const cli = (args: string[], ms = 120_000) => runMuster(args, { timeoutMs: ms });

/**
 * Whether a process (pid > 0) or process group (pid < 0) has a member that is not a zombie (a
 * zombie waits for its parent to reap it; it runs nothing and holds no core).
 */
function exists(pid: number): boolean {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z') continue;
    if (pid > 0 ? Number(e) === pid : Number(pgrp) === -pid) return true;
  }
  return false;
}

describe(
  'deploy: CLI → manager → agent → docker and bar, on one machine',
  needs(missingRoot('docker and cgroups'), missingCommand('dockerd')),
  () => {
    let tmp: string;
    let images: TestImages;
    let bundles: FileServer;
    let base: string;
    let mcastPort: number;
    let manager: Proc;
    let agentA: Proc;
    let agentB: Proc;
    let agentArgs: string[];
    let portA: number;
    let containerId = '';
    let containerCore = '';
    let barPid = 0;
    const logs = () =>
      `--- manager:\n${manager?.output().slice(-4000)}\n--- agent A:\n${agentA?.output().slice(-6000)}\n--- agent B:\n${agentB?.output().slice(-2000)}`;
    const m = (...args: string[]) => cli(['--manager', base, ...args]);
    const node = async (id: string) => {
      const r = await m('node', id, '--json');
      assert.equal(r.code, 0, r.output);
      return JSON.parse(r.output) as NodeDetail;
    };
    const components = async () => {
      const r = await m('components', '--json');
      assert.equal(r.code, 0, r.output);
      return JSON.parse(r.output) as ComponentView[];
    };
    // The manager tells boards apart by host_ip: each agent reports (and serves /deploy) on its own
    // loopback address.
    const agentFlags = (box: number, slot: number, port: number, dir: string, tokenFile: string, ip: string) => [
      'agent',
      ...sets({
        'multicast.interface': IFACE,
        'multicast.port': mcastPort,
        'service.host': ip,
        'report.host_ip': ip,
        'service.port': port,
        'identity.box_id': box,
        'identity.slot_id': slot,
        'identity.cpu_id': '0',
        'report.jitter_ms': '50',
        'deploy.reserved_cores': '[]',
        'deploy.stop_grace_ms': '3000',
        data_dir: dir,
        'auth.token_file': tokenFile,
      }),
    ];

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-deploy-e2e-'));
      images = await setupTestImages();

      // The bar bundle: bar.yaml and a run.sh that loops, as a gzip tar served over http.
      const src = path.join(tmp, 'bundle-src');
      const served = path.join(tmp, 'served');
      mkdirSync(src);
      mkdirSync(served);
      writeFileSync(path.join(src, 'bar.yaml'), 'name: looper\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\n');
      writeFileSync(path.join(src, 'run.sh'), 'while true; do sleep 1; done\n');
      await run('tar', ['czf', path.join(served, BUNDLE), '-C', src, 'bar.yaml', 'run.sh']);
      // A bundle whose process fails a moment after it starts.
      const crash = path.join(tmp, 'crasher-src');
      mkdirSync(crash);
      writeFileSync(path.join(crash, 'bar.yaml'), 'name: crasher\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\n');
      writeFileSync(path.join(crash, 'run.sh'), 'sleep 2; exit 3\n');
      await run('tar', ['czf', path.join(served, CRASHER), '-C', crash, 'bar.yaml', 'run.sh']);
      bundles = await serveDir(served);

      writeFileSync(path.join(tmp, 'token-a'), `${TOKEN}\n`);
      writeFileSync(path.join(tmp, 'token-b'), 'another-token-entirely\n');
      const httpPort = await freePort();
      mcastPort = await freePort();
      base = `http://127.0.0.1:${httpPort}`;
      manager = startMuster(
        [
          'manager',
          ...sets({
            'multicast.interface': IFACE,
            'multicast.port': mcastPort,
            'http.host': '127.0.0.1',
            'http.port': httpPort,
            'query.heartbeat_interval_ms': '500',
            'query.resource_interval_ms': '700',
            'deploy.token_file': path.join(tmp, 'no-such-token-file'),
            'deploy.progress_poll_ms': '100',
            data_dir: path.join(tmp, 'manager'),
          }),
          // A secret is refused with --set (ps shows it): the token comes from the environment.
        ],
        { env: { MUSTER_MANAGER_DEPLOY_TOKEN: TOKEN } },
      );
      portA = await freePort();
      agentArgs = agentFlags(7, 4, portA, path.join(tmp, 'agent-a'), path.join(tmp, 'token-a'), '127.0.0.1');
      agentA = startMuster(agentArgs);
      agentB = startMuster(
        agentFlags(7, 5, await freePort(), path.join(tmp, 'agent-b'), path.join(tmp, 'token-b'), '127.0.0.2'),
      );
      await waitFor(
        'nodes A and B online with a resource report',
        async () => {
          const [a, b] = await Promise.all([
            getJson<NodeDetail>(`${base}/api/v1/nodes/${A}`),
            getJson<NodeDetail>(`${base}/api/v1/nodes/${B}`),
          ]);
          return a.state === 'online' && a.resource && b.state === 'online' && b.resource;
        },
        30_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
    });

    after(async () => {
      await agentA?.stop();
      await agentB?.stop();
      await manager?.stop();
      // Whatever a failed case left behind.
      await docker('rm', '-f', `muster-${U_DOCKER}`).catch(() => undefined);
      if (barPid > 0 && exists(-barPid)) process.kill(-barPid, 'SIGKILL');
      await bundles?.stop();
      await images?.cleanup();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it('refuses bad input before anything is sent: unknown node, bad --memory, schema errors', {
      timeout: 60_000,
    }, async () => {
      const unknown = await m(
        ...['deploy', 'start', '--node', '9-9-9', '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', '1', '--memory', '32M'],
      );
      assert.equal(unknown.code, 4, unknown.output);
      assert.match(unknown.output, /muster: no node 9-9-9/);

      const badSize = await m(
        ...['deploy', 'start', '--node', A, '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', '1', '--memory', '12Q'],
      );
      assert.equal(badSize.code, 1, badSize.output);
      assert.match(badSize.output, /--memory "12Q": not a size/);

      const res = await apiFetch(`${base}/api/v1/deployments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          node: A,
          mode: 'start',
          type: 'bar',
          url: 'x',
          file: 'y',
          require: { cpu: '1', memory: 1, gpu: 0 },
        }),
      });
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: string; field: string; message: string };
      assert.equal(body.error, 'bad_request');
      assert.equal(body.field, '/require/cpu');
      assert.match(body.message, /\/require\/cpu/);

      const missing = await apiFetch(`${base}/api/v1/deployments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ node: A, mode: 'start', type: 'bar', url: 'x', require: { cpu: 1, memory: 1, gpu: 0 } }),
      });
      assert.equal(missing.status, 400);
      assert.equal(((await missing.json()) as { field: string }).field, '/file');
    });

    it('starts a container with 1 core and 64 MiB: RUNNING in `muster components`, pinned and capped', {
      timeout: 180_000,
    }, async () => {
      const r = await m(
        ...['deploy', 'start', '--node', A, '--type', 'docker', '--url', images.registryUrl, '--file'],
        ...[images.registryFile, '--cpu', '1', '--memory', '64Mi', '--uuid', U_DOCKER, '--instance', 'inst-1'],
        ...['--index', '2', '--json'],
      );
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      const d = JSON.parse(r.output) as DeploymentRecord;
      assert.equal(d.result, 0, r.output);
      assert.equal(d.who, testAdmin().user, 'who: the authenticated user (the test admin), not a self-declared name');
      assert.equal(d.request.require?.memory, 67108864);
      assert.equal(typeof d.reply?.id, 'string');
      containerId = d.reply?.id as string;
      assert.ok(
        d.progress.some((l) => l.startsWith(`pulling ${images.registryUrl}/${images.registryFile}`)),
        `the agent's pull progress is kept: ${JSON.stringify(d.progress)}`,
      );

      const inspect = JSON.parse(await docker('inspect', containerId)) as {
        State: { Running: boolean };
        HostConfig: { CpusetCpus: string; Memory: number };
      }[];
      assert.equal(inspect[0]?.State.Running, true);
      assert.equal(inspect[0]?.HostConfig.Memory, 67108864);
      containerCore = inspect[0]?.HostConfig.CpusetCpus ?? '';
      assert.match(containerCore, /^\d+$/, 'one core');

      const c = await waitFor(
        'the container RUNNING in `muster components`',
        async () => (await components()).find((x) => x.uuid === U_DOCKER && x.state === 'RUNNING'),
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      assert.equal(c.node, A);
      assert.equal(c.host_ip, '127.0.0.1');
      assert.equal(c.config.id, containerId);
      assert.equal(c.instance_id, 'inst-1');
      assert.equal(c.index, 2);

      const table = await m('components', '--node', A);
      assert.equal(table.code, 0, table.output);
      assert.match(table.output, /^NODE\s+UUID\s+INSTANCE\s+INDEX\s+NAME\s+ID\s+STATE\s+CPU%\s+MEM USED\s+MEM LIMIT/);
      assert.match(table.output, new RegExp(`${A}\\s+${U_DOCKER}\\s+inst-1\\s+2\\s.*RUNNING.*64 MiB`));
    });

    it('starts a bar bundle with 1 core and 32M: its process runs pinned to its core, RUNNING in components', {
      timeout: 120_000,
    }, async () => {
      const r = await m(
        ...['deploy', 'start', '--node', A, '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', '1', '--memory', '32M', '--uuid', U_BAR],
      );
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      assert.match(r.output, /^deployment [0-9a-f-]{36}: start bar /m);
      // The agent's progress lines, printed as they come, before the result.
      assert.match(r.output, /^ {2}fetching http:\/\/127\.0\.0\.1:\d+\/looper\.bar$/m);
      assert.match(r.output, /^ {2}started looper 1\.0 as pid \d+$/m);
      assert.match(r.output, /^result 0: started bar /m);
      const idLine = /^uuid (\S+)\s+id (\d+)$/m.exec(r.output);
      assert.ok(idLine, r.output);
      assert.equal(idLine[1], U_BAR);
      barPid = Number(idLine[2]);
      assert.ok(exists(barPid), `pid ${barPid} alive`);

      const status = readFileSync(`/proc/${barPid}/status`, 'utf8');
      const allowed = /^Cpus_allowed_list:\s*(\S+)$/m.exec(status)?.[1];
      assert.match(allowed ?? '', /^\d+$/, status);
      assert.notEqual(allowed, containerCore, 'the bar process and the container hold different cores');

      await waitFor(
        'the bundle RUNNING in `muster components`',
        async () =>
          (await components()).find((x) => x.uuid === U_BAR && x.state === 'RUNNING' && x.config.id === String(barPid)),
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));

      const n = await node(A);
      await waitFor(
        'core_allocated 2 reported',
        async () => (await node(A)).resource?.resource.cpu.core_allocated === 2,
      );
      assert.ok(n.free);
      assert.equal(n.free.gpus, null);
      const text = await m('node', A);
      assert.match(text.output, /^free\s+\d+ of \d+ cores, .* memory, GPUs: 0 present/m);
    });

    it('refuses a start that exceeds the free cores with result 2 saying what is short; CLI exits 1', {
      timeout: 60_000,
    }, async () => {
      const cores = (await node(A)).resource?.resource.cpu.core_count ?? 0;
      assert.ok(cores > 0);
      const want = cores + 1;
      const r = await m(
        ...['deploy', 'start', '--node', A, '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', String(want), '--memory', '32M'],
      );
      assert.equal(r.code, 1, r.output);
      assert.match(
        r.output,
        new RegExp(`muster: deploy failed \\(result 2\\): insufficient resources: cpu: need ${want} cores`),
      );
    });

    it('a repeated start of the same uuid returns the running component', { timeout: 60_000 }, async () => {
      const r = await m(
        ...['deploy', 'start', '--node', A, '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', '1', '--memory', '32M', '--uuid', U_BAR, '--json'],
      );
      assert.equal(r.code, 0, r.output);
      const d = JSON.parse(r.output) as DeploymentRecord;
      assert.equal(d.result, 0);
      assert.match(d.message ?? '', /already running/);
      assert.equal(d.reply?.id, barPid);
    });

    it("a deploy with a token the agent does not accept shows the agent's result 6 verbatim", {
      timeout: 60_000,
    }, async () => {
      const r = await m(
        ...['deploy', 'start', '--node', B, '--type', 'bar', '--url', bundles.baseUrl, '--file', BUNDLE],
        ...['--cpu', '1', '--memory', '32M'],
      );
      assert.equal(r.code, 1, r.output);
      assert.match(r.output, /^result 6: unauthorized: wrong token$/m);
      assert.match(r.output, /^muster: deploy failed \(result 6\): unauthorized: wrong token$/m);
    });

    it('an agent killed with SIGKILL and restarted re-adopts both workloads', { timeout: 120_000 }, async () => {
      await agentA.stop('SIGKILL');
      assert.ok(exists(barPid), 'the bar process survives the agent');
      const inspect = JSON.parse(await docker('inspect', containerId)) as { State: { Running: boolean } }[];
      assert.equal(inspect[0]?.State.Running, true, 'the container survives the agent');

      const restartedAt = Date.now();
      agentA = startMuster(agentArgs);
      await waitFor(
        'a resource report from the restarted agent',
        async () => {
          const n = await getJson<NodeDetail>(`${base}/api/v1/nodes/${A}`);
          return n.resource_at !== null && Date.parse(n.resource_at) > restartedAt + 200 && n;
        },
        30_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      assert.match(agentA.output(), /re-adopted running component/);
      const cs = await components();
      const d = cs.find((x) => x.uuid === U_DOCKER);
      const b = cs.find((x) => x.uuid === U_BAR);
      assert.equal(d?.state, 'RUNNING', JSON.stringify(cs));
      assert.equal(d?.config.id, containerId);
      assert.equal(b?.state, 'RUNNING', JSON.stringify(cs));
      assert.equal(b?.config.id, String(barPid));
      assert.equal((await node(A)).resource?.resource.cpu.core_allocated, 2);
    });

    it('stops both: container gone, process group gone, core_allocated 0; a repeated stop says already stopped', {
      timeout: 120_000,
    }, async () => {
      // No --type: the manager takes it from the recorded start (and the id from the report).
      const sd = await m('deploy', 'stop', '--node', A, '--uuid', U_DOCKER);
      assert.equal(sd.code, 0, `${sd.output}\n${logs()}`);
      assert.match(sd.output, /^result 0: stopped docker /m);
      await assert.rejects(docker('inspect', containerId), /No such object/);

      const sb = await m('deploy', 'stop', '--node', A, '--uuid', U_BAR, '--type', 'bar');
      assert.equal(sb.code, 0, `${sb.output}\n${logs()}`);
      assert.match(sb.output, /^result 0: stopped bar /m);
      assert.equal(exists(-barPid), false, 'process group gone');
      assert.equal(exists(barPid), false, 'process gone');

      const n = await waitFor(
        'core_allocated 0 in `muster node --json`',
        async () => {
          const x = await node(A);
          return x.resource?.resource.cpu.core_allocated === 0 && x;
        },
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      assert.equal(n.free?.cores, n.resource?.resource.cpu.core_count);

      const again = await m('deploy', 'stop', '--node', A, '--uuid', U_BAR, '--json');
      assert.equal(again.code, 0, again.output);
      const d = JSON.parse(again.output) as DeploymentRecord;
      assert.equal(d.result, 0);
      assert.match(d.message ?? '', /already stopped/);

      const list = await m('deployments', '--node', A, '--json');
      assert.equal(list.code, 0, list.output);
      const ds = JSON.parse(list.output) as DeploymentRecord[];
      assert.ok(ds.every((x) => x.node === A && x.result !== null && x.finished_at !== null));
      assert.deepEqual(
        ds.filter((x) => x.result === 0).map((x) => [x.mode, x.type, x.uuid]),
        [
          ['start', 'docker', U_DOCKER],
          ['start', 'bar', U_BAR],
          ['start', 'bar', U_BAR],
          ['stop', 'docker', U_DOCKER],
          ['stop', 'bar', U_BAR],
          ['stop', 'bar', U_BAR],
        ],
      );
      const stopDocker = ds.find((x) => x.mode === 'stop' && x.type === 'docker');
      assert.equal(stopDocker?.request.id, containerId, 'the stop carried the container id (the spec needs it)');
      const table = await m('deployments');
      assert.match(table.output, /^ID\s+WHEN\s+NODE\s+MODE\s+TYPE\s+UUID\s+WHO\s+RESULT\s+MESSAGE/);
    });

    it('a component that crashes: FAILED alert from the report and the agent, both resolved by a stop; all in history', {
      timeout: 120_000,
    }, async () => {
      const r = await m(
        ...['deploy', 'start', '--node', A, '--type', 'bar', '--url', bundles.baseUrl, '--file', CRASHER],
        ...['--cpu', '1', '--memory', '16M', '--uuid', U_CRASH],
      );
      assert.equal(r.code, 0, `${r.output}\n${logs()}`);
      type Al = {
        kind: string;
        rule: string;
        node: string;
        instance: string;
        state: string;
        source: string;
        message: string;
      };
      const alerts = async (q = '') =>
        (await getJson<{ alerts: Al[] }>(`${base}/api/v1/alerts?node=${A}${q}`)).alerts.filter(
          (a) => a.instance === U_CRASH,
        );
      const open = await waitFor(
        'component_failed (manager) and component_crashed (agent) alerts',
        async () => {
          const xs = await alerts('&open=true');
          return xs.some((a) => a.kind === 'component_failed') && xs.some((a) => a.kind === 'agent') && xs;
        },
        30_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      const fromAgent = open.find((a) => a.kind === 'agent') as Al;
      assert.equal(fromAgent.rule, 'component_crashed');
      assert.equal(fromAgent.source, 'agent');
      assert.match(fromAgent.message, /exited on its own with code 3/);

      const stop = await m('deploy', 'stop', '--node', A, '--uuid', U_CRASH);
      assert.equal(stop.code, 0, `${stop.output}\n${logs()}`);
      await waitFor(
        'both alerts resolved',
        async () => (await alerts()).every((a) => a.state === 'resolved'),
        20_000,
      ).catch((err: Error) => assert.fail(`${err.message}\n${logs()}`));
      const h = await m('history', '--node', A, '--json', '--all');
      assert.equal(h.code, 0, h.output);
      const entries = (
        JSON.parse(h.output) as {
          history: { kind: string; operation: string; args: { uuid?: string } | null; result: number | null }[];
        }
      ).history;
      const mine = entries.filter((e) => e.args?.uuid === U_CRASH);
      assert.ok(
        mine.some((e) => e.kind === 'operation' && e.operation === 'deploy.start' && e.result === 0),
        'the start',
      );
      assert.ok(
        mine.some((e) => e.kind === 'component' && e.operation === 'FAILED'),
        'the failure',
      );
      assert.ok(
        mine.some((e) => e.kind === 'operation' && e.operation === 'deploy.stop' && e.result === 0),
        'the stop',
      );
    });
  },
);

describe(
  'deploy interop: a spec-only /deploy body to an agent with auth disabled',
  needs(missingRoot('cgroups')),
  () => {
    let tmp: string;
    let bundles: FileServer;
    let agent: Proc;
    let port: number;

    before(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-deploy-interop-'));
      const src = path.join(tmp, 'src');
      const served = path.join(tmp, 'served');
      mkdirSync(src);
      mkdirSync(served);
      writeFileSync(path.join(src, 'bar.yaml'), 'name: looper\nversion: "1.0"\ncommand: ["/bin/sh", "run.sh"]\n');
      writeFileSync(path.join(src, 'run.sh'), 'while true; do sleep 1; done\n');
      await run('tar', ['czf', path.join(served, BUNDLE), '-C', src, 'bar.yaml', 'run.sh']);
      bundles = await serveDir(served);
      port = await freePort();
      agent = startMuster([
        'agent',
        ...sets({
          'multicast.interface': IFACE,
          'multicast.port': await freePort(),
          'service.host': '127.0.0.1',
          'service.port': port,
          'auth.disabled': 'true',
          'auth.token_file': path.join(tmp, 'none'),
          'deploy.docker_socket': '',
          'deploy.stop_grace_ms': '2000',
          data_dir: path.join(tmp, 'agent'),
        }),
      ]);
      await waitFor('the agent service port', () => getJson(`http://127.0.0.1:${port}/healthz`), 20_000);
    });

    after(async () => {
      await agent?.stop();
      await bundles?.stop();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    it("answers with exactly the spec's reply fields, typed as the spec says", { timeout: 60_000 }, async () => {
      const post = async (data: Record<string, unknown>) => {
        const res = await fetch(`http://127.0.0.1:${port}/deploy`, {
          method: 'POST',
          body: JSON.stringify({ api_version: 1, data }),
          signal: AbortSignal.timeout(30_000),
        });
        return {
          status: res.status,
          body: (await res.json()) as { api_version: number; data: Record<string, unknown> },
        };
      };
      const uuid = `interop-${process.pid}`;
      const start = await post({
        mode: 'start',
        type: 'bar',
        uuid,
        url: bundles.baseUrl,
        file: BUNDLE,
        require: { cpu: 1, memory: 33554432, gpu: 0 },
      });
      assert.equal(start.status, 200, JSON.stringify(start.body));
      assert.deepEqual(Object.keys(start.body).sort(), ['api_version', 'data']);
      assert.equal(start.body.api_version, 1);
      const d = start.body.data;
      assert.deepEqual(Object.keys(d).sort(), [
        'file',
        'id',
        'message',
        'mode',
        'require',
        'result',
        'type',
        'url',
        'uuid',
      ]);
      assert.equal(d.mode, 'start');
      assert.equal(d.type, 'bar');
      assert.equal(d.uuid, uuid);
      assert.ok(Number.isInteger(d.id) && (d.id as number) > 0, `id is the bar pid as an int: ${JSON.stringify(d.id)}`);
      assert.equal(d.url, bundles.baseUrl);
      assert.equal(d.file, BUNDLE);
      assert.deepEqual(d.require, { cpu: 1, memory: 33554432, gpu: 0 });
      assert.equal(d.result, 0);
      assert.equal(typeof d.message, 'string');
      const pid = d.id as number;
      try {
        assert.ok(exists(pid));
        const stop = await post({ mode: 'stop', type: 'bar', uuid, id: pid });
        assert.equal(stop.status, 200, JSON.stringify(stop.body));
        assert.deepEqual(Object.keys(stop.body.data).sort(), ['id', 'message', 'mode', 'result', 'type', 'uuid']);
        assert.equal(stop.body.data.result, 0);
        assert.equal(stop.body.data.id, pid);
        assert.equal(typeof stop.body.data.message, 'string');
        assert.equal(exists(-pid), false);
      } finally {
        if (exists(-pid)) process.kill(-pid, 'SIGKILL');
      }
    });
  },
);
