/**
 * Delivers reports to the manager over HTTP (docs/protocol.md "Common rules", "4. The manager's
 * answers to reports": the agent POSTs JSON to `http://manager_ip:manager_port/url`, the manager
 * answers 200 with an empty body), a part of the link layer.
 * One attempt per report with a bounded timeout; a report that cannot be delivered is dropped
 * and counted, never retried, so a slow or dead manager cannot pile work up on a board.
 */
import type http from 'node:http';
import type { ReportUrl } from '../../common/constants.js';

// node:http through getBuiltinModule, not `import`: an ESM import of node:http evaluates every
// export of the module, and its lazy WebSocket/EventSource exports load Node's internal undici
// (~4 MiB of RSS per agent; docs/operations.md "Agent footprint").
const nodeHttp = process.getBuiltinModule('node:http');

/** Why a report was dropped. */
export type DropReason = 'timeout' | 'connect' | 'status' | 'busy' | 'build';

/** Outcome of one delivery. */
export type Delivery = { ok: true; ms: number } | { ok: false; reason: DropReason; detail: string };

/**
 * An HTTP client for reports with keep-alive connections per manager (node:http: the agent keeps
 * no HTTP client library on its start path, docs/operations.md "Agent footprint").
 */
export class Reporter {
  private readonly agent: http.Agent;

  /** @param timeoutMs time limit of one POST, connect to last byte, ms */
  constructor(
    private readonly timeoutMs: number,
    private readonly version: string,
  ) {
    // At most 4 connections per manager (as before); idle ones are kept 30 s, then closed.
    this.agent = new nodeHttp.Agent({ keepAlive: true, maxSockets: 4, maxFreeSockets: 4, timeout: 30_000 });
  }

  /**
   * POSTs one report body.
   * @param managerIp dotted IPv4 of the manager
   * @param managerPort its port
   * @param url `/heartbeat`, `/resource`, or `/alert` (an agent alert, docs/protocol.md#4a)
   * @param body the serialized JSON body
   * @returns delivered (HTTP 200) with the time taken, or why not; never throws
   */
  send(managerIp: string, managerPort: number, url: ReportUrl | '/alert', body: string): Promise<Delivery> {
    const started = performance.now();
    return new Promise<Delivery>((resolve) => {
      let settled = false;
      const done = (d: Delivery): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(d);
      };
      // One bound from connect to the last byte of the answer: the request is destroyed at it.
      const timer = setTimeout(() => {
        done({ ok: false, reason: 'timeout', detail: `no answer within ${this.timeoutMs} ms` });
        req.destroy();
      }, this.timeoutMs);
      const req = nodeHttp.request(
        {
          host: managerIp,
          port: managerPort,
          path: url,
          method: 'POST',
          agent: this.agent,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'user-agent': `muster-agent/${this.version}`,
          },
        },
        (res) => {
          // The manager answers with an empty body; whatever comes is read and discarded.
          res.resume();
          res.on('end', () => {
            if (res.statusCode !== 200) done({ ok: false, reason: 'status', detail: `HTTP ${res.statusCode}` });
            else done({ ok: true, ms: performance.now() - started });
          });
          res.on('error', (err: Error & { code?: string }) =>
            done({ ok: false, reason: 'connect', detail: err.code ? `${err.code}: ${err.message}` : err.message }),
          );
        },
      );
      req.on('error', (err: Error & { code?: string }) =>
        done({ ok: false, reason: 'connect', detail: err.code ? `${err.code}: ${err.message}` : err.message }),
      );
      req.end(body);
    });
  }

  /** Closes the keep-alive connections. */
  async close(): Promise<void> {
    this.agent.destroy();
  }
}
