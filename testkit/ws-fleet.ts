/**
 * A WebSocket fleet simulator: one process holding N nodes on the WebSocket node link
 * (docs/links.md "The WebSocket node link"), each its own socket (`ws` package), speaking only the
 * link specification's messages: `welcome` → `node_register` → `register_response`, then a
 * `heartbeat` with `status` and `metrics` every `heartbeatMs` (each node at its own random phase),
 * answered `heartbeat_ack`. A `execute_command` is answered `command_started` + `command_result`
 * (exit 0, the command text echoed) so that a bench can run tasks over the fleet.
 *
 * When a connection is lost the node reconnects after `reconnectDelay` (common/link.ts: exponential
 * backoff with full jitter, capped; the attempt count reset once registered), exactly as the muster
 * agent does (agent/link/ws.ts): a bench can check that a manager restart is met at the rate that
 * backoff allows, not all at once.
 *
 * Node i is `<prefix><i, 5 digits>` (no position: a link-specification node). Safety: `url` must
 * be on 127.0.0.0/8 or ::1 (refused otherwise).
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { reconnectDelay } from '../common/link.js';
import { mix, mulberry32 } from './fleet.js';

/** Options of a WebSocket fleet. */
export interface WsFleetOptions {
  /** ws://127.0.0.1:<port>/api/v1/ws (loopback only). */
  url: string;
  /** The link token every node presents. */
  token: string;
  n: number;
  /** Node id prefix (default `sim-`). */
  prefix?: string;
  /** Heartbeat cadence, ms (the specification's is 30 s). */
  heartbeatMs: number;
  /** Reconnect backoff (the agent's link.websocket.backoff_base_ms / backoff_max_ms). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Most opening handshakes in flight at the first connect (default 256): the initial ramp only. */
  rampConcurrency?: number;
  /** Seed of the phases and metrics (default 1). */
  seed?: number;
}

/** What the fleet saw, cumulative. */
export interface WsFleetCounters {
  /** Connection attempts (first connects and reconnects). */
  attempts: number;
  /** Attempts that failed before a registration, by error code / close code. */
  failed: Record<string, number>;
  /** register_response received with success. */
  registered: number;
  heartbeats: number;
  acks: number;
  /** error messages received, by error_code. */
  errors: Record<string, number>;
  commands: number;
}

/** A running WebSocket fleet. */
export interface WsFleet {
  readonly counters: WsFleetCounters;
  /** Nodes registered now. */
  registeredNow(): number;
  /** ms (performance.now()) of every registration, in order (first connects and reconnects). */
  readonly registrations: number[];
  /** ms (performance.now()) at which each node lost its last registered connection (reconnect start). */
  readonly losses: number[];
  /** ms (performance.now()) of every connection attempt as it left this process, in order. */
  readonly attemptTimes: number[];
  /**
   * ms (performance.now()) at which each reconnect was due by its backoff delay (the time it was
   * scheduled for; a busy process starts it later, at its attemptTimes entry).
   */
  readonly dueTimes: number[];
  /** ms each reconnect started after it was due (a busy or starved process runs timers late). */
  readonly lateness: number[];
  /** ms from a failed attempt leaving this process to its failure seen here (refused, reset, timed out). */
  readonly failedAfter: number[];
  /** Connects every node (at most rampConcurrency handshakes at once); resolves when all registered or after `timeoutMs`. */
  connectAll(timeoutMs: number): Promise<number>;
  /** Resolves when `registeredNow() >= want` or after `timeoutMs`; returns registeredNow(). */
  waitRegistered(want: number, timeoutMs: number): Promise<number>;
  /** Closes every socket; no reconnect. */
  stop(): Promise<void>;
}

interface SimNode {
  i: number;
  id: string;
  ws: WebSocket | null;
  registered: boolean;
  attempt: number;
  hb: NodeJS.Timeout | null;
  retry: NodeJS.Timeout | null;
  rand: () => number;
}

const envelope = (type: string, data: unknown, id: string = randomUUID()) =>
  JSON.stringify({ type, id, timestamp: new Date().toISOString(), data });

