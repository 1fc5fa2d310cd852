/**
 * The manager's end of the WebSocket node link (docs/links.md "The WebSocket node link"):
 * `ws(s)://<manager>/api/v1/ws?token=<link token>&node_id=<id>` on the API listener. It speaks
 * the link specification's envelope and messages (common/link.ts): `welcome`, `node_register` →
 * `register_response`, `heartbeat` → `heartbeat_ack`, `execute_command` → `command_started` →
 * `command_result` → `command_received`, `error` with its codes; plus muster's extension
 * messages (`muster.report`, `muster.command`, `muster.reply`) through which a muster agent sends
 * its full reports and serves its commands.
 *
 * Bounds (docs/configuration.md "link"): link.max_connections (503 at the upgrade),
 * link.max_message_bytes (close 1009), link.max_messages_per_second per connection (close 1008),
 * link.register_timeout_ms, link.max_pending_commands, link.max_output_bytes; each counted in
 * `muster_manager_link_refused_total{reason}` or `muster_manager_link_closed_total{reason}`.
 *
 * Commands in flight are kept per node, not per connection: a result that arrives on a later
 * connection of the same node (after a reconnect) completes them, a repeated result is
 * acknowledged again but recorded once, and a `muster.command` still unanswered is sent again
 * when its node reconnects (the agent runs one command_id once).
 */
import { createHash, randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  CommandResultData,
  CommandStartedData,
  LINK_NODE_ID_RE,
  LINK_PATH,
  LinkEnvelope,
  type LinkErrorCode,
  LinkHeartbeatData,
  type LinkMessage,
  linkMessage,
  MusterReplyData,
  MusterReportData,
  NODE_MESSAGE_TYPES,
  NodeRegisterData,
} from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { HeartbeatBody, ResourceBody } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';
import type { AlertEngine } from '../alerts/engine.js';
import type { ManagerConfig } from '../config.js';
import type { Ingest } from '../ingest.js';
import { peerIPv4 } from '../ingest.js';
import { type NodeRegistry, nodeIdOf } from '../registry.js';
import type { Store } from '../store/store.js';
import type { Telemetry } from '../telemetry/index.js';
import { MessageBucket, pingRound, watchPeer } from '../ws-peers.js';

/** The link's config section (docs/configuration.md "link"). */
export type LinkConfig = ManagerConfig['link'];

const check = {
  envelope: compile<LinkMessage>(LinkEnvelope),
  register: compile<NodeRegisterData>(NodeRegisterData),
  heartbeat: compile<LinkHeartbeatData>(LinkHeartbeatData),
  started: compile<{ command_id: string }>(CommandStartedData),
  result: compile<CommandResultData>(CommandResultData),
  report: compile<MusterReportData>(MusterReportData),
  reply: compile<MusterReplyData>(MusterReplyData),
  heartbeatBody: compile<HeartbeatBody>(HeartbeatBody),
  resourceBody: compile<ResourceBody>(ResourceBody),
};

/** sha256 of a link token, hex (what the store keeps). */
export const hashLinkToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** One open link connection. */
interface Session {
  ws: WebSocket;
  /** The connection's node_id (query, node_register, or a UUID given at connect). */
  nodeId: string;
  /** The registry id once registered (box-slot-cpu or nodeId); null before. */
  regId: string | null;
  /** The node id the token is bound to, null = any. */
  bound: string | null;
  peer: string;
  /** Address shown in the registry (ip_address of node_register, else the peer). */
  hostIp: string;
  /** Heartbeat cadence, ms, and when the last one came. */
  intervalMs: number;
  lastHeartbeat: number;
  /** The message-rate bound (link.max_messages_per_second). */
  bucket: MessageBucket;
  alive: boolean;
  /** A muster agent (sent muster.report): serves muster.command. */
  muster: boolean;
  registerTimer: NodeJS.Timeout | null;
}

/** What came of a seed `execute_command`. */
export type ExecuteOutcome =
  | { ok: true; result: CommandResultData; started: boolean }
  | { ok: false; reason: 'unreachable' | 'timeout' | 'refused'; message: string; started: boolean };

/** What came of a `muster.command`. */
export type CallOutcome =
  | { ok: true; reply: unknown }
  | { ok: false; reason: 'unreachable' | 'timeout' | 'refused'; message: string };

