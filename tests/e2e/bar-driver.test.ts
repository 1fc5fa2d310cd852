/**
 * The bar driver with real processes and real cgroups: bundles served by a node:http server on
 * 127.0.0.1, started with a core and a memory limit, checked from /proc and the cgroup files,
 * observed, stopped (the whole group, children included), re-adopted, and the cached blob reused
 * through a conditional GET. Fetch failures (404, closed port, too large, too slow, not a bundle)
 * need no root and run everywhere.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { create } from 'tar';
import { DeployError, RESULT } from '../../agent/deploy/results.js';
import { barState, createBarDriver } from '../../agent/drivers/bar/driver.js';
import { groupAlive } from '../../agent/drivers/bar/proc.js';
import type { ComponentRecord, Observed, Started, StartSpec, WorkloadDriver } from '../../agent/drivers/driver.js';
import { createLogger } from '../../common/log.js';
import type { Require } from '../../common/protocol.js';
import { waitFor } from '../helpers/daemons.js';
import { missingRoot, needs } from '../helpers/need.js';

const MiB = 1024 * 1024;
const REQ: Require = { cpu: 1, memory: 64 * MiB, gpu: 0 };
const CG = '/sys/fs/cgroup';
const log = createLogger('test', 'silent');

/** A tiny bundle server: files by name, ETag + If-None-Match, request log, special routes. */
class BundleServer {
  readonly files = new Map<string, Buffer>();
  readonly requests: { path: string; ifNoneMatch: string | undefined; status: number }[] = [];
  private server = http.createServer((req, res) => this.handle(req, res));
  port = 0;

  async start(): Promise<void> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
  }
  get base(): string {
    return `http://127.0.0.1:${this.port}/bundles`;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }
  downloads(name: string): number {
    return this.requests.filter((r) => r.path === `/bundles/${name}` && r.status === 200).length;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    const inm = req.headers['if-none-match'];
    const done = (status: number) => this.requests.push({ path: url, ifNoneMatch: inm, status });
    if (url === '/bundles/huge-declared.bar') {
      done(200);
      res.writeHead(200, { 'content-length': String(50 * MiB) });
      res.end(Buffer.alloc(1024));
      return;
    }
    if (url === '/bundles/huge-streamed.bar') {
      // No Content-Length: the driver must count and abort.
      done(200);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const push = (): void => {
        if (res.destroyed || sent > 50 * MiB) return void res.end();
        sent += 64 * 1024;
        if (res.write(Buffer.alloc(64 * 1024, 1))) setImmediate(push);
        else res.once('drain', push);
      };
      push();
      return;
    }
    if (url === '/bundles/slow.bar') {
      done(200);
      res.writeHead(200);
      res.write('#!/bin/sh\n');
      return; // never ends
    }
    const name = url.startsWith('/bundles/') ? decodeURIComponent(url.slice('/bundles/'.length)) : '';
    const body = this.files.get(name);
    if (!body) {
      done(404);
      res.writeHead(404).end('not found');
      return;
    }
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    if (inm === etag) {
      done(304);
      res.writeHead(304, { etag }).end();
      return;
    }
    done(200);
    res.writeHead(200, { etag, 'content-length': String(body.length) }).end(body);
  }
}

/** A gzip tar of `files` (name → [content, mode]) built with node-tar. */
async function bundle(dir: string, files: Record<string, [string, number?]>): Promise<Buffer> {
  const src = path.join(dir, `src-${Math.random().toString(36).slice(2)}`);
  await mkdir(src, { recursive: true });
  for (const [name, [content, mode]] of Object.entries(files)) {
    await writeFile(path.join(src, name), content);
    await chmod(path.join(src, name), mode ?? 0o644);
  }
  const out = `${src}.tgz`;
  await create({ gzip: true, file: out, cwd: src, portable: true }, Object.keys(files));
  return readFile(out);
}

const LOOP_SH = `#!/bin/sh
echo "started $MUSTER_UUID index=$MUSTER_INDEX mode=$MODE"
sleep 1000 &
echo "child $!"
while true; do sleep 1; done
`;

