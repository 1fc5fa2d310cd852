/**
 * Shared plumbing of the benchmarks: which muster binary to run, child daemons, /proc readers,
 * Prometheus text parsing, percentiles, free ports, the open-file limit and machine facts.
 * Everything here stays on 127.0.0.0/8. What tests use too (the repository root, child
 * processes, `--set` argv, free TCP ports, the Prometheus counter reader) comes from
 * testkit/process.ts and is re-exported here.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT, sets, startProcess } from '../testkit/process.js';

export { freePort, metric, ROOT, sets } from '../testkit/process.js';

/** Multicast group the benchmarks use: the spec's, but always on 127.0.0.1 and a private port. */
export const GROUP = '239.192.168.80';
/** Interface every multicast send and join uses. */
export const IFACE = '127.0.0.1';

/** Sleeps `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Wall-clock time in ms with sub-ms precision, comparable between processes of one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

/** Logs a progress line to stderr (stdout stays for figures). */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---------------------------------------------------------------------------------------------
// Which muster to run
// ---------------------------------------------------------------------------------------------

/** How `muster` is started: the command, its environment, and where it came from. */
export interface MusterBinary {
  /** node + script path. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  /** `dist` (the repo's up-to-date build), `private-build` (compiled for the bench), or `source` (tsx). */
  kind: 'dist' | 'private-build' | 'source';
  /** Why this one was chosen. */
  note: string;
}

const SOURCE_DIRS = ['common', 'agent', 'manager', 'cli'];

