/**
 * Agent footprint: a real agent (`muster agent` as an offline bundle runs it on a board: the
 * sources bundled by scripts/bundle-app.mjs, started by the bundle's bin/muster with the
 * MUSTER_NODE_FLAGS of systemd/muster-agent.service; multicast on 127.0.0.1 and a private port)
 * answering 1 heartbeat query per second and 1 resource query every 5 s, sent by the bench itself
 * with manager_ip/port pointing at a tiny HTTP sink in the bench process, for `seconds` (≥ 60).
 *
 * Measured over the window (after a warm-up of at least 20 s from the start, past V8's one-time memory-reducer GC):
 *   - RSS: VmRSS from /proc/<pid>/status, sampled every 0.5 s (mean, max)
 *   - CPU: utime+stime deltas from /proc/<pid>/stat, % of one core
 *   - event-loop delay p99: `nodejs_eventloop_lag_p99_seconds` of the agent's own /metrics minus
 *     the histogram's resolution (EVENT_LOOP_RESOLUTION_MS, 100 ms: each value is the time between
 *     two firings of its timer, so the lateness is the value minus the resolution)
 *     (prom-client default metrics; the bench adds nothing to the agent). prom-client resets that
 *     histogram on every scrape, so the bench scrapes once when the window opens and reads it when
 *     it closes.
 *   - report build time p50 / p99: from the `muster_agent_report_build_seconds` buckets
 *     (interpolated inside the bucket, with the bucket bound as the honest "at most")
 * Baselines over the same window: an idle `node -e 'setInterval(()=>{},1000)'` (RSS, CPU), and an
 * idle node with the same 100 ms-resolution event-loop histogram (event-loop reference). Context:
 * the same agent from the checkout's compiled modules without flags (what `bin/muster.js agent`
 * costs in a development checkout), and a node that only imports those modules.
 * Targets: RSS ≤ 64 MiB and ≤ 1.5 × the idle node, CPU ≤ 0.5 %, build p50 ≤ 1 ms, event-loop
 * p99 ≤ 20 ms.
 *   node --import tsx bench/agent-footprint.ts [--seconds 60]
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { EVENT_LOOP_RESOLUTION_MS } from '../agent/app.js';
import {
  agentBundle,
  bucketQuantile,
  bucketsDelta,
  contentionMeter,
  cpuMeter,
  freeMulticastPort,
  freePort,
  fx,
  getJson,
  getText,
  histogramBuckets,
  isMain,
  metric,
  mib,
  moduleFloorArgv,
  progress,
  querySender,
  ROOT,
  removeDir,
  rssSampler,
  sets,
  sleep,
  startChild,
  startMuster,
  tempDir,
  waitHttp,
} from './common.js';

/** Options of the footprint benchmark. */
export interface FootprintOptions {
  seconds?: number;
}

/** Figures of one process over the window. */
export interface ProcFigures {
  rssMean: number;
  rssMax: number;
  cpuPercent: number;
}

/** Result of the footprint benchmark. */
export interface FootprintResult {
  seconds: number;
  binary: string;
  agent: ProcFigures & {
    eventLoopP99Ms: number;
    eventLoopMaxMs: number;
    build: Record<
      '/heartbeat' | '/resource',
      { p50: number; p99: number; p50Upper: number; p99Upper: number; count: number }
    >;
  };
  idle: ProcFigures;
  /** The same agent hearing no query over the same window: the cost of sampling alone. */
  silent: ProcFigures;
  /** The agent from the checkout's compiled modules (musterBinary), no V8 flags, hearing no query. */
  checkout: ProcFigures;
  /** MUSTER_NODE_FLAGS the bundled agents ran with (the agent unit's). */
  nodeFlags: string;
  /** RSS a node adds by importing each runtime dependency alone (bytes over a bare node), largest first. */
  importCosts: [string, number][];
  /** RSS of a node that only imports the agent's compiled module graph (agent/agent.js) and idles; NaN from source. */
  moduleFloorRss: number;
  /** The agent's V8 heap at the end (nodejs_heap_size_used_bytes / total), bytes. */
  heapUsed: number;
  heapTotal: number;
  /** Wall time the agent's collectors spent per second of the window, ms/s, by collector. */
  collectorMsPerS: Record<string, number>;
  /** Event-loop p99 of an idle node with the same histogram, ms. */
  idleEventLoopP99Ms: number;
  queriesSent: Record<'/heartbeat' | '/resource', number>;
  reportsReceived: Record<'/heartbeat' | '/resource', number>;
  othersCores: number;
}