/** Shared fixture: server, temp dirs, driver factory, spec/record helpers, cleanup. */
function fixture() {
  const fx = {
    server: new BundleServer(),
    tmp: '',
    started: [] as { driver: WorkloadDriver; rec: ComponentRecord }[],
    n: 0,
    mkDriver(over: Partial<Parameters<typeof createBarDriver>[0]> = {}): WorkloadDriver {
      return createBarDriver({
        cgroupRoot: CG,
        fetchTimeoutMs: 5000,
        maxBundleBytes: MiB,
        logMaxBytes: MiB,
        cacheDir: path.join(fx.tmp, 'cache'),
        componentsDir: path.join(fx.tmp, 'components'),
        log,
        ...over,
      });
    },
    async spec(file: string, over: Partial<StartSpec> = {}): Promise<StartSpec> {
      const uuid = `mt-bar-${process.pid}-${++fx.n}`;
      const workDir = path.join(fx.tmp, 'components', uuid);
      await mkdir(workDir, { recursive: true }); // as the supervisor does
      return {
        uuid,
        instance_id: 'inst-1',
        index: 2,
        url: fx.server.base,
        file,
        require: REQ,
        cpus: [os.cpus().length > 1 ? 1 : 0],
        gpus: [],
        workDir,
        ...over,
      };
    },
    record(spec: StartSpec, s: Started): ComponentRecord {
      return {
        uuid: spec.uuid,
        type: 'bar',
        instance_id: spec.instance_id,
        index: spec.index,
        url: spec.url,
        file: spec.file,
        require: spec.require,
        cpus: spec.cpus,
        gpus: spec.gpus,
        state: 'RUNNING',
        id: s.id,
        name: s.name,
        driverState: s.driverState,
        createdAt: new Date().toISOString(),
      };
    },
    async start(driver: WorkloadDriver, spec: StartSpec): Promise<ComponentRecord> {
      const lines: string[] = [];
      const s = await driver.start(spec, (l) => lines.push(l));
      const rec = fx.record(spec, s);
      fx.started.push({ driver, rec });
      return rec;
    },
  };
  before(async () => {
    fx.tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-bar-e2e-'));
    await fx.server.start();
  });
  after(async () => {
    for (const { driver, rec } of fx.started) await driver.stop(rec, 500).catch(() => undefined);
    await fx.server.stop();
    await rm(fx.tmp, { recursive: true, force: true });
  });
  return fx;
}

const observeOne = async (driver: WorkloadDriver, rec: ComponentRecord): Promise<Observed> => {
  const m = await driver.observe([rec], AbortSignal.timeout(10_000));
  const o = m.get(rec.uuid);
  assert.ok(o, 'observe returns the record');
  return o;
};

/** A live process: /proc/<pid>/stat exists and it is not a zombie (reaping by pid 1 may lag). */
const alive = (pid: number): boolean => {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^[ZXx]/.test(st.slice(st.lastIndexOf(')') + 2));
  } catch {
    return false;
  }
};

const statFields = async (pid: number): Promise<string[]> => {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' '); // [0] = field 3
};

const cgDirs = (uuid: string) => ({
  cpuset: path.join(CG, 'cpuset', 'muster', uuid),
  memory: path.join(CG, 'memory', 'muster', uuid),
});

