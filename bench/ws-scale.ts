/**
 * The WebSocket node link at scale (docs/links.md "The WebSocket node link"): a real manager
 * holding N simulated link-specification nodes (testkit/ws-fleet.ts: one process, one `ws`
 * socket per node) that heartbeat with metrics every `heartbeatMs` (the specification's 30 s by
 * default), then the same manager restarted on its data_dir with the N nodes linked.
 *
 *   1. a fresh manager, idle: RSS (mean over 2 s) and heap used (its /metrics) as the baseline;
 *   2. N nodes connect (at most 256 handshakes at once) and register;
 *   3. a steady window of `seconds` (default one heartbeat interval, so that every node
 *      heartbeats in it): manager CPU (% of one core, /proc/<pid>/stat), RSS and heap means;
 *      memory per connection = (steady − baseline) / N;
 *   4. the manager is stopped (SIGTERM) and started again on the same data_dir and port: every
 *      node sees its link close and reconnects with the agent's backoff (common/link.ts
 *      reconnectDelay: full jitter in [0, min(max, base × 2^attempt)), defaults 1 s and 30 s).
 *      Measured: the time from the stop to every node registered again (target ≤ 60 s), the
 *      registrations per second (peak), against the backoff's bound: N / W, W the jitter window
 *      of the first attempt that can reach the new manager given the measured downtime D (the
 *      smallest min(max, base × 2^k) with Σ_{j≤k} window_j ≥ D): every node's accepted attempt
 *      is spread over at least W, so no second holds more than about N / W of them. A Monte
 *      Carlo run of the same backoff against the same downtime gives the peak expected: for ideal
 *      nodes, and with this fleet's measured delays (each node's loss as the fleet saw it, how long
 *      its failed attempts took to fail, how late its timers fired), which is what the scheduled
 *      attempts are checked against: one process playing 5,000 nodes on a busy machine sees the
 *      loss and each refusal hundreds of ms late, and that, not the backoff, is what moves its
 *      attempts together.
 *      Also checked: a restored node is shown LINK ws before it has reconnected.
 *
 *   node --import tsx bench/ws-scale.ts [--n 5000] [--heartbeat-ms 30000] [--seconds 30]
 *        [--cpu-prof DIR]   (the manager's V8 CPU profile, written when it stops)
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { reconnectWindow } from '../common/link.js';
import { mulberry32 } from '../testkit/fleet.js';
import { startWsFleet } from '../testkit/ws-fleet.js';
import {
  contentionMeter,
  cpuMeter,
  ensureOpenFiles,
  freeMulticastPort,
  freePort,
  fx,
  getJson,
  getText,
  isMain,
  metric,
  mib,
  musterBinary,
  progress,
  removeDir,
  rssSampler,
  selfCpuMeter,
  sleep,
  startManager,
  summary,
  tempDir,
} from './common.js';

/** The agent's reconnect defaults (agent config link.websocket.backoff_base_ms / backoff_max_ms). */
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 30_000;

/** Options of the WebSocket scale benchmark. */
export interface WsScaleOptions {
  n?: number;
  /** Heartbeat cadence of every node, ms (default the specification's 30 s). */
  heartbeatMs?: number;
  /** Steady window, s (default one heartbeat interval). */
  seconds?: number;
  seed?: number;
}

