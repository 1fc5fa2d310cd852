/**
 * The agent's end of the WebSocket node link (docs/links.md "A muster agent on the link"): with
 * `link.mode: websocket | both` the agent connects out to `link.websocket.url` with its link
 * token (`?token=&node_id=<box-slot-cpu>`), registers (`node_register` with its position), sends
 * its full heartbeat and resource bodies as `muster.report` messages on its own cadence, and serves
 * `muster.command` messages through the same command registry as its HTTP port
 * (agent/handlers), answering with `muster.reply`.
 *
 * - Reconnects after a random delay in [0, min(backoff_max_ms, backoff_base_ms × 2^attempt)]
 *   (exponential backoff, full jitter), so a manager restart is not met by every board at once.
 * - A reply is kept until the manager acknowledges it (`command_received` naming the reply's
 *   message id) and sent again after a reconnect; a command id seen before is never run twice: a
 *   repeat gets the kept reply, or nothing while the first run is still under way.
 */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import WebSocket from 'ws';
import { type LinkMessage, linkMessage, type MusterCommandData, reconnectDelay } from '../../common/link.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import type { AgentConfig } from '../config.js';
import type { CommandRegistry } from '../handlers/registry.js';
import { Counter, Gauge, type Registry } from '../prom.js';
import type { ReportBuilder } from './answer.js';

/** Most command ids remembered as run (a repeat beyond them would run again). */
const SEEN_KEPT = 10_000;

/** The link's connection to the manager. */
export class WsLink {
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;
  private registered = false;
  private lastHeard = 0;
  /** Replies not yet acknowledged, by reply message id. */
  private readonly held = new Map<string, LinkMessage>();
  /** Command ids run or running: the reply message once there is one, else null. */
  private readonly seen = new Map<string, LinkMessage | null>();
  private readonly rl: RateLimitedLog;
  private readonly m: { connected: Gauge; reconnects: Counter; held: Gauge; commands: Counter };

  constructor(
    private readonly cfg: AgentConfig,
    private readonly nodeId: string,
    private readonly builder: ReportBuilder,
    private readonly commands: CommandRegistry,
    metrics: Registry,
    private readonly log: Logger,
  ) {
    this.rl = new RateLimitedLog(log);
    const registers = [metrics];
    this.m = {
      connected: new Gauge({
        name: 'muster_agent_link_connected',
        help: '1 while the WebSocket node link is registered with the manager',
        registers,
      }),
      reconnects: new Counter({
        name: 'muster_agent_link_reconnects_total',
        help: 'WebSocket node link connection attempts after the first',
        registers,
      }),
      held: new Gauge({
        name: 'muster_agent_link_held_replies',
        help: 'Command replies kept until the manager acknowledges them (link.websocket.max_held_replies)',
        registers,
        collect: () => this.m.held.set(this.held.size),
      }),
      commands: new Counter({
        name: 'muster_agent_link_commands_total',
        help: 'muster.command messages received, by outcome: run, repeat (answered from the kept reply), running (ignored)',
        labelNames: ['outcome'],
        registers,
      }),
    };
  }

  /** Whether the link is registered now. */
  get connected(): boolean {
    return this.registered;
  }

  /** Starts connecting (returns at once). */
  start(): void {
    this.connect();
  }

  /** Closes the link; no reconnect. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.clearTimers();
    this.ws?.terminate();
  }

  private clearTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
  }

  private token(): string {
    const file = this.cfg.link.websocket.token_file;
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      this.rl.warn('link-token', { file, err: (err as Error).message }, 'cannot read link.websocket.token_file');
      return '';
    }
  }

  private connect(): void {
    if (this.stopped) return;
    const url = new URL(this.cfg.link.websocket.url);
    url.searchParams.set('token', this.token());
    url.searchParams.set('node_id', this.nodeId);
    const ws = new WebSocket(url, { handshakeTimeout: 10_000, maxPayload: 64 << 20 });
    this.ws = ws;
    this.lastHeard = Date.now();
    ws.on('message', (raw: Buffer) => {
      this.lastHeard = Date.now();
      void this.message(raw);
    });
    ws.on('pong', () => {
      this.lastHeard = Date.now();
    });
    ws.on('error', (err) => {
      this.rl.warn('link-error', { url: this.cfg.link.websocket.url, err: err.message }, 'WebSocket link error');
    });
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.registered = false;
      this.m.connected.set(0);
      this.clearTimers();
      if (this.stopped) return;
      const { backoff_base_ms, backoff_max_ms } = this.cfg.link.websocket;
      const delay = reconnectDelay(this.attempt, backoff_base_ms, backoff_max_ms);
      this.attempt++;
      this.m.reconnects.inc();
      this.log.info({ code, reason: String(reason), retry_in_ms: delay }, 'WebSocket link closed; reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    const ping = setInterval(() => {
      const quiet = Date.now() - this.lastHeard;
      if (quiet > 2 * this.cfg.link.websocket.ping_interval_ms) {
        this.log.warn({ quiet_ms: quiet }, 'WebSocket link silent; reconnecting');
        ws.terminate();
        return;
      }
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, this.cfg.link.websocket.ping_interval_ms);
    this.timers.push(ping);
  }

  private send(msg: LinkMessage): boolean {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(msg));
    return true;
  }

  /** The address reports name: report.host_ip, else the route toward the manager's host. */
  private async hostIp(): Promise<string> {
    const host = new URL(this.cfg.link.websocket.url).hostname.replace(/^\[|\]$/g, '');
    const ip = isIP(host) ? host : (await lookup(host, { family: 4 })).address;
    return this.builder.hostIpFor(ip);
  }

