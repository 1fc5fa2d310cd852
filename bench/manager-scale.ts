/**
 * Manager scale: memory (RSS, V8 heap used) and CPU of a real manager holding N boards, for
 * N = 100, 1,000, 5,000 and 10,000 simulated boards (bench/fleet.ts) reporting on the default intervals
 * (heartbeat every 2 s, resource every 5 s, the reply window the manager suggests). A fresh
 * manager per N; once every board is online with a resource report, a window of `seconds`
 * (default 20) measures:
 *   - RSS from /proc/<pid>/status (mean over the window, sampled every 0.5 s)
 *   - heap used from the manager's /metrics (nodejs_heap_size_used_bytes, mean of a scrape every 5 s)
 *   - CPU from /proc/<pid>/stat, % of one core
 *   - reports stored (ingested counter deltas) against reports the fleet had answered 200
 * Reported per 1,000 boards and as growth against the 100-board figure: the ratio X(N) / X(100),
 * and the marginal cost (X(N) − X(100)) per 1,000 extra boards.
 *   node --import tsx bench/manager-scale.ts [--sizes 100,1000,5000,10000] [--seconds 20]
 * (MUSTER_BENCH_PROFILE_DIR=dir: each manager also writes a CPU profile there, bench/common.ts withProfiling.)
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BYTES_PER_SAMPLE } from '../manager/telemetry/recent.js';
import {
  contentionMeter,
  cpuMeter,
  cpuSeconds,
  ensureOpenFiles,
  freeMulticastPort,
  freePort,
  fx,
  getJson,
  getText,
  isMain,
  listenOverflows,
  metric,
  mib,
  musterBinary,
  progress,
  removeDir,
  rssSampler,
  selfCpuMeter,
  sleep,
  startManager,
  tempDir,
} from './common.js';
import { startFleet } from './fleet.js';
import { formatHeap, summariseHeap } from './heap-top.js';

/** telemetry.recent.max_samples of config/manager.yaml: a full ring, 30 minutes of 5 s samples. */
const RECENT_MAX_SAMPLES = 360;

/** The manager's default heartbeat round (query.heartbeat_interval_ms), ms. */
const HEARTBEAT_INTERVAL_MS = 2000;

/** Address block of the scale fleet: 127.23.x.y. */
const NET = 23;

/** Options of the scale benchmark. */
export interface ScaleOptions {
  sizes?: number[];
  seconds?: number;
  seed?: number;
}

/** Figures at one fleet size. */
export interface ScalePoint {
  n: number;
  rss: number;
  /** Bytes each board's recent-history ring still grows by until full (30 minutes of samples). */
  ringToFull: number;
  heapUsed: number;
  cpuPercent: number;
  /** Reports stored by this manager over its life, and those the fleet saw answered 200. */
  stored: number;
  answered: number;
  /** Fleet-side failures over the manager's life (start-up burst included): POSTs not answered 200 within
   * the agent's 2 s report timeout. The manager may still have stored them (stored > answered). */
  failed: number;
  /** Of those, failures during the measured window (steady state). */
  failedInWindow: number;
  /** ms from the manager process being started to every board online with a resource report. */
  startupMs: number;
  /** The start target: 2 heartbeat rounds + the reply window + 1 s for the process to start, ms. */
  startupTargetMs: number;
  /** Fleet failures from the manager's start to every board online (target 0). */
  startupFailed: number;
  /** After a restart on the same data_dir (N known boards): ms from the new process's start to every
   * board's heartbeat and resource report stored by it, and the fleet failures meanwhile. */
  restartMs: number;
  restartFailed: number;
  /** The restart's fleet failures by kind. */
  restartFailures?: Record<string, number>;
  /** From the process start to every board online: the manager's CPU and the fleet process's CPU
   * (% of one core) and the fleet's event-loop delay p99 (ms): which side ran out first. */
  startupManagerCpu: number;
  startupFleetCpu: number;
  startupFleetLoopP99: number;
  /** How late the fleet process sent its reports during the start, p99, ms (Fleet.sendLag). */
  startupFleetSendLagP99: number;
  /** Connections the kernel dropped for a full accept queue (TcpExt ListenOverflows) during the start, and the restart. */
  startupListenOverflows: number;
  restartListenOverflows: number;
  /** With --profile (MUSTER_BENCH_PROFILE_DIR): the top of a heap snapshot taken after the window (bench/heap-top.ts). */
  heap?: string;
  /** Fleet-side failures by kind (error code or HTTP status). */
  failures: Record<string, number>;
  /** jitter_ms of the latest heartbeat query. */
  jitterMs: number;
  othersCores: number;
  error?: string;
}

/** Result of the scale benchmark. */
export interface ScaleResult {
  seconds: number;
  points: ScalePoint[];
}