/** Figures of the WebSocket scale benchmark. */
export interface WsScaleResult {
  n: number;
  heartbeatMs: number;
  seconds: number;
  /** ms from the first connect to every node registered. */
  connectMs: number;
  baseline: { rss: number; heapUsed: number };
  steady: { rss: number; heapUsed: number; cpuPercent: number; heartbeatsAcked: number };
  rssPerConnection: number;
  heapPerConnection: number;
  /** CPU of the fleet process itself over the window, % of one core (it shares the machine). */
  fleetCpuPercent: number;
  othersCores: number;
  restart: {
    /** ms from the links closing to the new manager listening on its port. */
    downtimeMs: number;
    /** ms from its port listening to its /healthz and login answered. */
    readyAfterBindMs: number;
    /** Connection attempts in the busiest second once the new manager listened, as they left the fleet process. */
    arrivalsPeakPerSecond: number;
    /** The same, at the times the backoff scheduled them (the fleet process, starved by a busy machine, starts timers late and together). */
    duePeakPerSecond: number;
    /** How late the fleet process started its reconnects, ms (p50, p99, max). */
    lateness: { p50: number; p99: number; max: number };
    /** ms from the stop to every node registered again. */
    allBackMs: number;
    /** Registrations in the busiest second after the stop (the manager's service, backlog included), and the mean over the reconnect. */
    peakPerSecond: number;
    meanPerSecond: number;
    /** N / W: the backoff's bound on registrations per second (see the header). */
    boundPerSecond: number;
    windowMs: number;
    /** The busiest second of an ideal fleet following the same backoff against the same downtime (max of 20 runs). */
    modelPeakPerSecond: number;
    /**
     * The same with this run's fleet delays (each node's loss as seen, failed-attempt times and
     * timer lateness, modelPeak's `fleet`): what the backoff gives when run by this process.
     */
    fleetModelPeakPerSecond: number;
    /** Whether a node was shown LINK ws by the new manager before it had reconnected. */
    linkShownBeforeReconnect: boolean;
    onlineAfter: number;
    connectionsAfter: number;
    failed: Record<string, number>;
  };
  errors: Record<string, number>;
}

/** The jitter window of the first attempt that can reach a manager back after `downMs` (see the header). */
export function firstReachingWindow(downMs: number, baseMs: number, maxMs: number): number {
  let sum = 0;
  for (let k = 0; k < 64; k++) {
    const w = reconnectWindow(k, baseMs, maxMs);
    sum += w;
    if (sum >= downMs) return w;
  }
  return maxMs;
}

/** What a simulated fleet adds to the ideal backoff (all ms), measured in the same run. */
export interface FleetDelays {
  /** Each node's loss as seen by the fleet, after the reference loss time (0) the bins count from. */
  starts: readonly number[];
  /** Samples of how long a failed attempt took to be seen as failed. */
  failedAfter: readonly number[];
  /** Samples of how late a reconnect timer fired. */
  lateness: readonly number[];
}

/**
 * Peak registrations per 1 s bin of `n` nodes following the backoff after losing the manager at
 * 0, the manager back at `downMs` (an attempt before then fails, after it succeeds): the max over
 * `runs` runs. Ideal nodes (no `fleet`) see the loss at 0 and a refused attempt within 1 ms.
 * With `fleet`, each node starts at a measured loss time and each failed attempt costs a measured
 * failure time plus a measured timer lateness (drawn at random from the samples): the same
 * backoff as the simulated fleet runs it on this machine.
 */
export function modelPeak(
  n: number,
  downMs: number,
  baseMs: number,
  maxMs: number,
  runs = 20,
  seed = 7,
  fleet?: FleetDelays,
): number {
  const rand = mulberry32(seed);
  const pick = (xs: readonly number[] | undefined, dflt: number) =>
    xs && xs.length > 0 ? (xs[Math.floor(rand() * xs.length)] as number) : dflt;
  let peak = 0;
  for (let r = 0; r < runs; r++) {
    const bins = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      let t = fleet && fleet.starts.length > 0 ? (fleet.starts[i % fleet.starts.length] as number) : 0;
      for (let k = 0; ; k++) {
        t += Math.floor(rand() * reconnectWindow(k, baseMs, maxMs));
        if (t >= downMs) break;
        // a refused connect costs about a millisecond to an idle process
        t += fleet ? pick(fleet.failedAfter, 1) + pick(fleet.lateness, 0) : 1;
      }
      const b = Math.floor(t / 1000);
      bins.set(b, (bins.get(b) ?? 0) + 1);
    }
    peak = Math.max(peak, ...bins.values());
  }
  return peak;
}

/** Resolves with performance.now() once 127.0.0.1:`port` accepts a TCP connection (polled every 20 ms). */
async function listening(port: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return performance.now();
    if (performance.now() > deadline) throw new Error(`port ${port} not listening within ${timeoutMs} ms`);
    await sleep(20);
  }
}

async function scrape(base: string): Promise<string> {
  return getText(`${base}/metrics`, 10_000);
}

