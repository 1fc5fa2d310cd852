/**
 * The supervisor's own logic (admission, idempotency, cleanup, persistence, re-adoption) with an
 * in-memory driver. The real drivers are tested against dockerd and real processes in tests/e2e.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import pino from 'pino';
import { admit, cpuList } from '../../agent/deploy/admission.js';
import { DeployError, RESULT } from '../../agent/deploy/results.js';
import { upgradeRecord } from '../../agent/deploy/store.js';
import { Supervisor } from '../../agent/deploy/supervisor.js';
import { barState } from '../../agent/drivers/bar/driver.js';
import type { ComponentRecord, Observed, StartSpec, WorkloadDriver } from '../../agent/drivers/driver.js';
import type { DeployRequestData } from '../../common/protocol.js';

const log = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'muster-sup-'));
  dirs.push(d);
  return d;
};

/** An in-memory runtime: "processes" are entries of a map. */
class MemDriver implements WorkloadDriver {
  readonly type = 'bar' as const;
  running = new Map<string, StartSpec>();
  exited = new Map<string, number>();
  failNext: DeployError | null = null;
  starts = 0;
  validate(url: string) {
    return /^https?:\/\//.test(url) ? null : `url ${url}: must be http(s)`;
  }
  async start(spec: StartSpec) {
    this.starts++;
    if (this.failNext) {
      const e = this.failNext;
      this.failNext = null;
      throw e;
    }
    this.running.set(spec.uuid, spec);
    return {
      id: String(1000 + this.starts),
      name: spec.file,
      driverState: { pid: 1000 + this.starts, pidStartTicks: 1 },
    };
  }
  async stop(rec: ComponentRecord) {
    this.running.delete(rec.uuid);
  }
  async observe(recs: readonly ComponentRecord[]) {
    const out = new Map<string, Observed>();
    const res = { cpu: { load: 1 }, memory: { mem_used: MiB, mem_limit: 64 * MiB }, network: { tx: null, rx: null } };
    for (const r of recs) {
      const code = this.exited.get(r.uuid);
      if (code !== undefined)
        out.set(r.uuid, { state: code === 0 ? 'STOPPED' : 'FAILED', exitCode: code, resource: res });
      else if (this.running.has(r.uuid)) out.set(r.uuid, { state: 'RUNNING', resource: res });
    }
    return out;
  }
  async adopt(recs: readonly ComponentRecord[]) {
    return new Map(recs.map((r) => [r.uuid, this.running.has(r.uuid)]));
  }
  replyId(rec: ComponentRecord) {
    return barState(rec).pid ?? rec.id;
  }
}

const cap = { cores: [0, 1, 2, 3], memoryBytes: 1024 * MiB, gpus: [] as number[] };
const start = (uuid: string, cpu = 1, memory = 64 * MiB): DeployRequestData => ({
  mode: 'start',
  type: 'bar',
  uuid,
  url: 'http://127.0.0.1:1',
  file: 'app.tgz',
  require: { cpu, memory, gpu: 0 },
});
const stop = (uuid: string): DeployRequestData => ({ mode: 'stop', type: 'bar', uuid });
const signal = () => AbortSignal.timeout(1000);

describe('admission', () => {
  it('grants the lowest free cores and refuses what does not fit, saying what is short', () => {
    assert.deepEqual(admit(cap, [{ cpus: [0], gpus: [], memory: 0 }], { cpu: 2, memory: MiB, gpu: 0 }), {
      cpus: [1, 2],
      gpus: [],
    });
    const r = admit(cap, [{ cpus: [0, 1, 2], gpus: [], memory: 1000 * MiB }], { cpu: 2, memory: 64 * MiB, gpu: 1 });
    assert.ok('short' in r);
    assert.match(r.short, /cpu: need 2 cores, 1 free \(of 4 allocatable\)/);
    assert.match(r.short, /memory: need 64 MiB, 24 MiB free/);
    assert.match(r.short, /gpu: need 1, 0 free/);
  });
  it('formats cpu lists as ranges', () => {
    assert.equal(cpuList([3, 0, 1, 2, 6]), '0-3,6');
    assert.equal(cpuList([5]), '5');
  });
});