async function rejectsWith(p: Promise<unknown>, code: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DeployError, `expected a DeployError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.message, re);
    return true;
  });
}

describe('bar driver: real processes and cgroups', needs(missingRoot('cgroups')), () => {
  const fx = fixture();
  let driver: WorkloadDriver;

  before(async () => {
    driver = fx.mkDriver();
    fx.server.files.set(
      'loop.bar',
      await bundle(fx.tmp, {
        'bar.yaml': ['name: looper\nversion: "1.2"\ncommand: [./run.sh]\nenv: { MODE: fast }\n'],
        'run.sh': [LOOP_SH, 0o755],
      }),
    );
    fx.server.files.set(
      'exit3.bar',
      await bundle(fx.tmp, {
        'bar.yaml': ['name: quitter\nversion: "1"\ncommand: [./run.sh]\n'],
        'run.sh': ['#!/bin/sh\nsleep 1\nexit 3\n', 0o755],
      }),
    );
    fx.server.files.set(
      'stubborn.bar',
      await bundle(fx.tmp, {
        'bar.yaml': ['name: stubborn\nversion: "1"\ncommand: [./run.sh]\nstop_grace_ms: 300\n'],
        'run.sh': ["#!/bin/sh\ntrap '' TERM\nwhile true; do sleep 1; done\n", 0o755],
      }),
    );
    fx.server.files.set(
      'nocmd.bar',
      await bundle(fx.tmp, { 'bar.yaml': ['name: x\nversion: "1"\ncommand: [./missing.sh]\n'] }),
    );
    fx.server.files.set('one.sh', Buffer.from('#!/bin/sh\nwhile true; do echo tick; sleep 1; done\n'));
  });

  test('a bundle runs pinned, capped, in its own group; observe, adopt, stop the whole group', async () => {
    const spec = await fx.spec('loop.bar');
    const core = spec.cpus[0] as number;
    const rec = await fx.start(driver, spec);
    const pid = barState(rec).pid as number;
    assert.equal(rec.id, String(pid));
    assert.equal(rec.name, 'looper');
    assert.ok(alive(pid));

    const status = await waitFor('pinned affinity', async () => {
      const s = await readFile(`/proc/${pid}/status`, 'utf8');
      return /^Cpus_allowed_list:\s*(\S+)/m.exec(s)?.[1] === String(core) ? s : null;
    });
    assert.match(status, /Cpus_allowed_list:\s*\d/);

    const dirs = cgDirs(spec.uuid);
    assert.equal((await readFile(path.join(dirs.memory, 'memory.limit_in_bytes'), 'utf8')).trim(), '67108864');
    assert.equal((await readFile(path.join(dirs.cpuset, 'cpuset.cpus'), 'utf8')).trim(), String(core));
    const memProcs = (await readFile(path.join(dirs.memory, 'cgroup.procs'), 'utf8')).split('\n');
    assert.ok(memProcs.includes(String(pid)), 'pid is in the memory cgroup');
    const procCg = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    assert.match(procCg, new RegExp(`memory:/muster/${spec.uuid}$`, 'm'));
    assert.match(procCg, new RegExp(`cpuset:/muster/${spec.uuid}$`, 'm'));

    const fields = await statFields(pid);
    assert.equal(fields[2], String(pid), 'pgid == pid (own process group)');
    assert.equal(Number(fields[19]), barState(rec).pidStartTicks, 'start ticks = field 22');

    const out = await waitFor('stdout.log output', async () => {
      const t = await readFile(path.join(spec.workDir, 'stdout.log'), 'utf8');
      return /child \d+/.test(t) ? t : null;
    });
    assert.match(out, new RegExp(`started ${spec.uuid} index=2 mode=fast`));
    const childPid = Number(/child (\d+)/.exec(out)?.[1]);
    assert.ok(alive(childPid), 'the child the script spawned runs');
    assert.equal((await statFields(childPid))[2], String(pid), 'the child is in the group');

    const run = JSON.parse(await readFile(path.join(spec.workDir, 'run.json'), 'utf8'));
    assert.equal(run.pid, pid);
    assert.equal(run.stopSignal, 'SIGTERM');
    assert.equal(run.pidStartTicks, barState(rec).pidStartTicks);
    assert.ok(existsSync(path.join(spec.workDir, 'bundle', 'bar.yaml')));

    const o1 = await observeOne(driver, rec);
    assert.equal(o1.state, 'RUNNING');
    assert.equal(o1.resource.cpu.load, null, 'no load on the first sample');
    assert.equal(o1.resource.memory.mem_limit, 64 * MiB);
    assert.ok((o1.resource.memory.mem_used ?? 0) > 0, 'mem_used from the cgroup');
    assert.deepEqual(o1.resource.network, { tx: null, rx: null });
    await new Promise((r) => setTimeout(r, 300));
    const o2 = await observeOne(driver, rec);
    assert.equal(o2.state, 'RUNNING');
    assert.equal(typeof o2.resource.cpu.load, 'number');

    // A fresh driver (as after an agent restart) re-adopts by pid + start ticks.
    const again = fx.mkDriver();
    assert.equal((await again.adopt([rec])).get(rec.uuid), true);
    // Same pid, wrong start ticks: not ours (another uuid, so that the clean-up adopt does for a
    // record that is not running does not touch this workload's cgroups).
    const wrong = {
      ...rec,
      uuid: 'mt-bar-not-this-one',
      driverState: { ...rec.driverState, pidStartTicks: (barState(rec).pidStartTicks as number) + 1 },
    };
    assert.equal((await again.adopt([wrong])).get(wrong.uuid), false);
    assert.ok(alive(pid), 'adopt of a wrong tick value signals nothing');
    assert.equal((await again.observe([rec], AbortSignal.timeout(5000))).get(rec.uuid)?.state, 'RUNNING');

    // A wrong tick value is never signalled.
    await again.stop(wrong, 200);
    assert.ok(alive(pid), 'a pid whose start ticks differ is left alone');

    await driver.stop(rec, 5000);
    assert.equal(alive(pid), false, 'leader gone');
    assert.equal(alive(childPid), false, 'child gone');
    assert.equal(await groupAlive(pid), false, 'whole group gone');
    assert.equal(existsSync(dirs.memory), false, 'memory cgroup removed');
    assert.equal(existsSync(dirs.cpuset), false, 'cpuset cgroup removed');
    await driver.stop(rec, 5000); // already gone = success
  });

  test('the cached blob is reused on a second start (conditional GET, 304)', async () => {
    const before = fx.server.downloads('loop.bar');
    assert.ok(before >= 1, 'fetched by the first test');
    const spec = await fx.spec('loop.bar');
    const rec = await fx.start(driver, spec);
    assert.equal(fx.server.downloads('loop.bar'), before, 'no second download');
    const last = fx.server.requests.filter((r) => r.path === '/bundles/loop.bar').at(-1);
    assert.equal(last?.status, 304);
    assert.ok(last?.ifNoneMatch, 'conditional request sent');
    const blobs = (await readdir(path.join(fx.tmp, 'cache'))).filter((f) => /^[0-9a-f]{64}$/.test(f));
    assert.ok(blobs.length >= 1);
    await driver.stop(rec, 5000);
  });

  test('a workload that exits 3 is observed FAILED with exitCode 3, its cgroups removed', async () => {
    const spec = await fx.spec('exit3.bar');
    const rec = await fx.start(driver, spec);
    assert.equal((await observeOne(driver, rec)).state, 'RUNNING');
    const o = await waitFor(
      'exit observed',
      async () => {
        const x = await observeOne(driver, rec);
        return x.state !== 'RUNNING' ? x : null;
      },
      8000,
    );
    assert.equal(o.state, 'FAILED');
    assert.equal(o.exitCode, 3);
    const dirs = cgDirs(spec.uuid);
    assert.equal(existsSync(dirs.memory), false);
    assert.equal(existsSync(dirs.cpuset), false);
  });

  test('a re-adopted workload that ends is FAILED with exitCode null (code unknown)', async () => {
    const spec = await fx.spec('exit3.bar');
    const rec = await fx.start(driver, spec);
    const other = fx.mkDriver();
    assert.equal((await other.adopt([rec])).get(rec.uuid), true);
    await waitFor('leader gone', () => !alive(barState(rec).pid as number), 8000, 100);
    const o = await observeOne(other, rec);
    assert.equal(o.state, 'FAILED');
    assert.equal(o.exitCode, null);
  });

  test('a workload that ignores the stop signal is killed after the grace period', async () => {
    const spec = await fx.spec('stubborn.bar');
    const rec = await fx.start(driver, spec);
    await new Promise((r) => setTimeout(r, 200));
    const t0 = Date.now();
    await driver.stop(rec, 30_000); // bar.yaml's stop_grace_ms (300) wins
    const took = Date.now() - t0;
    assert.ok(took >= 280 && took < 5000, `stop took ${took} ms`);
    assert.equal(await groupAlive(barState(rec).pid as number), false, 'whole group gone');
  });

  test('a plain #!/bin/sh script served directly is a bundle of one', async () => {
    const spec = await fx.spec('one.sh');
    const rec = await fx.start(driver, spec);
    assert.equal(rec.name, 'one.sh');
    assert.equal(((await stat(path.join(spec.workDir, 'bundle', 'one.sh'))).mode & 0o777).toString(8), '755');
    await waitFor('tick', async () => (await readFile(path.join(spec.workDir, 'stdout.log'), 'utf8')).includes('tick'));
    assert.equal((await observeOne(driver, rec)).state, 'RUNNING');
    await driver.stop(rec, 5000);
    assert.equal(alive(barState(rec).pid as number), false);
  });

  test('a command missing from the bundle fails the start and leaves no cgroup', async () => {
    const spec = await fx.spec('nocmd.bar');
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.RUNTIME_ERROR,
      /missing\.sh/,
    );
    const dirs = cgDirs(spec.uuid);
    assert.equal(existsSync(dirs.memory), false);
    assert.equal(existsSync(dirs.cpuset), false);
  });

  test('logs are bounded: rotated to .1 past logMaxBytes', async () => {
    const chatty = fx.mkDriver({ logMaxBytes: 4096, logCheckMs: 100 });
    fx.server.files.set(
      'chatty.sh',
      Buffer.from("#!/bin/sh\nwhile true; do head -c 2000 /dev/zero | tr '\\0' x; echo; sleep 0.05; done\n"),
    );
    const spec = await fx.spec('chatty.sh');
    const rec = await fx.start(chatty, spec);
    const log1 = path.join(spec.workDir, 'stdout.log.1');
    await waitFor('rotation', () => existsSync(log1), 8000, 100);
    await new Promise((r) => setTimeout(r, 1500));
    const size = (await stat(path.join(spec.workDir, 'stdout.log'))).size;
    assert.ok(size < 32 * 1024, `stdout.log stays bounded (${size} bytes)`);
    await chatty.stop(rec, 2000);
  });
});

describe('bar driver: fetch failures', () => {
  const fx = fixture();
  let driver: WorkloadDriver;
  before(async () => {
    driver = fx.mkDriver();
    fx.server.files.set('notes.txt', Buffer.from('plain text, not a bundle\n'));
  });

  const noTempFiles = async (): Promise<void> => {
    const left = (await readdir(path.join(fx.tmp, 'cache')).catch(() => [] as string[])).filter((f) =>
      f.startsWith('.tmp'),
    );
    assert.deepEqual(left, [], 'no partial downloads left in the cache');
  };

  test('404 names the URL and the status', async () => {
    const spec = await fx.spec('absent.bar');
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      new RegExp(`${fx.server.base.replace(/[.]/g, '\\.')}/absent\\.bar: HTTP 404`),
    );
  });

  test('an unreachable host (closed port) is FETCH_FAILED', async () => {
    const closed = new BundleServer();
    await closed.start();
    const port = closed.port;
    await closed.stop();
    const spec = await fx.spec('x.bar', { url: `http://127.0.0.1:${port}/b` });
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      /127\.0\.0\.1.*ECONNREFUSED/,
    );
  });

  test('a declared size over maxBundleBytes is refused up front', async () => {
    const spec = await fx.spec('huge-declared.bar');
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      /larger than the bundle limit/,
    );
    await noTempFiles();
  });

  test('a streamed body over maxBundleBytes is aborted', async () => {
    const spec = await fx.spec('huge-streamed.bar');
    const t0 = Date.now();
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      /larger than the bundle limit/,
    );
    assert.ok(Date.now() - t0 < 4000, 'aborted early');
    await noTempFiles();
  });

  test('a fetch that outlasts fetchTimeoutMs is FETCH_FAILED', async () => {
    const quick = fx.mkDriver({ fetchTimeoutMs: 500 });
    const spec = await fx.spec('slow.bar');
    await rejectsWith(
      quick.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      /timed out after 500 ms/,
    );
    await noTempFiles();
  });

  test('a file that is neither a gzip tar nor an executable is FETCH_FAILED', async () => {
    const spec = await fx.spec('notes.txt');
    await rejectsWith(
      driver.start(spec, () => undefined),
      RESULT.FETCH_FAILED,
      /not a gzip tar bundle or an executable/,
    );
  });

  test('validate names the field', () => {
    assert.match(driver.validate('ftp://x/y', 'a.bar') ?? '', /^url /);
    assert.match(driver.validate('http://x/y', 'a/b') ?? '', /^file /);
    assert.equal(driver.validate('http://x/y', 'a.bar'), null);
  });
});

