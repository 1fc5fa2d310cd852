/**
 * Docker test fixtures without internet: makes sure dockerd runs, builds a tiny busybox image
 * from the host's static busybox (`docker import`), serves it as a `docker save` tarball over
 * http on 127.0.0.1 and pushes it to a local registry (Debian's docker-registry) on 127.0.0.1
 * (the engine treats 127.0.0.0/8 registries as insecure-allowed by default). Docker steps use the
 * docker CLI through execFile; the product code uses dockerode.
 */
import { execFile, spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const pexec = promisify(execFile);

/** The base test image: busybox, whose default command loops forever (`sleep 1`). */
export const BUSYBOX_IMAGE = 'muster-test/busybox:1';
/** The default command of the base test image. */
export const LOOP_CMD = 'while true; do sleep 1; done';

/** Applets linked in the test rootfs. */
const APPLETS = [
  'sh',
  'sleep',
  'cat',
  'echo',
  'ls',
  'true',
  'false',
  'env',
  'ps',
  'kill',
  'mkdir',
  'rm',
  'head',
  'dd',
  'yes',
  'test',
  'wget',
  'id',
];

/** Runs `cmd args`; resolves with stdout, rejects with stderr in the message. */
export async function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await pexec(cmd, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

/** Runs the docker CLI. */
export const docker = (...args: string[]): Promise<string> => run('docker', args);

/** A free TCP port on 127.0.0.1 (free when asked: bind it soon). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Makes sure the docker engine answers: starts `dockerd` (output to /tmp/dockerd.log, left
 * running for later tests) when `docker info` fails.
 * @throws after `timeoutMs` (default 60 s) with the tail of the engine's log
 */
export async function ensureDockerd(timeoutMs = 60_000): Promise<void> {
  const ok = () =>
    run('docker', ['info', '--format', '{{.ServerVersion}}'], 10_000).then(
      () => true,
      () => false,
    );
  if (await ok()) return;
  const logFile = '/tmp/dockerd.log';
  spawn('sh', ['-c', `exec dockerd >>${logFile} 2>&1`], { detached: true, stdio: 'ignore' }).unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await sleep(500);
    if (await ok()) return;
  }
  const tail = await run('tail', ['-n', '30', logFile]).catch(() => '');
  throw new Error(`dockerd did not answer docker info within ${timeoutMs / 1000} s; ${logFile}:\n${tail}`);
}

/** Installs Debian packages when `check` says they are missing. */
async function ensurePackage(pkg: string, present: () => boolean): Promise<void> {
  if (present()) return;
  await run('apt-get', ['install', '-y', '--no-install-recommends', pkg], 300_000).catch((err: Error) => {
    throw new Error(`${pkg} is needed and could not be installed: ${err.message}`);
  });
  if (!present()) throw new Error(`${pkg} installed but still not usable`);
}

/** Whether /bin/busybox is the statically linked one (runs in an empty rootfs). */
function staticBusybox(): boolean {
  return existsSync('/usr/share/doc/busybox-static') && existsSync('/bin/busybox');
}

/** The image id and command of local image `ref`, or undefined when there is none. */
async function localImage(ref: string): Promise<{ id: string; cmd: string[] | null } | undefined> {
  const out = await docker('image', 'inspect', '--format', '{{json .Id}} {{json .Config.Cmd}}', ref).catch(() => '');
  const m = /^(\S+) (.*)$/.exec(out.trim());
  return m ? { id: JSON.parse(m[1] as string), cmd: JSON.parse(m[2] as string) } : undefined;
}

/**
 * Builds (docker import) image `tag` from a rootfs holding only the host's static busybox and
 * its applet symlinks; the image's command is `sh -c <cmd>`. An existing image `tag` with that
 * command is reused; one with another command is replaced (and removed when no longer tagged).
 */
export async function buildBusyboxImage(tag = BUSYBOX_IMAGE, cmd = LOOP_CMD): Promise<string> {
  const want = ['/bin/sh', '-c', cmd];
  const old = await localImage(tag);
  if (old && JSON.stringify(old.cmd) === JSON.stringify(want)) return tag;
  await ensurePackage('busybox-static', staticBusybox);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'muster-rootfs-'));
  try {
    await mkdir(path.join(dir, 'bin'));
    await mkdir(path.join(dir, 'tmp'));
    await chmod(path.join(dir, 'tmp'), 0o1777);
    await copyFile('/bin/busybox', path.join(dir, 'bin', 'busybox'));
    await chmod(path.join(dir, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) await symlink('busybox', path.join(dir, 'bin', a));
    const change = `CMD ["/bin/sh","-c",${JSON.stringify(cmd)}]`;
    const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    await run('bash', [
      '-c',
      `set -eo pipefail; tar -C ${q(dir)} -c . | docker import -c ${q(change)} - ${q(tag)} >/dev/null`,
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  // The replaced image, now untagged (fails harmlessly while still tagged or in use).
  if (old) await docker('rmi', old.id).catch(() => undefined);
  return tag;
}

/** A static file server. */
export interface FileServer {
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  /** Paths requested so far. */
  requests: string[];
  stop(): Promise<void>;
}

/**
 * Serves the files of `dir` (flat: `/name` only) on 127.0.0.1, on a free port; with `chunked`,
 * without content-length (the client learns the size only by reading).
 */
export async function serveDir(dir: string, opts: { chunked?: boolean } = {}): Promise<FileServer> {
  const requests: string[] = [];
  const server = http.createServer(async (req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0] as string).replace(/^\/+/, '');
    requests.push(`/${name}`);
    const file = path.join(dir, name);
    if (!name || name.includes('/') || name.startsWith('.')) {
      res.writeHead(404).end('not found\n');
      return;
    }
    try {
      const st = await stat(file);
      res.writeHead(200, {
        'content-type': 'application/x-tar',
        ...(opts.chunked ? {} : { 'content-length': st.size }),
      });
      createReadStream(file).pipe(res);
    } catch {
      res.writeHead(404).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A local registry. */
export interface Registry {
  /** `127.0.0.1:<port>` */
  address: string;
  /** Tags `localRef` as `<address>/<name>` and pushes it; returns the pushed reference. */
  push(localRef: string, name: string): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts Debian's `docker-registry` (no auth, storage in a temp dir) on 127.0.0.1 on a free
 * port, and waits until it answers `GET /v2/`.
 */
export async function startRegistry(): Promise<Registry> {
  const cmd = '/usr/bin/docker-registry';
  await ensurePackage('docker-registry', () => existsSync(cmd));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'muster-registry-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = path.join(dir, 'config.yml');
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: ${address}`,
      '',
    ].join('\n'),
  );
  const proc = spawn(cmd, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const kill = () => proc.kill('SIGKILL');
  process.once('exit', kill);
  const pushed: string[] = [];
  const stop = async () => {
    process.off('exit', kill);
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    for (const ref of pushed) await docker('rmi', ref).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const up = await fetch(`http://${address}/v2/`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) break;
    if (proc.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not come up on ${address}:\n${out}`);
    }
    await sleep(200);
  }
  return {
    address,
    async push(localRef: string, name: string): Promise<string> {
      const ref = `${address}/${name}`;
      await docker('tag', localRef, ref);
      pushed.push(ref);
      await docker('push', ref);
      // Untag locally, so that a pull really goes to the registry for the manifest.
      await docker('rmi', ref).catch(() => undefined);
      return ref;
    },
    stop,
  };
}

/** Everything a docker driver test needs. */
export interface TestImages {
  /** The local base image (left in place by cleanup: shared, ~1 MB). */
  image: string;
  /** The registry address, `127.0.0.1:<port>`. */
  registry: Registry;
  /** Registry url and file for the pushed image: url `<address>/muster-test`, file `busybox:1`. */
  registryUrl: string;
  registryFile: string;
  /** The tarball server and the tarball's name (holds image `tarballRef`, not present locally). */
  httpUrl: string;
  tarball: string;
  tarballRef: string;
  files: FileServer;
  /** A temp dir that cleanup removes. */
  dir: string;
  /** Stops the servers, removes temp files and the images this setup tagged. */
  cleanup(): Promise<void>;
}

/**
 * Sets up the docker fixtures: dockerd up, base image built, a local registry holding
 * `muster-test/busybox:1`, and an http server holding `busybox.tar` (a `docker save` of the base
 * image under a tag unique to this setup, removed locally so that loading it really loads).
 */
export async function setupTestImages(): Promise<TestImages> {
  await ensureDockerd();
  const image = await buildBusyboxImage();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'muster-images-'));
  const cleanups: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());
    await registry.push(image, 'muster-test/busybox:1');

    const tarballRef = `muster-test/busybox-http:${process.pid}-${Date.now().toString(36)}`;
    await docker('tag', image, tarballRef);
    cleanups.push(() => docker('rmi', tarballRef));
    const files = await serveDir(dir);
    cleanups.push(() => files.stop());
    const tarball = 'busybox.tar';
    await docker('save', '-o', path.join(dir, tarball), tarballRef);
    await docker('rmi', tarballRef);
    return {
      image,
      registry,
      registryUrl: `${registry.address}/muster-test`,
      registryFile: 'busybox:1',
      httpUrl: files.baseUrl,
      tarball,
      tarballRef,
      files,
      dir,
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