/**
 * With MUSTER_BENCH_PROFILE_DIR set (the manager runs with --heapsnapshot-signal=SIGUSR2 and its
 * --diagnostic-dir there): asks manager `pid` for a heap snapshot and summarises it; undefined otherwise
 * or when none came within 120 s.
 */
async function heapSnapshot(pid: number): Promise<string | undefined> {
  const dir = process.env.MUSTER_BENCH_PROFILE_DIR;
  if (!dir) return undefined;
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  let last = -1;
  for (const until = Date.now() + 120_000; Date.now() < until; ) {
    await sleep(1000);
    const f = readdirSync(dir).find((x) => x.endsWith('.heapsnapshot') && !before.has(x) && x.includes(`.${pid}.`));
    if (!f) continue;
    const size = statSync(path.join(dir, f)).size;
    if (size > 0 && size === last) {
      await sleep(1000);
      const h = summariseHeap(path.join(dir, f));
      rmSync(path.join(dir, f)); // hundreds of MB: the summary is what is kept
      return formatHeap(h, 12);
    }
    last = size;
  }
  return undefined;
}

async function measure(n: number, seconds: number, seed: number): Promise<ScalePoint> {
  const mcastPort = await freeMulticastPort();
  const fleet = await startFleet({ n, seed, port: mcastPort, net: NET });
  const dir = tempDir('scale');
  let mgr: Awaited<ReturnType<typeof startManager>> | undefined;
  try {
    const started = performance.now();
    const overflows0 = listenOverflows();
    fleet.eventLoop(true);
    fleet.sendLag(true);
    const fleetCpu = selfCpuMeter();
    mgr = await startManager({ httpPort: await freePort(), mcastPort, dataDir: dir });
    const startCpu = cpuSeconds(mgr.child.pid);
    const base = mgr.base;
    const deadline = Date.now() + 60_000;
    for (;;) {
      const st = await getJson<{ nodes: { online: number } }>(`${base}/api/v1/status`, 10_000, mgr.token);
      if (st.nodes.online >= n && fleet.counters.ok['/resource'] >= n) break;
      if (Date.now() > deadline) {
        // Which side ran out first: the manager's CPU, the fleet process's (one core playing every
        // agent), or neither (the machine: other load, the kernel's accept queue).
        const secs = (performance.now() - started) / 1000;
        const mCpu = ((cpuSeconds(mgr.child.pid) - startCpu) / secs) * 100;
        const fCpu = fleetCpu.stop();
        const loop = fleet.eventLoop(true).p99;
        const failed = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'];
        const first =
          fCpu >= 90
            ? 'the fleet process ran out of CPU first'
            : mCpu >= 90
              ? "the manager's CPU ran out first"
              : 'neither process saturated a core';
        throw new Error(
          `only ${st.nodes.online}/${n} online, ${fleet.counters.ok['/resource']} resource reports, ${failed} fleet failures after 60 s: ` +
            `manager CPU ${fx(mCpu, 0)} %, fleet process CPU ${fx(fCpu, 0)} % (event-loop p99 ${fx(loop, 0)} ms): ${first}`,
        );
      }
      await sleep(250);
    }
    const startupMs = performance.now() - started;
    const startupManagerCpu = ((cpuSeconds(mgr.child.pid) - startCpu) / (startupMs / 1000)) * 100;
    const startupFleetCpu = fleetCpu.stop();
    const startupFleetLoopP99 = fleet.eventLoop(true).p99;
    const startupFleetSendLagP99 = fleet.sendLag(true).p99;
    const startupFailed = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'];
    const startupListenOverflows = listenOverflows() - overflows0;
    await sleep(1000);
    const failedBefore = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'];
    const meter = contentionMeter();
    const ingested = (t: string) => metric(t, 'muster_manager_reports_ingested_total');
    const cpu = cpuMeter(mgr.child.pid);
    const rss = rssSampler(mgr.child.pid);
    const heaps: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await sleep(Math.min(5000, seconds * 1000 - (performance.now() - t0)));
      heaps.push(metric(await getText(`${base}/metrics`), 'nodejs_heap_size_used_bytes'));
    }
    const cpuPercent = cpu.stop();
    // The recent history grows to max_samples per node over its 30-minute window; a 20 s window
    // holds a few samples. What each ring still takes once full, per board (bytes).
    const tel = await getJson<{ recent: { nodes: number; samples: number } }>(
      `${base}/api/v1/telemetry`,
      10_000,
      mgr.token,
    );
    const perNode = tel.recent.nodes > 0 ? tel.recent.samples / tel.recent.nodes : 0;
    const heldSlots = Math.min(RECENT_MAX_SAMPLES, Math.max(8, 2 ** Math.ceil(Math.log2(Math.max(1, perNode)))));
    const ringToFull = (RECENT_MAX_SAMPLES - heldSlots) * BYTES_PER_SAMPLE;
    const failedInWindow = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'] - failedBefore;
    const r = rss.stop();
    // Reports already answered are stored; let the ones under way finish before comparing.
    await fleet.idle(10_000).catch(() => undefined);
    const m1 = ingested(await getText(`${base}/metrics`));
    // Compared with m1: the restart below adds answers of the next manager.
    const answered = fleet.counters.ok['/heartbeat'] + fleet.counters.ok['/resource'];
    const failedBeforeRestart = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'];
    const heap = await heapSnapshot(mgr.child.pid);
    // The same fleet, now known: the manager restarted on its data_dir.
    const jitterMs = fleet.counters.last['/heartbeat']?.jitter_ms ?? 0;
    const password = mgr.password;
    await mgr.child.stop();
    mgr = undefined;
    // Answers to the old manager's last queries still arrive (and are refused) for one window.
    await sleep(jitterMs + 500);
    await fleet.idle(10_000).catch(() => undefined);
    const failedStop = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'];
    const errorsStop = new Map(fleet.counters.errors);
    const restarted = performance.now();
    const overflows1 = listenOverflows();
    mgr = await startManager({ httpPort: await freePort(), mcastPort, dataDir: dir, password });
    let restartMs = Number.NaN;
    for (const until = Date.now() + 60_000; Date.now() < until; ) {
      const t = await getText(`${mgr.base}/metrics`);
      if (
        metric(t, 'muster_manager_reports_ingested_total', { url: '/heartbeat' }) >= n &&
        metric(t, 'muster_manager_reports_ingested_total', { url: '/resource' }) >= n
      ) {
        restartMs = performance.now() - restarted;
        break;
      }
      await sleep(100);
    }
    const restartFailed = fleet.counters.failed['/heartbeat'] + fleet.counters.failed['/resource'] - failedStop;
    const restartListenOverflows = listenOverflows() - overflows1;
    const restartFailures: Record<string, number> = {};
    for (const [k, v] of fleet.counters.errors)
      if (v > (errorsStop.get(k) ?? 0)) restartFailures[k] = v - (errorsStop.get(k) ?? 0);
    return {
      n,
      startupTargetMs: 2 * HEARTBEAT_INTERVAL_MS + jitterMs + 1000,
      startupFailed,
      startupManagerCpu,
      startupFleetCpu,
      startupFleetLoopP99,
      startupFleetSendLagP99,
      startupListenOverflows,
      restartListenOverflows,
      ...(heap ? { heap } : {}),
      restartMs,
      restartFailed,
      restartFailures,
      rss: r.mean,
      ringToFull,
      heapUsed: heaps.reduce((a, b) => a + b, 0) / Math.max(1, heaps.length),
      cpuPercent,
      stored: m1,
      answered,
      failed: failedBeforeRestart,
      failedInWindow,
      startupMs,
      failures: Object.fromEntries(fleet.counters.errors),
      jitterMs: fleet.counters.last['/heartbeat']?.jitter_ms ?? 0,
      othersCores: meter.stop().othersCores,
    };
  } finally {
    await mgr?.child.stop();
    await fleet.stop();
    removeDir(dir);
  }
}

