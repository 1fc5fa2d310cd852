/**
 * Ingest throughput: /resource reports per second the real manager accepts (HTTP 200) and stores,
 * against a bare node:http server that only parses the same JSON (bench/bare-server.ts), driven
 * by the same load generator in the same run:
 *   - `boards` pre-serialized 4.4 KB resource bodies, each from its own host_ip (127.21.x.y);
 *     every board sends its heartbeat first, so each resource report matches a node
 *   - `connections` undici Clients (one keep-alive connection each, no pipelining), connection k
 *     bound to board k's address, each sending the bodies round-robin back to back
 *   - a 1 s warm-up (JIT), then a fixed window (default 10 s) per server
 * Ratio = manager rate / bare rate; target ≥ 0.8 (issue 13).
 *   node --import tsx bench/ingest.ts [--seconds 10] [--connections 32] [--boards 1000]
 */
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import { fleetHeartbeat, fleetResource, hostIpOf } from '../testkit/fleet.js';
import {
  contentionMeter,
  cpuSeconds,
  freeMulticastPort,
  freePort,
  fx,
  getJson,
  getText,
  isMain,
  metric,
  musterBinary,
  progress,
  removeDir,
  startBare,
  startManager,
  tempDir,
} from './common.js';

/** Address block of the ingest boards: 127.21.x.y. */
const NET = 21;

/** Options of the ingest benchmark. */
export interface IngestOptions {
  seconds?: number;
  connections?: number;
  boards?: number;
  seed?: number;
}

/** Figures of one server under the load. */
export interface IngestSide {
  /** Reports answered 200 per second. */
  rate: number;
  ok: number;
  errors: number;
  /** Reports the server says it stored (manager: ingested counter delta; bare: parsed count). */
  stored: number;
  /** CPU of the server process, % of one core. */
  serverCpu: number;
  /** CPU of the load generator (this process), % of one core. */
  generatorCpu: number;
  /** Mean latency of one POST, ms. */
  meanMs: number;
  /** Server CPU time per report, µs: less sensitive to a busy machine than the rate. */
  cpuUsPerReport: number;
}

/** Result of the ingest benchmark. */
export interface IngestResult {
  seconds: number;
  connections: number;
  boards: number;
  bodyBytes: { min: number; max: number };
  manager: IngestSide;
  bare: IngestSide;
  /** manager.rate / bare.rate. */
  ratio: number;
  /** bare.cpuUsPerReport / manager.cpuUsPerReport: the ratio the rates would have with one free core each. */
  cpuRatio: number;
  /** Cores used by other processes on the machine meanwhile. */
  othersCores: number;
  /** Resource reports the manager could not match to a node (should be 0). */
  unmatched: number;
  /** Nodes the manager lists with a resource report (should equal boards). */
  nodesWithResource: number;
}

