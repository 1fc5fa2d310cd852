/**
 * Files push benchmark (docs/files.md "Pushing files"): one file (default 256 MiB) pushed by a
 * real manager to N (default 8) real agents, each in its own network namespace on one bridge
 * (veth pairs), against a plain HTTP transfer of the same file to the same namespaces measured in
 * the same run: a bare node:http server in each agent's namespace that writes a PUT body to a file
 * on the same file system, fed by N concurrent node:http PUTs from the manager's namespace (the
 * push's concurrency, files.push_concurrency = N). The sides alternate (bare, muster, bare, ...)
 * `rounds` times; each side's figure is its total bytes over its total time.
 *
 * Measured: aggregate throughput (N × size ÷ the time from the push's start to its last board
 * done, the record's `at` → `finished_at`), its ratio to the bare transfer's, and the RSS of the
 * manager and of every agent sampled every 100 ms during the pushes against their idle figure
 * (the mean over 2 s before the first push). Targets: ratio ≥ 0.8, every RSS within 32 MiB of
 * its idle figure (streaming, not buffering).
 *
 * Setup: needs root and `ip`. Everything (roots, the manager's data_dir, the source file) lives on
 * a private tmpfs mounted for the run (size × (N + 3) + 256 MiB of RAM), so no disk speed enters
 * the figures; all of it is unmounted and the namespaces (`fb-*`) deleted at the end. Nothing is
 * created in the root namespace: the measuring side re-runs this file inside the manager's
 * namespace (`--inner`), which starts the manager there and the agents and bare receivers with
 * `ip netns exec`.
 *
 *   node --import tsx bench/files-push.ts [--size-mib 256] [--agents 8] [--rounds 2]
 *   npm run bench -- --only files
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  bearer,
  type Child,
  contentionMeter,
  fx,
  isMain,
  machine,
  mib,
  musterBinary,
  progress,
  ROOT,
  rssBytes,
  sets,
  sleep,
  startChild,
  startManager,
} from './common.js';

/** Namespace prefix of this benchmark. */
const PREFIX = 'fb';
const SUBNET_BASE = '198.18.7.';
const TOKEN = 'files-bench-token-5e1f9a';
const MANAGER_PORT = 3926;
const BARE_PORT = 39700;
/** The agents' command port (agent `http.port` default). */
const AGENT_PORT = 23980;
const MIB = 1 << 20;

interface PushRec {
  id: string;
  at: string;
  finished_at: string | null;
  done: number;
  failed: number;
  nodes: { node: string; message: string | null }[];
}

/** Targets (issue: files push vs plain HTTP). */
export const FILES_TARGET = { ratio: 0.8, rssSlackBytes: 32 * MIB };

/** One timed pass of one side. */
export interface FilesPass {
  /** bare: plain node:http; agent: the same PUTs straight to the agents (context); muster: a push. */
  side: 'bare' | 'agent' | 'muster';
  ms: number;
  /** Aggregate MiB/s: agents × size ÷ ms. */
  mibPerS: number;
  /** Cores other processes used meanwhile. */
  othersCores: number;
}

/** What {@link runFilesPush} measured. */
export interface FilesPushResult {
  agents: number;
  bytes: number;
  rounds: number;
  passes: FilesPass[];
  bare: { ms: number; mibPerS: number };
  muster: { ms: number; mibPerS: number };
  /** muster ÷ bare aggregate throughput. */
  ratio: number;
  /** Time to upload the file once to the manager (POST /files/uploads), ms; not in the ratio. */
  uploadMs: number;
  /** Every board ended with the file's sha256 (checked by hashing the placed files). */
  hashesOk: boolean;
  rss: {
    manager: { idle: number; max: number };
    /** Per agent, in board order. */
    agents: { idle: number; max: number }[];
  };
  /** Manager and agents' CPU seconds during the muster passes, and the bare receivers' during theirs. */
  cpu: { manager: number; agents: number; agentsDirect: number; bareReceivers: number; bareSender: number };
  othersCores: number;
  binary: string;
}

// ---------------------------------------------------------------------------------------------
// Namespaces (root side)
// ---------------------------------------------------------------------------------------------

function ip(args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 15_000 });
}

