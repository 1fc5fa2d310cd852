/**
 * The manager's end of the SSH relay (docs/links.md "The SSH relay"): relays connect to
 * `ws(s)://<manager>/proxy?proxyId=<id>&apiKey=<key>` on the API listener; the manager sends
 * `execute_command`, a relay answers `command_result`, the manager acknowledges with
 * `command_result_received` (common/relay.ts is the wire format).
 *
 * - **Who may connect.** `proxyId` must be a relay an admin added (`muster relays add`), `apiKey`
 *   at least 32 characters and, hashed, equal to the stored sha256 (compared in constant time),
 *   and the socket's remote address inside the relay's allowlist (CIDRs; none = any). Refusals are
 *   answered at the upgrade with 401 (key) or 403 (address), counted by reason in
 *   `muster_manager_relay_refused_total`, and logged without the key.
 * - **Results once.** A command is pending per relay, not per connection: a result arriving on a
 *   later connection of the same relay process completes it; a result whose command id was
 *   already recorded is acknowledged and not recorded again. A relay that comes back with another
 *   `instanceId` (a restarted process) cannot deliver what the old one was running: those
 *   commands fail at once ("the relay restarted"), never silently. Without a result by the
 *   command's timeout plus relay.command_grace_ms, a command fails as a timeout.
 * - **Bounds** (docs/configuration.md "relay"): relay.max_connections, relay.max_message_bytes
 *   (close 1009), relay.max_messages_per_second (close 1008), relay.max_pending_commands per relay,
 *   relay.max_output_bytes per stream; counted in `muster_manager_relay_closed_total{reason}` or
 *   `muster_manager_relay_commands_total{outcome="refused"}`.
 *
 * Credentials travel only inside `execute_command`; nothing here logs a message's data.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { Counter, Gauge, type Registry } from 'prom-client';
import { type WebSocket, WebSocketServer } from 'ws';
import { LINK_PATH, LinkEnvelope, type LinkMessage, linkMessage } from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import {
  RELAY_EVENTS,
  RELAY_MIN_KEY_LENGTH,
  RELAY_NAME_RE,
  RELAY_PATH,
  type RelayExecuteData,
  RelayResultData,
} from '../../common/relay.js';
import { compile } from '../../common/validate.js';
import type { ManagerConfig } from '../config.js';
import type { Store } from '../store/store.js';
import { MessageBucket, pingRound, watchPeer } from '../ws-peers.js';

/** The relay's config section (docs/configuration.md "relay"). */
export type RelayConfig = ManagerConfig['relay'];

const check = {
  envelope: compile<LinkMessage>(LinkEnvelope),
  result: compile<RelayResultData>(RelayResultData),
};

/** sha256 of an apiKey, hex (what the store keeps). */
export const hashRelayKey = (key: string): string => createHash('sha256').update(key, 'utf8').digest('hex');

