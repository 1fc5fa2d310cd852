/**
 * What the manager's two WebSocket servers (the node link, manager/link/hub.ts, and the SSH relay,
 * manager/relay/hub.ts) do alike with each connection they hold (docs/links.md, docs/configuration.md
 * "link" and "relay"):
 *   - a message-rate bound per connection: a token bucket of `max_messages_per_second` on
 *     average and twice that in a burst (over it, the hub closes with 1008 and counts `rate`);
 *   - liveness: every `ping_interval_ms` a ping, and a connection that did not answer the
 *     previous one with a pong is terminated (counted `no_pong`);
 *   - a frame larger than `max_message_bytes` (ws closes with 1009) counted `too_large`.
 */
import type { WebSocket } from 'ws';

/**
 * A connection's message-rate bound: `rate` messages per second on average, `2 × rate` in a
 * burst; starts full.
 */
export class MessageBucket {
  private tokens: number;
  private refilled: number;

  /**
   * @param rate messages per second (max_messages_per_second)
   * @param now the clock, ms
   */
  constructor(
    private readonly rate: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = rate * 2;
    this.refilled = now();
  }

  /** Takes one message's token: false when the connection is over its rate. */
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.rate * 2, this.tokens + ((t - this.refilled) / 1000) * this.rate);
    this.refilled = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** A connection as the ping round sees it. */
export interface Pinged {
  ws: WebSocket;
  /** Whether it answered the last ping (set by watchPeer's pong handler). */
  alive: boolean;
}

/**
 * One ping round over `peers`: a connection that did not answer the previous ping is terminated
 * (and `onDead` called), every other one is pinged.
 */
export function pingRound(peers: Iterable<Pinged>, onDead: () => void): void {
  for (const p of peers) {
    if (!p.alive) {
      onDead();
      p.ws.terminate();
      continue;
    }
    p.alive = false;
    p.ws.ping();
  }
}

/**
 * Wires a new connection's pong (marks `peer` alive) and error events: an over-long frame calls
 * `onTooLarge`; every error goes to `onError` (the hub logs it at a rate limit, without data).
 */
export function watchPeer(peer: Pinged, onTooLarge: () => void, onError: (err: Error) => void): void {
  peer.ws.on('pong', () => {
    peer.alive = true;
  });
  peer.ws.on('error', (err: Error & { code?: string }) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') onTooLarge();
    onError(err);
  });
}
