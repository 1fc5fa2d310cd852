/**
 * A fleet simulator: one process playing N agents with distinct identities. It joins the query
 * group on 127.0.0.1 and answers every valid query (docs/protocol.md §7 Timing: one query, one
 * report) with one spec-shaped report per simulated agent, each after its own random delay in
 * [0, jitter_ms] (the query's, default 200 ms), from its own source address.
 *
 * Simulated agent i (its bodies come from testkit/fleet.ts):
 *   - position: box = 1 + ⌊i/64⌋, slot = 1 + ⌊(i mod 64)/2⌋, cpu = i mod 2 (node id box-slot-cpu)
 *   - host_ip 127.<net>.<1+⌊i/250⌋>.<1+(i mod 250)>: all of 127.0.0.0/8 is loopback on Linux, so
 *     the report is also *sent from* that address (undici `localAddress`); the manager sees
 *     N distinct peers, as on a real chassis LAN
 *   - one undici Client (one keep-alive connection, no pipelining) per manager origin, like a
 *     real agent holding one connection to its manager; N agents = N sockets in this process
 *   - a resource report with 4 NICs, 3 disks, 2 GPUs and 8 components: about 4.6 KB of JSON
 *   - its own mulberry32 stream seeded from (seed, i): same seed, same bodies and delays
 *
 * Library: `startFleet({ n, seed, group, port, iface })` → counters, records, stop().
 * CLI: `node --import tsx bench/fleet.ts --n 1000 --port 39801 [--seed 1] [--net 20] [--check]`.
 *
 * Safety: a query whose manager_ip is not in 127.0.0.0/8 is ignored (counted as `refused`).
 */
import dgram from 'node:dgram';
import { createHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Client } from 'undici';
import type { ReportUrl } from '../common/constants.js';
import {
  type HeartbeatBody,
  HeartbeatBody as HeartbeatSchema,
  QueryBody,
  type QueryData,
  type ResourceBody,
  ResourceBody as ResourceSchema,
} from '../common/protocol.js';
import { compile } from '../common/validate.js';
import {
  type FleetBoard,
  fleetBoard,
  fleetHeartbeat,
  hostIpOf,
  MAX_AGENTS,
  mix,
  mulberry32,
  nextFleetResource,
  positionOf,
} from '../testkit/fleet.js';
import { GROUP, IFACE, isMain, wallMs } from './common.js';

/**
 * Checks that the fleet's bodies pass the protocol schemas (common/protocol.ts through
 * common/validate.ts `compile`) and have the intended size. Throws on the first failure.
 */
export function selfCheck(seed = 1): { heartbeatBytes: number; resourceBytes: { min: number; max: number } } {
  const hb = compile<HeartbeatBody>(HeartbeatSchema);
  const rs = compile<ResourceBody>(ResourceSchema);
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  let hbBytes = 0;
  for (const i of [0, 1, 63, 64, 249, 250, 999, 4999, MAX_AGENTS - 1]) {
    const h = JSON.stringify(fleetHeartbeat(i));
    const st = fleetBoard(i, seed);
    for (let k = 0; k < 3; k++) {
      const r = JSON.stringify(nextFleetResource(i, st, 20));
      const rc = rs.check(JSON.parse(r));
      if (!rc.ok)
        throw new Error(`fleet resource body of agent ${i} fails the schema: ${rc.error.field} ${rc.error.message}`);
      min = Math.min(min, Buffer.byteLength(r));
      max = Math.max(max, Buffer.byteLength(r));
    }
    const hc = hb.check(JSON.parse(h));
    if (!hc.ok)
      throw new Error(`fleet heartbeat body of agent ${i} fails the schema: ${hc.error.field} ${hc.error.message}`);
    hbBytes = Math.max(hbBytes, Buffer.byteLength(h));
  }
  if (min < 4000 || max > 5200) throw new Error(`resource bodies are ${min}..${max} bytes, not about 4–5 KB`);
  const ids = new Set(Array.from({ length: 5000 }, (_, i) => Object.values(positionOf(i)).join('-')));
  if (ids.size !== 5000) throw new Error('positions are not distinct');
  return { heartbeatBytes: hbBytes, resourceBytes: { min, max } };
}

// ---------------------------------------------------------------------------------------------
// The running fleet
// ---------------------------------------------------------------------------------------------

/** Options of startFleet. */
export interface FleetOptions {
  /** Number of simulated agents (≤ MAX_AGENTS). */
  n: number;
  seed?: number;
  /** Multicast group, default 239.192.168.80. */
  group?: string;
  /** Multicast port; never the spec's 3980 in a bench. */
  port: number;
  /** Interface address for the join, default 127.0.0.1. */
  iface?: string;
  /** Second octet of the simulated host_ips (127.<net>.x.y), default 20. */
  net?: number;
  /** Reply window when a query has no jitter_ms, default 200 ms. */
  defaultJitterMs?: number;
  /** Time limit of one POST, connect to last byte, default 2000 ms (the agent's report.timeout_ms). */
  timeoutMs?: number;
  /** Keep one record per report (for latency figures). */
  record?: boolean;
}