/** Whether `key` hashes to `stored` (hex sha256), compared in constant time. */
export function relayKeyMatches(key: string, stored: string): boolean {
  const a = createHash('sha256').update(key, 'utf8').digest();
  const b = Buffer.from(stored, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** An IPv4-mapped IPv6 address as IPv4; others unchanged. */
const plainIp = (ip: string): string => (ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip);

/**
 * Whether address `ip` is inside `allow` (addresses or CIDRs, IPv4 or IPv6); an empty list allows
 * every address. An entry that does not parse allows nothing.
 */
export function addressAllowed(allow: readonly string[], ip: string): boolean {
  if (allow.length === 0) return true;
  const addr = plainIp(ip);
  const family = isIP(addr);
  if (family === 0) return false;
  const list = new BlockList();
  for (const entry of allow) {
    const [net, bits] = entry.split('/');
    const f = isIP(net ?? '');
    if (f === 0) continue;
    const type = f === 4 ? 'ipv4' : 'ipv6';
    const max = f === 4 ? 32 : 128;
    const prefix = bits === undefined ? max : Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) continue;
    list.addSubnet(net as string, prefix, type);
  }
  return list.check(addr, family === 4 ? 'ipv4' : 'ipv6');
}

/** What came of a command sent to a relay. */
export type RelayOutcome =
  | { ok: true; result: RelayResultData }
  | { ok: false; reason: 'unreachable' | 'timeout' | 'refused' | 'lost'; message: string };

interface Session {
  relay: string;
  ws: WebSocket;
  peer: string;
  instance: string;
  alive: boolean;
  /** The message-rate bound (relay.max_messages_per_second). */
  bucket: MessageBucket;
}

interface Pending {
  relay: string;
  commandId: string;
  /** The relay process it was sent to (instanceId), '' when it gave none. */
  instance: string;
  timer: NodeJS.Timeout;
  done: (o: RelayOutcome) => void;
}

function relayMetrics(registry: Registry, hub: RelayHub) {
  const registers = [registry];
  return {
    connections: new Gauge({
      name: 'muster_manager_relay_connections',
      help: 'Relays connected now',
      registers,
      collect() {
        this.set(hub.connectionCount());
      },
    }),
    refused: new Counter({
      name: 'muster_manager_relay_refused_total',
      help: 'Relay connections refused, by reason: disabled, max_connections, short_key, bad_key, address',
      labelNames: ['reason'],
      registers,
    }),
    closed: new Counter({
      name: 'muster_manager_relay_closed_total',
      help: 'Relay connections closed by the manager, by reason: too_large, rate, no_pong, replaced',
      labelNames: ['reason'],
      registers,
    }),
    messages: new Counter({
      name: 'muster_manager_relay_messages_total',
      help: 'Relay messages received, by type (command_result, invalid, unknown)',
      labelNames: ['type'],
      registers,
    }),
    commands: new Counter({
      name: 'muster_manager_relay_commands_total',
      help: 'Commands sent to relays, by outcome: ok, failed (exitCode not 0), timeout, unreachable, refused (relay.max_pending_commands), lost (the relay restarted)',
      labelNames: ['outcome'],
      registers,
    }),
    duplicates: new Counter({
      name: 'muster_manager_relay_duplicate_results_total',
      help: 'command_result messages for a command already recorded (acknowledged, not recorded again)',
      registers,
    }),
  };
}

/** The relay hub's dependencies. */
export interface RelayHubDeps {
  cfg: RelayConfig;
  store: Pick<Store, 'relays'>;
  log: Logger;
  metrics: Registry;
}

/** Serves /proxy and holds the relays' connections and the commands in flight. */
export class RelayHub {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, Session>();
  private readonly pending = new Map<string, Pending>();
  /** Command ids whose result was recorded, oldest first (bounded). */
  private readonly delivered = new Set<string>();
  private readonly m: ReturnType<typeof relayMetrics>;
  private readonly rl: RateLimitedLog;
  private pinger: NodeJS.Timeout | null = null;

  constructor(private readonly d: RelayHubDeps) {
    this.wss = new WebSocketServer({ noServer: true, maxPayload: d.cfg.max_message_bytes, perMessageDeflate: false });
    this.m = relayMetrics(d.metrics, this);
    this.rl = new RateLimitedLog(d.log);
  }

  /** Relays connected now. */
  connectionCount(): number {
    return this.sessions.size;
  }

  /** Whether relay `id` is connected now. */
  connected(id: string): boolean {
    return this.sessions.has(id);
  }

  /** The address relay `id` is connected from, or null. */
  peerOf(id: string): string | null {
    return this.sessions.get(id)?.peer ?? null;
  }

  /** Serves /proxy upgrades on `server` (the API listener); other paths are left to the other handlers. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer): undefined => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== RELAY_PATH) {
        // The node link's handler answers its own path; any other path gets a 404 here.
        if (url.pathname !== LINK_PATH) {
          socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        }
        return;
      }
      if (!this.d.cfg.enabled) return this.refuse(socket, 404, 'disabled');
      if (this.sessions.size >= this.d.cfg.max_connections) return this.refuse(socket, 503, 'max_connections');
      const peer = plainIp(req.socket.remoteAddress ?? '');
      const id = url.searchParams.get('proxyId') ?? '';
      const key = url.searchParams.get('apiKey') ?? '';
      if (key.length < RELAY_MIN_KEY_LENGTH || key.length > 512) {
        this.rl.warn(
          `relay-refused:${peer}`,
          { peer, relay: id.slice(0, 64) },
          'relay refused: apiKey shorter than 32 characters',
        );
        return this.refuse(socket, 401, 'short_key');
      }
      const row = RELAY_NAME_RE.test(id) ? this.d.store.relays.relay(id) : undefined;
      // A relay that does not exist costs the same compare as a wrong key.
      const ok = relayKeyMatches(key, row?.hash ?? '0'.repeat(64)) && row !== undefined;
      if (!ok || !row) {
        this.rl.warn(
          `relay-refused:${peer}`,
          { peer, relay: id.slice(0, 64) },
          'relay refused: unknown proxyId or wrong apiKey',
        );
        return this.refuse(socket, 401, 'bad_key');
      }
      if (!addressAllowed(row.allow, peer)) {
        this.rl.warn(
          `relay-refused:${peer}`,
          { peer, relay: id },
          "relay refused: address outside the relay's allowlist",
        );
        return this.refuse(socket, 403, 'address');
      }
      const instance = (url.searchParams.get('instanceId') ?? '').slice(0, 64);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.open(ws, row.id, peer, instance));
    });
    this.pinger = setInterval(() => this.ping(), this.d.cfg.ping_interval_ms);
    this.pinger.unref();
  }

  private refuse(socket: Duplex, status: number, reason: string): undefined {
    this.m.refused.inc({ reason });
    const text = { 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 503: 'Service Unavailable' }[status];
    socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    return undefined;
  }

  /** Closes every connection and fails the commands in flight. */
  async close(): Promise<void> {
    if (this.pinger) clearInterval(this.pinger);
    for (const s of this.sessions.values()) s.ws.terminate();
    for (const p of [...this.pending.values()])
      this.finish(p, { ok: false, reason: 'unreachable', message: 'the manager is stopping' });
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  /** Closes relay `id`'s connection (it was removed). */
  disconnect(id: string): void {
    this.sessions.get(id)?.ws.close(1008, 'relay removed');
  }

  private ping(): void {
    pingRound(this.sessions.values(), () => this.m.closed.inc({ reason: 'no_pong' }));
  }

  private open(ws: WebSocket, relay: string, peer: string, instance: string): void {
    const old = this.sessions.get(relay);
    if (old) {
      this.m.closed.inc({ reason: 'replaced' });
      old.ws.close(1000, 'replaced by a newer connection of the same relay');
    }
    const s: Session = {
      relay,
      ws,
      peer,
      instance,
      alive: true,
      bucket: new MessageBucket(this.d.cfg.max_messages_per_second),
    };
    this.sessions.set(relay, s);
    this.d.store.relays.touchRelay(relay, Date.now());
    this.d.log.info({ relay, peer }, 'relay connected');
    // Commands the relay's previous process was running cannot be answered by this one.
    if (instance !== '') {
      for (const p of [...this.pending.values()]) {
        if (p.relay === relay && p.instance !== '' && p.instance !== instance) {
          this.finish(p, {
            ok: false,
            reason: 'lost',
            message: `relay ${relay} restarted while command ${p.commandId} ran; its result is lost (the command may have run)`,
          });
        }
      }
    }
    ws.on('close', () => {
      if (this.sessions.get(relay) === s) {
        this.sessions.delete(relay);
        this.d.log.info({ relay }, 'relay disconnected');
      }
    });
    watchPeer(
      s,
      () => this.m.closed.inc({ reason: 'too_large' }),
      (err) => this.rl.warn(`relay-error:${relay}`, { relay, err: err.message }, 'relay connection error'),
    );
    ws.on('message', (raw: Buffer, isBinary: boolean) => this.message(s, raw, isBinary));
  }

  private message(s: Session, raw: Buffer, isBinary: boolean): void {
    if (!s.bucket.take()) {
      this.m.closed.inc({ reason: 'rate' });
      s.ws.close(1008, 'message rate over relay.max_messages_per_second');
      return;
    }
    let doc: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      doc = JSON.parse(raw.toString('utf8'));
    } catch {
      this.m.messages.inc({ type: 'invalid' });
      this.rl.warn(`relay-bad:${s.relay}`, { relay: s.relay }, 'relay sent a message that is not JSON');
      return;
    }
    const env = check.envelope.check(doc);
    if (!env.ok || env.value.type !== RELAY_EVENTS.result) {
      this.m.messages.inc({ type: env.ok ? 'unknown' : 'invalid' });
      this.rl.warn(
        `relay-bad:${s.relay}`,
        { relay: s.relay, type: env.ok ? env.value.type.slice(0, 64) : null },
        'relay sent a message that is not a command_result',
      );
      return;
    }
    const r = check.result.check(env.value.data);
    if (!r.ok) {
      this.m.messages.inc({ type: 'invalid' });
      this.rl.warn(
        `relay-bad:${s.relay}`,
        { relay: s.relay, field: r.error.field, err: r.error.message },
        'relay sent a command_result that does not match the specification',
      );
      return;
    }
    this.m.messages.inc({ type: 'command_result' });
    const key = `${s.relay}|${r.value.commandId}`;
    const p = this.pending.get(key);
    if (p) {
      const max = this.d.cfg.max_output_bytes;
      const res = r.value.result;
      this.remember(key);
      this.finish(p, {
        ok: true,
        result: { ...r.value, result: { ...res, stdout: tailOf(res.stdout, max), stderr: tailOf(res.stderr, max) } },
      });
    } else if (this.delivered.has(key)) {
      this.m.duplicates.inc();
    } else {
      this.rl.warn(
        `relay-stray:${s.relay}`,
        { relay: s.relay, command_id: r.value.commandId.slice(0, 128) },
        'a command result nobody waits for (acknowledged, not recorded)',
      );
    }
    // Acknowledged in every case, so that the relay stops resending it.
    this.send(s, linkMessage(RELAY_EVENTS.received, { success: true }, env.value.id));
  }

  private remember(key: string): void {
    this.delivered.add(key);
    if (this.delivered.size > 10_000) {
      const first = this.delivered.values().next().value;
      if (first !== undefined) this.delivered.delete(first);
    }
  }

  private send(s: Session, msg: LinkMessage): boolean {
    if (s.ws.readyState !== s.ws.OPEN) return false;
    s.ws.send(JSON.stringify(msg));
    return true;
  }

  private finish(p: Pending, o: RelayOutcome): void {
    const key = `${p.relay}|${p.commandId}`;
    if (this.pending.get(key) !== p) return;
    this.pending.delete(key);
    clearTimeout(p.timer);
    this.m.commands.inc({ outcome: o.ok ? (o.result.result.exitCode === 0 ? 'ok' : 'failed') : o.reason });
    p.done(o);
  }

  /** Commands in flight on relay `relay`. */
  pendingOf(relay: string): number {
    let n = 0;
    for (const p of this.pending.values()) if (p.relay === relay) n++;
    return n;
  }

  /**
   * Sends `execute_command` to relay `relay` and waits for its `command_result` (on this or a
   * later connection of the same relay process) until the command's `timeout` plus
   * relay.command_grace_ms.
   */
  execute(relay: string, data: RelayExecuteData): Promise<RelayOutcome> {
    const s = this.sessions.get(relay);
    if (!s) {
      this.m.commands.inc({ outcome: 'unreachable' });
      return Promise.resolve({ ok: false, reason: 'unreachable', message: `relay ${relay} is not connected` });
    }
    const key = `${relay}|${data.commandId}`;
    if (this.pending.has(key) || this.pendingOf(relay) >= this.d.cfg.max_pending_commands) {
      this.m.commands.inc({ outcome: 'refused' });
      return Promise.resolve({
        ok: false,
        reason: 'refused',
        message: this.pending.has(key)
          ? `command ${data.commandId} is already in flight on relay ${relay}`
          : `relay ${relay} has relay.max_pending_commands (${this.d.cfg.max_pending_commands}) commands in flight`,
      });
    }
    const limit = (data.timeout ?? this.d.cfg.default_timeout_ms) + this.d.cfg.command_grace_ms;
    return new Promise<RelayOutcome>((resolve) => {
      const p: Pending = {
        relay,
        commandId: data.commandId,
        instance: s.instance,
        done: resolve,
        timer: setTimeout(
          () =>
            this.finish(p, {
              ok: false,
              reason: 'timeout',
              message: `relay ${relay} sent no result for ${data.commandId} within ${limit} ms (timeout + relay.command_grace_ms)`,
            }),
          limit,
        ),
      };
      this.pending.set(key, p);
      this.send(s, linkMessage(RELAY_EVENTS.execute, data));
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
