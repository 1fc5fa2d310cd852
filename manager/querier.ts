/**
 * The manager's side of the multicast query (docs/protocol.md "1. Query"): one url per datagram to
 * 239.192.168.80:3980, `/heartbeat` and `/resource` on their own intervals.
 */
import dgram from 'node:dgram';
import { API_VERSION, type ReportUrl } from '../common/constants.js';
import type { Logger } from '../common/log.js';
import { interfaceAddress } from '../common/net.js';
import type { QueryBody } from '../common/protocol.js';
import { signQuery } from '../common/signing.js';

/** Where and how queries are sent. */
export interface QuerierOptions {
  group: string;
  port: number;
  /** Interface name or IPv4 to send on; '' = the default route. */
  interface: string;
  ttl: number;
  loopback: boolean;
  /** manager_ip and manager_port written into each query. */
  managerIp: string;
  managerPort: number;
}

/** How a query is signed (docs/protocol.md "1a. Signed queries"): the shared key and the clock. */
export interface QuerySigning {
  key: Buffer;
  /** ms since the epoch; Date.now by default. */
  now?: () => number;
}

/**
 * Builds the query body for `url`, with the optional reply window extension and, when `signing`
 * is given, the `ts` and `sig` fields of a signed query (common/signing.ts).
 */
export function queryBody(
  managerIp: string,
  managerPort: number,
  url: ReportUrl,
  jitterMs?: number,
  signing?: QuerySigning,
): QueryBody {
  const data = {
    manager_ip: managerIp,
    manager_port: managerPort,
    url,
    ...(jitterMs ? { jitter_ms: Math.round(jitterMs) } : {}),
  };
  return {
    api_version: API_VERSION,
    data: signing ? signQuery(signing.key, data, (signing.now ?? Date.now)()) : data,
  };
}

/** A UDP socket that sends queries. */
export class Querier {
  private sock: dgram.Socket | undefined;

  constructor(
    private readonly opts: QuerierOptions,
    private readonly log: Logger,
  ) {}

  /** Opens the socket and applies interface, TTL and loopback. @throws when the interface is unknown */
  async start(): Promise<void> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, resolve));
    sock.on('error', (err) => this.log.error({ err: err.message }, 'query socket error'));
    if (this.opts.interface) {
      const addr = interfaceAddress(this.opts.interface);
      if (!addr) throw new Error(`multicast.interface ${this.opts.interface}: no such interface with an IPv4 address`);
      sock.setMulticastInterface(addr);
    }
    sock.setMulticastTTL(this.opts.ttl);
    sock.setMulticastLoopback(this.opts.loopback);
    this.sock = sock;
  }

  /**
   * Sends one query.
   * @param jitterMs reply window suggested to agents (muster extension); omitted when 0
   * @param signing the shared key when queries are signed (muster extension); unsigned when absent
   * @throws when the datagram cannot be sent (no route, socket closed)
   */
  send(url: ReportUrl, jitterMs?: number, signing?: QuerySigning): Promise<void> {
    const sock = this.sock;
    if (!sock) return Promise.reject(new Error('querier not started'));
    const body = queryBody(this.opts.managerIp, this.opts.managerPort, url, jitterMs, signing);
    const buf = Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) =>
      sock.send(buf, this.opts.port, this.opts.group, (err) => (err ? reject(err) : resolve())),
    );
  }

  /** Closes the socket. */
  stop(): void {
    this.sock?.close();
    this.sock = undefined;
  }
}
