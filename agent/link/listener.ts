/**
 * The agent's side of the multicast query (docs/protocol.md "1. Query (manager查询)"), a part of
 * the link layer: joins the group, parses and
 * validates each datagram, and hands valid queries on. Bad datagrams are counted by reason,
 * logged at a rate limit, and otherwise ignored; the listener never stops on bad input.
 */
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { MAX_QUERY_BYTES } from '../../common/constants.js';
import { type Logger, RateLimitedLog } from '../../common/log.js';
import { interfaceAddress } from '../../common/net.js';
import { QueryBody } from '../../common/protocol.js';
import { compile } from '../../common/validate.js';

const checkQuery = compile<QueryBody>(QueryBody);

/** Why a datagram was not a query. */
export type RejectReason =
  | 'oversize'
  | 'json'
  | 'api_version'
  | 'manager_ip'
  | 'manager_port'
  | 'url'
  | 'schema'
  | 'not_allowed';

/** An IPv4 address or CIDR as manager.allow takes it (`10.0.0.1`, `10.0.0.0/24`). */
export const ALLOW_PATTERN = '^(\\d{1,3})(\\.\\d{1,3}){3}(/([0-9]|[12][0-9]|3[0-2]))?$';

const ipv4ToInt = (ip: string): number | null => {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return null;
  return ((p[0] as number) * 2 ** 24 + (p[1] as number) * 2 ** 16 + (p[2] as number) * 2 ** 8 + (p[3] as number)) >>> 0;
};

/**
 * A matcher for manager.allow: whether a query's `manager_ip` is one of `allow` (addresses or
 * CIDRs). An empty list allows any address (the spec's behaviour).
 * @throws Error naming an entry that is not an IPv4 address or CIDR
 */
export function managerAllow(allow: readonly string[]): (ip: string) => boolean {
  if (allow.length === 0) return () => true;
  const nets = allow.map((entry) => {
    const [addr = '', bits = '32'] = entry.split('/');
    const base = ipv4ToInt(addr);
    const n = Number(bits);
    if (base === null || !Number.isInteger(n) || n < 0 || n > 32)
      throw new Error(`manager.allow: ${JSON.stringify(entry)} is not an IPv4 address or CIDR`);
    const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
    return { net: (base & mask) >>> 0, mask };
  });
  return (ip) => {
    const v = ipv4ToInt(ip);
    return v !== null && nets.some((x) => (v & x.mask) >>> 0 === x.net);
  };
}

/** Result of parsing one datagram. */
export type ParsedQuery = { ok: true; query: QueryBody } | { ok: false; reason: RejectReason; detail: string };

/** Why a dotted IPv4 cannot be a manager to report to (unspecified, multicast, broadcast), or null. */
export function unusableManagerIp(ip: string): string | null {
  const first = Number(ip.split('.')[0]);
  if (ip === '0.0.0.0') return 'must not be the unspecified address 0.0.0.0';
  if (ip === '255.255.255.255') return 'must not be the broadcast address';
  if (first >= 224 && first <= 239) return 'must not be a multicast address';
  if (first >= 240) return 'must not be a reserved (class E) address';
  return null;
}

/**
 * Parses and validates one query datagram.
 * @param buf the datagram payload (UTF-8 JSON)
 * @returns the query, or why it is refused (reason for the metric, detail naming the field)
 */
export function parseQuery(buf: Buffer): ParsedQuery {
  if (buf.length > MAX_QUERY_BYTES)
    return { ok: false, reason: 'oversize', detail: `${buf.length} bytes > ${MAX_QUERY_BYTES}` };
  let doc: unknown;
  try {
    doc = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: 'json', detail: (err as Error).message };
  }
  const r = checkQuery.check(doc);
  if (r.ok) {
    const bad = unusableManagerIp(r.value.data.manager_ip);
    if (bad) return { ok: false, reason: 'manager_ip', detail: `/data/manager_ip ${bad}` };
    return { ok: true, query: r.value };
  }
  const f = r.error.field;
  const reason: RejectReason =
    f === '/api_version'
      ? 'api_version'
      : f === '/data/manager_ip'
        ? 'manager_ip'
        : f === '/data/manager_port'
          ? 'manager_port'
          : f === '/data/url'
            ? 'url'
            : 'schema';
  return { ok: false, reason, detail: `${f} ${r.error.message}` };
}

/** Where and how to listen. */
export interface ListenerOptions {
  group: string;
  port: number;
  /** Interface name or IPv4 address; '' = the kernel's default. */
  interface: string;
  /** How often membership is renewed, ms. */
  rejoinIntervalMs: number;
  /** How often the interface's address is checked for coming back or changing, ms. */
  checkIntervalMs?: number;
  /** Address to bind; defaults to the group address itself, so unicast to the port is not taken. */
  bindAddress?: string;
  /**
   * manager.allow: addresses or CIDRs a query's `manager_ip` must be in; others are refused as
   * `not_allowed`. Empty or absent = any.
   */
  allow?: readonly string[];
}