/** Runs the WebSocket scale benchmark. */
export async function runWsScale(o: WsScaleOptions = {}): Promise<WsScaleResult> {
  const n = o.n ?? 5000;
  const heartbeatMs = o.heartbeatMs ?? 30_000;
  const seconds = o.seconds ?? Math.ceil(heartbeatMs / 1000);
  const limit = ensureOpenFiles(2 * n + 4096);
  if (limit < 2 * n + 1024) throw new Error(`open-file limit ${limit} is too low for ${n} sockets on each side`);
  progress(`ws scale: N = ${n}, heartbeat every ${heartbeatMs} ms, ${seconds} s window (${musterBinary().kind})`);
  const dir = tempDir('wsscale');
  const httpPort = await freePort();
  const mcastPort = await freeMulticastPort();
  const extra = { 'link.max_connections': n + 1000, 'registry.max_nodes': n + 1000 };
  let mgr = await startManager({ httpPort, mcastPort, dataDir: dir, extra });
  const base = mgr.base;
  let fleet: ReturnType<typeof startWsFleet> | undefined;
  try {
    const res = await fetch(`${base}/api/v1/links/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${mgr.token}` },
      body: '{}',
    });
    if (res.status !== 201) throw new Error(`POST /api/v1/links/tokens: HTTP ${res.status} ${await res.text()}`);
    const { token } = (await res.json()) as { token: string };
    fleet = startWsFleet({
      url: `ws://127.0.0.1:${httpPort}/api/v1/ws`,
      token,
      n,
      heartbeatMs,
      backoffBaseMs: BACKOFF_BASE_MS,
      backoffMaxMs: BACKOFF_MAX_MS,
      seed: o.seed ?? 1,
    });

    // 1. Baseline.
    await sleep(3000);
    const rss0 = rssSampler(mgr.child.pid, 250);
    await sleep(2000);
    const baseline = {
      rss: rss0.stop().mean,
      heapUsed: metric(await scrape(base), 'nodejs_heap_size_used_bytes'),
    };

    // 2. Connect.
    const c0 = performance.now();
    const got = await fleet.connectAll(60_000);
    if (got < n) throw new Error(`only ${got}/${n} nodes registered within 60 s: ${JSON.stringify(fleet.counters)}`);
    const connectMs = performance.now() - c0;
    progress(`ws scale: ${n} registered in ${fx(connectMs / 1000, 1)} s`);
    await sleep(1000);

    // 3. Steady window.
    const meter = contentionMeter();
    const cpu = cpuMeter(mgr.child.pid);
    const self = selfCpuMeter();
    const rss = rssSampler(mgr.child.pid, 500);
    const acks0 = fleet.counters.acks;
    const heaps: number[] = [];
    const t0 = performance.now();
    while (performance.now() - t0 < seconds * 1000) {
      await sleep(Math.min(5000, seconds * 1000 - (performance.now() - t0)));
      heaps.push(metric(await scrape(base), 'nodejs_heap_size_used_bytes'));
    }
    const steady = {
      cpuPercent: cpu.stop(),
      rss: rss.stop().mean,
      heapUsed: heaps.reduce((a, b) => a + b, 0) / Math.max(1, heaps.length),
      heartbeatsAcked: fleet.counters.acks - acks0,
    };
    const fleetCpuPercent = self.stop();
    const othersCores = meter.stop().othersCores;
    progress(
      `ws scale: steady CPU ${fx(steady.cpuPercent, 1)} %, RSS ${mib(steady.rss)} (baseline ${mib(baseline.rss)}), ${steady.heartbeatsAcked} heartbeats acked`,
    );
    if (fleet.registeredNow() < n) throw new Error(`${n - fleet.registeredNow()} nodes lost their link in the window`);

    // 4. Restart.
    const failedBefore = { ...fleet.counters.failed };
    const regsBefore = fleet.registrations.length;
    const lossesBefore = fleet.losses.length;
    const attemptsBefore = fleet.attemptTimes.length;
    const dueBefore = fleet.dueTimes.length;
    const lateBefore = fleet.lateness.length;
    const failedAfterBefore = fleet.failedAfter.length;
    const tStop = performance.now();
    await mgr.child.stop();
    const tExit = performance.now();
    const bound = listening(httpPort, 90_000);
    mgr = await startManager({
      httpPort,
      mcastPort,
      dataDir: dir,
      extra,
      password: mgr.password,
      readyTimeoutMs: 60_000,
    });
    const tUp = performance.now();
    const tBind = await bound;
    progress(
      `ws scale: old manager exited ${fx((tExit - tStop) / 1000, 1)} s after SIGTERM; the new one listened ${fx((tBind - tExit) / 1000, 1)} s and answered ${fx((tUp - tExit) / 1000, 1)} s after its start`,
    );
    // A node is known as linked at once, before it reconnects (or whether it has yet).
    const probe = await getJson<{ link: string }>(
      `${mgr.base}/api/v1/nodes/sim-${String(n - 1).padStart(5, '0')}`,
      10_000,
      mgr.token,
    ).catch(() => ({ link: 'unknown' }));
    const back = await fleet.waitRegistered(n, 60_000 - (performance.now() - tStop));
    const allBackMs = back >= n ? Math.max(...fleet.registrations.slice(regsBefore)) - tStop : Number.NaN;
    const losses = fleet.losses.slice(lossesBefore).sort((a, b) => a - b);
    const lostAt = losses[Math.floor(losses.length / 2)] ?? tStop;
    const downtimeMs = tBind - lostAt;
    const perSecond = (times: number[]) => {
      const bins = new Map<number, number>();
      for (const t of times) {
        const b = Math.floor((t - lostAt) / 1000);
        bins.set(b, (bins.get(b) ?? 0) + 1);
      }
      return Math.max(0, ...bins.values());
    };
    // Attempts that found the new manager listening: the arrivals the backoff spreads.
    const arrivals = fleet.attemptTimes.slice(attemptsBefore).filter((t) => t >= tBind);
    const due = fleet.dueTimes.slice(dueBefore).filter((t) => t >= tBind);
    const windowMs = firstReachingWindow(downtimeMs, BACKOFF_BASE_MS, BACKOFF_MAX_MS);
    await sleep(1000);
    const st = await getJson<{ nodes: { online: number } }>(`${mgr.base}/api/v1/status`, 10_000, mgr.token);
    const text = await scrape(mgr.base);
    const failed: Record<string, number> = {};
    for (const [k, v] of Object.entries(fleet.counters.failed))
      if (v - (failedBefore[k] ?? 0) > 0) failed[k] = v - (failedBefore[k] ?? 0);
    const regs = fleet.registrations.length - regsBefore;
    const restart = {
      downtimeMs,
      allBackMs,
      arrivalsPeakPerSecond: perSecond(arrivals),
      duePeakPerSecond: perSecond(due),
      lateness: summary(fleet.lateness.slice(lateBefore)),
      peakPerSecond: perSecond(fleet.registrations.slice(regsBefore)),
      readyAfterBindMs: tUp - tBind,
      meanPerSecond: Number.isFinite(allBackMs) ? regs / ((allBackMs - (lostAt - tStop)) / 1000) : Number.NaN,
      boundPerSecond: n / (windowMs / 1000),
      windowMs,
      modelPeakPerSecond: modelPeak(n, downtimeMs, BACKOFF_BASE_MS, BACKOFF_MAX_MS),
      fleetModelPeakPerSecond: modelPeak(n, downtimeMs, BACKOFF_BASE_MS, BACKOFF_MAX_MS, 20, 7, {
        starts: losses.map((t) => t - lostAt),
        failedAfter: fleet.failedAfter.slice(failedAfterBefore),
        lateness: fleet.lateness.slice(lateBefore),
      }),
      linkShownBeforeReconnect: probe.link === 'ws',
      onlineAfter: st.nodes.online,
      connectionsAfter: metric(text, 'muster_manager_link_connections'),
      failed,
    };
    return {
      n,
      heartbeatMs,
      seconds,
      connectMs,
      baseline,
      steady,
      rssPerConnection: (steady.rss - baseline.rss) / n,
      heapPerConnection: (steady.heapUsed - baseline.heapUsed) / n,
      fleetCpuPercent,
      othersCores,
      restart,
      errors: { ...fleet.counters.errors },
    };
  } finally {
    await fleet?.stop();
    await mgr.child.stop();
    removeDir(dir);
  }
}