  private async report(url: '/heartbeat' | '/resource'): Promise<void> {
    try {
      const ip = await this.hostIp();
      const body = JSON.parse(await this.builder.build(url, ip)) as unknown;
      this.send(linkMessage('muster.report', { url, body }));
    } catch (err) {
      this.rl.warn(`link-report:${url}`, { url, err: (err as Error).message }, 'cannot build a report for the link');
    }
  }

  private async message(raw: Buffer): Promise<void> {
    let msg: LinkMessage<Record<string, unknown>>;
    try {
      msg = JSON.parse(raw.toString('utf8')) as LinkMessage<Record<string, unknown>>;
    } catch {
      return;
    }
    const d = (msg.data ?? {}) as Record<string, unknown>;
    switch (msg.type) {
      case 'welcome':
        return this.register();
      case 'register_response':
        if (d.success === true) return this.registeredNow();
        this.log.warn({ data: d }, 'the manager refused the link registration');
        return;
      case 'command_received':
        this.held.delete(msg.id);
        return;
      case 'muster.command':
        return this.command(d as unknown as MusterCommandData);
      case 'error':
        this.rl.warn(
          `link-error-msg:${String(d.error_code)}`,
          { error_code: d.error_code, message: d.message, details: d.details },
          'the manager sent an error on the link',
        );
        return;
      default:
        return;
    }
  }

  private async register(): Promise<void> {
    const { box_id, slot_id, cpu_id } = this.cfg.identity;
    let ip = '';
    try {
      ip = await this.hostIp();
    } catch {}
    this.send(
      linkMessage('node_register', {
        node_id: this.nodeId,
        hostname: os.hostname(),
        ...(ip ? { ip_address: ip } : {}),
        os_info: `${os.type()} ${os.release()}`,
        box_id,
        slot_id,
        cpu_id,
        heartbeat_interval_s: this.cfg.link.websocket.heartbeat_interval_ms / 1000,
      }),
    );
  }

  private registeredNow(): void {
    this.registered = true;
    this.attempt = 0;
    this.m.connected.set(1);
    this.log.info({ url: this.cfg.link.websocket.url, node: this.nodeId }, 'WebSocket link registered');
    void this.report('/heartbeat').then(() => this.report('/resource'));
    this.timers.push(
      setInterval(() => void this.report('/heartbeat'), this.cfg.link.websocket.heartbeat_interval_ms),
      setInterval(() => void this.report('/resource'), this.cfg.link.websocket.resource_interval_ms),
    );
    // Replies the manager has not acknowledged yet.
    for (const m of this.held.values()) this.send(m);
  }

  private async command(d: MusterCommandData): Promise<void> {
    if (typeof d.command_id !== 'string' || typeof d.command !== 'string') return;
    if (this.seen.has(d.command_id)) {
      const kept = this.seen.get(d.command_id);
      this.m.commands.inc({ outcome: kept ? 'repeat' : 'running' });
      if (kept) {
        this.held.set(kept.id, kept);
        this.send(kept);
      }
      return;
    }
    this.seen.set(d.command_id, null);
    if (this.seen.size > SEEN_KEPT) this.seen.delete(this.seen.keys().next().value as string);
    this.m.commands.inc({ outcome: 'run' });
    const reply = await this.commands.dispatch(d.command, d.body, { from: 'manager', transport: 'link' });
    const msg = linkMessage('muster.reply', { command_id: d.command_id, reply });
    this.seen.set(d.command_id, msg);
    this.held.set(msg.id, msg);
    while (this.held.size > this.cfg.link.websocket.max_held_replies) {
      this.held.delete(this.held.keys().next().value as string);
    }
    // Before the (re)registration is confirmed the manager would not take it: registeredNow sends it.
    if (this.registered) this.send(msg);
  }
}