/**
 * Emits `query` (QueryBody, sender address) for each valid datagram and `reject`
 * (reason, detail, sender) for each refused one.
 */
export class MulticastListener extends EventEmitter {
  private sock: dgram.Socket | undefined;
  private joinedOn: string | null | undefined; // undefined = not joined; null = default interface
  private timers: NodeJS.Timeout[] = [];
  private lastRenew = 0;
  private readonly rl: RateLimitedLog;
  private readonly allowed: (ip: string) => boolean;

  constructor(
    private readonly opts: ListenerOptions,
    private readonly log: Logger,
  ) {
    super();
    this.rl = new RateLimitedLog(log);
    this.allowed = managerAllow(opts.allow ?? []);
  }

  /** True while the socket holds a membership of the group. */
  get joined(): boolean {
    return this.joinedOn !== undefined;
  }

  /** Binds the port and joins the group (now, or as soon as the interface appears). */
  async start(): Promise<void> {
    const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    this.sock = sock;
    sock.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    sock.on('error', (err) => this.log.error({ err: err.message }, 'multicast socket error'));
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.bind({ port: this.opts.port, address: this.opts.bindAddress ?? this.opts.group, exclusive: false }, () => {
        sock.off('error', reject);
        resolve();
      });
    });
    this.join('start');
    const check = setInterval(
      () => this.check(),
      this.opts.checkIntervalMs ?? Math.min(2000, this.opts.rejoinIntervalMs),
    );
    check.unref();
    this.timers.push(check);
  }

  /** Leaves the group and closes the socket. */
  stop(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    try {
      this.sock?.close();
    } catch {
      // already closed
    }
    this.sock = undefined;
    this.joinedOn = undefined;
  }

  private wantedAddress(): string | null | undefined {
    if (this.opts.interface === '') return null;
    return interfaceAddress(this.opts.interface); // undefined = not there now
  }

  private join(why: string): void {
    const sock = this.sock;
    if (!sock) return;
    const addr = this.wantedAddress();
    if (addr === undefined) {
      if (this.joinedOn !== undefined)
        this.log.warn({ interface: this.opts.interface }, 'multicast interface is gone; waiting for it');
      this.joinedOn = undefined;
      return;
    }
    if (this.joinedOn !== undefined && this.joinedOn !== addr) {
      try {
        sock.dropMembership(this.opts.group, this.joinedOn ?? undefined);
      } catch {
        // the old interface is gone with its membership
      }
    }
    try {
      sock.addMembership(this.opts.group, addr ?? undefined);
      this.log.info({ group: this.opts.group, interface: addr ?? 'default', why }, 'joined multicast group');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE') {
        this.rl.warn(
          'join',
          { err: (err as Error).message, interface: addr ?? 'default' },
          'cannot join multicast group; will retry',
        );
        this.joinedOn = undefined;
        return;
      }
      // EADDRINUSE: the kernel kept the membership; nothing to renew.
      if (this.joinedOn === undefined)
        this.log.info(
          { group: this.opts.group, interface: addr ?? 'default', why },
          'multicast interface is back; membership held',
        );
    }
    this.joinedOn = addr;
    this.lastRenew = Date.now();
  }

  /** Re-joins when the interface came back or changed address, and renews periodically. */
  private check(): void {
    const addr = this.wantedAddress();
    if (addr !== this.joinedOn) this.join(addr === undefined ? 'interface gone' : 'interface changed or came back');
    else if (Date.now() - this.lastRenew >= this.opts.rejoinIntervalMs) this.join('periodic renewal');
  }

  /** Handles one datagram: a valid query whose manager_ip manager.allow permits, or a refusal. */
  onMessage(msg: Buffer, rinfo: Pick<dgram.RemoteInfo, 'address'>): void {
    let parsed = parseQuery(msg);
    if (parsed.ok && !this.allowed(parsed.query.data.manager_ip)) {
      parsed = {
        ok: false,
        reason: 'not_allowed',
        detail: `/data/manager_ip ${parsed.query.data.manager_ip} is not in manager.allow`,
      };
    }
    if (parsed.ok) {
      this.emit('query', parsed.query, rinfo.address);
      return;
    }
    this.emit('reject', parsed.reason, parsed.detail, rinfo.address);
    this.rl.warn(
      `reject:${parsed.reason}`,
      { from: rinfo.address, reason: parsed.reason, detail: parsed.detail },
      'ignored a bad query datagram',
    );
  }
}