describe('supervisor', () => {
  it('starts, is idempotent per uuid, counts cores, stops idempotently', async () => {
    const d = new MemDriver();
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: tmp(), stopGraceMs: 10, keepEndedMs: 60_000 }, log);
    await sup.init();
    const a = await sup.handle(start('u1', 2));
    assert.equal(a.reply.result, RESULT.OK, a.reply.message);
    assert.equal(a.reply.id, 1001);
    const again = await sup.handle(start('u1', 2));
    assert.equal(again.reply.result, RESULT.OK);
    assert.match(again.reply.message, /already running/);
    assert.equal(d.starts, 1);
    let snap = await sup.snapshot(signal());
    assert.equal(snap.coreAllocated, 2);
    assert.equal(snap.components[0]?.state, 'RUNNING');
    assert.equal(snap.components[0]?.config.id, '1001');
    const s1 = await sup.handle(stop('u1'));
    assert.equal(s1.reply.result, RESULT.OK);
    const s2 = await sup.handle(stop('u1'));
    assert.equal(s2.reply.result, RESULT.OK);
    assert.match(s2.reply.message, /already stopped/);
    snap = await sup.snapshot(signal());
    assert.equal(snap.coreAllocated, 0);
  });

  it('refuses what does not fit and unknown stops, with the right codes', async () => {
    const sup = new Supervisor(
      { bar: new MemDriver() },
      () => cap,
      { dataDir: tmp(), stopGraceMs: 10, keepEndedMs: 0 },
      log,
    );
    await sup.init();
    assert.equal((await sup.handle(start('big', 5))).reply.result, RESULT.INSUFFICIENT_RESOURCES);
    assert.equal((await sup.handle(start('zero', 0))).reply.result, RESULT.BAD_REQUEST);
    assert.equal((await sup.handle({ ...start('f'), file: '../x' })).reply.result, RESULT.BAD_REQUEST);
    assert.equal((await sup.handle({ ...start('u'), url: 'ftp://x' })).reply.result, RESULT.BAD_REQUEST);
    assert.equal((await sup.handle({ ...start('d'), type: 'docker' })).reply.result, RESULT.RUNTIME_ERROR);
    assert.equal((await sup.handle(stop('nobody'))).reply.result, RESULT.NOT_FOUND);
    const { url: _u, ...noUrl } = start('nourl');
    assert.equal((await sup.handle(noUrl)).reply.result, RESULT.BAD_REQUEST);
  });

  it('a failed start leaves no record and gives its cores back', async () => {
    const d = new MemDriver();
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: tmp(), stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup.init();
    d.failNext = new DeployError(RESULT.FETCH_FAILED, 'http 404');
    const r = await sup.handle(start('f1', 4));
    assert.equal(r.reply.result, RESULT.FETCH_FAILED);
    assert.equal(sup.list().length, 0);
    assert.equal((await sup.handle(start('f2', 4))).reply.result, RESULT.OK);
  });

  it('a workload that exits on its own becomes FAILED with its code and frees its cores', async () => {
    const d = new MemDriver();
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: tmp(), stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup.init();
    await sup.handle(start('e1', 4));
    d.exited.set('e1', 3);
    const snap = await sup.snapshot(signal());
    assert.equal(snap.components[0]?.state, 'FAILED');
    assert.equal(snap.coreAllocated, 0);
    assert.equal(sup.list()[0]?.exitCode, 3);
  });

  it('records survive a restart: running ones are re-adopted, vanished ones marked FAILED', async () => {
    const dir = tmp();
    const d = new MemDriver();
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: dir, stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup.init();
    await sup.handle(start('keep'));
    await sup.handle(start('lost'));
    const saved = JSON.parse(readFileSync(path.join(dir, 'components.json'), 'utf8'));
    assert.equal(saved.components.length, 2);
    d.running.delete('lost'); // vanished while the agent was down
    const sup2 = new Supervisor({ bar: d }, () => cap, { dataDir: dir, stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup2.init();
    const byUuid = new Map(sup2.list().map((r) => [r.uuid, r]));
    assert.equal(byUuid.get('keep')?.state, 'RUNNING');
    assert.equal(byUuid.get('lost')?.state, 'FAILED');
    assert.match(byUuid.get('lost')?.message ?? '', /vanished/);
    assert.equal((await sup2.snapshot(signal())).coreAllocated, 1);
  });

  it('serializes operations on one uuid', async () => {
    const d = new MemDriver();
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: tmp(), stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup.init();
    const [a, b] = await Promise.all([sup.handle(start('c1')), sup.handle(start('c1'))]);
    assert.equal(a.reply.result, RESULT.OK);
    assert.equal(b.reply.result, RESULT.OK);
    assert.equal(d.starts, 1);
  });
});

