#!/usr/bin/env node
// A hostile or plain peer on the test LAN for tests/e2e/wire-security.test.ts, run inside a network
// namespace (`ip netns exec <ns> node raw_peer.mjs <mode> ...`). Plain Node, no muster code, so it
// sends exactly the bytes it is given. Modes:
//
//   send <group> <port> <iface-ip> <count> <spread-ms> <json>  send <json> count times over spread-ms
//   capture <group> <port> <iface-ip> <url> <timeout-ms>      print the first signed query for <url>
//   sink <ip> <port>                                         HTTP 200 to everything; prints
//                                                            "REQ <peer> <method> <url>" per request
//   get <url>                                                print the body (exit 1 on non-2xx); $PEER_TOKEN as bearer
//   post <url> <json>                                        print "<status> <body>"
import dgram from 'node:dgram';
import http from 'node:http';

const [mode, ...args] = process.argv.slice(2);

async function send(group, port, iface, count, spreadMs, json) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, iface, r));
  sock.setMulticastInterface(iface);
  sock.setMulticastTTL(1);
  const buf = Buffer.from(json);
  const n = Number(count);
  const batches = Math.max(1, Math.floor(Number(spreadMs) / 10));
  const per = Math.ceil(n / batches);
  let sent = 0;
  const t0 = Date.now();
  while (sent < n) {
    const k = Math.min(per, n - sent);
    await Promise.all(
      Array.from({ length: k }, () => new Promise((r) => sock.send(buf, Number(port), group, (err) => r(err)))),
    );
    sent += k;
    if (sent < n) await new Promise((r) => setTimeout(r, 10));
  }
  sock.close();
  console.log(`SENT ${sent} ${Date.now() - t0}`);
}

function capture(group, port, iface, url, timeoutMs) {
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
  sock.bind(Number(port), group, () => sock.addMembership(group, iface));
  const t = setTimeout(() => {
    console.error('no signed query seen');
    process.exit(2);
  }, Number(timeoutMs));
  sock.on('message', (msg) => {
    try {
      const q = JSON.parse(msg.toString('utf8'));
      if (q?.data?.url === url && typeof q.data.sig === 'string') {
        clearTimeout(t);
        process.stdout.write(`${msg.toString('utf8')}\n`, () => process.exit(0));
      }
    } catch {
      // not a query
    }
  });
}

function sink(ip, port) {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      console.log(`REQ ${req.socket.remoteAddress} ${req.method} ${req.url}`);
      res.writeHead(200).end();
    });
  });
  server.listen(Number(port), ip, () => console.log('LISTENING'));
  process.on('SIGTERM', () => process.exit(0));
}

async function get(url) {
  // PEER_TOKEN: a bearer token for the manager's /api/v1 (docs/operations.md "Users and access").
  const headers = process.env.PEER_TOKEN ? { authorization: `Bearer ${process.env.PEER_TOKEN}` } : {};
  const res = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
  process.stdout.write(await res.text());
  if (!res.ok) process.exit(1);
}

async function post(url, json) {
  const res = await fetch(url, { method: 'POST', body: json, signal: AbortSignal.timeout(5000) });
  console.log(`${res.status} ${await res.text()}`);
}

const modes = { send, capture, sink, get, post };
if (!modes[mode]) {
  console.error(`usage: raw_peer.mjs ${Object.keys(modes).join('|')} ...`);
  process.exit(64);
}
await modes[mode](...args);
