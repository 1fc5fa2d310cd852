/**
 * Delivers reports to the manager over HTTP (docs/protocol.md "Common rules", "4. The manager's
 * answers to reports": the agent POSTs JSON to `http://manager_ip:manager_port/url`, the manager
 * answers 200 with an empty body), a part of the link layer.
 * One attempt per report with a bounded timeout; a report that cannot be delivered is dropped
 * and counted, never retried, so a slow or dead manager cannot pile work up on a board.
 */
import { Agent, request } from 'undici';
import type { ReportUrl } from '../../common/constants.js';

/** Why a report was dropped. */
export type DropReason = 'timeout' | 'connect' | 'status' | 'busy' | 'build';

/** Outcome of one delivery. */
export type Delivery = { ok: true; ms: number } | { ok: false; reason: DropReason; detail: string };

/** An HTTP client for reports with keep-alive connections per manager. */
export class Reporter {
  private readonly dispatcher: Agent;

  /** @param timeoutMs time limit of one POST, connect to last byte, ms */
  constructor(
    private readonly timeoutMs: number,
    private readonly version: string,
  ) {
    this.dispatcher = new Agent({
      connect: { timeout: timeoutMs },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 30_000,
      connections: 4,
    });
  }

  /**
   * POSTs one report body.
   * @param managerIp dotted IPv4 of the manager
   * @param managerPort its port
   * @param url `/heartbeat`, `/resource`, or `/alert` (an agent alert, docs/protocol.md#4a)
   * @param body the serialized JSON body
   * @returns delivered (HTTP 200) with the time taken, or why not; never throws
   */
  async send(managerIp: string, managerPort: number, url: ReportUrl | '/alert', body: string): Promise<Delivery> {
    const started = performance.now();
    try {
      const res = await request(`http://${managerIp}:${managerPort}${url}`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', 'user-agent': `muster-agent/${this.version}` },
        dispatcher: this.dispatcher,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      await res.body.dump();
      if (res.statusCode !== 200) return { ok: false, reason: 'status', detail: `HTTP ${res.statusCode}` };
      return { ok: true, ms: performance.now() - started };
    } catch (err) {
      const e = err as Error & { code?: string };
      const timeout = e.name === 'TimeoutError' || e.name === 'AbortError' || /Timeout/.test(e.code ?? '');
      return {
        ok: false,
        reason: timeout ? 'timeout' : 'connect',
        detail: e.code ? `${e.code}: ${e.message}` : e.message,
      };
    }
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
