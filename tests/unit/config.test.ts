/**
 * Config loading (common/config.ts through agent/config.ts and manager/config.ts): the shipped
 * defaults, a --config file merged over them, MUSTER_<DAEMON>_<PATH> env vars, then --set; unknown
 * keys and wrong types stop the daemon with a ConfigError naming the key.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAgentConfig } from '../../agent/config.js';
import { ConfigError, envName, merge } from '../../common/config.js';
import { loadManagerConfig } from '../../manager/config.js';

/** An environment without any MUSTER_* variable, so the host's environment cannot leak in. */
const NO_ENV: NodeJS.ProcessEnv = {};

let tmp: string;
before(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-config-unit-'));
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(tmp, name);
  writeFileSync(p, text);
  return p;
}

/** Asserts `fn` throws a ConfigError whose message matches every pattern. */
function configError(fn: () => unknown, ...patterns: RegExp[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('agent config', () => {
  it('defaults are the documented ones (docs/protocol.md group, port and service port)', () => {
    const c = loadAgentConfig(undefined, [], NO_ENV);
    assert.deepEqual(c.identity, {
      box_id: 1,
      slot_id: 1,
      cpu_id: 0,
      srio_id: 0,
      box_type: '',
      board_type: '',
      resource_type: '',
      cpu_type: '',
      os_type: '',
    });
    assert.deepEqual(c.service, { host: '0.0.0.0', port: 23980 });
    assert.equal(c.multicast.group, '239.192.168.80');
    assert.equal(c.multicast.port, 3980);
    assert.equal(c.multicast.interface, '');
    assert.equal(c.report.jitter_ms, 500);
    assert.equal(c.auth.disabled, false);
    assert.deepEqual(c.collect.network_exclude, ['lo', 'veth*']);
    assert.equal(c.log.level, 'info');
  });

  it('--set overrides one key each, typed by the schema', () => {
    const c = loadAgentConfig(
      undefined,
      [
        'identity.box_id=7',
        'identity.box_type=计算I型',
        'identity.cpu_type=Phytium,D2000/8',
        'identity.resource_type=123',
        'multicast.interface=127.0.0.1',
        'auth.disabled=true',
        'collect.network_exclude=[lo, docker*]',
        'report.host_ip=a=b',
      ],
      NO_ENV,
    );
    assert.equal(c.identity.box_id, 7);
    assert.equal(c.identity.box_type, '计算I型');
    assert.equal(c.identity.cpu_type, 'Phytium,D2000/8');
    assert.equal(c.identity.resource_type, '123', 'a string key keeps digits as a string');
    assert.equal(c.multicast.interface, '127.0.0.1');
    assert.equal(c.auth.disabled, true);
    assert.deepEqual(c.collect.network_exclude, ['lo', 'docker*']);
    assert.equal(c.report.host_ip, 'a=b', 'only the first = separates key and value');
    assert.equal(c.identity.slot_id, 1, 'other keys keep their defaults');
  });

  it('env overrides: MUSTER_AGENT_IDENTITY_BOX_ID=7', () => {
    assert.equal(envName('agent', 'identity.box_id'), 'MUSTER_AGENT_IDENTITY_BOX_ID');
    const c = loadAgentConfig(undefined, [], {
      MUSTER_AGENT_IDENTITY_BOX_ID: '7',
      MUSTER_AGENT_IDENTITY_BOX_TYPE: '计算I型',
      MUSTER_AGENT_AUTH_DISABLED: 'true',
      MUSTER_MANAGER_HTTP_PORT: '1', // another daemon's variable is ignored
    });
    assert.equal(c.identity.box_id, 7);
    assert.equal(c.identity.box_type, '计算I型');
    assert.equal(c.auth.disabled, true);
  });

  it('--set wins over env, env wins over the file, the file over the defaults', () => {
    const f = file('order.yaml', 'identity:\n  box_id: 3\n  slot_id: 4\n  cpu_id: 1\n');
    const c = loadAgentConfig(f, ['identity.box_id=9'], {
      MUSTER_AGENT_IDENTITY_BOX_ID: '7',
      MUSTER_AGENT_IDENTITY_SLOT_ID: '5',
    });
    assert.equal(c.identity.box_id, 9);
    assert.equal(c.identity.slot_id, 5);
    assert.equal(c.identity.cpu_id, 1);
    assert.equal(c.identity.srio_id, 0);
  });

  it('a file merges over the defaults key by key', () => {
    const f = file(
      'merge.yaml',
      ['identity:', '  box_id: 2', '  box_type: 计算I型', 'multicast:', '  interface: eth1', ''].join('\n'),
    );
    const c = loadAgentConfig(f, [], NO_ENV);
    assert.equal(c.identity.box_id, 2);
    assert.equal(c.identity.box_type, '计算I型');
    assert.equal(c.identity.slot_id, 1, 'siblings in the same section keep their defaults');
    assert.equal(c.multicast.interface, 'eth1');
    assert.equal(c.multicast.group, '239.192.168.80');
    assert.equal(c.service.port, 23980);
  });

  it('an empty file changes nothing', () => {
    const c = loadAgentConfig(file('empty.yaml', ''), [], NO_ENV);
    assert.deepEqual(c, loadAgentConfig(undefined, [], NO_ENV));
  });

  it('exec keys and labels: documented defaults, Go durations, bounded labels', () => {
    const c = loadAgentConfig(undefined, [], NO_ENV);
    assert.equal(c.exec.step_timeout, '24h');
    assert.equal(c.exec.keep, '48h');
    assert.equal(c.exec.pool_size, 30);
    assert.equal(c.exec.osreapi.port, 2376);
    assert.equal(c.exec.allow_raw, true);
    assert.equal(c.exec.commands_dir, '/etc/muster/commands');
    assert.deepEqual(c.labels, {});
    const l = loadAgentConfig(undefined, ['labels={rack: r3, role: inference}', 'exec.keep=1h30m'], NO_ENV);
    assert.deepEqual(l.labels, { rack: 'r3', role: 'inference' });
    assert.equal(l.exec.keep, '1h30m');
    configError(() => loadAgentConfig(undefined, ['exec.keep=2 days'], NO_ENV), /exec\.keep/);
    configError(() => loadAgentConfig(undefined, ['exec.pool_size=0'], NO_ENV), /exec\.pool_size/);
    configError(() => loadAgentConfig(undefined, ['labels={"bad name": x}'], NO_ENV), /labels/);
    configError(() => loadAgentConfig(undefined, [`labels={a: ${'x'.repeat(300)}}`], NO_ENV), /labels/);
    const many = `{${Array.from({ length: 65 }, (_, i) => `l${i}: v`).join(', ')}}`;
    configError(() => loadAgentConfig(undefined, [`labels=${many}`], NO_ENV), /labels/);
  });

  it('wrong types throw ConfigError naming the key', () => {
    configError(() => loadAgentConfig(undefined, ['identity.box_id=abc'], NO_ENV), /identity\.box_id/);
    configError(() => loadAgentConfig(undefined, ['identity.box_id=-1'], NO_ENV), /identity\.box_id/);
    configError(() => loadAgentConfig(undefined, ['identity.slot_id=1.5'], NO_ENV), /identity\.slot_id/);
    configError(() => loadAgentConfig(undefined, ['service.port=70000'], NO_ENV), /service\.port/);
    configError(() => loadAgentConfig(undefined, ['multicast.group=239.192.168'], NO_ENV), /multicast\.group/);
    configError(() => loadAgentConfig(undefined, ['auth.disabled=maybe'], NO_ENV), /auth\.disabled/);
    configError(() => loadAgentConfig(undefined, ['log.level=loud'], NO_ENV), /log\.level/);
    configError(() => loadAgentConfig(undefined, [], { MUSTER_AGENT_IDENTITY_BOX_ID: 'x' }), /identity\.box_id/);
    configError(
      () => loadAgentConfig(file('type.yaml', 'identity:\n  slot_id: "4"\n'), [], NO_ENV),
      /identity\.slot_id/,
      /type\.yaml/,
    );
  });

  it('unknown keys throw ConfigError naming the key', () => {
    configError(() => loadAgentConfig(undefined, ['nosuch.key=1'], NO_ENV), /nosuch\.key/);
    configError(() => loadAgentConfig(undefined, ['identity=1'], NO_ENV), /identity/);
    configError(() => loadAgentConfig(undefined, ['identity.box_idd=1'], NO_ENV), /identity\.box_idd/);
    configError(
      () => loadAgentConfig(file('unknown.yaml', 'identity:\n  box_id: 2\n  slot_idd: 4\n'), [], NO_ENV),
      /identity\.slot_idd/,
      /unknown\.yaml/,
    );
    configError(() => loadAgentConfig(file('top.yaml', 'nosuch: 1\n'), [], NO_ENV), /nosuch/);
  });

  it('an unknown key in a file is explained as such', () => {
    configError(
      () => loadAgentConfig(file('unknown2.yaml', 'identity:\n  slot_idd: 4\n'), [], NO_ENV),
      /identity\.slot_idd: is not a known key/,
    );
  });

  it('a malformed --set, a missing file and a file that is not a mapping throw ConfigError', () => {
    configError(() => loadAgentConfig(undefined, ['identity.box_id'], NO_ENV), /identity\.box_id/);
    configError(() => loadAgentConfig(undefined, ['=1'], NO_ENV), /--set/);
    configError(() => loadAgentConfig(path.join(tmp, 'nope.yaml'), [], NO_ENV), /nope\.yaml/);
    configError(() => loadAgentConfig(file('list.yaml', '- a\n- b\n'), [], NO_ENV), /list\.yaml/);
    configError(() => loadAgentConfig(file('bad.yaml', 'identity: [\n'), [], NO_ENV), /bad\.yaml/);
  });
});

describe('manager config', () => {
  it('defaults are the documented ones (docs/protocol.md port 3926, group 239.192.168.80:3980)', () => {
    const c = loadManagerConfig(undefined, [], NO_ENV);
    assert.deepEqual(c.http, {
      host: '0.0.0.0',
      port: 3926,
      body_limit_bytes: 1048576,
      max_json_depth: 32,
      metrics_auth: false,
      api: { host: '', port: 0, tls: { cert_file: '', key_file: '' } },
    });
    assert.equal(c.advertise_ip, '');
    assert.deepEqual(c.multicast, { group: '239.192.168.80', port: 3980, interface: '', ttl: 1, loopback: true });
    assert.equal(c.query.heartbeat_interval_ms, 2000);
    assert.equal(c.query.resource_interval_ms, 5000);
    assert.deepEqual(c.liveness, { suspect_after_rounds: 2, offline_after_rounds: 5 });
  });

  it('--set, env and file', () => {
    const f = file('manager.yaml', 'query:\n  heartbeat_interval_ms: 1000\nliveness:\n  offline_after_rounds: 8\n');
    const c = loadManagerConfig(f, ['http.port=13926', 'multicast.interface=127.0.0.1'], {
      MUSTER_MANAGER_HTTP_BODY_LIMIT_BYTES: '65536',
      MUSTER_MANAGER_ADVERTISE_IP: '192.168.10.254',
    });
    assert.equal(c.http.port, 13926);
    assert.equal(c.http.body_limit_bytes, 65536);
    assert.equal(c.advertise_ip, '192.168.10.254');
    assert.equal(c.multicast.interface, '127.0.0.1');
    assert.equal(c.query.heartbeat_interval_ms, 1000);
    assert.equal(c.query.resource_interval_ms, 5000);
    assert.deepEqual(c.liveness, { suspect_after_rounds: 2, offline_after_rounds: 8 });
  });

  it('offline_after_rounds must be greater than suspect_after_rounds', () => {
    configError(
      () =>
        loadManagerConfig(undefined, ['liveness.offline_after_rounds=1', 'liveness.suspect_after_rounds=2'], NO_ENV),
      /liveness\.offline_after_rounds/,
    );
    configError(
      () =>
        loadManagerConfig(undefined, ['liveness.offline_after_rounds=2', 'liveness.suspect_after_rounds=2'], NO_ENV),
      /liveness\.offline_after_rounds/,
    );
    const ok = loadManagerConfig(
      undefined,
      ['liveness.offline_after_rounds=3', 'liveness.suspect_after_rounds=2'],
      NO_ENV,
    );
    assert.deepEqual(ok.liveness, { suspect_after_rounds: 2, offline_after_rounds: 3 });
  });

  it('alert rules: defaults for temperature and disk; a bad rule throws ConfigError naming it', () => {
    const c = loadManagerConfig(undefined, [], NO_ENV);
    assert.equal(c.alerts.rules.cpu_temperature_high?.metric, 'cpu.temperature');
    assert.equal(c.alerts.rules.disk_usage_high?.metric, 'disk.usage_percent');
    const set = (v: string) => () => loadManagerConfig(undefined, [`alerts.rules=${v}`], NO_ENV);
    configError(
      set('{x: {metric: cpu.temprature, op: ">", threshold: 1}}'),
      /alerts\.rules\.x\.metric: unknown metric "cpu\.temprature"; known: /,
    );
    configError(set('{Bad: {metric: cpu.power, op: ">", threshold: 1}}'), /alerts\.rules\.Bad/);
    configError(set('{x: 5}'), /alerts\.rules\.x: must be object/);
    configError(set('{x: {metric: cpu.power, op: "=>", threshold: 1}}'), /alerts\.rules\.x\.op/);
    configError(set('{x: {metric: cpu.power, op: ">", threshold: 1, for_ms: -1}}'), /alerts\.rules\.x\.for_ms/);
    configError(() => loadManagerConfig(undefined, ['store.retention.days=-1'], NO_ENV), /store\.retention\.days/);
    configError(
      () => loadManagerConfig(undefined, ['store.retention.max_rows=-5'], NO_ENV),
      /store\.retention\.max_rows/,
    );
    configError(
      () => loadManagerConfig(undefined, ['telemetry.influxdb.buffer_points=0'], NO_ENV),
      /telemetry\.influxdb\.buffer_points/,
    );
    configError(
      () => loadManagerConfig(undefined, ['telemetry.influxdb.url=localhost:8086'], NO_ENV),
      /telemetry\.influxdb\.url: .* must be http/,
    );
    configError(
      () => loadManagerConfig(undefined, ['telemetry.influxdb.url=not a url'], NO_ENV),
      /telemetry\.influxdb\.url: cannot read/,
    );
  });

  it('wrong types and unknown keys throw ConfigError naming the key', () => {
    configError(() => loadManagerConfig(undefined, ['http.port=0'], NO_ENV), /http\.port/);
    configError(() => loadManagerConfig(undefined, [], { MUSTER_MANAGER_HTTP_PORT: '70000' }), /http\.port/);
    configError(() => loadManagerConfig(undefined, ['http.body_limit_bytes=100'], NO_ENV), /http\.body_limit_bytes/);
    configError(() => loadManagerConfig(undefined, ['multicast.loopback=maybe'], NO_ENV), /multicast\.loopback/);
    configError(() => loadManagerConfig(undefined, ['multicast.ttl=256'], NO_ENV), /multicast\.ttl/);
    configError(() => loadManagerConfig(undefined, ['identity.box_id=1'], NO_ENV), /identity\.box_id/);
    configError(() => loadManagerConfig(file('m-unknown.yaml', 'http:\n  prot: 1\n'), [], NO_ENV), /http\.prot/);
  });
});

describe('merge', () => {
  it('merges objects deeply and replaces everything else', () => {
    assert.deepEqual(merge({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, e: 2 }), {
      a: { b: 1, c: [3] },
      d: 1,
      e: 2,
    });
  });
});

it('a bad value names where it came from: env var or --set', () => {
  assert.throws(
    () => loadAgentConfig(undefined, undefined, { MUSTER_AGENT_IDENTITY_BOX_ID: 'abc' }),
    /identity\.box_id.*from MUSTER_AGENT_IDENTITY_BOX_ID/,
  );
  assert.throws(() => loadAgentConfig(undefined, ['service.port=0'], {}), /service\.port.*from --set/);
});