/** Least time from the agents' start to the window's opening, ms (see where it is used). */
const WARMUP_MS = 20_000;

/** A tiny report sink: 200 with an empty body, counted per url. */
async function sink(): Promise<{ port: number; counts: Record<string, number>; close(): Promise<void> }> {
  const counts: Record<string, number> = { '/heartbeat': 0, '/resource': 0 };
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      counts[req.url ?? '/'] = (counts[req.url ?? '/'] ?? 0) + 1;
      res.writeHead(200, { 'content-length': 0 }).end();
    });
  });
  server.keepAliveTimeout = 72_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    counts,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** An idle node that keeps an EVENT_LOOP_RESOLUTION_MS-resolution event-loop histogram: SIGUSR1 resets it, SIGUSR2 prints p99. */
const ELD_REF = `const h=require('perf_hooks').monitorEventLoopDelay({resolution:${EVENT_LOOP_RESOLUTION_MS}});h.enable();
process.on('SIGUSR1',()=>h.reset());
process.on('SIGUSR2',()=>process.stdout.write('p99 '+(h.percentile(99)/1e6)+'\\n'));
setInterval(()=>{},1000);`;

/** RSS each runtime dependency of package.json adds to a bare node when imported alone. */
async function importCosts(): Promise<[string, number][]> {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
  };
  const rssOf = async (mod: string | null): Promise<number> => {
    const code = `${mod ? `await import(${JSON.stringify(mod)});` : ''} setTimeout(() => process.stdout.write('rss ' + process.memoryUsage().rss + '\\n'), 300);`;
    const c = startChild([process.execPath, '--input-type=module', '-e', code]);
    await c.exited;
    const m = /rss (\d+)/.exec(c.output());
    return m ? Number(m[1]) : Number.NaN;
  };
  const bare = await rssOf(null);
  const out: [string, number][] = [];
  for (const dep of Object.keys(pkg.dependencies ?? {})) out.push([dep, (await rssOf(dep)) - bare]);
  return out.filter(([, v]) => Number.isFinite(v)).sort((a, b) => b[1] - a[1]);
}