/** Runs the scale benchmark. */
export async function runScale(o: ScaleOptions = {}): Promise<ScaleResult> {
  const sizes = o.sizes ?? [100, 1000, 5000, 10_000];
  const seconds = o.seconds ?? 20;
  const seed = o.seed ?? 1;
  const points: ScalePoint[] = [];
  for (const n of sizes) {
    const limit = ensureOpenFiles(n + 4096);
    progress(`manager scale: N = ${n} (${musterBinary().kind}), ${seconds} s window`);
    try {
      if (limit < n + 1024) throw new Error(`open-file limit ${limit} is too low for ${n} connections`);
      points.push(await measure(n, seconds, seed));
    } catch (err) {
      const error = (err as Error).message.split('\n')[0] as string;
      progress(`manager scale: N = ${n} failed: ${error}`);
      points.push({
        n,
        rss: Number.NaN,
        ringToFull: Number.NaN,
        heapUsed: Number.NaN,
        cpuPercent: Number.NaN,
        stored: 0,
        answered: 0,
        failed: 0,
        failedInWindow: 0,
        startupMs: Number.NaN,
        startupTargetMs: Number.NaN,
        startupFailed: 0,
        startupManagerCpu: Number.NaN,
        startupFleetCpu: Number.NaN,
        startupFleetLoopP99: Number.NaN,
        startupFleetSendLagP99: Number.NaN,
        startupListenOverflows: Number.NaN,
        restartListenOverflows: Number.NaN,
        restartMs: Number.NaN,
        restartFailed: 0,
        failures: {},
        jitterMs: 0,
        othersCores: Number.NaN,
        error,
      });
    }
  }
  return { seconds, points };
}