function listTs(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) listTs(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The newest mtime of the product sources, and whether `distDir` holds an up-to-date .js for each. */
function sourceState(distDir: string): { newest: number; fresh: boolean } {
  let newest = 0;
  let fresh = true;
  for (const d of SOURCE_DIRS) {
    for (const f of listTs(path.join(ROOT, d))) {
      const m = statSync(f).mtimeMs;
      newest = Math.max(newest, m);
      const js = path.join(distDir, path.relative(ROOT, f)).replace(/\.ts$/, '.js');
      if (!existsSync(js) || statSync(js).mtimeMs < m) fresh = false;
    }
  }
  return { newest, fresh };
}

let cachedBinary: MusterBinary | undefined;

/**
 * Picks the muster to benchmark: the repo's dist/ when it is up to date with the sources;
 * otherwise a private build compiled into a temporary directory (the repo is not touched);
 * otherwise the TypeScript sources through tsx (MUSTER_FROM_SOURCE=1), which costs start time and
 * memory that a deployed daemon does not pay.
 */
export function musterBinary(): MusterBinary {
  if (cachedBinary) return cachedBinary;
  const env = { ...process.env };
  delete env.MUSTER_FROM_SOURCE;
  const repoDist = sourceState(path.join(ROOT, 'dist'));
  if (repoDist.fresh) {
    cachedBinary = { argv: [process.execPath, path.join(ROOT, 'bin', 'muster.js')], env, kind: 'dist', note: 'dist/' };
    return cachedBinary;
  }
  // One build directory per checkout: worktrees benchmarked on one machine must not share it.
  const dir = path.join(
    os.tmpdir(),
    `muster-bench-build-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
  );
  const stamp = path.join(dir, 'stamp');
  const want = String(repoDist.newest);
  try {
    const ok = existsSync(stamp) && readFileSync(stamp, 'utf8') === want && sourceState(path.join(dir, 'dist')).fresh;
    if (!ok) {
      progress('dist/ is older than the sources: compiling a private build in /tmp (the repo is not touched)');
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(path.join(dir, 'bin'), { recursive: true });
      try {
        execFileSync(
          process.execPath,
          [
            path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
            '-p',
            path.join(ROOT, 'tsconfig.build.json'),
            '--outDir',
            path.join(dir, 'dist'),
            '--sourceMap',
            'false',
          ],
          { cwd: ROOT, stdio: 'pipe' },
        );
      } catch {
        // tsc still emits when others' work in progress has type errors; the check below decides.
      }
      copyFileSync(path.join(ROOT, 'package.json'), path.join(dir, 'package.json'));
      copyFileSync(path.join(ROOT, 'bin', 'muster.js'), path.join(dir, 'bin', 'muster.js'));
      symlinkSync(path.join(ROOT, 'config'), path.join(dir, 'config'));
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      writeFileSync(stamp, want);
    }
    if (existsSync(path.join(dir, 'dist', 'cli', 'main.js'))) {
      cachedBinary = {
        argv: [process.execPath, path.join(dir, 'bin', 'muster.js')],
        env,
        kind: 'private-build',
        note: `dist/ was stale: compiled the current sources with tsconfig.build.json into ${dir}`,
      };
      return cachedBinary;
    }
  } catch (err) {
    progress(`private build failed (${(err as Error).message}); running from source`);
  }
  cachedBinary = {
    argv: [process.execPath, path.join(ROOT, 'bin', 'muster.js')],
    env: { ...env, MUSTER_FROM_SOURCE: '1' },
    kind: 'source',
    note: 'TypeScript sources through tsx (MUSTER_FROM_SOURCE=1): start time and RSS include the tsx loader',
  };
  return cachedBinary;
}

/** The agent as an offline bundle installs it on a board (docs/operations.md#runtime-and-bundles). */
export interface AgentBundle {
  /** bin/muster (the bundle's sh wrapper, running lib/muster.js on this Node.js). */
  argv: string[];
  /** With MUSTER_NODE_FLAGS as systemd/muster-agent.service sets it. */
  env: NodeJS.ProcessEnv;
  /** The flags, for the report ("" = none). */
  nodeFlags: string;
  note: string;
}

/** MUSTER_NODE_FLAGS of a unit file of systemd/ ("" when it sets none). */
export function unitNodeFlags(unit: 'muster-agent.service' | 'muster-manager.service'): string {
  const text = readFileSync(path.join(ROOT, 'systemd', unit), 'utf8');
  return /^Environment=MUSTER_NODE_FLAGS=(.*)$/m.exec(text)?.[1]?.trim() ?? '';
}

let cachedBundle: AgentBundle | undefined;

/**
 * The current sources bundled exactly as `make dist` bundles them (scripts/bundle-app.mjs) into
 * a temporary directory laid out like an installed bundle (bin/muster, lib/, config/, node/bin/node
 * = this Node.js), rebuilt when the sources change (~3 s); run with the agent unit's
 * MUSTER_NODE_FLAGS. This is what a board runs; the checkout build (musterBinary) is not.
 */
export async function agentBundle(): Promise<AgentBundle> {
  if (cachedBundle) return cachedBundle;
  const dir = path.join(
    os.tmpdir(),
    `muster-bench-bundle-${createHash('sha256').update(ROOT).digest('hex').slice(0, 12)}`,
  );
  const stamp = path.join(dir, 'stamp');
  const want = `${sourceState(path.join(ROOT, 'dist')).newest} ${process.execPath}`;
  if (!(existsSync(stamp) && readFileSync(stamp, 'utf8') === want)) {
    progress('bundling the current sources as make dist does (scripts/bundle-app.mjs)');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(path.join(dir, 'bin'), { recursive: true });
    mkdirSync(path.join(dir, 'node', 'bin'), { recursive: true });
    const { bundleApp } = (await import(pathToFileURL(path.join(ROOT, 'scripts', 'bundle-app.mjs')).href)) as {
      bundleApp(o: { root: string; outdir: string; version: string; commit: string }): Promise<unknown>;
    };
    await bundleApp({ root: ROOT, outdir: path.join(dir, 'lib'), version: '0.0.0-bench', commit: 'bench' });
    copyFileSync(path.join(ROOT, 'scripts', 'bundle', 'muster'), path.join(dir, 'bin', 'muster'));
    symlinkSync(process.execPath, path.join(dir, 'node', 'bin', 'node'));
    symlinkSync(path.join(ROOT, 'config'), path.join(dir, 'config'));
    writeFileSync(stamp, want);
  }
  const nodeFlags = unitNodeFlags('muster-agent.service');
  cachedBundle = {
    argv: ['/bin/sh', path.join(dir, 'bin', 'muster')],
    env: { ...process.env, MUSTER_NODE_FLAGS: nodeFlags, MUSTER_FROM_SOURCE: '' },
    nodeFlags,
    note: `the current sources bundled as make dist does, in ${dir}, MUSTER_NODE_FLAGS=${nodeFlags || '(none)'} from systemd/muster-agent.service`,
  };
  return cachedBundle;
}

// ---------------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------------

/** A child process the bench started. */
export interface Child {
  proc: ChildProcess;
  pid: number;
  /** The last 64 KB it printed. */
  output(): string;
  exited: Promise<number | string | null>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it is gone. */
  stop(): Promise<void>;
}

/** Children still running, for contentionMeter. */
const children = new Set<ChildProcess>();

/** Spawns `argv` (stdout and stderr captured, the last 64 KB kept); killed when the bench exits. */
export function startChild(argv: string[], env: NodeJS.ProcessEnv = process.env): Child {
  const p = startProcess(argv[0] as string, argv.slice(1), env, { keepBytes: 65536 });
  const { proc } = p;
  if (proc.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
  children.add(proc);
  void p.exited.then(() => children.delete(proc));
  return {
    proc,
    pid: proc.pid,
    output: p.output,
    exited: p.exited,
    async stop() {
      await p.stop();
    },
  };
}

/**
 * argv of a node process that imports the compiled `module` (e.g. `agent/agent.js`) and then
 * idles: the RSS that loading the module graph alone costs. Null when running from source.
 */
export function moduleFloorArgv(module: string): string[] | null {
  const bin = musterBinary();
  if (bin.kind === 'source') return null;
  const distDir = path.join(path.dirname(path.dirname(bin.argv[1] as string)), 'dist');
  const url = pathToFileURL(path.join(distDir, module)).href;
  return [
    process.execPath,
    '--input-type=module',
    '-e',
    `await import(${JSON.stringify(url)}); setInterval(() => {}, 1000);`,
  ];
}

/** Starts `muster <args>` with the chosen binary. */
export function startMuster(args: string[]): Child {
  const bin = musterBinary();
  return startChild([...bin.argv, ...args], bin.env);
}

/**
 * Starts a manager on 127.0.0.1 with multicast on 127.0.0.1 and `extra` config. Waits for
 * /healthz, then logs in as its first admin (a password file written before the start,
 * docs/operations.md "Users and access") and returns the API token with it.
 */
/**
 * `argv` with node's `--cpu-prof` (and `--heapsnapshot-signal=SIGUSR2`) inserted after the node
 * binary when MUSTER_BENCH_PROFILE_DIR names a directory: every manager (and bare server) the bench starts then
 * writes a `.cpuprofile` there when it stops (`*.cpuprofile` is git-ignored; bench/RESULTS.md
 * summarises the top entries). Unchanged when the variable is unset. MUSTER_BENCH_NODE_FLAGS
 * (space-separated, e.g. `--trace-gc`) adds node flags to the same processes.
 */
export function withProfiling(argv: string[]): string[] {
  const extra = process.env.MUSTER_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? [];
  if (extra.length > 0) argv = [argv[0] as string, ...extra, ...argv.slice(1)];
  const dir = process.env.MUSTER_BENCH_PROFILE_DIR;
  if (!dir) return argv;
  mkdirSync(dir, { recursive: true });
  return [
    argv[0] as string,
    '--cpu-prof',
    `--cpu-prof-dir=${dir}`,
    '--heapsnapshot-signal=SIGUSR2',
    `--diagnostic-dir=${dir}`,
    ...argv.slice(1),
  ];
}

export async function startManager(opts: {
  httpPort: number;
  mcastPort: number;
  dataDir: string;
  extra?: Record<string, string | number>;
  /** The admin password of a data_dir started before (a restart); a new one otherwise. */
  password?: string;
  /** How long /healthz may take to answer, ms (default 30 s). */
  readyTimeoutMs?: number;
}): Promise<{ child: Child; base: string; token: string; password: string }> {
  mkdirSync(opts.dataDir, { recursive: true });
  const password = opts.password ?? randomBytes(18).toString('base64url');
  const passwordFile = path.join(opts.dataDir, 'initial-admin-password');
  writeFileSync(passwordFile, `${password}\n`, { mode: 0o600 });
  const bin = musterBinary();
  const child = startChild(
    [
      ...withProfiling(bin.argv),
      'manager',
      ...sets({
        'http.host': '127.0.0.1',
        'http.port': opts.httpPort,
        'multicast.interface': IFACE,
        'multicast.port': opts.mcastPort,
        data_dir: opts.dataDir,
        'log.level': 'warn',
        ...opts.extra,
      }),
    ],
    { ...bin.env, MUSTER_MANAGER_AUTH_INITIAL_ADMIN_PASSWORD_FILE: passwordFile },
  );
  const base = `http://127.0.0.1:${opts.httpPort}`;
  await waitHttp(`${base}/healthz`, child, opts.readyTimeoutMs);
  const res = await fetch(`${base}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`POST /api/v1/login: HTTP ${res.status} ${await res.text()}`);
  const { token } = (await res.json()) as { token: string };
  return { child, base, token, password };
}

/** The headers that carry an API token (`Authorization: Bearer`), none without one. */
export function bearer(token?: string): Record<string, string> {
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** Polls `url` until it answers 200; fails early when `child` exits. */
export async function waitHttp(url: string, child?: Child, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let dead = false;
  void child?.exited.then(() => {
    dead = true;
  });
  for (;;) {
    if (dead) throw new Error(`process exited before ${url} answered:\n${child?.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline)
      throw new Error(`${url} did not answer within ${timeoutMs} ms\n${child?.output() ?? ''}`);
    await sleep(100);
  }
}

/** GET → text; `token` is sent as a bearer token (the manager's /api/v1 needs one). */
export async function getText(url: string, timeoutMs = 10_000, token?: string): Promise<string> {
  const res = await fetch(url, { headers: bearer(token), signal: AbortSignal.timeout(timeoutMs) });
  const t = await res.text();
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status} ${t.slice(0, 200)}`);
  return t;
}

/** GET → JSON; `token` as for {@link getText}. */
export async function getJson<T>(url: string, timeoutMs = 10_000, token?: string): Promise<T> {
  return JSON.parse(await getText(url, timeoutMs, token)) as T;
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

let clkTck = 0;
/** Clock ticks per second of /proc/<pid>/stat times. */
export function clockTicks(): number {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** VmRSS of `pid`, bytes (0 when the process is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of `pid`, seconds. */
/**
 * The kernel's count of connections dropped because a listen (accept) queue was full
 * (TcpExt ListenOverflows of /proc/net/netstat, this network namespace); NaN when unreadable.
 */
export function listenOverflows(): number {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = (lines[i] as string).split(' ');
      if (names[0] !== 'TcpExt:') continue;
      const k = names.indexOf('ListenOverflows');
      return k < 0 ? Number.NaN : Number((lines[i + 1] as string).split(' ')[k]);
    }
  } catch {
    // not Linux, or /proc not mounted
  }
  return Number.NaN;
}

export function cpuSeconds(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // after the comm field: state is field 3, utime field 14, stime field 15 (1-based in proc(5))
    return (Number(f[11]) + Number(f[12])) / clockTicks();
  } catch {
    return 0;
  }
}

/** Measures a process's CPU over a window: call `start()`, later `stop()` → % of one core. */
export function cpuMeter(pid: number): { stop(): number } {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  return {
    stop() {
      const secs = (performance.now() - t0) / 1000;
      return secs > 0 ? ((cpuSeconds(pid) - c0) / secs) * 100 : 0;
    },
  };
}

/** CPU of this process over a window, % of one core (process.cpuUsage). */
export function selfCpuMeter(): { stop(): number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  return {
    stop() {
      const d = process.cpuUsage(c0);
      return ((d.user + d.system) / 1000 / (performance.now() - t0)) * 100;
    },
  };
}

/** Samples RSS of `pid` every `everyMs` until stopped: returns mean, max and last. */
export function rssSampler(pid: number, everyMs = 500): { stop(): { mean: number; max: number; last: number } } {
  const xs: number[] = [rssBytes(pid)];
  const t = setInterval(() => xs.push(rssBytes(pid)), everyMs);
  return {
    stop() {
      clearInterval(t);
      xs.push(rssBytes(pid));
      const ok = xs.filter((x) => x > 0);
      return {
        mean: ok.reduce((a, b) => a + b, 0) / Math.max(1, ok.length),
        max: Math.max(0, ...ok),
        last: ok[ok.length - 1] ?? 0,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Prometheus text
// ---------------------------------------------------------------------------------------------

/** Cumulative buckets `[le, count]` of histogram `name` (labels filtered), le ascending, +Inf last. */
export function histogramBuckets(text: string, name: string, labels: Record<string, string> = {}): [number, number][] {
  const byLe = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const m = /^[\w:]+_bucket\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const set = m[1] as string;
    if (!Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) continue;
    const le = /le="([^"]+)"/.exec(set)?.[1];
    if (le === undefined) continue;
    const v = le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le);
    byLe.set(v, (byLe.get(v) ?? 0) + Number(m[2]));
  }
  return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
}

/** Subtracts cumulative histogram `b` (earlier) from `a` (later). */
export function bucketsDelta(a: [number, number][], b: [number, number][]): [number, number][] {
  const before = new Map(b);
  return a.map(([le, n]) => [le, n - (before.get(le) ?? 0)]);
}

/**
 * Quantile `q` of cumulative buckets, interpolated linearly inside the bucket (like PromQL's
 * histogram_quantile); `upper` is the bucket's bound, the honest "at most".
 */
export function bucketQuantile(buckets: [number, number][], q: number): { value: number; upper: number } | null {
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total === 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevN = 0;
  for (const [le, n] of buckets) {
    if (n >= rank) {
      if (!Number.isFinite(le)) return { value: prevLe, upper: le };
      const inBucket = n - prevN;
      const frac = inBucket > 0 ? (rank - prevN) / inBucket : 1;
      return { value: prevLe + (le - prevLe) * frac, upper: le };
    }
    prevLe = le;
    prevN = n;
  }
  return { value: prevLe, upper: Number.POSITIVE_INFINITY };
}

// ---------------------------------------------------------------------------------------------
// Statistics and formatting
// ---------------------------------------------------------------------------------------------

/** Nearest-rank percentile of `xs` (not necessarily sorted); NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[i] as number;
}

/** p50 / p99 / max of `xs`. */
export function summary(xs: readonly number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(xs, 50), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : Number.NaN };
}

/** Bytes as MiB with one decimal. */
export const mib = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;
/** A number with `d` decimals, or `n/a`. */
export const fx = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

// ---------------------------------------------------------------------------------------------
// Ports, limits, machine
// ---------------------------------------------------------------------------------------------

/**
 * A UDP port in 40000–48999 that nobody has bound on the group address or the wildcard, so the
 * bench's multicast never meets another test's (or a real muster's 3980).
 */
export async function freeMulticastPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 40000 + Math.floor(Math.random() * 9000);
    const free = await new Promise<boolean>((resolve) => {
      const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      s.once('error', () => {
        s.close();
        resolve(false);
      });
      s.bind({ port, address: '0.0.0.0', exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free UDP port found for the bench multicast');
}

/** The soft open-file limit of this process. */
export function openFileLimit(): number {
  try {
    const m = /Max open files\s+(\d+|unlimited)/.exec(readFileSync('/proc/self/limits', 'utf8'));
    return !m || m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return 1024;
  }
}

/**
 * Raises this process's open-file limit to at least `want` with prlimit(1) (children started
 * afterwards inherit it). Returns the limit in force afterwards.
 */
export function ensureOpenFiles(want: number): number {
  const now = openFileLimit();
  if (now >= want) return now;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${want}:${want}`], { stdio: 'pipe' });
  } catch (err) {
    progress(`cannot raise the open-file limit to ${want}: ${(err as Error).message.split('\n')[0]}`);
  }
  return openFileLimit();
}

