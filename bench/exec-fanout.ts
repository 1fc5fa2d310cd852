/**
 * Remote-execution benchmark (docs/exec.md "Manager: targets, batches, tasks"; issue targets):
 *
 * a. Fan-out: one command to 1,000 simulated boards through the manager's task runner (the real
 *    HttpAgentClient over HTTP, the real store and history wiring): every result stored within
 *    1.5 s plus the command's own time, none lost; the manager's CPU per board. Baseline (same
 *    run): the same exec + exec_status calls made directly with the HttpAgentClient, nothing
 *    stored — the ratio is what the manager's bookkeeping costs on top of the wire.
 * b. Live output: a board printing 100 lines/s; latency from the line's time on the board to its
 *    arrival at a CLI-like reader of GET /api/v1/tasks/:id/events (SSE, parsed with the CLI's
 *    parser), p50/p99. Baseline: the same lines read by a direct exec_status long poll.
 *
 * The boards are testkit/exec-sim.ts boards served by a child process (`--serve`) on one port of
 * 127.0.0.1; each request names its board by its bearer token (the manager's per-node token), so
 * 1,000 boards cost one listening socket. The simulated command: `sleep <ms>` then `echo done`.
 *
 * Library: runExecFanout(opts) → ExecFanoutResult; formatExecFanout(r). CLI:
 *   node --import tsx bench/exec-fanout.ts [--n 1000] [--command-ms 500]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { request } from 'undici';
import { SseParser } from '../cli/tasks.js';
import type { TaskLine, TaskRecord } from '../common/api/tasks.js';
import type { AgentClient, AgentTarget } from '../manager/agents/client.js';
import { unsupportedFileCalls } from '../manager/agents/client.js';
import { HttpAgentClient } from '../manager/agents/http.js';
import { buildServer } from '../manager/server.js';
import type { TaskRunner } from '../manager/tasks/runner.js';
import { tokenHeaders } from '../testkit/auth.js';
import { SimFleet } from '../testkit/exec-sim.js';
import { fleetHeartbeat } from '../testkit/fleet.js';
import { serverDeps, TEST_EXEC_CONFIG } from '../testkit/server.js';
import { fx, isMain, percentile, progress } from './common.js';

/** What one run measured. */
export interface ExecFanoutResult {
  n: number;
  commandMs: number;
  /** Submit → every node's result in the store, ms (manager). */
  storedMs: number;
  /** Results stored / lost (not `done` with the expected output). */
  stored: number;
  lost: number;
  /** Manager CPU (user + system) over the fan-out, ms; per board, µs. */
  cpuMs: number;
  cpuUsPerBoard: number;
  /** The same calls made directly (no runner, no store): all answers in, ms; CPU µs per board. */
  bareMs: number;
  bareCpuUsPerBoard: number;
  /** Live line latency board → SSE reader, ms. */
  line: { count: number; p50: number; p99: number; max: number; rate: number };
  /** Live line latency board → a direct exec_status long poll, ms. */
  lineBare: { count: number; p50: number; p99: number; max: number };
}

