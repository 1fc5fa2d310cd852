/**
 * Requests to an agent's command port (agent/http/server.ts) over a real socket on 127.0.0.1:
 * the unit tests' replacement for fastify's `inject`. The server is made to listen on a free
 * port on first use; `close()` of the server ends it.
 */
import http from 'node:http';
import type { AgentServer } from '../../agent/http/server.js';

/** One request: a JSON-able payload is sent as JSON (content-type application/json). */
export interface InjectRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD' | 'PATCH';
  url: string;
  payload?: unknown;
  headers?: Record<string, string>;
}

/** The answer, shaped like fastify's inject response. */
export interface InjectResponse {
  statusCode: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json(): unknown;
}

const ports = new WeakMap<AgentServer, Promise<number>>();

/** The port `server` listens on (it is started on 127.0.0.1 on first use). */
export function portOf(server: AgentServer): Promise<number> {
  let p = ports.get(server);
  if (!p) {
    p = server.server.listening
      ? Promise.resolve((server.server.address() as { port: number }).port)
      : server.listen({ host: '127.0.0.1', port: 0 });
    ports.set(server, p);
  }
  return p;
}

/** Sends `r` to `server` and reads the whole answer (a new connection each time). */
export async function inject(server: AgentServer, r: InjectRequest): Promise<InjectResponse> {
  const port = await portOf(server);
  let body: Buffer | undefined;
  const headers: Record<string, string> = { ...r.headers };
  if (r.payload !== undefined) {
    if (Buffer.isBuffer(r.payload)) body = r.payload;
    else if (typeof r.payload === 'string') body = Buffer.from(r.payload);
    else {
      body = Buffer.from(JSON.stringify(r.payload));
      if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type'))
        headers['content-type'] = 'application/json';
    }
    headers['content-length'] = String(body.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: r.method, path: r.url, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            statusCode: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: () => JSON.parse(text),
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