/** Starts a WebSocket fleet (no connection yet: call connectAll). */
export function startWsFleet(opts: WsFleetOptions): WsFleet {
  const u = new URL(opts.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1' && host !== 'localhost')
    throw new Error(`the WebSocket fleet connects to loopback only, not ${host}`);
  const prefix = opts.prefix ?? 'sim-';
  const seed = opts.seed ?? 1;
  const counters: WsFleetCounters = {
    attempts: 0,
    failed: {},
    registered: 0,
    heartbeats: 0,
    acks: 0,
    errors: {},
    commands: 0,
  };
  const registrations: number[] = [];
  const losses: number[] = [];
  const attemptTimes: number[] = [];
  const dueTimes: number[] = [];
  const lateness: number[] = [];
  const failedAfter: number[] = [];
  let registeredNow = 0;
  let stopped = false;
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const nodes: SimNode[] = Array.from({ length: opts.n }, (_, i) => ({
    i,
    id: `${prefix}${String(i).padStart(5, '0')}`,
    ws: null,
    registered: false,
    attempt: 0,
    hb: null,
    retry: null,
    rand: mulberry32(mix(seed, i)),
  }));

  const heartbeat = (n: SimNode) => {
    const ws = n.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !n.registered) return;
    const r = n.rand;
    ws.send(
      envelope('heartbeat', {
        node_id: n.id,
        status: 'online',
        metrics: {
          cpu_usage: Math.round(r() * 1000) / 10,
          memory_usage: Math.round(r() * 1000) / 10,
          disk_usage: Math.round(r() * 1000) / 10,
          load_average: Math.round(r() * 400) / 100,
        },
      }),
    );
    counters.heartbeats++;
  };

  const fail = (key: string) => {
    counters.failed[key] = (counters.failed[key] ?? 0) + 1;
  };

  /** Opens node n's connection; `onSettled` is called once it registered or failed. */
  const connect = (n: SimNode, onSettled?: () => void) => {
    if (stopped) return;
    counters.attempts++;
    const startedAt = performance.now();
    attemptTimes.push(startedAt);
    const url = new URL(opts.url);
    url.searchParams.set('token', opts.token);
    url.searchParams.set('node_id', n.id);
    const ws = new WebSocket(url, { handshakeTimeout: 10_000, perMessageDeflate: false });
    n.ws = ws;
    let settled = false;
    let errCode = '';
    const settle = () => {
      if (settled) return;
      settled = true;
      onSettled?.();
    };
    ws.on('message', (raw: Buffer) => {
      let m: { type: string; id: string; data: Record<string, unknown> };
      try {
        m = JSON.parse(raw.toString('utf8'));
      } catch {
        return;
      }
      switch (m.type) {
        case 'welcome':
          ws.send(envelope('node_register', { node_id: n.id, hostname: `host-${n.i}`, os_info: 'Simulated Linux' }));
          return;
        case 'register_response':
          if (m.data.success !== true) return;
          n.registered = true;
          n.attempt = 0;
          registeredNow++;
          counters.registered++;
          registrations.push(performance.now());
          settle();
          wake();
          // Each node at its own phase of the cadence.
          n.hb = setTimeout(
            function tick() {
              heartbeat(n);
              n.hb = setTimeout(tick, opts.heartbeatMs);
            },
            Math.floor(n.rand() * opts.heartbeatMs),
          );
          return;
        case 'heartbeat_ack':
          counters.acks++;
          return;
        case 'execute_command': {
          counters.commands++;
          const id = String(m.data.command_id);
          ws.send(envelope('command_started', { command_id: id }, m.id));
          ws.send(
            envelope('command_result', {
              command_id: id,
              exit_code: 0,
              stdout: `${String(m.data.command_text)}\n`,
              stderr: '',
              execution_time_ms: 1,
            }),
          );
          return;
        }
        case 'error': {
          const code = String(m.data.error_code);
          counters.errors[code] = (counters.errors[code] ?? 0) + 1;
          return;
        }
        default:
          return;
      }
    });
    ws.on('error', (err: Error & { code?: string }) => {
      errCode = err.code ?? err.message.slice(0, 40);
    });
    ws.on('close', (code: number) => {
      if (n.ws !== ws) return;
      n.ws = null;
      if (n.hb) clearTimeout(n.hb);
      n.hb = null;
      if (n.registered) {
        n.registered = false;
        registeredNow--;
        losses.push(performance.now());
      } else {
        fail(errCode || `close ${code}`);
        failedAfter.push(performance.now() - startedAt);
      }
      settle();
      if (stopped) return;
      const delay = reconnectDelay(n.attempt, opts.backoffBaseMs, opts.backoffMaxMs, n.rand);
      n.attempt++;
      const dueAt = performance.now() + delay;
      dueTimes.push(dueAt);
      n.retry = setTimeout(() => {
        lateness.push(performance.now() - dueAt);
        n.retry = null;
        connect(n);
      }, delay);
    });
  };

  const waitRegistered = (want: number, timeoutMs: number) =>
    new Promise<number>((resolve) => {
      if (registeredNow >= want) return resolve(registeredNow);
      const done = () => {
        if (registeredNow < want && !timedOut) return;
        clearTimeout(t);
        waiters.delete(done);
        resolve(registeredNow);
      };
      let timedOut = false;
      const t = setTimeout(() => {
        timedOut = true;
        done();
      }, timeoutMs);
      waiters.add(done);
    });

  return {
    counters,
    registrations,
    losses,
    attemptTimes,
    dueTimes,
    lateness,
    failedAfter,
    registeredNow: () => registeredNow,
    waitRegistered,
    async connectAll(timeoutMs) {
      const limit = opts.rampConcurrency ?? 256;
      let next = 0;
      let inFlight = 0;
      await new Promise<void>((resolve) => {
        const pump = () => {
          while (inFlight < limit && next < nodes.length && !stopped) {
            inFlight++;
            connect(nodes[next++] as SimNode, () => {
              inFlight--;
              pump();
            });
          }
          if (next >= nodes.length) resolve();
        };
        pump();
      });
      return waitRegistered(nodes.length, timeoutMs);
    },
    async stop() {
      stopped = true;
      for (const n of nodes) {
        if (n.hb) clearTimeout(n.hb);
        if (n.retry) clearTimeout(n.retry);
        n.ws?.terminate();
      }
      wake();
    },
  };
}