describe('bar driver: launch gate', () => {
  test('an agent killed before the go leaves no waiting wrapper and never runs the command', async () => {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-bar-gate-'));
    try {
      const marker = path.join(tmp, 'ran');
      const script = path.join(tmp, 'agent.mts');
      const launchJs = path.resolve(import.meta.dirname, '../../agent/drivers/bar/launch.js');
      await writeFile(
        script,
        `import { launch } from ${JSON.stringify(launchJs)};
await launch({
  command: ['/bin/sh', '-c', 'touch ${marker}'],
  cwd: ${JSON.stringify(tmp)},
  env: { PATH: '/usr/bin:/bin' },
  stdoutPath: ${JSON.stringify(path.join(tmp, 'out.log'))},
  stderrPath: ${JSON.stringify(path.join(tmp, 'err.log'))},
  taskset: null,
  beforeRun: async (pid) => { console.log('WRAPPER ' + pid); await new Promise(() => {}); },
});
`,
      );
      const agent = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      agent.stdout.on('data', (b) => {
        out += String(b);
      });
      const wrapper = Number(
        await waitFor('wrapper pid', () => /WRAPPER (\d+)/.exec(out)?.[1], 15_000, 50).catch((e) => {
          agent.kill('SIGKILL');
          throw e;
        }),
      );
      assert.ok(alive(wrapper), 'the wrapper waits for the go');
      agent.kill('SIGKILL');
      await waitFor('wrapper gone', () => !alive(wrapper), 5000, 50);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(existsSync(marker), false, 'the command never ran');
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