/** The child: simulated boards over HTTP on 127.0.0.1, the board named by the bearer token. */
async function serve(): Promise<void> {
  const fleet = new SimFleet();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const node = /^Bearer (.+)$/.exec(String(req.headers.authorization ?? ''))?.[1] ?? '';
      const name = (req.url ?? '/').slice(1);
      let data: unknown;
      try {
        data = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: unknown }).data;
      } catch {
        res.writeHead(400).end();
        return;
      }
      void fleet.dispatch(node, name, data).then((out) => {
        const body = JSON.stringify({ api_version: 1, data: out });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.send?.({ port: (server.address() as AddressInfo).port });
}

/** Starts the simulated boards in a child process; resolves with its port. */
async function startBoards(): Promise<{ port: number; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`simulated boards exited ${code}`)));
  });
  return { port, child };
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Runs the benchmark (see the module header). */
export async function runExecFanout(opts: { n?: number; commandMs?: number; lineSeconds?: number } = {}) {
  const n = opts.n ?? 1000;
  const commandMs = opts.commandMs ?? 500;
  const lineSeconds = opts.lineSeconds ?? 5;
  const boards = await startBoards();
  const metrics = new Registry();
  // Every board is 127.0.0.1:<port>; the node id travels as the bearer token.
  const http = new HttpAgentClient(
    { timeout_ms: 10_000, progress_timeout_ms: 10_000, max_reply_bytes: 65536 },
    { tokenFor: (node) => node },
    metrics,
  );
  const local = (t: AgentTarget): AgentTarget => ({ ...t, host_ip: '127.0.0.1', port: boards.port });
  const agents: AgentClient = {
    ...unsupportedFileCalls('the exec bench carries no files'),
    deploy: (t, d) => http.deploy(local(t), d),
    progress: (t, u) => http.progress(local(t), u),
    exec: (t, d) => http.exec(local(t), d),
    execStatus: (t, d) => http.execStatus(local(t), d),
    execKill: (t, d) => http.execKill(local(t), d),
    execFile: (t, d) => http.execFile(local(t), d),
    commandSet: (t, d) => http.commandSet(local(t), d),
  };
  const d = serverDeps({ agents, exec: { ...TEST_EXEC_CONFIG, status_wait_ms: 20_000, call_timeout_ms: 10_000 } });
  const app = buildServer(d);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const auth = await tokenHeaders(d.access, 'bench', 'operator');
  try {
    for (let i = 0; i < n; i++) d.registry.ingestHeartbeat(fleetHeartbeat(i).data);
    const runner = d.runner as TaskRunner;
    const script = `sleep ${commandMs}\necho done`;

    // Warm up (JIT, connections) on a tenth of the fleet.
    progress(`exec fan-out: warm-up`);
    const warm = runner.submit(
      { target: 'all', batch: Math.max(1, Math.floor(n / 10)), steps: [{ command_content: 'echo warm' }] },
      'bench',
    );
    await runner.wait(warm.id);

    // a. Fan-out through the manager.
    progress(`exec fan-out: one command to ${n} boards through the manager`);
    const c0 = cpuMs();
    const t0 = performance.now();
    const task = runner.submit({ target: 'all', steps: [{ command_content: script }] }, 'bench');
    const ended = (await runner.wait(task.id)) as TaskRecord;
    const storedMs = performance.now() - t0;
    const cpu = cpuMs() - c0;
    const stored = d.store.tasks.get(task.id);
    const ok = (stored?.results ?? []).filter(
      (r) => r.state === 'done' && r.exit_code === 0 && r.steps[0]?.stdout_tail === 'done\n',
    ).length;
    if (ended.summary.nodes !== n) throw new Error(`the task resolved ${ended.summary.nodes} nodes, not ${n}`);

    // Baseline: the same calls made directly, nothing stored.
    progress('exec fan-out: the same calls made directly (baseline)');
    const b0 = cpuMs();
    const tb = performance.now();
    await Promise.all(
      fleetIds(n).map(async (node, i) => {
        const t = { node, host_ip: '127.0.0.1', port: boards.port };
        const id = `bare-${i}`;
        await http.exec(t, { task_id: id, steps: [{ command_content: script }] });
        for (let since = 0; ; ) {
          const s = await http.execStatus(t, { task_id: id, since, wait_ms: 20_000 });
          if (!s.ok || s.reply.state !== 'running') break;
          since = s.reply.next;
        }
      }),
    );
    const bareMs = performance.now() - tb;
    const bareCpu = cpuMs() - b0;

    // b. Live lines at 100/s through the manager's SSE, and by a direct long poll.
    progress(`exec live lines: 100 lines/s for ${lineSeconds} s`);
    const lines = lineSeconds * 100;
    const lat: number[] = [];
    const live = runner.submit(
      { target: fleetIds(1)[0] as string, steps: [{ command_content: `lines ${lines} 100` }] },
      'bench',
    );
    const res = await request(`${base}/api/v1/tasks/${live.id}/events`, { headers: auth });
    const parser = new SseParser((event, data) => {
      if (event === 'line') lat.push(Date.now() - (JSON.parse(data) as TaskLine).at);
    });
    res.body.setEncoding('utf8');
    for await (const chunk of res.body) parser.push(chunk as string);
    const latBare: number[] = [];
    {
      const t = { node: fleetIds(2)[1] as string, host_ip: '127.0.0.1', port: boards.port };
      await http.exec(t, { task_id: 'bare-lines', steps: [{ command_content: `lines ${lines} 100` }] });
      for (let since = 0; ; ) {
        const s = await http.execStatus(t, { task_id: 'bare-lines', since, wait_ms: 20_000 });
        if (!s.ok) break;
        const now = Date.now();
        for (const l of s.reply.output) latBare.push(now - l.at);
        since = s.reply.next;
        if (s.reply.state !== 'running' && s.reply.output.length === 0) break;
      }
    }
    const stat = (xs: number[]) => ({
      count: xs.length,
      p50: percentile(xs, 50),
      p99: percentile(xs, 99),
      max: Math.max(0, ...xs),
    });
    return {
      n,
      commandMs,
      storedMs,
      stored: ok,
      lost: n - ok,
      cpuMs: cpu,
      cpuUsPerBoard: (cpu * 1000) / n,
      bareMs,
      bareCpuUsPerBoard: (bareCpu * 1000) / n,
      line: { ...stat(lat), rate: 100 },
      lineBare: stat(latBare),
    } satisfies ExecFanoutResult;
  } finally {
    await app.close();
    d.close();
    boards.child.kill();
  }
}