/** A closed-loop load generator: `connections` clients posting bodies back to back. */
function generator(origin: string, connections: number) {
  const clients = Array.from(
    { length: connections },
    (_, k) => new Client(origin, { localAddress: hostIpOf(k, NET), pipelining: 1, keepAliveTimeout: 60_000 }),
  );
  return {
    /** Sends every body once, spread over the connections; resolves with the count of 200s. */
    async once(path: string, bodies: readonly string[]): Promise<number> {
      let next = 0;
      let ok = 0;
      await Promise.all(
        clients.map(async (c) => {
          for (let i = next++; i < bodies.length; i = next++) {
            const res = await c.request({
              path,
              method: 'POST',
              body: bodies[i] as string,
              headers: { 'content-type': 'application/json' },
            });
            await res.body.dump();
            if (res.statusCode === 200) ok++;
          }
        }),
      );
      return ok;
    },
    /** Posts bodies round-robin for `ms`; returns 200s, errors, mean latency. */
    async run(
      path: string,
      bodies: readonly string[],
      ms: number,
    ): Promise<{ ok: number; errors: number; meanMs: number; secs: number }> {
      const t0 = performance.now();
      const end = t0 + ms;
      let ok = 0;
      let errors = 0;
      let latSum = 0;
      await Promise.all(
        clients.map(async (c, k) => {
          let i = (k * 97) % bodies.length;
          while (performance.now() < end) {
            const s = performance.now();
            try {
              const res = await c.request({
                path,
                method: 'POST',
                body: bodies[i] as string,
                headers: { 'content-type': 'application/json' },
              });
              await res.body.dump();
              if (res.statusCode === 200) ok++;
              else errors++;
            } catch {
              errors++;
            }
            latSum += performance.now() - s;
            i = (i + 1) % bodies.length;
          }
        }),
      );
      const secs = (performance.now() - t0) / 1000;
      return { ok, errors, meanMs: latSum / Math.max(1, ok + errors), secs };
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

/** Accumulates one side's slices. */
function tally() {
  return { ok: 0, errors: 0, secs: 0, latMs: 0, serverCpuS: 0, genCpuS: 0, stored: 0 };
}
type Tally = ReturnType<typeof tally>;

function side(t: Tally): IngestSide {
  return {
    rate: t.ok / t.secs,
    ok: t.ok,
    errors: t.errors,
    stored: t.stored,
    serverCpu: (t.serverCpuS / t.secs) * 100,
    generatorCpu: (t.genCpuS / t.secs) * 100,
    meanMs: t.latMs / Math.max(1, t.ok + t.errors),
    cpuUsPerReport: (t.serverCpuS / Math.max(1, t.ok)) * 1e6,
  };
}

/**
 * Runs the ingest benchmark. Both servers run side by side (each its own process); the
 * generator alternates between them in 2 s slices (A B B A ...), so a neighbour's load on this
 * shared machine falls on both sides alike.
 */
export async function runIngest(o: IngestOptions = {}): Promise<IngestResult> {
  const seconds = o.seconds ?? 10;
  const connections = o.connections ?? 32;
  const boards = o.boards ?? 1000;
  const seed = o.seed ?? 1;
  const sliceMs = 2000;
  const slices = Math.max(1, Math.round((seconds * 1000) / sliceMs));
  const hb = Array.from({ length: boards }, (_, i) => JSON.stringify(fleetHeartbeat(i, NET)));
  const res = Array.from({ length: boards }, (_, i) => JSON.stringify(fleetResource(i, seed, NET)));
  const sizes = res.map((b) => Buffer.byteLength(b));
  const bodyBytes = { min: Math.min(...sizes), max: Math.max(...sizes) };

  progress(
    `ingest: bare node:http vs muster manager (${musterBinary().kind}), ${connections} connections, ${slices} × ${sliceMs / 1000} s each`,
  );
  const dir = tempDir('ingest');
  const bare = await startBare(await freePort());
  const mgr = await startManager({
    httpPort: await freePort(),
    mcastPort: await freeMulticastPort(),
    dataDir: dir,
    // No query rounds during the run: the load generator is the only traffic.
    extra: { 'query.heartbeat_interval_ms': 3_600_000, 'query.resource_interval_ms': 3_600_000 },
  });
  try {
    const gb = generator(bare.base, connections);
    const gm = generator(mgr.base, connections);
    const hbOk = await gm.once('/heartbeat', hb);
    if (hbOk !== boards) throw new Error(`manager accepted ${hbOk} of ${boards} heartbeats\n${mgr.child.output()}`);
    await gb.once('/heartbeat', hb);
    // warm-up (JIT, connections)
    await gb.run('/resource', res, 1000);
    await gm.run('/resource', res, 1000);

    const tb = tally();
    const tm = tally();
    const ingested = async () =>
      metric(await getText(`${mgr.base}/metrics`), 'muster_manager_reports_ingested_total', { url: '/resource' });
    const bareCount = async () => (await getJson<Record<string, number>>(`${bare.base}/stats`))['/resource'] ?? 0;
    const meter = contentionMeter();
    const m0 = await ingested();
    const b0 = await bareCount();
    for (let k = 0; k < slices * 2; k++) {
      const isBare = k % 4 === 0 || k % 4 === 3;
      const g = isBare ? gb : gm;
      const t = isBare ? tb : tm;
      const pid = isBare ? bare.child.pid : mgr.child.pid;
      const c0 = cpuSeconds(pid);
      const cg = process.cpuUsage();
      const r = await g.run('/resource', res, sliceMs);
      t.serverCpuS += cpuSeconds(pid) - c0;
      const dg = process.cpuUsage(cg);
      t.genCpuS += (dg.user + dg.system) / 1e6;
      t.ok += r.ok;
      t.errors += r.errors;
      t.secs += r.secs;
      t.latMs += r.meanMs * (r.ok + r.errors);
    }
    const othersCores = meter.stop().othersCores;
    tm.stored = (await ingested()) - m0;
    tb.stored = (await bareCount()) - b0;
    await gb.close();
    await gm.close();
    const unmatched = metric(await getText(`${mgr.base}/metrics`), 'muster_manager_resource_unmatched_total');
    const nodes = await getJson<{ nodes: { resource_at: string | null }[] }>(
      `${mgr.base}/api/v1/nodes`,
      30_000,
      mgr.token,
    );
    const managerSide = side(tm);
    const bareSide = side(tb);
    return {
      seconds: tm.secs,
      connections,
      boards,
      bodyBytes,
      manager: managerSide,
      bare: bareSide,
      ratio: managerSide.rate / bareSide.rate,
      cpuRatio: bareSide.cpuUsPerReport / managerSide.cpuUsPerReport,
      othersCores,
      unmatched,
      nodesWithResource: nodes.nodes.filter((n) => n.resource_at !== null).length,
    };
  } finally {
    await Promise.all([bare.child.stop(), mgr.child.stop()]);
    removeDir(dir);
  }
}

/** Human-readable lines of a result. */
export function formatIngest(r: IngestResult): string {
  const side = (name: string, s: IngestSide) =>
    `${name.padEnd(8)} ${fx(s.rate, 0).padStart(7)} reports/s  (ok ${s.ok}, errors ${s.errors}, stored ${s.stored}, ` +
    `mean ${fx(s.meanMs, 2)} ms, server CPU ${fx(s.serverCpu, 0)} % = ${fx(s.cpuUsPerReport, 0)} µs/report, generator CPU ${fx(s.generatorCpu, 0)} %)`;
  return [
    `ingest: ${r.boards} boards, ${r.bodyBytes.min}..${r.bodyBytes.max} B bodies, ${r.connections} connections, ${fx(r.seconds, 1)} s each, alternating 2 s slices`,
    side('bare', r.bare),
    side('manager', r.manager),
    `ratio manager/bare = ${fx(r.ratio, 2)} (target ≥ 0.80: ${r.ratio >= 0.8 ? 'met' : 'NOT met'}); unmatched ${r.unmatched}, nodes with resource ${r.nodesWithResource}/${r.boards}`,
    `CPU-per-report ratio bare/manager = ${fx(r.cpuRatio, 2)}; other processes used ${fx(r.othersCores, 2)} cores meanwhile`,
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      connections: { type: 'string', default: '32' },
      boards: { type: 'string', default: '1000' },
    },
  });
  runIngest({ seconds: Number(values.seconds), connections: Number(values.connections), boards: Number(values.boards) })
    .then((r) => {
      process.stdout.write(`${formatIngest(r)}\n`);
      process.exit(0);
    })
    .catch((err: Error) => {
      process.stderr.write(`ingest: ${err.stack ?? err.message}\n`);
      process.exit(1);
    });
}