/** Facts about this machine for RESULTS.md. */
export function machine(): { cpu: string; cores: number; memory: string; node: string; kernel: string } {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memory: `${(os.totalmem() / 1073741824).toFixed(1)} GiB`,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

/** A fresh temporary directory (removed by the caller). */
export function tempDir(tag: string): string {
  const d = path.join(os.tmpdir(), `muster-bench-${tag}-${process.pid}-${Date.now()}`);
  mkdirSync(d, { recursive: true });
  return d;
}

/** Removes a directory made by tempDir. */
export function removeDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
}

/** True when this module is the process's entry script. */
export function isMain(metaUrl: string): boolean {
  const entry = process.argv[1];
  return entry !== undefined && path.resolve(entry) === fileURLToPath(metaUrl);
}

/** Starts the baseline server (bench/bare-server.ts) on 127.0.0.1:`port`; waits until it answers. */
export async function startBare(port: number): Promise<{ child: Child; base: string }> {
  const child = startChild([
    ...withProfiling([process.execPath]),
    '--import',
    'tsx',
    path.join(ROOT, 'bench', 'bare-server.ts'),
    '--port',
    String(port),
  ]);
  const base = `http://127.0.0.1:${port}`;
  await waitHttp(`${base}/healthz`, child);
  return { child, base };
}

