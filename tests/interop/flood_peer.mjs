#!/usr/bin/env node
// A flooding peer on the test LAN for tests/e2e/hostile-flood.test.ts, run inside a network
// namespace (`ip netns exec <ns> node flood_peer.mjs <mode> ...`). Plain Node, no muster code.
// Modes (each prints one JSON line of figures when done):
//
//   hbflood <url> <host_ip> <ms> <concurrency> <box0>
//       POSTs heartbeats for made-up positions (box0.., slot 0..255, cpu 0), each position once,
//       from <concurrency> keep-alive connections for <ms>: {"sent","status":{"200":n,"503":n,...},"ms"}
//   latency <url> <ms>
//       GETs <url> one request after another for <ms> (after one untimed request): {"n","p50","p99","max","errors","slow"} (ms;
//       slow: [ms since start, ms taken] of the first 20 requests over 20 ms)
//   blackhole <port,...>
//       TCP listeners on 0.0.0.0 that accept and never answer (connections held): prints LISTENING,
//       then one line {"accepted"} on SIGTERM
//   qflood <group> <port> <iface-ip> <rate-per-s> <ms> <manager-port,...> <blackhole-ip,...>
//       multicast queries (/heartbeat and /resource) at <rate-per-s> for <ms>; manager_ip cycles
//       through the black-hole addresses and, every other datagram, a distinct unrouted 10.x.y.z:
//       {"sent","distinct_ips","ms"}
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';

const [mode, ...args] = process.argv.slice(2);

function heartbeat(hostIp, box, slot) {
  return JSON.stringify({
    api_version: 1,
    data: {
      box_id: box,
      slot_id: slot,
      cpu_id: 0,
      srio_id: 0,
      host_ip: hostIp,
      hostname: `fake-${box}-${slot}`,
      service_port: 23980,
      box_type: '',
      board_type: '',
      resource_type: '',
      cpu_type: '',
      os_type: '',
      cpu_arch: 'x86_64',
      gpu: [],
    },
  });
}

async function hbflood(url, hostIp, ms, concurrency, box0) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
  const status = {};
  let next = 0;
  let sent = 0;
  const t0 = Date.now();
  const end = t0 + Number(ms);
  const u = new URL(url);
  const one = (body) =>
    new Promise((resolve) => {
      const req = http.request(
        {
          agent,
          host: u.hostname,
          port: u.port,
          path: u.pathname,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            status[res.statusCode] = (status[res.statusCode] ?? 0) + 1;
            resolve();
          });
        },
      );
      req.on('error', (err) => {
        status[err.code ?? 'error'] = (status[err.code ?? 'error'] ?? 0) + 1;
        resolve();
      });
      req.end(body);
    });
  const worker = async () => {
    while (Date.now() < end) {
      const i = next++;
      await one(heartbeat(hostIp, Number(box0) + Math.floor(i / 256), i % 256));
      sent++;
    }
  };
  await Promise.all(Array.from({ length: Number(concurrency) }, worker));
  agent.destroy();
  console.log(JSON.stringify({ sent, status, ms: Date.now() - t0 }));
}

async function latency(url, ms) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const times = [];
  const slow = [];
  let errors = 0;
  // One request first, not timed: the connection is set up and the code paths warm.
  await new Promise((resolve) =>
    http.get(url, { agent }, (res) => res.resume().on('end', resolve)).on('error', resolve),
  );
  const t0 = performance.now();
  const end = Date.now() + Number(ms);
  while (Date.now() < end) {
    const t = performance.now();
    const ok = await new Promise((resolve) => {
      const req = http.get(url, { agent, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode === 200));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => resolve(false));
    });
    const took = performance.now() - t;
    if (ok) times.push(took);
    else errors++;
    if (took > 20) slow.push([Math.round(t - t0), Math.round(took)]);
    await new Promise((r) => setTimeout(r, 5));
  }
  agent.destroy();
  times.sort((a, b) => a - b);
  const q = (p) => Number((times[Math.min(times.length - 1, Math.floor(p * times.length))] ?? 0).toFixed(2));
  console.log(
    JSON.stringify({ n: times.length, p50: q(0.5), p99: q(0.99), max: q(1), errors, slow: slow.slice(0, 20) }),
  );
}

function blackhole(ports) {
  const held = [];
  let accepted = 0;
  let listening = 0;
  const list = ports.split(',').map(Number);
  for (const port of list) {
    const server = net.createServer((sock) => {
      accepted++;
      sock.on('error', () => {});
      sock.resume(); // read and discard, never answer
      held.push(sock);
    });
    server.listen(port, '0.0.0.0', () => {
      if (++listening === list.length) console.log('LISTENING');
    });
  }
  process.on('SIGTERM', () => {
    console.log(JSON.stringify({ accepted }));
    process.exit(0);
  });
}

async function qflood(group, port, iface, rate, ms, managerPorts, holes) {
  const sock = dgram.createSocket('udp4');
  await new Promise((r) => sock.bind(0, iface, r));
  sock.setMulticastInterface(iface);
  sock.setMulticastTTL(1);
  const ports = managerPorts.split(',').map(Number);
  const hole = holes.split(',');
  const ips = new Set();
  const perTick = Math.max(1, Math.round(Number(rate) / 20)); // 20 ticks a second
  const t0 = Date.now();
  let sent = 0;
  while (Date.now() - t0 < Number(ms)) {
    for (let k = 0; k < perTick; k++) {
      const i = sent;
      const manager_ip =
        i % 2 === 0 ? hole[(i / 2) % hole.length] : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) | 1}`;
      ips.add(manager_ip);
      const q = {
        api_version: 1,
        data: {
          manager_ip,
          manager_port: ports[i % ports.length],
          url: i % 3 === 0 ? '/resource' : '/heartbeat',
          jitter_ms: 0,
        },
      };
      await new Promise((r) => sock.send(Buffer.from(JSON.stringify(q)), Number(port), group, r));
      sent++;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  sock.close();
  console.log(JSON.stringify({ sent, distinct_ips: ips.size, ms: Date.now() - t0 }));
}

if (mode === 'hbflood') await hbflood(...args);
else if (mode === 'latency') await latency(...args);
else if (mode === 'blackhole') blackhole(args[0]);
else if (mode === 'qflood') await qflood(...args);
else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