/** One report sent, with wall-clock times (ms, see common.wallMs). */
export interface ReportRecord {
  url: ReportUrl;
  agent: number;
  /** When the query datagram arrived here. */
  queryAt: number;
  /** The delay drawn, ms. */
  delay: number;
  /** When the POST started (queryAt + delay + this process's own lag). */
  sentAt: number;
  /** When the response ended. */
  doneAt: number;
  /** HTTP status, or 0 when the POST failed. */
  status: number;
}

type PerUrl = Record<ReportUrl, number>;
const perUrl = (): PerUrl => ({ '/heartbeat': 0, '/resource': 0 });

/** Running totals of a fleet. */
export interface FleetCounters {
  /** Valid queries received (each one answered by every agent). */
  queries: PerUrl;
  /** Datagrams ignored: not JSON, not a query, or a manager outside 127.0.0.0/8. */
  refused: number;
  /** Reports started, answered 200, failed (non-200 or error). */
  sent: PerUrl;
  ok: PerUrl;
  failed: PerUrl;
  /** Failure messages by kind (first few). */
  errors: Map<string, number>;
  inFlight: number;
  /** The latest query of each url: its jitter_ms (as sent; undefined = none) and arrival time. */
  last: Record<ReportUrl, { jitter_ms: number | undefined; at: number } | null>;
}

/** A running fleet. */
export interface Fleet {
  readonly n: number;
  readonly counters: FleetCounters;
  /** Report records (when `record`), oldest first. */
  readonly records: ReportRecord[];
  /** Empties `records`. */
  clearRecords(): void;
  /** Resolves once every report under way has finished. */
  idle(timeoutMs?: number): Promise<void>;
  /** Event-loop delay of this process since the last reset: p99 and max, ms. */
  eventLoop(reset?: boolean): { p99: number; max: number };
  /**
   * How late this process sent its reports (the POST's start minus the query's arrival plus the
   * delay drawn), ms, since the last reset: the agents' own lag, which the event-loop figure
   * understates when thousands of reports fall due in one blocked turn.
   */
  sendLag(reset?: boolean): { p99: number; max: number };
  /** Leaves the group and closes every connection. */
  stop(): Promise<void>;
}

const checkQuery = compile<QueryBody>(QueryBody);