interface PendingExec {
  node: string;
  commandId: string;
  started: boolean;
  timer: NodeJS.Timeout;
  done: (o: ExecuteOutcome) => void;
  /** Observers of command_started (the task adapter's status). */
  onStarted?: () => void;
}

interface PendingCall {
  node: string;
  commandId: string;
  message: LinkMessage;
  timer: NodeJS.Timeout;
  done: (o: CallOutcome) => void;
}

/** The link's metrics (docs/operations.md "Prometheus metrics"). */
function linkMetrics(registry: Registry, hub: LinkHub) {
  const registers = [registry];
  return {
    connections: new Gauge({
      name: 'muster_manager_link_connections',
      help: 'Open WebSocket node link connections',
      registers,
      collect() {
        this.set(hub.connectionCount());
      },
    }),
    refused: new Counter({
      name: 'muster_manager_link_refused_total',
      help: 'Link connections refused, by reason: max_connections, invalid_token, bad_node_id, disabled',
      labelNames: ['reason'],
      registers,
    }),
    closed: new Counter({
      name: 'muster_manager_link_closed_total',
      help: 'Link connections closed by the manager, by reason: rate, too_large, no_pong, register_timeout, replaced, invalid_token',
      labelNames: ['reason'],
      registers,
    }),
    messages: new Counter({
      name: 'muster_manager_link_messages_total',
      help: 'Link messages received, by type (unknown types as "unknown")',
      labelNames: ['type'],
      registers,
    }),
    errors: new Counter({
      name: 'muster_manager_link_errors_total',
      help: 'error messages sent on the link, by error_code',
      labelNames: ['code'],
      registers,
    }),
    commands: new Counter({
      name: 'muster_manager_link_commands_total',
      help: 'Commands sent over the link, by kind (execute_command, muster) and outcome (ok, timeout, unreachable, refused)',
      labelNames: ['kind', 'outcome'],
      registers,
    }),
    commandSeconds: new Histogram({
      name: 'muster_manager_link_command_seconds',
      help: 'Time from execute_command sent to command_result received',
      buckets: [0.05, 0.25, 1, 5, 30, 120, 600],
      registers,
    }),
  };
}

/** The link's dependencies. */
export interface LinkHubDeps {
  cfg: LinkConfig;
  registry: NodeRegistry;
  ingest: Pick<Ingest, 'heartbeat' | 'resource'>;
  store: Pick<Store, 'linkTokens' | 'addHistory' | 'touchNode'>;
  /** Where a link-specification heartbeat's metrics go (the recent history, InfluxDB). */
  telemetry: Pick<Telemetry, 'linkMetrics'>;
  /** Threshold rules on a link-specification node's heartbeat metrics (absent: not evaluated). */
  alerts?: Pick<AlertEngine, 'evaluateLinked'>;
  log: Logger;
  metrics: Registry;
}

/** Serves the link and holds its connections and the commands in flight. */
export class LinkHub {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<Session>();
  /** The live session of each registered node. */
  private readonly byNode = new Map<string, Session>();
  private readonly execs = new Map<string, PendingExec>();
  private readonly calls = new Map<string, PendingCall>();
  /** Command ids whose result was recorded (a repeat is acknowledged, not recorded twice). */
  private readonly delivered = new Map<string, number>();
  private readonly m: ReturnType<typeof linkMetrics>;
  private readonly rl: RateLimitedLog;
  private pinger: NodeJS.Timeout | null = null;

