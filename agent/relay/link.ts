/**
 * The relay's connection to the manager (docs/links.md "The SSH relay"): connects out to
 * `<manager_url>?proxyId=<id>&apiKey=<key>&instanceId=<uuid>`, takes `execute_command`, runs it
 * through the SSH pool and answers `command_result` in the link's envelope (common/relay.ts).
 *
 * - **Reconnects** every `reconnect_interval_ms` (5 s, the relay specification), without limit.
 * - **Results kept until acknowledged.** A result is kept until the manager's
 *   `command_result_received` names its message id, and sent again (the same message) after a
 *   reconnect; at most `max_held_results` (the oldest dropped, counted). A command id seen before
 *   is never run twice: a repeat gets the kept result, or nothing while the first run is under way.
 * - **Bad input** (not JSON, not an envelope, data not matching `execute_command`) is counted and
 *   logged without its content; a bad `execute_command` whose commandId can be read is answered
 *   in the error shape.
 *
 * The apiKey is sent only in the connection URL, which is never logged.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { LinkEnvelope, type LinkMessage, linkMessage } from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { redactUrl } from '../../common/redact.js';
import { RELAY_EVENTS, RelayExecuteData, type RelayResultData, relayFailure } from '../../common/relay.js';
import { compile } from '../../common/validate.js';
import { Counter, Gauge, type Registry } from '../prom.js';
import type { RelayConfig } from './config.js';
import type { SshPool } from './pool.js';

const check = {
  envelope: compile<LinkMessage>(LinkEnvelope),
  execute: compile<RelayExecuteData>(RelayExecuteData),
};

/** Most command ids remembered as run. */
const SEEN_KEPT = 10_000;

/** The relay's link to the manager. */
export class RelayLink {
  private ws: WebSocket | null = null;
  private stopped = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private pinger: NodeJS.Timeout | null = null;
  private lastHeard = 0;
  private isOpen = false;
  /** This process's id (the manager tells a restarted relay apart by it). */
  readonly instanceId = randomUUID();
  /** Results not yet acknowledged, by message id (insertion order = age). */
  private readonly held = new Map<string, LinkMessage<RelayResultData>>();
  /** Command ids run or running: the result message once there is one, else null. */
  private readonly seen = new Map<string, LinkMessage<RelayResultData> | null>();
  private readonly rl: RateLimitedLog;
  private readonly m: { connected: Gauge; reconnects: Counter; held: Gauge; dropped: Counter; messages: Counter };

  constructor(
    private readonly cfg: RelayConfig,
    private readonly apiKey: string,
    private readonly pool: Pick<SshPool, 'run'>,
    metrics: Registry,
    private readonly log: Logger,
  ) {
    this.rl = new RateLimitedLog(log);
    const registers = [metrics];
    this.m = {
      connected: new Gauge({
        name: 'muster_relay_connected',
        help: '1 while the relay is connected to the manager',
        registers,
        collect: (): void => this.m.connected.set(this.isOpen ? 1 : 0),
      }),
      reconnects: new Counter({
        name: 'muster_relay_reconnects_total',
        help: 'Connection attempts to the manager after the first',
        registers,
      }),
      held: new Gauge({
        name: 'muster_relay_held_results',
        help: 'Results kept until the manager acknowledges them (max_held_results)',
        registers,
        collect: (): void => this.m.held.set(this.held.size),
      }),
      dropped: new Counter({
        name: 'muster_relay_results_dropped_total',
        help: 'Unacknowledged results dropped past max_held_results',
        registers,
      }),
      messages: new Counter({
        name: 'muster_relay_messages_total',
        help: 'Messages from the manager, by kind: execute_command, command_result_received, repeat (a command id seen before), invalid, unknown',
        labelNames: ['kind'],
        registers,
      }),
    };
  }

  /** Whether the connection to the manager is open now. */
  get connected(): boolean {
    return this.isOpen;
  }

  /** Starts connecting (returns at once). */
  start(): void {
    this.connect();
    this.pinger = setInterval(() => this.ping(), this.cfg.ping_interval_ms);
    this.pinger.unref();
  }