describe('supervisor input hardening', () => {
  it('refuses a uuid that could name a path outside the data dir, and touches nothing', async () => {
    const dir = tmp();
    const sup = new Supervisor(
      { bar: new MemDriver() },
      () => cap,
      { dataDir: dir, stopGraceMs: 10, keepEndedMs: 0 },
      log,
    );
    await sup.init();
    for (const uuid of ['../../victim', 'a/b', '..', '.hidden', 'x'.repeat(200), '']) {
      const r = await sup.handle(start(uuid));
      assert.equal(r.reply.result, RESULT.BAD_REQUEST, uuid);
      assert.match(r.reply.message, /uuid/);
    }
    assert.equal(sup.list().length, 0);
  });

  it('an unreadable record file is set aside, not overwritten', async () => {
    const dir = tmp();
    const { writeFileSync, readdirSync } = await import('node:fs');
    writeFileSync(path.join(dir, 'components.json'), '{ not json');
    const sup = new Supervisor(
      { bar: new MemDriver() },
      () => cap,
      { dataDir: dir, stopGraceMs: 10, keepEndedMs: 0 },
      log,
    );
    await sup.init();
    const bad = readdirSync(dir).filter((f) => f.startsWith('components.json.bad-'));
    assert.equal(bad.length, 1);
    assert.equal(readFileSync(path.join(dir, bad[0] as string), 'utf8'), '{ not json');
  });

  it('reads a components.json of an older agent (bar pid at the top level) and re-adopts from it', async () => {
    const dir = tmp();
    const { writeFileSync } = await import('node:fs');
    const old = {
      uuid: 'legacy-1',
      type: 'bar',
      instance_id: 'i',
      index: 0,
      url: 'http://127.0.0.1:1',
      file: 'app.tgz',
      require: { cpu: 1, memory: MiB, gpu: 0 },
      cpus: [1],
      gpus: [],
      state: 'RUNNING',
      id: '4242',
      name: 'app',
      pid: 4242,
      pidStartTicks: 777,
      createdAt: new Date().toISOString(),
    };
    writeFileSync(path.join(dir, 'components.json'), JSON.stringify({ version: 1, components: [old] }));
    const seen: ComponentRecord[] = [];
    const d = new MemDriver();
    d.adopt = async (recs: readonly ComponentRecord[]) => {
      seen.push(...recs);
      return new Map(recs.map((r) => [r.uuid, barState(r).pid === 4242 && barState(r).pidStartTicks === 777]));
    };
    const sup = new Supervisor({ bar: d }, () => cap, { dataDir: dir, stopGraceMs: 10, keepEndedMs: 0 }, log);
    await sup.init();
    assert.deepEqual(barState(seen[0] as ComponentRecord), { pid: 4242, pidStartTicks: 777 });
    const rec = sup.list()[0] as ComponentRecord & { pid?: unknown };
    assert.equal(rec.state, 'RUNNING', 're-adopted');
    assert.equal(rec.pid, undefined, 'the old top-level key is gone');
    const saved = JSON.parse(readFileSync(path.join(dir, 'components.json'), 'utf8'));
    assert.deepEqual(saved.components[0].driverState, { pid: 4242, pidStartTicks: 777 });
    assert.equal(saved.components[0].pid, undefined);
    // A stop by the pid the reply named (an int) finds it.
    const r = await sup.handle({ mode: 'stop', type: 'bar', uuid: 'other', id: 4242 });
    assert.equal(r.reply.result, RESULT.OK, r.reply.message);
    assert.equal(r.reply.id, 4242);
  });

  it('upgradeRecord leaves a current record alone', () => {
    const cur = { uuid: 'c', driverState: { pid: 1, pidStartTicks: 2 } } as unknown as ComponentRecord;
    assert.deepEqual(upgradeRecord(cur), cur);
  });
});
