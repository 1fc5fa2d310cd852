/**
 * The docker driver on the real engine: images from a local registry and from an http tarball,
 * cpuset / memory / labels as docker sees them, observation, stop, adoption, and the failures
 * (missing image, oversized tarball, unusable cpuset, a workload that exits 3) leaving nothing
 * behind. The driver object is driven directly; the manager→agent→CLI path is tested elsewhere.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DeployError, RESULT } from '../../agent/deploy/results.js';
import { createDockerDriver } from '../../agent/drivers/docker/driver.js';
import { containerName } from '../../agent/drivers/docker/reference.js';
import type { ComponentRecord, Observed, Started, StartSpec, WorkloadDriver } from '../../agent/drivers/driver.js';
import { createLogger } from '../../common/log.js';
import type { Require } from '../../common/protocol.js';
import { waitFor } from '../helpers/daemons.js';
import { buildBusyboxImage, docker, serveDir, setupTestImages, type TestImages } from '../helpers/images.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';

const SOCKET = '/var/run/docker.sock';
const MiB = 1024 * 1024;
const REQ: Require = { cpu: 1, memory: 64 * MiB, gpu: 0 };
const EXIT3_IMAGE = 'muster-test/exit3:1';

describe('docker driver on the real engine', needs(missingRoot('docker'), missingCommand('dockerd')), () => {
  let fx: TestImages;
  let driver: WorkloadDriver;
  let workRoot: string;
  const uuids: string[] = [];
  const log = createLogger('test', 'silent');
  const mkDriver = (over: { maxBundleBytes?: number; fetchTimeoutMs?: number } = {}) =>
    createDockerDriver({ socketPath: SOCKET, fetchTimeoutMs: 60_000, maxBundleBytes: 512 * MiB, log, ...over });

  let n = 0;
  const spec = (url: string, file: string, over: Partial<StartSpec> = {}): StartSpec => {
    const uuid = `mt-dd-${process.pid}-${++n}`;
    uuids.push(uuid);
    return {
      uuid,
      instance_id: 'inst-1',
      index: n,
      url,
      file,
      require: REQ,
      cpus: [0],
      gpus: [],
      workDir: path.join(workRoot, uuid),
      ...over,
    };
  };
  const record = (s: StartSpec, st: Started): ComponentRecord => ({
    uuid: s.uuid,
    type: 'docker',
    instance_id: s.instance_id,
    index: s.index,
    url: s.url,
    file: s.file,
    require: s.require,
    cpus: s.cpus,
    gpus: s.gpus,
    state: 'RUNNING',
    id: st.id,
    name: st.name,
    createdAt: new Date().toISOString(),
  });
  /** Containers carrying the uuid label (all states). */
  const containersOf = async (uuid: string) =>
    (await docker('ps', '-aq', '--no-trunc', '--filter', `label=muster.uuid=${uuid}`)).trim();
  const inspect = async (id: string) => JSON.parse(await docker('inspect', id))[0];
  const observeOne = async (d: WorkloadDriver, r: ComponentRecord): Promise<Observed | undefined> =>
    (await d.observe([r], AbortSignal.timeout(10_000))).get(r.uuid);
  const rejectsWith = async (p: Promise<unknown>, code: number, re: RegExp) => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof DeployError, `a DeployError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, re);
      return true;
    });
  };
  /** Starts from `url`/`file` and checks what docker made of it. */
  const startAndCheck = async (s: StartSpec) => {
    const lines: string[] = [];
    const st = await driver.start(s, (l) => lines.push(l));
    assert.match(st.id, /^[0-9a-f]{64}$/);
    assert.equal(st.name, `muster-${s.uuid}`);
    const c = await inspect(st.id);
    assert.equal(c.State.Running, true);
    assert.equal(c.Name, `/${st.name}`);
    assert.equal(c.HostConfig.CpusetCpus, '0');
    assert.equal(c.HostConfig.Memory, 64 * MiB);
    assert.equal(c.HostConfig.MemorySwap, 64 * MiB);
    assert.equal(c.HostConfig.RestartPolicy.Name, 'no');
    assert.deepEqual(c.Config.Labels, {
      'muster.uuid': s.uuid,
      'muster.instance_id': 'inst-1',
      'muster.index': String(s.index),
      'muster.managed': 'true',
    });
    assert.ok(lines.length > 0, 'progress lines were reported');
    return { st, rec: record(s, st), lines, c };
  };

  before(async () => {
    fx = await setupTestImages();
    await buildBusyboxImage(EXIT3_IMAGE, 'sleep 1; exit 3');
    await fx.registry.push(EXIT3_IMAGE, EXIT3_IMAGE);
    await docker('rmi', EXIT3_IMAGE);
    workRoot = await mkdtemp(path.join(os.tmpdir(), 'muster-docker-driver-'));
    driver = mkDriver();
  });

  after(async () => {
    for (const u of uuids) await docker('rm', '-f', containerName(u)).catch(() => undefined);
    await fx?.cleanup();
    if (workRoot) await rm(workRoot, { recursive: true, force: true });
  });

  test('validate accepts registry and http(s) sources and refuses bad forms, naming the field', () => {
    const ok: [string, string][] = [
      ['127.0.0.1:5000', 'busybox:1'],
      ['127.0.0.1:5000/muster-test', 'busybox'],
      ['registry.local', 'team/app-x_1.2:v1.0-rc1'],
      ['[::1]:5000/a/b', 'busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef'],
      ['http://10.0.0.1:8080/images', 'app.tar'],
      ['https://repo.example/x/', 'app.tar.gz'],
      ['http://repo', 'app-1.2.tgz'],
    ];
    for (const [url, file] of ok) assert.equal(driver.validate(url, file), null, `${url} ${file}`);
    const bad: [string, string, RegExp][] = [
      ['ftp://repo/x', 'app.tar', /^url .*http/],
      ['127.0.0.1:5000', 'BusyBox:1', /^file .*image reference/],
      ['127.0.0.1:5000', 'busybox:', /^file /],
      ['127.0.0.1:99999', 'busybox:1', /^url .*registry address/],
      ['', 'busybox:1', /^url /],
      ['host name', 'busybox:1', /^url /],
      ['127.0.0.1:5000/Team', 'busybox:1', /^url .*prefix/],
      ['http://repo/images', 'busybox:1', /^file .*tarball/],
      ['http://repo/images', 'app.zip', /^file .*tarball/],
      ['http://repo/images?x=1', 'app.tar', /^url .*query/],
    ];
    for (const [url, file, re] of bad) {
      const why = driver.validate(url, file);
      assert.ok(why, `${url} ${file} is refused`);
      assert.match(why, re);
    }
  });

  test('start from the registry: 1 core, 64 MiB, labels; observe; stop removes it', async () => {
    const s = spec(fx.registryUrl, fx.registryFile);
    const { rec, lines } = await startAndCheck(s);
    assert.ok(
      lines.some((l) => l.startsWith(`pulling ${fx.registryUrl}/${fx.registryFile}`)),
      lines.join('\n'),
    );

    const o = await observeOne(driver, rec);
    assert.ok(o, 'observed');
    assert.equal(o.state, 'RUNNING');
    assert.equal(o.resource.memory.mem_limit, 64 * MiB);
    assert.equal(typeof o.resource.memory.mem_used, 'number');
    assert.ok((o.resource.memory.mem_used as number) < 64 * MiB);
    assert.equal(typeof o.resource.network.rx, 'number');
    assert.equal(typeof o.resource.network.tx, 'number');
    // The one-shot sample has no previous one of its own; the second observation compares.
    await new Promise((r) => setTimeout(r, 1100));
    const o2 = await observeOne(driver, rec);
    assert.equal(typeof o2?.resource.cpu.load, 'number', JSON.stringify(o2));
    assert.ok((o2?.resource.cpu.load as number) >= 0 && (o2?.resource.cpu.load as number) <= 100);

    await driver.stop(rec, 2000);
    assert.equal(await containersOf(s.uuid), '', 'container removed');
    await driver.stop(rec, 2000); // already gone: success
    const gone = await observeOne(driver, rec);
    assert.equal(gone?.state, 'FAILED');
  });

  test('start from an http tarball (docker load) works the same', async () => {
    const s = spec(fx.httpUrl, fx.tarball);
    const { rec, lines, c } = await startAndCheck(s);
    assert.equal(c.Config.Image, fx.tarballRef);
    assert.ok(fx.files.requests.includes(`/${fx.tarball}`));
    assert.ok(
      lines.some((l) => l.startsWith(`fetched ${fx.tarball}`)),
      lines.join('\n'),
    );
    assert.ok(lines.includes(`loaded ${fx.tarballRef}`), lines.join('\n'));
    assert.equal((await observeOne(driver, rec))?.state, 'RUNNING');
    await driver.stop(rec, 1000);
    assert.equal(await containersOf(s.uuid), '');
  });

  test('adopt finds a running container and reports a removed one as false', async () => {
    const a = spec(fx.registryUrl, fx.registryFile);
    const b = spec(fx.registryUrl, fx.registryFile, { cpus: [0] });
    const ra = record(a, await driver.start(a, () => undefined));
    const rb = record(b, await driver.start(b, () => undefined));
    await docker('rm', '-f', rb.id);
    const fresh = mkDriver(); // as after an agent restart
    const alive = await fresh.adopt([ra, rb]);
    assert.equal(alive.get(a.uuid), true);
    assert.equal(alive.get(b.uuid), false);
    await fresh.stop(ra, 1000);
    assert.equal(await containersOf(a.uuid), '');
  });

  test('an image that does not exist: FETCH_FAILED naming it, no container left', async () => {
    const s = spec(fx.registryUrl, 'no-such-image:1');
    await rejectsWith(
      driver.start(s, () => undefined),
      RESULT.FETCH_FAILED,
      new RegExp(`${fx.registryUrl}/no-such-image:1`),
    );
    assert.equal(await containersOf(s.uuid), '');
  });

  test('a missing or oversized tarball: FETCH_FAILED, no container left', async () => {
    const s1 = spec(fx.httpUrl, 'missing.tar');
    await rejectsWith(
      driver.start(s1, () => undefined),
      RESULT.FETCH_FAILED,
      /HTTP 404/,
    );
    assert.equal(await containersOf(s1.uuid), '');
    const small = mkDriver({ maxBundleBytes: 4096 });
    const s2 = spec(fx.httpUrl, fx.tarball);
    await rejectsWith(
      small.start(s2, () => undefined),
      RESULT.FETCH_FAILED,
      /max_bundle_bytes/,
    );
    assert.equal(await containersOf(s2.uuid), '');
    // Without content-length the limit is enforced while streaming.
    const chunked = await serveDir(fx.dir, { chunked: true });
    try {
      const s3 = spec(chunked.baseUrl, fx.tarball);
      await rejectsWith(
        small.start(s3, () => undefined),
        RESULT.FETCH_FAILED,
        /more than the 4 KiB allowed/,
      );
      assert.equal(await containersOf(s3.uuid), '');
    } finally {
      await chunked.stop();
    }
  });

  test('a source that never answers: FETCH_FAILED after fetch_timeout_ms, for http and registry', async () => {
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((sock) => sockets.add(sock));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const quick = mkDriver({ fetchTimeoutMs: 800 });
      for (const [url, file] of [
        [`http://127.0.0.1:${port}`, 'app.tar'],
        [`127.0.0.1:${port}`, 'app:1'],
      ] as const) {
        const s = spec(url, file);
        const t0 = Date.now();
        await rejectsWith(
          quick.start(s, () => undefined),
          RESULT.FETCH_FAILED,
          /time limit of 800 ms exceeded/,
        );
        assert.ok(Date.now() - t0 < 5000, `gave up in ${Date.now() - t0} ms`);
        assert.equal(await containersOf(s.uuid), '');
      }
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  test('an engine refusal (cores that do not exist): RUNTIME_ERROR, no container left', async () => {
    const s = spec(fx.registryUrl, fx.registryFile, { cpus: [4095] });
    await rejectsWith(
      driver.start(s, () => undefined),
      RESULT.RUNTIME_ERROR,
      /muster-mt-dd/,
    );
    assert.equal(await containersOf(s.uuid), '');
  });

  test('a start failure after create (GPUs without the nvidia runtime): RUNTIME_ERROR, container removed', {
    skip: missingCommand('nvidia-container-cli') ? false : 'this host has the nvidia runtime',
  }, async () => {
    const s = spec(fx.registryUrl, fx.registryFile, { gpus: [0] });
    await rejectsWith(
      driver.start(s, () => undefined),
      RESULT.RUNTIME_ERROR,
      /cannot start container .*gpu/,
    );
    assert.equal(await containersOf(s.uuid), '');
  });

  test('a workload that exits 3 is observed FAILED with exit code 3; a new start of its uuid replaces it', async () => {
    const s = spec(fx.registry.address, EXIT3_IMAGE);
    const st = await driver.start(s, () => undefined);
    const rec = record(s, st);
    const o = await waitFor(
      'the container to exit',
      async () => {
        const x = await observeOne(driver, rec);
        return x && x.state !== 'RUNNING' ? x : undefined;
      },
      20_000,
      250,
    );
    assert.equal(o.state, 'FAILED');
    assert.equal(o.exitCode, 3);
    // The record is FAILED now; a start of the same uuid reuses the name.
    const st2 = await driver.start(s, () => undefined);
    assert.notEqual(st2.id, st.id);
    assert.equal(await containersOf(s.uuid), st2.id);
    await driver.stop(record(s, st2), 1000);
    assert.equal(await containersOf(s.uuid), '');
  });
});