/** Growth figures of point `p` against the first (smallest) point. */
export function growth(r: ScaleResult, p: ScalePoint) {
  const b = r.points[0] as ScalePoint;
  const extraK = (p.n - b.n) / 1000;
  return {
    rssRatio: p.rss / b.rss,
    heapRatio: p.heapUsed / b.heapUsed,
    cpuRatio: p.cpuPercent / b.cpuPercent,
    rssPerExtraK: extraK > 0 ? (p.rss - b.rss) / extraK : Number.NaN,
    /** rssPerExtraK with every ring full (the 30-minute history on), bytes per 1,000 boards. */
    rssPerExtraKFull: extraK > 0 ? (p.rss - b.rss) / extraK + p.ringToFull * 1000 : Number.NaN,
    heapPerExtraK: extraK > 0 ? (p.heapUsed - b.heapUsed) / extraK : Number.NaN,
    cpuPerExtraK: extraK > 0 ? (p.cpuPercent - b.cpuPercent) / extraK : Number.NaN,
  };
}

/** Human-readable lines of a result. */
export function formatScale(r: ScaleResult): string {
  const lines = [`manager scale (${r.seconds} s window per size, default intervals)`];
  for (const p of r.points) {
    if (p.error) {
      lines.push(`N = ${p.n}: not measured — ${p.error}`);
      continue;
    }
    const g = growth(r, p);
    const k = p.n / 1000;
    lines.push(
      `N = ${p.n}: RSS ${mib(p.rss)}, heap used ${mib(p.heapUsed)}, CPU ${fx(p.cpuPercent, 1)} % ` +
        `(per 1,000 boards: ${mib(p.rss / k)}, ${mib(p.heapUsed / k)}, ${fx(p.cpuPercent / k, 1)} %); ` +
        `stored ${p.stored}, answered 200 ${p.answered}, fleet failures ${p.failed}${p.failed ? ` ${JSON.stringify(p.failures)} (${p.failedInWindow} in the window)` : ''}, all online ${fx(p.startupMs / 1000, 1)} s after start, jitter ${p.jitterMs} ms, others ${fx(p.othersCores, 2)} cores`,
      `    start: all online ${fx(p.startupMs / 1000, 1)} s after the process start, ${p.startupFailed} fleet failures on the way ` +
        `(target ≤ ${fx(p.startupTargetMs / 1000, 1)} s = 2 heartbeat rounds + ${p.jitterMs} ms window + 1 s, 0 failures: ` +
        `${p.startupMs <= p.startupTargetMs && p.startupFailed === 0 ? 'met' : 'NOT met'}); ` +
        `restart with ${p.n} known boards: every board stored ${fx(p.restartMs / 1000, 1)} s after the process start, ` +
        `${p.restartFailed} failures${p.restartFailed ? ` ${JSON.stringify(p.restartFailures ?? {})}` : ''} (${p.restartMs <= p.startupTargetMs && p.restartFailed === 0 ? 'met' : 'NOT met'}); ` +
        `during the start: manager CPU ${fx(p.startupManagerCpu, 0)} %, fleet process CPU ${fx(p.startupFleetCpu, 0)} %, fleet loop p99 ${fx(p.startupFleetLoopP99, 0)} ms, reports sent late by p99 ${fx(p.startupFleetSendLagP99, 0)} ms; ` +
        `accept-queue overflows ${p.startupListenOverflows} (restart ${p.restartListenOverflows})`,
      `    vs N = ${r.points[0]?.n}: RSS ×${fx(g.rssRatio, 2)}, heap ×${fx(g.heapRatio, 2)}, CPU ×${fx(g.cpuRatio, 2)}; ` +
        `marginal per 1,000 extra boards: RSS ${mib(g.rssPerExtraK)} (${mib(g.rssPerExtraKFull)} with the 30-minute history rings full), heap ${mib(g.heapPerExtraK)}, CPU ${fx(g.cpuPerExtraK, 1)} %`,
    );
    if (p.heap) lines.push(...p.heap.split('\n').map((l) => `    ${l}`));
  }
  return lines.join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: { sizes: { type: 'string', default: '100,1000,5000,10000' }, seconds: { type: 'string', default: '20' } },
  });
  runScale({ sizes: values.sizes.split(',').map(Number), seconds: Number(values.seconds) })
    .then((r) => {
      process.stdout.write(`${formatScale(r)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`manager-scale: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