/** The benchmark's figures as text (bench/RESULTS.md). */
export function formatWsScale(r: WsScaleResult): string {
  const x = r.restart;
  const kb = (b: number) => `${fx(b / 1024, 1)} KiB`;
  return [
    `WebSocket link scale: N = ${r.n} link-specification nodes, one heartbeat with metrics every ${fx(r.heartbeatMs / 1000, 0)} s each, ${r.seconds} s steady window`,
    `    connect: all ${r.n} registered in ${fx(r.connectMs / 1000, 1)} s (at most 256 handshakes in flight)`,
    `    memory: RSS ${mib(r.baseline.rss)} idle → ${mib(r.steady.rss)} with ${r.n} links = ${kb(r.rssPerConnection)} per connection; ` +
      `heap used ${mib(r.baseline.heapUsed)} → ${mib(r.steady.heapUsed)} = ${kb(r.heapPerConnection)} per connection`,
    `    CPU: ${fx(r.steady.cpuPercent, 1)} % of one core over the window (${r.steady.heartbeatsAcked} heartbeats acked, ` +
      `${fx(r.steady.heartbeatsAcked / r.seconds, 0)}/s); the fleet process itself ${fx(r.fleetCpuPercent, 1)} %, other processes ${fx(r.othersCores, 2)} cores`,
    `    restart: links lost → new manager up ${fx(x.downtimeMs / 1000, 1)} s; all ${r.n} registered again ${fx(x.allBackMs / 1000, 1)} s after the stop ` +
      `(target ≤ 60 s: ${x.allBackMs <= 60_000 ? 'met' : 'NOT met'}); online ${x.onlineAfter}, link connections ${x.connectionsAfter}; ` +
      `LINK ws shown before reconnecting: ${x.linkShownBeforeReconnect ? 'yes' : 'NO'}`,
    `    reconnect rate once the new manager listened (downtime ${fx(x.downtimeMs / 1000, 1)} s; base ${BACKOFF_BASE_MS} ms, cap ${BACKOFF_MAX_MS} ms): ` +
      `attempts as the backoff scheduled them peak ${x.duePeakPerSecond}/s against the backoff's bound ${x.modelPeakPerSecond}/s ` +
      `(the busiest second of an ideal fleet following the same backoff against the same downtime, max of 20 runs; ` +
      `${x.fleetModelPeakPerSecond}/s with this fleet's measured loss times, failed-attempt times and timer lateness; ` +
      `${x.duePeakPerSecond <= x.fleetModelPeakPerSecond * 1.1 ? 'within' : 'NOT within'} the latter; N / W = ${fx(x.boundPerSecond, 0)}/s with W = ${x.windowMs} ms the window of the first attempt that can reach it); ` +
      `as they left the fleet process ${x.arrivalsPeakPerSecond}/s (reconnect timers late by p50 ${fx(x.lateness.p50, 0)} ms, p99 ${fx(x.lateness.p99, 0)} ms, max ${fx(x.lateness.max, 0)} ms); ` +
      `registrations peak ${x.peakPerSecond}/s, mean ${fx(x.meanPerSecond, 0)}/s (the new manager answered ${fx(x.readyAfterBindMs / 1000, 1)} s after it listened: ` +
      `attempts of that time wait in the accept queue and are served together)` +
      `${Object.keys(x.failed).length ? `; failed attempts ${JSON.stringify(x.failed)}` : ''}` +
      `${Object.keys(r.errors).length ? `; link errors ${JSON.stringify(r.errors)}` : ''}`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '5000' },
      'heartbeat-ms': { type: 'string', default: '30000' },
      seconds: { type: 'string' },
      'cpu-prof': { type: 'string' },
    },
  });
  if (values['cpu-prof']) process.env.NODE_OPTIONS = `--cpu-prof --cpu-prof-dir=${values['cpu-prof']}`;
  runWsScale({
    n: Number(values.n),
    heartbeatMs: Number(values['heartbeat-ms']),
    ...(values.seconds ? { seconds: Number(values.seconds) } : {}),
  })
    .then((r) => {
      process.stdout.write(`${formatWsScale(r)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`ws-scale: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