function nsList(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

function deleteNs(): void {
  for (const n of nsList()) if (n.startsWith(`${PREFIX}-`)) ip(['netns', 'delete', n]);
}

/** Hosts `mgr`, `b1`..`bN` on bridge br0 of `fb-br`; host i has 198.18.7.(i + 1)/24. */
function createLan(agents: number): string[] {
  deleteNs();
  const hosts = ['mgr', ...Array.from({ length: agents }, (_, i) => `b${i + 1}`)];
  const br = `${PREFIX}-br`;
  const add = (ns: string) => {
    ip(['netns', 'add', ns]);
    ip(['-n', ns, 'link', 'set', 'dev', 'lo', 'up']);
  };
  add(br);
  ip(['-n', br, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0']);
  ip(['-n', br, 'link', 'set', 'dev', 'br0', 'up']);
  for (const [i, h] of hosts.entries()) {
    const ns = `${PREFIX}-${h}`;
    add(ns);
    // Both ends are made inside the namespaces: nothing appears in the root namespace.
    ip(['-n', br, 'link', 'add', 'name', h, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    ip(['-n', br, 'link', 'set', 'dev', h, 'master', 'br0']);
    ip(['-n', br, 'link', 'set', 'dev', h, 'up']);
    ip(['-n', ns, 'addr', 'add', `${SUBNET_BASE}${i + 1}/24`, 'dev', 'eth0']);
    ip(['-n', ns, 'link', 'set', 'dev', 'eth0', 'up']);
    ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
  }
  return hosts;
}

/**
 * Runs the benchmark: namespaces and a tmpfs, then this file with `--inner` inside the manager's
 * namespace, which measures; cleans everything up.
 * @throws when not root, when `ip` fails, or when the inner run fails (its output in the message)
 */
export async function runFilesPush(
  opts: { sizeMiB?: number; agents?: number; rounds?: number; direct?: boolean } = {},
): Promise<FilesPushResult> {
  const sizeMiB = opts.sizeMiB ?? 256;
  const agents = opts.agents ?? 8;
  const rounds = opts.rounds ?? 2;
  if (process.getuid?.() !== 0) throw new Error('files-push needs root (network namespaces, a tmpfs mount)');
  // Staging copy + source + one file per agent (bare and muster files are deleted between passes)
  // + one partial per agent at most while a pass runs over the previous one's deleted files.
  const need = sizeMiB * (agents + 3) + 256;
  // + each agent's own tmpfs (see BOARD_ROOT below), filled while a muster pass runs.
  const ram = need + sizeMiB * agents;
  const availMiB = os.freemem() / MIB;
  if (availMiB < ram + 1024)
    throw new Error(`files-push needs ~${ram} MiB of RAM for its tmpfs mounts; ${fx(availMiB, 0)} MiB free`);
  const dir = path.join(os.tmpdir(), `muster-bench-files-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${need}m,mode=0755`, 'tmpfs', dir]);
  let inner: Child | undefined;
  try {
    createLan(agents);
    progress(`files-push: ${agents} agents in namespaces ${PREFIX}-b1..b${agents}, tmpfs ${need} MiB at ${dir}`);
    const bin = musterBinary();
    inner = startChild(
      [
        'ip',
        'netns',
        'exec',
        `${PREFIX}-mgr`,
        process.execPath,
        '--import',
        'tsx',
        fileURLToPath(import.meta.url),
        '--inner',
        JSON.stringify({ sizeMiB, agents, rounds, dir, direct: opts.direct ?? true }),
      ],
      { ...process.env, ...bin.env },
    );
    // Progress lines go to our stderr as they come.
    inner.proc.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    const code = await inner.exited;
    const line = inner
      .output()
      .split('\n')
      .find((l) => l.startsWith('RESULT '));
    if (code !== 0 || !line)
      throw new Error(`files-push inner run failed (exit ${code}):\n${inner.output().slice(-6000)}`);
    return JSON.parse(line.slice('RESULT '.length)) as FilesPushResult;
  } finally {
    await inner?.stop();
    try {
      deleteNs();
    } finally {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The measuring side (inside the manager's namespace)
// ---------------------------------------------------------------------------------------------

/** The bare receiver: a node:http server that writes each PUT body to <dir>/<name>, answers 200. */
const RECEIVER = `
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');
const { pipeline } = require('node:stream/promises');
const [port, dir] = process.argv.slice(1);
http.createServer(async (req, res) => {
  if (req.method !== 'PUT') { res.statusCode = 405; return res.end(); }
  const name = path.basename(decodeURIComponent(req.url.slice(1)));
  try {
    await pipeline(req, fs.createWriteStream(path.join(dir, name)));
    res.end('ok');
  } catch (e) { res.statusCode = 500; res.end(String(e)); }
}).listen(Number(port), '0.0.0.0', () => console.log('listening'));
`;

async function api<T>(base: string, token: string, method: string, p: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}/api/v1${p}`, {
    method,
    headers: { ...bearer(token), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${p}: HTTP ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

/** Streams `file` to http://host:port/name with node:http (the plain transfer). */
function plainPut(
  host: string,
  port: number,
  name: string,
  file: string,
  size: number,
  headers: Record<string, string> = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host,
        port,
        method: 'PUT',
        path: name.startsWith('/') ? name : `/${encodeURIComponent(name)}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': size, ...headers },
        agent: false,
      },
      (res) => {
        let t = '';
        res.on('data', (d: Buffer) => {
          t += d.toString();
        });
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`PUT ${name}: HTTP ${res.statusCode} ${t.slice(0, 300)}`)),
        );
      },
    );
    req.on('error', reject);
    pipeline(createReadStream(file), req).catch(reject);
  });
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 4 * MIB })) h.update(c as Buffer);
  return h.digest('hex');
}

