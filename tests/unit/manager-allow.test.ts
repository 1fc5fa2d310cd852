/**
 * The agent's manager.allow (agent/link/listener.ts): addresses and CIDRs match, [] allows any, a
 * bad entry throws naming the key; the listener refuses a valid query naming another manager_ip
 * as `not_allowed` and hands on one naming an allowed address; the config takes the key.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { loadAgentConfig } from '../../agent/config.js';
import { MulticastListener, managerAllow } from '../../agent/link/listener.js';

const query = (managerIp: string): Buffer =>
  Buffer.from(
    JSON.stringify({ api_version: 1, data: { manager_ip: managerIp, manager_port: 3926, url: '/heartbeat' } }),
  );

describe('manager.allow', () => {
  it('matches addresses and CIDRs; [] allows any', () => {
    const any = managerAllow([]);
    assert.equal(any('192.0.2.7'), true);
    const m = managerAllow(['10.0.0.1', '192.168.4.0/24']);
    assert.equal(m('10.0.0.1'), true);
    assert.equal(m('10.0.0.2'), false);
    assert.equal(m('192.168.4.200'), true);
    assert.equal(m('192.168.5.1'), false);
    assert.equal(managerAllow(['0.0.0.0/0'])('203.0.113.9'), true);
    assert.throws(() => managerAllow(['10.0.0.300']), /manager\.allow/);
  });

  it('the listener refuses other manager_ips as not_allowed, passes allowed ones', () => {
    const l = new MulticastListener(
      { group: '239.192.168.80', port: 3980, interface: '', rejoinIntervalMs: 30000, allow: ['10.0.0.0/24'] },
      pino({ level: 'silent' }),
    );
    const got: string[] = [];
    const refused: string[] = [];
    l.on('query', (q: { data: { manager_ip: string } }) => got.push(q.data.manager_ip));
    l.on('reject', (reason: string, detail: string) => refused.push(`${reason}: ${detail}`));
    l.onMessage(query('10.0.0.1'), { address: '10.0.0.1' });
    l.onMessage(query('198.51.100.9'), { address: '10.0.0.66' });
    assert.deepEqual(got, ['10.0.0.1']);
    assert.deepEqual(refused, ['not_allowed: /data/manager_ip 198.51.100.9 is not in manager.allow']);
  });

  it('is a config key, default [], refused when not an address or CIDR', () => {
    assert.deepEqual(loadAgentConfig(undefined, [], {}).manager.allow, []);
    assert.deepEqual(loadAgentConfig(undefined, ['manager.allow=[10.0.0.0/24]'], {}).manager.allow, ['10.0.0.0/24']);
    assert.throws(() => loadAgentConfig(undefined, ['manager.allow=[bogus]'], {}), /manager\.allow/);
  });
});