/** The node ids of the first `n` simulated boards (testkit/fleet.ts positions). */
function fleetIds(n: number): string[] {
  return Array.from({ length: n }, (_, i) => {
    const h = fleetHeartbeat(i).data;
    return `${h.box_id}-${h.slot_id}-${h.cpu_id}`;
  });
}

/** A plain-text report of a run. */
export function formatExecFanout(r: ExecFanoutResult): string {
  return [
    `fan-out of one command (${r.commandMs} ms) to ${r.n} simulated boards through the manager:`,
    `  all results stored after ${fx(r.storedMs, 0)} ms (${fx(r.storedMs - r.commandMs, 0)} ms beyond the command), ${r.stored} stored, ${r.lost} lost`,
    `  manager CPU ${fx(r.cpuMs, 0)} ms = ${fx(r.cpuUsPerBoard, 0)} µs per board (exec, long polls, result, store row, history)`,
    `  baseline, the same calls made directly: ${fx(r.bareMs, 0)} ms, ${fx(r.bareCpuUsPerBoard, 0)} µs CPU per board`,
    `live lines at ${r.line.rate}/s, board → SSE reader: ${r.line.count} lines, p50 ${fx(r.line.p50, 1)} ms, p99 ${fx(r.line.p99, 1)} ms, max ${fx(r.line.max, 1)} ms`,
    `  baseline, board → direct exec_status long poll: p50 ${fx(r.lineBare.p50, 1)} ms, p99 ${fx(r.lineBare.p99, 1)} ms`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      serve: { type: 'boolean', default: false },
      n: { type: 'string', default: '1000' },
      'command-ms': { type: 'string', default: '500' },
    },
  });
  if (values.serve) void serve();
  else
    runExecFanout({ n: Number(values.n), commandMs: Number(values['command-ms']) })
      .then((r) => {
        process.stdout.write(`${formatExecFanout(r)}\n`);
        process.exit(0);
      })
      .catch((err: Error) => {
        process.stderr.write(`${err.stack}\n`);
        process.exit(1);
      });
}