/**
 * A UDP socket that sends queries (docs/protocol.md §1 Query) to the bench group on 127.0.0.1,
 * like the manager's querier.
 */
export async function querySender(mcastPort: number): Promise<{
  send(url: '/heartbeat' | '/resource', managerPort: number, jitterMs?: number): Promise<number>;
  close(): void;
}> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, IFACE, r));
  sock.setMulticastInterface(IFACE);
  sock.setMulticastTTL(1);
  sock.setMulticastLoopback(true);
  return {
    /** Sends one query; resolves with the wall-clock ms just before it left. */
    send(url, managerPort, jitterMs) {
      const body = {
        api_version: 1,
        data: {
          manager_ip: '127.0.0.1',
          manager_port: managerPort,
          url,
          ...(jitterMs !== undefined ? { jitter_ms: jitterMs } : {}),
        },
      };
      const buf = Buffer.from(JSON.stringify(body));
      const at = wallMs();
      return new Promise((resolve, reject) =>
        sock.send(buf, mcastPort, GROUP, (err) => (err ? reject(err) : resolve(at))),
      );
    },
    close() {
      sock.close();
    },
  };
}

/** Reads busy jiffies of the whole machine from /proc/stat. */
function machineJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/** CPU of this process and its reaped children, seconds (utime+stime+cutime+cstime). */
function selfTreeSeconds(): number {
  try {
    const s = readFileSync('/proc/self/stat', 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / clockTicks();
  } catch {
    return 0;
  }
}

/**
 * Measures how busy the machine is with work that is not the bench's own (this process and the
 * children it started): other users' tests on a shared VM skew every figure, so each benchmark
 * reports it. `stop()` → cores used by others on average, and by the bench.
 */
export function contentionMeter(): { stop(): { othersCores: number; benchCores: number; machineCores: number } } {
  const m0 = machineJiffies();
  const s0 = selfTreeSeconds();
  const live0 = new Map([...children].map((c) => [c.pid as number, cpuSeconds(c.pid as number)]));
  const t0 = performance.now();
  return {
    stop() {
      const secs = (performance.now() - t0) / 1000;
      const m1 = machineJiffies();
      let ours = selfTreeSeconds() - s0;
      for (const c of children) ours += cpuSeconds(c.pid as number) - (live0.get(c.pid as number) ?? 0);
      const machine = (m1.busy - m0.busy) / clockTicks();
      return {
        othersCores: Math.max(0, (machine - ours) / secs),
        benchCores: ours / secs,
        machineCores: machine / secs,
      };
    },
  };
}

/** Waits (at most `maxMs`) until other processes use less than `cores` CPU over a 3 s sample. */
export async function waitForQuiet(cores = 0.3, maxMs = 120_000): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const m = contentionMeter();
    await sleep(3000);
    const { othersCores } = m.stop();
    if (othersCores < cores || Date.now() > deadline) return othersCores;
    progress(`machine busy with other work (${othersCores.toFixed(2)} cores); waiting for it to calm down`);
  }
}
