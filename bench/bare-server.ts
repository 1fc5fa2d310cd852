/**
 * The baseline server: a bare `node:http` server that does only what any report receiver must do,
 * read the body, JSON.parse it, answer 200 with an empty body, and note its arrival time. No
 * validation, no registry, no framework. Run as its own process, like the manager:
 *   node --import tsx bench/bare-server.ts --port 13990
 * It prints `listening <port>` when ready.
 *   POST /heartbeat | /resource   parse, record (url, host_ip, wall-clock ms), 200 empty
 *   GET /stats                    { "/heartbeat": n, "/resource": n, bad: n }
 *   GET /arrivals                 { arrivals: [[url, host_ip, ms], ...] } and forget them
 */
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { port: { type: 'string' }, host: { type: 'string', default: '127.0.0.1' } } });
const counts: Record<string, number> = { '/heartbeat': 0, '/resource': 0, bad: 0 };
let arrivals: [string, string, number][] = [];
const now = () => performance.timeOrigin + performance.now();

const server = http.createServer((req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'GET') {
    let body: string;
    if (url === '/stats') body = JSON.stringify(counts);
    else if (url === '/arrivals') {
      body = JSON.stringify({ arrivals });
      arrivals = [];
    } else {
      res.writeHead(url === '/healthz' ? 200 : 404, { 'content-length': 0 }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  let text = '';
  req.setEncoding('utf8');
  req.on('data', (c: string) => {
    text += c;
  });
  req.on('end', () => {
    let doc: { data?: { host_ip?: string } };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      counts.bad = (counts.bad ?? 0) + 1;
      res.writeHead(400, { 'content-length': 0 }).end();
      return;
    }
    counts[url] = (counts[url] ?? 0) + 1;
    arrivals.push([url, String(doc.data?.host_ip), now()]);
    res.writeHead(200, { 'content-length': 0 }).end();
  });
});
// fastify's default keep-alive timeout, so both servers keep the fleet's connections alike.
server.keepAliveTimeout = 72_000;
server.listen(Number(values.port ?? 0), values.host, () => {
  const a = server.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : values.port}\n`);
});
process.on('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
});