const cpuOf = (pid: number): number => {
  try {
    const s = execFileSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' });
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
};

async function inner(cfg: {
  sizeMiB: number;
  agents: number;
  rounds: number;
  dir: string;
  direct: boolean;
}): Promise<FilesPushResult> {
  const { dir, agents, rounds, direct } = cfg;
  // One exit listener per child process (testkit/process.ts).
  process.setMaxListeners(64);
  const size = cfg.sizeMiB * MIB;
  const boards = Array.from({ length: agents }, (_, i) => `b${i + 1}`);
  const ipOf = (i: number) => `${SUBNET_BASE}${i + 2}`;
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  // FILES_BENCH_CPU_PROF=<dir>: the manager and agents write V8 CPU profiles there (node --cpu-prof).
  const prof = process.env.FILES_BENCH_CPU_PROF;
  if (prof) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${prof}`.trim();
  const src = path.join(dir, 'source.bin');
  {
    // Incompressible bytes, written in 16 MiB pieces.
    const out = createWriteStream(src);
    for (let left = size; left > 0; left -= 16 * MIB)
      if (!out.write(randomBytes(Math.min(left, 16 * MIB))))
        await new Promise<void>((r) => out.once('drain', () => r()));
    await new Promise<void>((r, j) => out.end((e?: Error | null) => (e ? j(e) : r())));
  }
  const srcSha = await sha256File(src);
  const children: Child[] = [];
  const bin = musterBinary();
  try {
    const mgr = await startManager({
      httpPort: MANAGER_PORT,
      mcastPort: 3980,
      dataDir: path.join(dir, 'manager'),
      extra: {
        'http.host': '0.0.0.0',
        'multicast.interface': 'eth0',
        'query.heartbeat_interval_ms': 1000,
        'query.resource_interval_ms': 5000,
        'liveness.suspect_after_rounds': 30,
        'liveness.offline_after_rounds': 60,
        'deploy.token_file': tokenFile,
        'files.push_concurrency': agents,
        'files.max_upload_bytes': size * 2,
        'files.max_stored_bytes': size * 4,
        'files.stall_timeout_ms': 30_000,
      },
    });
    children.push(mgr.child);
    const agentProcs: Child[] = [];
    // The agents' root: one empty directory, over which each agent mounts its own tmpfs in its
    // own mount namespace (`ip netns exec` makes one per run; its mounts do not propagate back),
    // so one push to one directory lands on N file systems, as on N boards.
    const BOARD_ROOT = path.join(dir, 'boardroot');
    mkdirSync(BOARD_ROOT);
    for (const [i, b] of boards.entries()) {
      const bare = path.join(dir, b, 'bare');
      mkdirSync(bare, { recursive: true });
      const a = startChild(
        [
          'ip',
          'netns',
          'exec',
          `${PREFIX}-${b}`,
          'sh',
          '-c',
          'mount -t tmpfs -o "size=$1" tmpfs "$2" && shift 2 && exec "$@"',
          'sh',
          `${Math.ceil((2 * size + 64 * MIB) / MIB)}m`,
          BOARD_ROOT,
          ...bin.argv,
          'agent',
          ...sets({
            'multicast.interface': 'eth0',
            'identity.box_id': 7,
            'identity.slot_id': i + 1,
            'identity.cpu_id': 0,
            'report.jitter_ms': 200,
            'auth.token_file': tokenFile,
            'files.roots': `[${BOARD_ROOT}]`,
            'files.max_bytes': size * 2,
            'files.min_free_bytes': 0,
            'log.level': 'warn',
            data_dir: path.join(dir, b, 'data'),
          }),
        ],
        bin.env,
      );
      agentProcs.push(a);
      children.push(a);
      const r = startChild(
        ['ip', 'netns', 'exec', `${PREFIX}-${b}`, process.execPath, '-e', RECEIVER, String(BARE_PORT), bare],
        process.env,
      );
      children.push(r);
    }
    const receivers = children.filter((c) => !agentProcs.includes(c) && c !== mgr.child);

    // Every board online, every receiver listening.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { nodes } = await api<{ nodes: { id: string; state: string }[] }>(mgr.base, mgr.token, 'GET', '/nodes');
      const up = nodes.filter((n) => n.id.startsWith('7-') && n.state === 'online').length;
      if (up === agents && receivers.every((r) => r.output().includes('listening'))) break;
      for (const c of children)
        if (c.proc.exitCode !== null) throw new Error(`a child exited early:\n${c.output().slice(-3000)}`);
      if (Date.now() > deadline)
        throw new Error(`only ${up} of ${agents} boards online after 60 s\n${mgr.child.output().slice(-3000)}`);
      await sleep(250);
    }
    progress(`files-push: ${agents} boards online; uploading ${cfg.sizeMiB} MiB to the manager`);

    // The file goes to the manager once (not part of the ratio).
    const t0 = performance.now();
    const upload = await new Promise<{ upload: { id: string; sha256: string } }>((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: MANAGER_PORT,
          method: 'POST',
          path: '/api/v1/files/uploads?name=payload.bin',
          headers: { ...bearer(mgr.token), 'content-type': 'application/octet-stream', 'content-length': size },
        },
        (res) => {
          let t = '';
          res.on('data', (d: Buffer) => {
            t += d.toString();
          });
          res.on('end', () =>
            res.statusCode === 201 ? resolve(JSON.parse(t)) : reject(new Error(`upload: HTTP ${res.statusCode} ${t}`)),
          );
        },
      );
      req.on('error', reject);
      pipeline(createReadStream(src), req).catch(reject);
    });
    const uploadMs = performance.now() - t0;
    if (upload.upload.sha256 !== srcSha) throw new Error('the manager computed another sha256 of the upload');

    // Idle figures: 2 s before the first pass.
    const pids = [mgr.child.pid, ...agentProcs.map((a) => a.pid)];
    const idleSamples = pids.map(() => [] as number[]);
    for (let k = 0; k < 20; k++) {
      for (const [i, p] of pids.entries()) idleSamples[i]?.push(rssBytes(p));
      await sleep(100);
    }
    const idle = idleSamples.map((xs) => xs.reduce((a, b) => a + b, 0) / xs.length);
    const peak = pids.map(() => 0);

    const passes: FilesPass[] = [];
    let hashesOk = true;
    const cpu = { manager: 0, agents: 0, agentsDirect: 0, bareReceivers: 0, bareSender: 0 };
    for (let round = 0; round < rounds; round++) {
      // --- bare ---
      {
        const c0 = receivers.reduce((a, r) => a + cpuOf(r.pid), 0);
        const s0 = process.cpuUsage();
        const meter = contentionMeter();
        const t = performance.now();
        await Promise.all(boards.map((_, i) => plainPut(ipOf(i), BARE_PORT, 'payload.bin', src, size)));
        const ms = performance.now() - t;
        const { othersCores } = meter.stop();
        cpu.bareReceivers += receivers.reduce((a, r) => a + cpuOf(r.pid), 0) - c0;
        const s = process.cpuUsage(s0);
        cpu.bareSender += (s.user + s.system) / 1e6;
        for (const b of boards) {
          const f = path.join(dir, b, 'bare', 'payload.bin');
          if (statSync(f).size !== size) throw new Error(`bare: ${f} has ${statSync(f).size} bytes`);
          rmSync(f);
        }
        passes.push({ side: 'bare', ms, mibPerS: (agents * size) / MIB / (ms / 1000), othersCores });
        progress(
          `files-push: bare round ${round + 1}: ${fx(ms, 0)} ms, ${fx((agents * size) / MIB / (ms / 1000), 0)} MiB/s`,
        );
      }
      // --- the agents alone: the same plain PUTs sent straight to each agent's upload route ---
      if (direct) {
        const a0 = agentProcs.reduce((a, p) => a + cpuOf(p.pid), 0);
        const meter = contentionMeter();
        const t = performance.now();
        const q = `/files/content?path=${encodeURIComponent(`${BOARD_ROOT}/in/payload.bin`)}&sha256=${srcSha}&size=${size}&offset=0`;
        await Promise.all(
          boards.map((_, i) => plainPut(ipOf(i), AGENT_PORT, q, src, size, { authorization: `Bearer ${TOKEN}` })),
        );
        const ms = performance.now() - t;
        const { othersCores } = meter.stop();
        cpu.agentsDirect += agentProcs.reduce((a, p) => a + cpuOf(p.pid), 0) - a0;
        for (const a of agentProcs) rmSync(`/proc/${a.pid}/root${BOARD_ROOT}/in/payload.bin`);
        passes.push({ side: 'agent', ms, mibPerS: (agents * size) / MIB / (ms / 1000), othersCores });
        progress(
          `files-push: agents alone round ${round + 1}: ${fx(ms, 0)} ms, ${fx((agents * size) / MIB / (ms / 1000), 0)} MiB/s`,
        );
      }
      // --- muster ---
      {
        const m0 = cpuOf(mgr.child.pid);
        const a0 = agentProcs.reduce((a, p) => a + cpuOf(p.pid), 0);
        const meter = contentionMeter();
        const sampler = setInterval(() => {
          pids.forEach((p, i) => {
            peak[i] = Math.max(peak[i] ?? 0, rssBytes(p));
          });
        }, 100);
        let rec: PushRec;
        try {
          ({ push: rec } = await api<{ push: PushRec }>(mgr.base, mgr.token, 'POST', '/files/pushes', {
            target: 'box=7',
            files: [{ upload: upload.upload.id }],
            to: `${BOARD_ROOT}/in`,
          }));
          while (!rec.finished_at) {
            await sleep(100);
            ({ push: rec } = await api<{ push: PushRec }>(mgr.base, mgr.token, 'GET', `/files/pushes/${rec.id}`));
          }
        } finally {
          clearInterval(sampler);
        }
        const { othersCores } = meter.stop();
        cpu.manager += cpuOf(mgr.child.pid) - m0;
        cpu.agents += agentProcs.reduce((a, p) => a + cpuOf(p.pid), 0) - a0;
        if (rec.done !== agents)
          throw new Error(
            `push: ${rec.done} of ${agents} boards done: ${JSON.stringify(rec.nodes.map((n) => n.message))}`,
          );
        const ms = Date.parse(rec.finished_at) - Date.parse(rec.at);
        // Each agent sees its own tmpfs at BOARD_ROOT (its own mount namespace): read it through /proc.
        for (const a of agentProcs) {
          const f = `/proc/${a.pid}/root${BOARD_ROOT}/in/payload.bin`;
          if (round === rounds - 1 && (await sha256File(f)) !== srcSha) hashesOk = false;
          rmSync(f);
        }
        passes.push({ side: 'muster', ms, mibPerS: (agents * size) / MIB / (ms / 1000), othersCores });
        progress(
          `files-push: muster round ${round + 1}: ${fx(ms, 0)} ms, ${fx((agents * size) / MIB / (ms / 1000), 0)} MiB/s`,
        );
      }
    }
    const side = (s: FilesPass['side']) => {
      const ps = passes.filter((p) => p.side === s);
      const ms = ps.reduce((a, p) => a + p.ms, 0);
      return { ms, mibPerS: (ps.length * agents * size) / MIB / (ms / 1000) };
    };
    const bare = side('bare');
    const muster = side('muster');
    return {
      agents,
      bytes: size,
      rounds,
      passes,
      bare,
      muster,
      ratio: muster.mibPerS / bare.mibPerS,
      uploadMs,
      hashesOk,
      rss: {
        manager: { idle: idle[0] ?? 0, max: peak[0] ?? 0 },
        agents: agentProcs.map((_, i) => ({ idle: idle[i + 1] ?? 0, max: peak[i + 1] ?? 0 })),
      },
      cpu,
      othersCores: passes.reduce((a, p) => a + p.othersCores * p.ms, 0) / passes.reduce((a, p) => a + p.ms, 0),
      binary: `${bin.kind}: ${bin.note}`,
    };
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
  }
}

/** The figures as text. */
export function formatFilesPush(r: FilesPushResult): string {
  const worstAgent = r.rss.agents.reduce((w, a) => Math.max(w, a.max - a.idle), Number.NEGATIVE_INFINITY);
  const mgrGrowth = r.rss.manager.max - r.rss.manager.idle;
  const lines = [
    `files push: ${mib(r.bytes)} to ${r.agents} agents in network namespaces (veth + bridge), ${r.rounds} round(s) per side, alternating; ${r.binary}`,
    ...r.passes.map(
      (p) =>
        `  ${p.side.padEnd(6)} ${fx(p.ms, 0).padStart(6)} ms  ${fx(p.mibPerS, 0).padStart(5)} MiB/s aggregate  (others ${fx(p.othersCores, 2)} cores)`,
    ),
    `  bare   total ${fx(r.bare.mibPerS, 0)} MiB/s; muster total ${fx(r.muster.mibPerS, 0)} MiB/s; ratio muster/bare = ${fx(r.ratio, 2)} (target ≥ ${FILES_TARGET.ratio}: ${r.ratio >= FILES_TARGET.ratio ? 'met' : 'NOT met'})`,
    `  every board's file has the source's sha256: ${r.hashesOk ? 'yes' : 'NO'}; upload to the manager once: ${fx(r.uploadMs, 0)} ms (not in the ratio)`,
    `  RSS manager idle ${mib(r.rss.manager.idle)}, max during pushes ${mib(r.rss.manager.max)} (+${mib(mgrGrowth)}); ` +
      `agents idle ${mib(Math.min(...r.rss.agents.map((a) => a.idle)))}..${mib(Math.max(...r.rss.agents.map((a) => a.idle)))}, largest growth +${mib(worstAgent)} ` +
      `(target ≤ +${mib(FILES_TARGET.rssSlackBytes)}: ${mgrGrowth <= FILES_TARGET.rssSlackBytes && worstAgent <= FILES_TARGET.rssSlackBytes ? 'met' : 'NOT met'})`,
    `  CPU seconds: muster passes manager ${fx(r.cpu.manager, 1)} s + agents ${fx(r.cpu.agents, 1)} s; agents-alone passes ${fx(r.cpu.agentsDirect, 1)} s; bare passes sender ${fx(r.cpu.bareSender, 1)} s + receivers ${fx(r.cpu.bareReceivers, 1)} s; other processes ${fx(r.othersCores, 2)} cores`,
  ];
  return lines.join('\n');
}

/** The RESULTS.md section of a run: a dated heading, the machine note, the figures. */
export function filesPushSection(r: FilesPushResult, at: Date): string {
  const m = machine();
  return [
    `${SECTION_HEAD} (${at.toISOString()})`,
    '',
    `Run on its own (\`node --import tsx bench/files-push.ts --results\`) on ${m.cpu}, ${m.cores} cores, ${m.memory}, ${m.node}. ` +
      'The machine is shared with other work (other engineers\' tests and benchmarks run on it): the "others" figure of ' +
      'each pass is the CPU they used meanwhile, and both sides of the ratio were measured in the same run, alternating.',
    '',
    '```',
    formatFilesPush(r),
    '```',
    '',
  ].join('\n');
}

const SECTION_HEAD = '## Files push: 8 agents in network namespaces';

/** Replaces (or appends) the files-push section of bench/RESULTS.md. */
function writeResultsSection(r: FilesPushResult, at: Date): void {
  const file = path.join(ROOT, 'bench', 'RESULTS.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf(SECTION_HEAD);
  const section = filesPushSection(r, at);
  let out: string;
  if (start < 0) out = `${text.trimEnd()}\n\n${section}`;
  else {
    const next = text.indexOf('\n## ', start + SECTION_HEAD.length);
    out = `${text.slice(0, start)}${section}${next < 0 ? '' : text.slice(next + 1)}`;
  }
  writeFileSync(file, out);
  progress(`wrote the files-push section of ${path.relative(process.cwd(), file)}`);
}

if (isMain(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      inner: { type: 'string' },
      'size-mib': { type: 'string' },
      agents: { type: 'string' },
      rounds: { type: 'string' },
      results: { type: 'boolean', default: false },
    },
  });
  const run = values.inner
    ? inner(JSON.parse(values.inner)).then((r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`))
    : runFilesPush({
        sizeMiB: Number(values['size-mib'] ?? 256),
        agents: Number(values.agents ?? 8),
        rounds: Number(values.rounds ?? 2),
      }).then((r) => {
        process.stdout.write(`${formatFilesPush(r)}\n`);
        if (values.results) writeResultsSection(r, new Date());
      });
  run.then(
    () => process.exit(0),
    (err: Error) => {
      process.stderr.write(`files-push: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
