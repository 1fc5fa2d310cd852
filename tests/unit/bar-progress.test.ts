/**
 * The supervisor's progress lines (agent/deploy/supervisor.ts, GET /deploy/:uuid): kept while an
 * operation runs, forgotten progressKeepMs after it ends and bounded in count, redacted of URL
 * credentials; a failed start gives its cores back and stores no credentials in the records.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { DeployError, RESULT } from '../../agent/deploy/results.js';
import { Supervisor } from '../../agent/deploy/supervisor.js';
import type { Progress, StartSpec, WorkloadDriver } from '../../agent/drivers/driver.js';
import type { DeployRequestData } from '../../common/protocol.js';

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-progress-unit-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A bar driver that reports the url it was given, then succeeds or fails. */
function fakeDriver(fail: (spec: StartSpec) => boolean): WorkloadDriver {
  return {
    type: 'bar',
    validate: () => null,
    async start(spec: StartSpec, progress: Progress) {
      progress(`fetching ${spec.url}/${spec.file}`);
      if (fail(spec)) throw new DeployError(RESULT.FETCH_FAILED, `fetching ${spec.url}/${spec.file}: refused`);
      return { id: '4242', name: spec.file };
    },
    stop: async () => undefined,
    observe: async () => new Map(),
    adopt: async () => new Map(),
  };
}

const start = (uuid: string, url = 'http://127.0.0.1:9/b'): DeployRequestData => ({
  mode: 'start',
  type: 'bar',
  uuid,
  url,
  file: 'x.bar',
  require: { cpu: 1, memory: 0, gpu: 0 },
});

let n = 0;
function supervisor(opts: { progressKeepMs?: number; progressMaxEntries?: number; fail?: (s: StartSpec) => boolean }) {
  const dataDir = path.join(tmp, `d${++n}`);
  const sup = new Supervisor(
    { bar: fakeDriver(opts.fail ?? (() => false)) },
    () => ({ cores: [0, 1], memoryBytes: 1 << 30, gpus: [] }),
    {
      dataDir,
      stopGraceMs: 100,
      keepEndedMs: 1000,
      ...(opts.progressKeepMs !== undefined ? { progressKeepMs: opts.progressKeepMs } : {}),
      ...(opts.progressMaxEntries !== undefined ? { progressMaxEntries: opts.progressMaxEntries } : {}),
    },
    pino({ level: 'silent' }),
  );
  return { sup, dataDir };
}

describe('supervisor progress', () => {
  test('an ended operation’s lines are forgotten after progressKeepMs', async () => {
    const { sup } = supervisor({ progressKeepMs: 100 });
    await sup.init();
    assert.equal((await sup.handle(start('p1'))).reply.result, 0);
    assert.deepEqual(sup.progressOf('p1'), ['fetching http://127.0.0.1:9/b/x.bar']);
    await new Promise((r) => setTimeout(r, 150));
    assert.deepEqual(sup.progressOf('p1'), []);
    assert.equal(sup.progressEntries(), 0);
  });

  test('at most progressMaxEntries uuids are remembered; the oldest ended go first', async () => {
    const { sup } = supervisor({ progressMaxEntries: 3, fail: () => true });
    await sup.init();
    for (let i = 0; i < 10; i++) assert.equal((await sup.handle(start(`q${i}`))).reply.result, RESULT.FETCH_FAILED);
    assert.equal(sup.progressEntries(), 3);
    assert.deepEqual(sup.progressOf('q0'), []);
    assert.equal(sup.progressOf('q9').length, 1);
  });

  test('credentials in the url reach the driver but not the lines, the reply message or the records', async () => {
    const { sup, dataDir } = supervisor({ fail: (s) => s.uuid === 'bad' });
    await sup.init();
    const seen: string[] = [];
    const url = 'http://user:hunter2@127.0.0.1:9/b?token=s3cr3t';
    const ok = await sup.handle(start('good', url));
    assert.equal(ok.reply.result, 0);
    const bad = await sup.handle(start('bad', url));
    assert.equal(bad.reply.result, RESULT.FETCH_FAILED);
    seen.push(bad.reply.message, ...sup.progressOf('good'), ...sup.progressOf('bad'));
    seen.push(await readFile(path.join(dataDir, 'components.json'), 'utf8'));
    for (const s of seen) {
      assert.ok(!s.includes('hunter2') && !s.includes('s3cr3t'), s);
    }
    assert.match(bad.reply.message, /http:\/\/\*\*\*@127\.0\.0\.1:9\/b\?token=\*\*\*/);
    // The failed start gave its core back: two more single-core starts fit beside 'good'.
    assert.equal((await sup.handle(start('c2'))).reply.result, 0);
  });
});
