/**
 * The agent's report slots (agent/link/multicast.ts, docs/protocol.md "7. Timing"): queries
 * naming addresses that accept TCP and never answer take at most `report.max_in_flight` slots per
 * destination and `report.max_in_flight_total` in all, and never the known manager's (issue 12,
 * "liveness knocked over by queries"). Real sockets on 127.0.0.1; queries are handed to the link
 * as the listener would.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { Registry } from 'prom-client';
import { loadAgentConfig } from '../../agent/config.js';
import type { ReportBuilder } from '../../agent/link/answer.js';
import { MulticastLink } from '../../agent/link/multicast.js';
import type { QueryBody } from '../../common/protocol.js';

const log = pino({ level: 'silent' });
const closers: (() => void)[] = [];
after(() => {
  for (const c of closers) c();
});

const listen = (srv: net.Server): Promise<number> =>
  new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as net.AddressInfo).port)));

const query = (port: number, url: '/heartbeat' | '/resource' = '/heartbeat'): QueryBody => ({
  api_version: 1,
  data: { manager_ip: '127.0.0.1', manager_port: port, url, jitter_ms: 0 },
});

describe('report slots', () => {
  it('hanging destinations cannot take the known manager’s slots', async () => {
    // The manager: 200 to every report, counted.
    const got: string[] = [];
    const mgr = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        got.push(req.url ?? '');
        res.end();
      });
    });
    const mgrPort = await listen(mgr);
    // Twenty third parties that accept TCP and never answer.
    const sockets: net.Socket[] = [];
    const hanging = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = net.createServer((c) => sockets.push(c));
        closers.push(() => s.close());
        return listen(s);
      }),
    );
    let accepted = 0;
    closers.push(() => {
      for (const c of sockets) c.destroy();
      mgr.close();
    });

    const cfg = loadAgentConfig(undefined, ['report.timeout_ms=3000', 'report.jitter_ms=0'], {});
    const builder = { build: async () => '{}' } as unknown as ReportBuilder;
    const metrics = new Registry();
    const link = new MulticastLink(cfg, builder, 'test', metrics, log);
    const listener = (link as unknown as { listener: EventEmitter }).listener;
    const emit = (q: QueryBody) => listener.emit('query', q, '127.0.0.9');

    emit(query(mgrPort));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got, ['/heartbeat'], 'the manager accepted the first heartbeat: it is the known one');
    assert.deepEqual(link.manager, { ip: '127.0.0.1', port: mgrPort });

    // 20 destinations × 5 queries each, both urls: far more than the slots.
    for (let k = 0; k < 5; k++) for (const p of hanging) emit(query(p, k % 2 ? '/resource' : '/heartbeat'));
    await new Promise((r) => setTimeout(r, 300));
    accepted = sockets.length;
    assert.ok(accepted <= cfg.report.max_in_flight_total, `${accepted} connections to hanging destinations`);

    // The manager's next rounds are answered at once, while the hanging ones hold their slots.
    emit(query(mgrPort));
    emit(query(mgrPort, '/resource'));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(got, ['/heartbeat', '/heartbeat', '/resource']);
    const text = await metrics.metrics();
    const busy = /muster_agent_reports_dropped_total\{url="\/heartbeat",reason="busy"\} (\d+)/.exec(text);
    assert.ok(Number(busy?.[1]) > 0, text);
    await link.stop().catch(() => {});
  });
});