  constructor(private readonly d: LinkHubDeps) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: d.cfg.max_message_bytes, perMessageDeflate: false });
    this.m = linkMetrics(d.metrics, this);
    this.rl = new RateLimitedLog(d.log);
  }

  /** Open connections. */
  connectionCount(): number {
    return this.sessions.size;
  }

  /** Whether node `id` is connected and registered; `muster` when it is a muster agent. */
  linkOf(id: string): 'seed' | 'muster' | null {
    const s = this.byNode.get(id);
    if (!s) return null;
    if (s.muster) return 'muster';
    // Just reconnected, before its first report: a node that has sent a full heartbeat body is a muster agent.
    const n = this.d.registry.nodes.get(id);
    return n && this.d.registry.boardOf(n)?.heartbeat ? 'muster' : 'seed';
  }

  /**
   * Serves the link's upgrades on `server` (the API listener) and starts the pings. Upgrades of
   * other paths are left to other handlers (answered 404 when there is none).
   */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer): undefined => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== LINK_PATH) {
        if (server.listenerCount('upgrade') === 1) refuse(socket, 404, 'Not Found');
        return;
      }
      if (!this.d.cfg.enabled) {
        this.m.refused.inc({ reason: 'disabled' });
        return refuse(socket, 404, 'Not Found');
      }
      if (this.sessions.size >= this.d.cfg.max_connections) {
        this.m.refused.inc({ reason: 'max_connections' });
        this.rl.warn('link-full', { max: this.d.cfg.max_connections }, 'link connection refused: link.max_connections');
        return refuse(socket, 503, 'Service Unavailable');
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, req, url));
    });
    this.pinger = setInterval(() => this.ping(), this.d.cfg.ping_interval_ms);
    this.pinger.unref();
  }

  /** Closes every connection and fails the commands in flight. */
  async close(): Promise<void> {
    if (this.pinger) clearInterval(this.pinger);
    for (const s of this.sessions) s.ws.terminate();
    for (const p of this.execs.values()) {
      clearTimeout(p.timer);
      p.done({ ok: false, reason: 'unreachable', message: 'the manager is stopping', started: p.started });
    }
    for (const p of this.calls.values()) {
      clearTimeout(p.timer);
      p.done({ ok: false, reason: 'unreachable', message: 'the manager is stopping' });
    }
    this.execs.clear();
    this.calls.clear();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private ping(): void {
    pingRound(this.sessions, () => this.m.closed.inc({ reason: 'no_pong' }));
  }

  private send(s: Session, msg: LinkMessage): boolean {
    if (s.ws.readyState !== s.ws.OPEN) return false;
    s.ws.send(JSON.stringify(msg));
    return true;
  }

  private error(s: Session, code: LinkErrorCode, message: string, details: string, id?: string): undefined {
    this.m.errors.inc({ code });
    this.send(s, linkMessage('error', { error_code: code, message, details }, id));
    return undefined;
  }

  private open(ws: WebSocket, req: IncomingMessage, url: URL): void {
    const peer = peerIPv4(req.socket.remoteAddress);
    const now = Date.now();
    const s: Session = {
      ws,
      nodeId: '',
      regId: null,
      bound: null,
      peer,
      hostIp: peer,
      intervalMs: this.d.cfg.heartbeat_interval_ms,
      lastHeartbeat: 0,
      bucket: new MessageBucket(this.d.cfg.max_messages_per_second),
      alive: true,
      muster: false,
      registerTimer: null,
    };
    this.sessions.add(s);
    ws.on('close', () => this.closed(s));
    watchPeer(
      s,
      () => this.m.closed.inc({ reason: 'too_large' }),
      (err) => this.rl.warn(`link-error:${peer}`, { peer, err: err.message }, 'link connection error'),
    );

    const token = url.searchParams.get('token') ?? '';
    const row = token ? this.d.store.linkTokens.byHash(hashLinkToken(token)) : undefined;
    if (!row) {
      this.m.refused.inc({ reason: 'invalid_token' });
      this.error(
        s,
        'INVALID_TOKEN',
        'invalid link token',
        token ? 'the token is not a link token of this manager' : 'no token given',
      );
      ws.close(1008, 'invalid token');
      return;
    }
    this.d.store.linkTokens.touch(row.id, now);
    s.bound = row.node;
    const asked = url.searchParams.get('node_id');
    if (asked !== null && !LINK_NODE_ID_RE.test(asked)) {
      this.m.refused.inc({ reason: 'bad_node_id' });
      this.error(s, 'PARSE_ERROR', 'bad node_id', `node_id must match ${LINK_NODE_ID_RE.source}`);
      ws.close(1008, 'bad node_id');
      return;
    }
    s.nodeId = asked ?? row.node ?? randomUUID();
    if (row.node !== null && asked !== null && asked !== row.node) {
      this.m.refused.inc({ reason: 'invalid_token' });
      this.error(s, 'INVALID_TOKEN', 'invalid link token', `this token is bound to another node`);
      ws.close(1008, 'token bound to another node');
      return;
    }
    s.registerTimer = setTimeout(() => {
      if (s.regId === null) {
        this.m.closed.inc({ reason: 'register_timeout' });
        this.error(
          s,
          'NODE_NOT_FOUND',
          'not registered',
          `no node_register within ${this.d.cfg.register_timeout_ms} ms (link.register_timeout_ms)`,
        );
        ws.close(1008, 'register timeout');
      }
    }, this.d.cfg.register_timeout_ms);
    s.registerTimer.unref();
    ws.on('message', (raw: Buffer, isBinary: boolean) => this.message(s, raw, isBinary));
    this.send(s, linkMessage('welcome', { message: 'welcome to the muster manager', node_id: s.nodeId }));
  }

  private closed(s: Session): void {
    this.sessions.delete(s);
    if (s.registerTimer) clearTimeout(s.registerTimer);
    if (s.regId !== null && this.byNode.get(s.regId) === s) this.byNode.delete(s.regId);
  }

  private message(s: Session, raw: Buffer, isBinary: boolean): undefined {
    if (!s.bucket.take()) {
      this.m.closed.inc({ reason: 'rate' });
      this.rl.warn(
        `link-rate:${s.peer}`,
        { peer: s.peer, node: s.nodeId },
        'link connection closed: over link.max_messages_per_second',
      );
      s.ws.close(1008, 'message rate over link.max_messages_per_second');
      return;
    }
    let doc: unknown;
    try {
      if (isBinary) throw new Error('binary frames are not messages');
      doc = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      this.m.messages.inc({ type: 'unparsable' });
      return this.error(s, 'PARSE_ERROR', 'the message cannot be parsed', `JSON: ${(err as Error).message}`);
    }
    const env = check.envelope.check(doc);
    if (!env.ok) {
      this.m.messages.inc({ type: 'unparsable' });
      return this.error(s, 'PARSE_ERROR', 'the message is not an envelope', `${env.error.field} ${env.error.message}`);
    }
    const msg = env.value;
    const known = (NODE_MESSAGE_TYPES as readonly string[]).includes(msg.type);
    this.m.messages.inc({ type: known ? msg.type : 'unknown' });
    switch (msg.type) {
      case 'node_register':
        return this.register(s, msg);
      case 'heartbeat':
        return this.heartbeat(s, msg);
      case 'command_started':
        return this.started(s, msg);
      case 'command_result':
        return this.result(s, msg);
      case 'muster.report':
        return this.report(s, msg);
      case 'muster.reply':
        return this.reply(s, msg);
      default:
        return this.error(
          s,
          'UNKNOWN_MESSAGE_TYPE',
          `unknown message type: ${msg.type.slice(0, 64)}`,
          `supported message types: ${NODE_MESSAGE_TYPES.join(', ')}`,
          msg.id,
        );
    }
  }

  private register(s: Session, msg: LinkMessage): undefined {
    const r = check.register.check(msg.data ?? {});
    if (!r.ok)
      return this.error(s, 'PARSE_ERROR', 'bad node_register data', `${r.error.field} ${r.error.message}`, msg.id);
    const d = r.value;
    const nodeId = d.node_id ?? s.nodeId;
    const pos =
      d.box_id !== undefined && d.slot_id !== undefined && d.cpu_id !== undefined
        ? { box_id: d.box_id, slot_id: d.slot_id, cpu_id: d.cpu_id }
        : undefined;
    const regId = pos ? nodeIdOf(pos) : nodeId;
    if (s.bound !== null && s.bound !== nodeId && s.bound !== regId) {
      this.m.closed.inc({ reason: 'invalid_token' });
      this.error(s, 'INVALID_TOKEN', 'invalid link token', 'this token is bound to another node', msg.id);
      s.ws.close(1008, 'token bound to another node');
      return;
    }
    if (d.heartbeat_interval_s !== undefined) s.intervalMs = Math.round(d.heartbeat_interval_s * 1000);
    if (d.ip_address && /^[0-9.]{7,15}$|^[0-9a-fA-F:]{2,45}$/.test(d.ip_address)) s.hostIp = d.ip_address;
    const got = this.d.registry.ingestLinked(
      regId,
      s.hostIp,
      { interval_ms: s.intervalMs, hostname: d.hostname, os_info: d.os_info },
      pos,
    );
    if (got === null) {
      return this.error(
        s,
        'DATABASE_ERROR',
        'the node cannot be recorded',
        `the registry holds registry.max_nodes (${this.d.registry.maxNodes}) nodes`,
        msg.id,
      );
    }
    // Its row (link state, last seen) is written at the next store flush: O(1) here.
    this.d.store.touchNode(regId);
    const old = this.byNode.get(regId);
    if (old && old !== s) {
      this.m.closed.inc({ reason: 'replaced' });
      old.ws.close(1000, 'replaced by a newer connection of the same node');
      old.regId = null;
    }
    const first = s.regId === null;
    s.nodeId = nodeId;
    s.regId = regId;
    s.lastHeartbeat = Date.now();
    this.byNode.set(regId, s);
    if (s.registerTimer) clearTimeout(s.registerTimer);
    this.send(
      s,
      linkMessage(
        'register_response',
        { success: true, message: 'node registered', node_id: nodeId, registry_id: regId },
        msg.id,
      ),
    );
    if (first) this.resend(s);
  }

  /** Cadence: the gap since the previous heartbeat, smoothed, within [1 s, 1 h]. */
  private cadence(s: Session): void {
    const now = Date.now();
    if (s.lastHeartbeat > 0) {
      const gap = Math.min(3_600_000, Math.max(1000, now - s.lastHeartbeat));
      s.intervalMs = Math.round(s.intervalMs * 0.5 + gap * 0.5);
    }
    s.lastHeartbeat = now;
  }

  private heartbeat(s: Session, msg: LinkMessage): undefined {
    const r = check.heartbeat.check(msg.data ?? {});
    if (!r.ok) return this.error(s, 'PARSE_ERROR', 'bad heartbeat data', `${r.error.field} ${r.error.message}`, msg.id);
    const named = r.value.node_id;
    if (s.regId === null || (named !== undefined && named !== s.nodeId && named !== s.regId)) {
      return this.error(
        s,
        'NODE_NOT_FOUND',
        'node not found',
        s.regId === null ? 'send node_register first' : `this connection is node ${s.nodeId}, not ${named}`,
        msg.id,
      );
    }
    this.cadence(s);
    const got = this.d.registry.ingestLinked(s.regId, s.hostIp, {
      interval_ms: s.intervalMs,
      ...(r.value.metrics ? { metrics: r.value.metrics } : {}),
    });
    if (got === null) return this.error(s, 'DATABASE_ERROR', 'the node cannot be recorded', 'registry full', msg.id);
    this.d.store.touchNode(s.regId);
    const metrics = r.value.metrics;
    if (metrics) {
      const n = this.d.registry.nodes.get(s.regId);
      if (n) {
        this.d.telemetry.linkMetrics(
          {
            node: n.id,
            box: n.box_id,
            slot: n.slot_id,
            cpu: n.cpu_id,
            hostname: n.link?.hostname ?? '',
            host_ip: n.primary,
          },
          metrics,
          Date.now(),
        );
        // Threshold rules on the link's figures, for a node that sends no full resource report.
        if (!s.muster) this.d.alerts?.evaluateLinked(n.id, metrics, Date.now());
      }
    }
    this.send(s, linkMessage('heartbeat_ack', { received: true, node_id: s.nodeId }, msg.id));
  }

  private report(s: Session, msg: LinkMessage): undefined {
    const r = check.report.check(msg.data ?? {});
    if (!r.ok)
      return this.error(s, 'PARSE_ERROR', 'bad muster.report data', `${r.error.field} ${r.error.message}`, msg.id);
    if (s.regId === null) return this.error(s, 'NODE_NOT_FOUND', 'node not found', 'send node_register first', msg.id);
    s.muster = true;
    if (r.value.url === '/heartbeat') {
      const b = check.heartbeatBody.check(r.value.body);
      if (!b.ok)
        return this.error(s, 'PARSE_ERROR', 'bad heartbeat body', `${b.error.field} ${b.error.message}`, msg.id);
      const h = b.value.data;
      if (nodeIdOf(h) !== s.regId) {
        return this.error(
          s,
          'NODE_NOT_FOUND',
          'node not found',
          `this connection is node ${s.regId}, not ${nodeIdOf(h)}`,
          msg.id,
        );
      }
      this.cadence(s);
      // The board's own address is kept (its resource reports name it).
      s.hostIp = h.host_ip;
      const refused = this.d.ingest.heartbeat(h);
      if (refused) return this.error(s, 'DATABASE_ERROR', 'the heartbeat cannot be recorded', refused.message, msg.id);
      this.d.registry.ingestLinked(s.regId, h.host_ip, { interval_ms: s.intervalMs, hostname: h.hostname });
      this.send(s, linkMessage('heartbeat_ack', { received: true, node_id: s.nodeId }, msg.id));
      return;
    }
    const b = check.resourceBody.check(r.value.body);
    if (!b.ok) return this.error(s, 'PARSE_ERROR', 'bad resource body', `${b.error.field} ${b.error.message}`, msg.id);
    if (b.value.data.host_ip !== s.hostIp) {
      return this.error(
        s,
        'NODE_NOT_FOUND',
        'node not found',
        `host_ip ${b.value.data.host_ip} is not this node's (${s.hostIp})`,
        msg.id,
      );
    }
    this.d.ingest.resource(b.value.data);
  }

  private started(s: Session, msg: LinkMessage): undefined {
    const r = check.started.check(msg.data ?? {});
    if (!r.ok)
      return this.error(s, 'PARSE_ERROR', 'bad command_started data', `${r.error.field} ${r.error.message}`, msg.id);
    if (s.regId === null) return this.error(s, 'NODE_NOT_FOUND', 'node not found', 'send node_register first', msg.id);
    const p = this.execs.get(`${s.regId}|${r.value.command_id}`);
    if (p && !p.started) {
      p.started = true;
      p.onStarted?.();
    }
  }

  private result(s: Session, msg: LinkMessage): undefined {
    const r = check.result.check(msg.data ?? {});
    if (!r.ok)
      return this.error(s, 'PARSE_ERROR', 'bad command_result data', `${r.error.field} ${r.error.message}`, msg.id);
    if (s.regId === null) return this.error(s, 'NODE_NOT_FOUND', 'node not found', 'send node_register first', msg.id);
    const key = `${s.regId}|${r.value.command_id}`;
    const p = this.execs.get(key);
    if (p) {
      this.execs.delete(key);
      clearTimeout(p.timer);
      this.remember(key);
      const max = this.d.cfg.max_output_bytes;
      p.done({
        ok: true,
        started: true,
        result: { ...r.value, stdout: tailOf(r.value.stdout, max), stderr: tailOf(r.value.stderr, max) },
      });
    } else if (!this.delivered.has(key)) {
      this.rl.warn(
        `link-stray:${s.regId}`,
        { node: s.regId, command_id: r.value.command_id },
        'a command result nobody waits for (acknowledged, not recorded)',
      );
    }
    // Acknowledged in every case, so that the node stops resending it.
    this.send(s, linkMessage('command_received', { received: true, node_id: s.nodeId }, msg.id));
  }

  private reply(s: Session, msg: LinkMessage): undefined {
    const r = check.reply.check(msg.data ?? {});
    if (!r.ok)
      return this.error(s, 'PARSE_ERROR', 'bad muster.reply data', `${r.error.field} ${r.error.message}`, msg.id);
    if (s.regId === null) return this.error(s, 'NODE_NOT_FOUND', 'node not found', 'send node_register first', msg.id);
    const key = `${s.regId}|${r.value.command_id}`;
    const p = this.calls.get(key);
    if (p) {
      this.calls.delete(key);
      clearTimeout(p.timer);
      this.remember(key);
      p.done({ ok: true, reply: r.value.reply });
    }
    this.send(s, linkMessage('command_received', { received: true, node_id: s.nodeId }, msg.id));
  }

  /** Keeps the last 10,000 delivered command keys (a repeat is then known as one). */
  private remember(key: string): void {
    this.delivered.set(key, Date.now());
    if (this.delivered.size > 10_000) {
      const first = this.delivered.keys().next().value;
      if (first !== undefined) this.delivered.delete(first);
    }
  }

  /** After a node (re)registers: its muster commands still unanswered are sent again. */
  private resend(s: Session): void {
    for (const p of this.calls.values()) if (p.node === s.regId) this.send(s, p.message);
  }

  private pendingOf(node: string): number {
    let n = 0;
    for (const p of this.execs.values()) if (p.node === node) n++;
    for (const p of this.calls.values()) if (p.node === node) n++;
    return n;
  }

  /**
   * Sends `execute_command` to node `node` and waits for its `command_result` (on this or a later
   * connection of the node) until `timeout_s` plus link.command_grace_ms, then sends the node an
   * `error` COMMAND_TIMEOUT naming the command and gives up.
   * @param onStarted called once when the node sends command_started
   */
  execute(
    node: string,
    commandId: string,
    text: string,
    timeoutS: number,
    onStarted?: () => void,
  ): Promise<ExecuteOutcome> {
    const s = this.byNode.get(node);
    const key = `${node}|${commandId}`;
    if (!s) {
      this.m.commands.inc({ kind: 'execute_command', outcome: 'unreachable' });
      return Promise.resolve({
        ok: false,
        reason: 'unreachable',
        message: `node ${node} is not connected to the link`,
        started: false,
      });
    }
    if (this.execs.has(key) || this.pendingOf(node) >= this.d.cfg.max_pending_commands) {
      this.m.commands.inc({ kind: 'execute_command', outcome: 'refused' });
      return Promise.resolve({
        ok: false,
        reason: 'refused',
        message: this.execs.has(key)
          ? `command ${commandId} is already in flight on ${node}`
          : `node ${node} has link.max_pending_commands (${this.d.cfg.max_pending_commands}) commands in flight`,
        started: false,
      });
    }
    const t0 = performance.now();
    return new Promise<ExecuteOutcome>((resolve) => {
      const limit = timeoutS * 1000 + this.d.cfg.command_grace_ms;
      const p: PendingExec = {
        node,
        commandId,
        started: false,
        onStarted,
        done: (o) => {
          this.m.commands.inc({ kind: 'execute_command', outcome: o.ok ? 'ok' : o.reason });
          if (o.ok) this.m.commandSeconds.observe((performance.now() - t0) / 1000);
          resolve(o);
        },
        timer: setTimeout(() => {
          this.execs.delete(key);
          const live = this.byNode.get(node);
          if (live) {
            this.error(
              live,
              'COMMAND_TIMEOUT',
              'command timed out',
              `command ${commandId} sent no command_result within ${limit} ms`,
            );
          }
          p.done({
            ok: false,
            reason: 'timeout',
            message: `node ${node} sent no result for ${commandId} within ${timeoutS} s (+ link.command_grace_ms)`,
            started: p.started,
          });
        }, limit),
      };
      this.execs.set(key, p);
      this.send(s, linkMessage('execute_command', { command_id: commandId, command_text: text, timeout: timeoutS }));
    });
  }

  /**
   * Sends a muster agent command (`muster.command`: deploy, exec, exec_status, ...) to node
   * `node` and waits up to `timeoutMs` for its `muster.reply`. Unanswered when the connection
   * drops, it is sent again when the node reconnects (the agent runs one command_id once).
   */
  call(node: string, command: string, body: unknown, timeoutMs: number): Promise<CallOutcome> {
    const s = this.byNode.get(node);
    if (!s) {
      this.m.commands.inc({ kind: 'muster', outcome: 'unreachable' });
      return Promise.resolve({
        ok: false,
        reason: 'unreachable',
        message: `node ${node} is not connected to the link`,
      });
    }
    if (this.pendingOf(node) >= this.d.cfg.max_pending_commands) {
      this.m.commands.inc({ kind: 'muster', outcome: 'refused' });
      return Promise.resolve({
        ok: false,
        reason: 'refused',
        message: `node ${node} has link.max_pending_commands (${this.d.cfg.max_pending_commands}) commands in flight`,
      });
    }
    const commandId = randomUUID();
    const key = `${node}|${commandId}`;
    const message = linkMessage('muster.command', { command_id: commandId, command, body, timeout_ms: timeoutMs });
    return new Promise<CallOutcome>((resolve) => {
      const p: PendingCall = {
        node,
        commandId,
        message,
        done: (o) => {
          this.m.commands.inc({ kind: 'muster', outcome: o.ok ? 'ok' : o.reason });
          resolve(o);
        },
        timer: setTimeout(() => {
          this.calls.delete(key);
          p.done({
            ok: false,
            reason: 'timeout',
            message: `node ${node} did not answer ${command} over the link within ${timeoutMs} ms`,
          });
        }, timeoutMs),
      };
      this.calls.set(key, p);
      this.send(s, message);
    });
  }
}

/** The last `max` bytes of `s` (UTF-8), whole characters. */
function tailOf(s: string, max: number): string {
  const b = Buffer.from(s, 'utf8');
  if (b.length <= max) return s;
  return b
    .subarray(b.length - max)
    .toString('utf8')
    .replace(/^\uFFFD+/, '');
}

/** Answers an upgrade request with a plain HTTP status and closes the socket. */
function refuse(socket: Duplex, status: number, text: string): undefined {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  return undefined;
}