  /** Closes the connection; no reconnect. */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pinger) clearInterval(this.pinger);
    this.ws?.terminate();
  }

  private url(): URL {
    const url = new URL(this.cfg.manager_url);
    url.searchParams.set('proxyId', this.cfg.id);
    url.searchParams.set('apiKey', this.apiKey);
    url.searchParams.set('instanceId', this.instanceId);
    return url;
  }

  private connect(): void {
    if (this.stopped) return;
    const ca = this.cfg.tls_ca_file ? { ca: readFileSync(this.cfg.tls_ca_file) } : {};
    const ws = new WebSocket(this.url(), {
      handshakeTimeout: 10_000,
      maxPayload: this.cfg.max_message_bytes,
      perMessageDeflate: false,
      ...ca,
    });
    this.ws = ws;
    ws.on('open', () => {
      this.isOpen = true;
      this.lastHeard = Date.now();
      this.log.info({ manager: redactUrl(this.cfg.manager_url), relay: this.cfg.id }, 'relay connected to the manager');
      // Results the manager has not acknowledged yet, oldest first.
      for (const msg of this.held.values()) this.send(msg);
    });
    ws.on('unexpected-response', (_req, res) => {
      this.rl.warn(
        'relay-refused',
        { status: res.statusCode, manager: redactUrl(this.cfg.manager_url) },
        res.statusCode === 401
          ? 'the manager refused the relay: unknown proxyId or wrong apiKey'
          : res.statusCode === 403
            ? "the manager refused the relay: this address is outside the relay's allowlist"
            : 'the manager refused the relay',
      );
      ws.terminate();
    });
    ws.on('message', (raw: Buffer, isBinary: boolean) => {
      this.lastHeard = Date.now();
      this.message(raw, isBinary);
    });
    ws.on('pong', () => {
      this.lastHeard = Date.now();
    });
    ws.on('ping', () => {
      this.lastHeard = Date.now();
    });
    ws.on('error', (err) => {
      this.rl.warn('relay-ws-error', { err: err.message }, 'relay connection error');
    });
    ws.on('close', () => {
      if (this.ws !== ws) return;
      if (this.isOpen) this.log.warn({}, 'relay disconnected from the manager; reconnecting');
      this.isOpen = false;
      this.ws = null;
      if (this.stopped) return;
      this.reconnectTimer = setTimeout(() => {
        this.m.reconnects.inc();
        this.connect();
      }, this.cfg.reconnect_interval_ms);
    });
  }

  private ping(): void {
    const ws = this.ws;
    if (!ws || !this.isOpen) return;
    if (Date.now() - this.lastHeard > this.cfg.ping_interval_ms * 2) {
      this.log.warn({}, 'no answer from the manager for two ping intervals; reconnecting');
      ws.terminate();
      return;
    }
    ws.ping();
  }

  private send(msg: LinkMessage): void {
    if (this.ws && this.isOpen && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private message(raw: Buffer, isBinary: boolean): void {
    let doc: unknown;
    try {
      if (isBinary) throw new Error('binary frame');
      doc = JSON.parse(raw.toString('utf8'));
    } catch {
      this.m.messages.inc({ kind: 'invalid' });
      this.rl.warn('relay-bad', {}, 'a message from the manager that is not JSON');
      return;
    }
    const env = check.envelope.check(doc);
    if (!env.ok) {
      this.m.messages.inc({ kind: 'invalid' });
      this.rl.warn('relay-bad', { field: env.error.field }, 'a message from the manager that is not an envelope');
      return;
    }
    const msg = env.value;
    if (msg.type === RELAY_EVENTS.received) {
      this.m.messages.inc({ kind: RELAY_EVENTS.received });
      this.held.delete(msg.id);
      return;
    }
    if (msg.type !== RELAY_EVENTS.execute) {
      this.m.messages.inc({ kind: 'unknown' });
      this.rl.warn('relay-unknown', { type: msg.type.slice(0, 64) }, 'a message type the relay does not know');
      return;
    }
    const r = check.execute.check(msg.data);
    if (!r.ok) {
      this.m.messages.inc({ kind: 'invalid' });
      // Only the field's name, never its value (it may be the password).
      this.rl.warn(
        'relay-bad-exec',
        { field: r.error.field },
        'an execute_command that does not match the specification',
      );
      const id = (msg.data as { commandId?: unknown } | null)?.commandId;
      if (typeof id === 'string' && id.length > 0 && id.length <= 128 && !this.seen.has(id)) {
        this.remember(id, null);
        this.deliver(id, relayFailure(id, `bad execute_command: ${r.error.field} ${r.error.message}`, 'bad_request'));
      }
      return;
    }
    const d = r.value;
    this.m.messages.inc({ kind: RELAY_EVENTS.execute });
    if (this.seen.has(d.commandId)) {
      this.m.messages.inc({ kind: 'repeat' });
      const kept = this.seen.get(d.commandId);
      if (kept) this.send(kept);
      return;
    }
    this.remember(d.commandId, null);
    this.log.info({ command_id: d.commandId, server: d.serverId, host: d.host }, 'command received');
    void this.pool.run(d).then((result) => {
      this.log.info(
        { command_id: d.commandId, exit_code: result.result.exitCode, failure: result.failure ?? null },
        'command ended',
      );
      this.deliver(d.commandId, result);
    });
  }

  private remember(id: string, msg: LinkMessage<RelayResultData> | null): void {
    this.seen.set(id, msg);
    if (this.seen.size > SEEN_KEPT) {
      const first = this.seen.keys().next().value;
      if (first !== undefined) this.seen.delete(first);
    }
  }

  private deliver(commandId: string, result: RelayResultData): void {
    const msg = linkMessage(RELAY_EVENTS.result, result);
    if (this.seen.has(commandId)) this.seen.set(commandId, msg);
    this.held.set(msg.id, msg);
    while (this.held.size > this.cfg.max_held_results) {
      const first = this.held.keys().next().value;
      if (first === undefined) break;
      this.held.delete(first);
      this.m.dropped.inc();
    }
    this.send(msg);
  }
}