/** Runs the footprint benchmark. */
export async function runFootprint(o: FootprintOptions = {}): Promise<FootprintResult> {
  const seconds = o.seconds ?? 60;
  const dir = tempDir('agent');
  const mcastPort = await freeMulticastPort();
  const servicePort = await freePort();
  const s = await sink();
  const q = await querySender(mcastPort);
  const bundle = await agentBundle();
  progress(`agent footprint: muster agent (bundle, MUSTER_NODE_FLAGS=${bundle.nodeFlags}) for ${seconds} s`);
  const agentArgs = (port: number, service: number, box: number, dataDir: string) => [
    'agent',
    ...sets({
      'multicast.interface': '127.0.0.1',
      'multicast.port': port,
      'service.host': '127.0.0.1',
      'service.port': service,
      'identity.box_id': box,
      'identity.slot_id': 1,
      'identity.cpu_id': 0,
      data_dir: dataDir,
      'log.level': 'warn',
    }),
  ];
  const startBundled = (args: string[]) => startChild([...bundle.argv, ...args], bundle.env);
  const startedAt = performance.now();
  const agent = startBundled(agentArgs(mcastPort, servicePort, 7, path.join(dir, 'agent')));
  // A second agent that hears no query (its own port): what sampling alone costs.
  const silentPort = await freePort();
  const silent = startBundled(agentArgs(await freeMulticastPort(), silentPort, 8, path.join(dir, 'silent')));
  // The same agent from the checkout's compiled modules, no flags (context: what bundling and the
  // unit's flags save). Hears no query.
  const checkoutPort = await freePort();
  const checkout = startMuster(agentArgs(await freeMulticastPort(), checkoutPort, 9, path.join(dir, 'checkout')));
  const idle = startChild([process.execPath, '-e', 'setInterval(()=>{},1000)']);
  const eldRef = startChild([process.execPath, '-e', ELD_REF]);
  const floorArgv = moduleFloorArgv('agent/agent.js');
  const floor = floorArgv ? startChild(floorArgv) : null;
  const base = `http://127.0.0.1:${servicePort}`;
  const sent = { '/heartbeat': 0, '/resource': 0 };
  try {
    await waitHttp(`${base}/healthz`, agent);
    await waitHttp(`http://127.0.0.1:${silentPort}/healthz`, silent);
    await waitHttp(`http://127.0.0.1:${checkoutPort}/healthz`, checkout);
    for (let t = 0; ; t++) {
      const h = await getJson<{ multicast_joined: boolean }>(`${base}/healthz`);
      if (h.multicast_joined) break;
      if (t > 50) throw new Error('agent did not join the multicast group');
      await sleep(100);
    }
    // Warm-up: a few rounds of both reports (JIT, the first samples, the keep-alive connection).
    for (let k = 0; k < 3; k++) {
      await q.send('/heartbeat', s.port, 200);
      await q.send('/resource', s.port, 200);
      await sleep(1000);
    }
    await sleep(2000);
    // The window opens at least WARMUP_MS after the agents started: V8's memory reducer runs its
    // one-time mark-compacts ~10-13 s after start (~0.1 s of CPU), a start-up cost, not the
    // steady state the CPU target is about.
    await sleep(Math.max(0, WARMUP_MS - (performance.now() - startedAt)));
    const received0 = { ...s.counts };

    // The window.
    const m0 = await getText(`${base}/metrics`); // also resets the agent's event-loop histogram
    eldRef.proc.kill('SIGUSR1');
    const meter = contentionMeter();
    const cpuA = cpuMeter(agent.pid);
    const cpuI = cpuMeter(idle.pid);
    const cpuS = cpuMeter(silent.pid);
    const rssS = rssSampler(silent.pid);
    const cpuC = cpuMeter(checkout.pid);
    const rssC = rssSampler(checkout.pid);
    const rssA = rssSampler(agent.pid);
    const rssI = rssSampler(idle.pid);
    const rssF = floor ? rssSampler(floor.pid) : null;
    const t0 = performance.now();
    for (let k = 0; k < seconds; k++) {
      await q.send('/heartbeat', s.port, 200);
      sent['/heartbeat']++;
      if (k % 5 === 0) {
        await q.send('/resource', s.port, 200);
        sent['/resource']++;
      }
      const next = t0 + (k + 1) * 1000;
      await sleep(Math.max(0, next - performance.now()));
    }
    const agentCpu = cpuA.stop();
    const idleCpu = cpuI.stop();
    const silentCpu = cpuS.stop();
    const rs = rssS.stop();
    const checkoutCpu = cpuC.stop();
    const rc = rssC.stop();
    const ra = rssA.stop();
    const ri = rssI.stop();
    const rf = rssF?.stop();
    eldRef.proc.kill('SIGUSR2');
    const m1 = await getText(`${base}/metrics`);
    const othersCores = meter.stop().othersCores;
    await sleep(500); // the last reports (jitter ≤ 200 ms) and the reference's line
    const refLine = /p99 ([\d.]+)/.exec(eldRef.output());

    const build = (url: '/heartbeat' | '/resource') => {
      const d = bucketsDelta(
        histogramBuckets(m1, 'muster_agent_report_build_seconds', { url }),
        histogramBuckets(m0, 'muster_agent_report_build_seconds', { url }),
      );
      const p50 = bucketQuantile(d, 0.5);
      const p99 = bucketQuantile(d, 0.99);
      return {
        p50: (p50?.value ?? Number.NaN) * 1000,
        p99: (p99?.value ?? Number.NaN) * 1000,
        p50Upper: (p50?.upper ?? Number.NaN) * 1000,
        p99Upper: (p99?.upper ?? Number.NaN) * 1000,
        count: d[d.length - 1]?.[1] ?? 0,
      };
    };
    const collectorSums = (t: string) => {
      const out = new Map<string, number>();
      for (const m of t.matchAll(/^muster_agent_collector_duration_seconds_sum\{collector="([^"]+)"\}\s+(\S+)/gm))
        out.set(m[1] as string, Number(m[2]));
      return out;
    };
    const c0 = collectorSums(m0);
    const collectorMsPerS: Record<string, number> = {};
    for (const [k, v] of collectorSums(m1)) collectorMsPerS[k] = ((v - (c0.get(k) ?? 0)) * 1000) / seconds;
    return {
      seconds,
      binary: 'bundle',
      nodeFlags: bundle.nodeFlags,
      checkout: { rssMean: rc.mean, rssMax: rc.max, cpuPercent: checkoutCpu },
      collectorMsPerS,
      agent: {
        rssMean: ra.mean,
        rssMax: ra.max,
        cpuPercent: agentCpu,
        eventLoopP99Ms: metric(m1, 'nodejs_eventloop_lag_p99_seconds') * 1000 - EVENT_LOOP_RESOLUTION_MS,
        eventLoopMaxMs: metric(m1, 'nodejs_eventloop_lag_max_seconds') * 1000 - EVENT_LOOP_RESOLUTION_MS,
        build: { '/heartbeat': build('/heartbeat'), '/resource': build('/resource') },
      },
      idle: { rssMean: ri.mean, rssMax: ri.max, cpuPercent: idleCpu },
      silent: { rssMean: rs.mean, rssMax: rs.max, cpuPercent: silentCpu },
      importCosts: await importCosts(),
      moduleFloorRss: rf && rf.mean > 0 ? rf.mean : Number.NaN,
      heapUsed: metric(m1, 'nodejs_heap_size_used_bytes'),
      heapTotal: metric(m1, 'nodejs_heap_size_total_bytes'),
      idleEventLoopP99Ms: refLine ? Number(refLine[1]) - EVENT_LOOP_RESOLUTION_MS : Number.NaN,
      queriesSent: sent,
      reportsReceived: {
        '/heartbeat': (s.counts['/heartbeat'] ?? 0) - (received0['/heartbeat'] ?? 0),
        '/resource': (s.counts['/resource'] ?? 0) - (received0['/resource'] ?? 0),
      },
      othersCores,
    };
  } finally {
    q.close();
    await Promise.all([agent.stop(), silent.stop(), checkout.stop(), idle.stop(), eldRef.stop(), floor?.stop()]);
    await s.close();
    removeDir(dir);
  }
}

/** Human-readable lines of a result. */
export function formatFootprint(r: FootprintResult): string {
  const a = r.agent;
  const b = (u: '/heartbeat' | '/resource') =>
    `${u} p50 ${fx(a.build[u].p50, 3)} ms (≤ ${a.build[u].p50Upper} ms) / p99 ${fx(a.build[u].p99, 3)} ms (≤ ${a.build[u].p99Upper} ms), ${a.build[u].count} builds`;
  return [
    `agent footprint over ${r.seconds} s (${r.binary}, MUSTER_NODE_FLAGS=${r.nodeFlags || '(none)'} as systemd/muster-agent.service); other processes: ${fx(r.othersCores, 2)} cores`,
    `  agent RSS mean ${mib(a.rssMean)}, max ${mib(a.rssMax)}; idle node ${mib(r.idle.rssMean)}; ratio ${fx(a.rssMean / r.idle.rssMean, 2)}; V8 heap used ${mib(r.heapUsed)} of ${mib(r.heapTotal)}`,
    `  checkout agent (compiled modules, no flags, hears no query): RSS ${mib(r.checkout.rssMean)}, CPU ${fx(r.checkout.cpuPercent, 2)} %; a node importing agent/agent.js alone ${mib(r.moduleFloorRss)}`,
    `  agent CPU ${fx(a.cpuPercent, 2)} % of one core; idle node ${fx(r.idle.cpuPercent, 2)} %`,
    `  silent agent (samples, hears no query): RSS ${mib(r.silent.rssMean)}, CPU ${fx(r.silent.cpuPercent, 2)} %`,
    `  RSS a bare node gains importing each dependency alone: ${r.importCosts.map(([k, v]) => `${k} ${mib(v)}`).join(', ')}`,
    `  agent event-loop p99 ${fx(a.eventLoopP99Ms, 2)} ms (max ${fx(a.eventLoopMaxMs, 1)} ms), beyond the ${EVENT_LOOP_RESOLUTION_MS} ms resolution; idle reference ${fx(r.idleEventLoopP99Ms, 2)} ms`,
    `  build ${b('/heartbeat')}`,
    `  build ${b('/resource')}`,
    `  collectors (wall ms per s): ${Object.entries(r.collectorMsPerS)
      .map(([k, v]) => `${k} ${fx(v, 2)}`)
      .join(', ')}`,
    `  queries sent hb ${r.queriesSent['/heartbeat']} res ${r.queriesSent['/resource']}; reports received hb ${r.reportsReceived['/heartbeat']} res ${r.reportsReceived['/resource']}`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' } } });
  runFootprint({ seconds: Number(values.seconds) })
    .then((r) => {
      process.stdout.write(`${formatFootprint(r)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`agent-footprint: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