/** Starts a fleet of `n` simulated agents; resolves once it has joined the group. */
export async function startFleet(opts: FleetOptions): Promise<Fleet> {
  const n = opts.n;
  if (!Number.isInteger(n) || n < 1 || n > MAX_AGENTS) throw new Error(`fleet size must be 1..${MAX_AGENTS}`);
  const seed = opts.seed ?? 1;
  const net = opts.net ?? 20;
  const group = opts.group ?? GROUP;
  const iface = opts.iface ?? IFACE;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const defaultJitter = opts.defaultJitterMs ?? 200;

  const hbJson = Array.from({ length: n }, (_, i) => JSON.stringify(fleetHeartbeat(i, net)));
  const boards = Array.from({ length: n }, (_, i) => fleetBoard(i, seed));
  const delayRng = Array.from({ length: n }, (_, i) => mulberry32(mix(seed ^ 0x5bd1e995, i)));
  const clients: Map<string, Client>[] = Array.from({ length: n }, () => new Map());

  const counters: FleetCounters = {
    queries: perUrl(),
    refused: 0,
    sent: perUrl(),
    ok: perUrl(),
    failed: perUrl(),
    errors: new Map(),
    inFlight: 0,
    last: { '/heartbeat': null, '/resource': null },
  };
  const records: ReportRecord[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const lag = createHistogram();
  let stopped = false;
  let idleWaiters: (() => void)[] = [];

  const clientFor = (i: number, origin: string): Client => {
    let c = clients[i]?.get(origin);
    if (!c) {
      c = new Client(origin, {
        localAddress: hostIpOf(i, net),
        pipelining: 1,
        keepAliveTimeout: 60_000,
        keepAliveMaxTimeout: 600_000,
        connectTimeout: timeoutMs,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      clients[i]?.set(origin, c);
    }
    return c;
  };

  const fail = (url: ReportUrl, why: string) => {
    counters.failed[url]++;
    counters.errors.set(why, (counters.errors.get(why) ?? 0) + 1);
  };

  const report = async (i: number, q: QueryData, queryAt: number, delay: number) => {
    const url = q.url;
    const body =
      url === '/heartbeat' ? (hbJson[i] as string) : JSON.stringify(nextFleetResource(i, boards[i] as FleetBoard, net));
    const sentAt = wallMs();
    lag.record(Math.max(1, Math.round((sentAt - queryAt - delay) * 1000)));
    counters.sent[url]++;
    counters.inFlight++;
    let status = 0;
    try {
      const res = await clientFor(i, `http://${q.manager_ip}:${q.manager_port}`).request({
        path: url,
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'user-agent': 'muster-bench-fleet' },
        // One time limit for the whole POST, connect to last byte, like agent/reporter.ts.
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.statusCode;
      await res.body.dump();
      if (status === 200) counters.ok[url]++;
      else fail(url, `HTTP ${status}`);
    } catch (err) {
      const e = err as Error & { code?: string };
      fail(url, typeof e.code === 'string' ? e.code : e.name);
    } finally {
      counters.inFlight--;
      if (opts.record) records.push({ url, agent: i, queryAt, delay, sentAt, doneAt: wallMs(), status });
      if (counters.inFlight === 0 && timers.size === 0) {
        const w = idleWaiters;
        idleWaiters = [];
        for (const f of w) f();
      }
    }
  };

  const onQuery = (q: QueryData, at: number) => {
    counters.queries[q.url]++;
    counters.last[q.url] = { jitter_ms: q.jitter_ms, at };
    const jitter = q.jitter_ms ?? defaultJitter;
    for (let i = 0; i < n; i++) {
      const delay = jitter > 0 ? (delayRng[i] as () => number)() * jitter : 0;
      const t = setTimeout(() => {
        timers.delete(t);
        if (!stopped) void report(i, q, at, delay);
      }, delay);
      timers.add(t);
    }
  };

  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  sock.on('message', (msg) => {
    const at = wallMs();
    let doc: unknown;
    try {
      doc = JSON.parse(msg.toString('utf8'));
    } catch {
      counters.refused++;
      return;
    }
    const r = checkQuery.check(doc);
    if (!r.ok || !r.value.data.manager_ip.startsWith('127.')) {
      counters.refused++;
      return;
    }
    onQuery(r.value.data, at);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port: opts.port, address: group, exclusive: false }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
  sock.addMembership(group, iface);

  return {
    n,
    counters,
    records,
    clearRecords() {
      records.length = 0;
    },
    idle(ms = 30_000) {
      if (counters.inFlight === 0 && timers.size === 0) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`fleet still busy after ${ms} ms`)), ms);
        idleWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    },
    sendLag(reset = true) {
      const r = lag.count > 0 ? { p99: lag.percentile(99) / 1000, max: lag.max / 1000 } : { p99: 0, max: 0 };
      if (reset) lag.reset();
      return r;
    },
    eventLoop(reset = true) {
      const r = { p99: eld.percentile(99) / 1e6, max: eld.max / 1e6 };
      if (reset) eld.reset();
      return r;
    },
    async stop() {
      stopped = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      eld.disable();
      try {
        sock.close();
      } catch {
        // already closed
      }
      await Promise.all(clients.flatMap((m) => [...m.values()].map((c) => c.destroy().catch(() => undefined))));
    },
  };
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string', default: '100' },
      seed: { type: 'string', default: '1' },
      group: { type: 'string', default: GROUP },
      port: { type: 'string' },
      iface: { type: 'string', default: IFACE },
      net: { type: 'string', default: '20' },
      check: { type: 'boolean', default: false },
    },
  });
  const check = selfCheck(Number(values.seed));
  process.stdout.write(
    `self-check: bodies pass common/protocol.ts; heartbeat ${check.heartbeatBytes} B, resource ${check.resourceBytes.min}..${check.resourceBytes.max} B\n`,
  );
  if (values.check) return;
  if (!values.port) throw new Error('--port is required (a private multicast port, not 3980)');
  const fleet = await startFleet({
    n: Number(values.n),
    seed: Number(values.seed),
    group: values.group,
    port: Number(values.port),
    iface: values.iface,
    net: Number(values.net),
  });
  process.stdout.write(`fleet of ${fleet.n} agents joined ${values.group}:${values.port} on ${values.iface}\n`);
  const show = () => {
    const c = fleet.counters;
    const el = fleet.eventLoop();
    process.stdout.write(
      `queries hb=${c.queries['/heartbeat']} res=${c.queries['/resource']} refused=${c.refused} | ` +
        `ok hb=${c.ok['/heartbeat']} res=${c.ok['/resource']} | failed hb=${c.failed['/heartbeat']} res=${c.failed['/resource']}` +
        ` | in flight ${c.inFlight} | loop p99 ${el.p99.toFixed(1)} ms` +
        (c.errors.size ? ` | errors ${JSON.stringify(Object.fromEntries(c.errors))}` : '') +
        '\n',
    );
  };
  const t = setInterval(show, 5000);
  const stop = async () => {
    clearInterval(t);
    show();
    await fleet.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

if (isMain(import.meta.url)) {
  cli().catch((err: Error) => {
    process.stderr.write(`fleet: ${err.message}\n`);
    process.exit(1);
  });
}
