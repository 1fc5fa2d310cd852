/**
 * File verbs over the manager's REST API (docs/files.md "Commands"):
 *   muster files push --target <target> SRC... --to DIR [--mode 0644] [--owner uid[:gid]]
 *   muster files rm --target <target> PATH... [--recursive]
 *   muster files ls NODE DIR
 *   muster files pull NODE PATH [-o FILE]
 * A push uploads each SRC once to the manager (streamed), then the manager sends it to every board
 * of the target; the CLI prints each board's progress as it changes and a summary, and exits 1
 * when a board failed.
 */
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { type Command, InvalidArgumentError } from 'commander';
import type { request } from 'undici';
import type { NodeListReply, PushRecord, RemoveReply, UploadReply } from '../../common/api/files.js';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import { MODE_RE, OWNER_RE } from '../../common/files.js';
import { parseTarget, TargetError } from '../../common/target.js';
import { loadUndici } from '../../common/undici.js';
import { api, CliError, cliToken, EXIT_AUTH, managerUrl } from '../client.js';
import { bytes, table } from '../format.js';

/** How often the CLI reads a push's progress, ms. */
const POLL_MS = 500;

function nodeId(v: string): string {
  if (!NODE_ID_RE.test(v)) throw new InvalidArgumentError('expected box-slot-cpu, e.g. 1-3-0');
  return v;
}

function target(v: string): string {
  try {
    parseTarget(v);
  } catch (err) {
    if (err instanceof TargetError) throw new InvalidArgumentError(err.message);
    throw err;
  }
  return v;
}

function boardPath(v: string): string {
  if (!v.startsWith('/')) throw new InvalidArgumentError('expected an absolute path on the board');
  if (v.split('/').includes('..')) throw new InvalidArgumentError('a path with a .. segment is refused');
  return v;
}

/**
 * A raw request to the manager: the caller reads or streams the body. A status ≥ 400 is thrown
 * as CliError with the API's message (exit codes as cli/client.ts `api`).
 */
export async function rawApi(
  base: string,
  method: 'GET' | 'POST',
  pathname: string,
  opts: { body?: NodeJS.ReadableStream; headers?: Record<string, string>; timeoutMs?: number } = {},
) {
  const token = cliToken();
  // undici on first use: `muster agent` runs this CLI's entry and must not load it
  // (docs/operations.md "Agent footprint").
  const { request } = await loadUndici();
  let res: Awaited<ReturnType<typeof request>>;
  try {
    res = await request(`${base}${pathname}`, {
      method,
      headers: { ...opts.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
      ...(opts.body ? { body: opts.body as never } : {}),
      headersTimeout: opts.timeoutMs ?? 600_000,
      bodyTimeout: opts.timeoutMs ?? 600_000,
    });
  } catch (err) {
    const e = err as Error & { code?: string };
    throw new CliError(`cannot reach the manager at ${base} (${e.code ?? e.name}: ${e.message})`, 3);
  }
  if (res.statusCode >= 400) {
    const text = (await res.body.text()).slice(0, 4096);
    let msg = `HTTP ${res.statusCode}`;
    try {
      msg = (JSON.parse(text) as { message?: string }).message ?? msg;
    } catch {
      // not JSON
    }
    if (res.statusCode === 401) throw new CliError(`not logged in: ${msg}; run muster login`, EXIT_AUTH);
    if (res.statusCode === 403) throw new CliError(msg, EXIT_AUTH);
    throw new CliError(msg, res.statusCode === 404 ? 4 : 1);
  }
  return res;
}

/** Streams `file` to `dest` through `<dest>.part`, renamed when whole; `-` = stdout. */
export async function saveStream(body: NodeJS.ReadableStream, dest: string, expected?: number): Promise<number> {
  let n = 0;
  body.on('data', (c: Buffer) => {
    n += c.length;
  });
  if (dest === '-') {
    await pipeline(body, process.stdout, { end: false });
  } else {
    const part = `${dest}.part`;
    try {
      await pipeline(body, createWriteStream(part));
      if (expected !== undefined && n !== expected) throw new CliError(`got ${n} of ${expected} bytes`);
      await rename(part, dest);
    } catch (err) {
      await unlink(part).catch(() => {});
      throw err;
    }
  }
  return n;
}

/** One progress line of a board. */
export function progressLine(n: PushRecord['nodes'][number]): string {
  const pct = n.total > 0 ? Math.floor((n.bytes * 100) / n.total) : 100;
  const extra = n.resumed_from.length > 0 ? `  resumed from ${n.resumed_from.map((o) => bytes(o)).join(', ')}` : '';
  const msg = n.state === 'failed' || n.state === 'retrying' ? `  ${n.message ?? ''}` : '';
  return `  ${n.node}  ${n.state.padEnd(8)} ${String(pct).padStart(3)}%  ${bytes(n.bytes)} / ${bytes(n.total)}${extra}${msg}`;
}

/** The summary table of a push. */
export function renderPush(p: PushRecord): string {
  const rows = p.nodes.map((n) => [
    n.node,
    n.host_ip,
    n.state,
    bytes(n.bytes),
    n.attempts,
    n.resumed_from.length > 0 ? n.resumed_from.join(',') : '-',
    n.message,
  ]);
  return `${table(['NODE', 'IP', 'STATE', 'BYTES', 'ATTEMPTS', 'RESUMED FROM', 'MESSAGE'], rows)}\n\n${p.nodes.length} board(s): ${p.done} done, ${p.failed} failed`;
}

/** The listing of a directory. */
export function renderList(l: NodeListReply): string {
  if (l.entries.length === 0) return `${l.path}: empty`;
  const t = table(
    ['MODE', 'TYPE', 'SIZE', 'MODIFIED', 'NAME'],
    l.entries.map((e) => [e.mode, e.type, e.type === 'file' ? String(e.size) : '-', e.mtime.slice(0, 19), e.name]),
  );
  return l.truncated ? `${t}\n(more entries than the agent lists: files.max_list_entries)` : t;
}

/** Registers `files push|rm|ls|pull` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const f = p.command('files').description('push files to boards, remove, list and fetch them (docs/files.md)');

  f.command('push')
    .description('upload files once to the manager, which sends them to every board of the target (resuming)')
    .requiredOption(
      '--target <target>',
      'the boards: ids, globs, key=value, labels, all (docs/exec.md "Targets")',
      target,
    )
    .requiredOption('--to <dir>', 'absolute directory on the boards (inside their files.roots)', boardPath)
    .option('--mode <mode>', 'permission bits of the files, octal', (v: string) => {
      if (!MODE_RE.test(v)) throw new InvalidArgumentError('expected octal permission bits, e.g. 0644');
      return v;
    })
    .option('--owner <uid[:gid]>', 'numeric owner of the files', (v: string) => {
      if (!OWNER_RE.test(v)) throw new InvalidArgumentError('expected a numeric uid or uid:gid');
      return v;
    })
    .option('--json', 'print the push record as JSON when done')
    .argument('<src...>', 'local files')
    .action(
      async (srcs: string[], o: { target: string; to: string; mode?: string; owner?: string; json?: boolean }) => {
        const b = base();
        const files: { upload: string; name: string }[] = [];
        for (const src of srcs) {
          let size: number;
          try {
            const st = statSync(src);
            if (!st.isFile()) throw new CliError(`${src} is not a regular file`);
            size = st.size;
          } catch (err) {
            if (err instanceof CliError) throw err;
            throw new CliError(`${src}: ${(err as Error).message}`);
          }
          const name = path.basename(src);
          const res = await rawApi(b, 'POST', `/api/v1/files/uploads?name=${encodeURIComponent(name)}`, {
            body: createReadStream(src),
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
          });
          const { upload } = (await res.body.json()) as UploadReply;
          if (!o.json) console.log(`uploaded ${src}: ${bytes(upload.size)} sha256 ${upload.sha256}`);
          files.push({ upload: upload.id, name });
        }
        let { push } = await api<{ push: PushRecord }>(b, 'POST', '/api/v1/files/pushes', {
          target: o.target,
          files,
          to: o.to,
          ...(o.mode ? { mode: o.mode } : {}),
          ...(o.owner ? { owner: o.owner } : {}),
        });
        if (!o.json)
          console.log(`push ${push.id}: ${files.length} file(s) to ${push.nodes.length} board(s) into ${push.to}`);
        const shown = new Map<string, string>();
        for (;;) {
          if (!o.json) {
            for (const n of push.nodes) {
              // A line when the state changes or another quarter of the bytes has gone.
              const key = `${n.state}|${Math.floor((n.bytes * 4) / Math.max(1, n.total))}|${n.resumed_from.length}`;
              if (shown.get(n.node) !== key) {
                shown.set(n.node, key);
                console.log(progressLine(n));
              }
            }
          }
          if (push.finished_at !== null) break;
          await new Promise((r) => setTimeout(r, POLL_MS));
          push = (await api<{ push: PushRecord }>(b, 'GET', `/api/v1/files/pushes/${push.id}`)).push;
        }
        console.log(o.json ? JSON.stringify(push, null, 2) : `\n${renderPush(push)}`);
        if (push.failed > 0) throw new CliError(`${push.failed} of ${push.nodes.length} board(s) failed`, 1);
      },
    );

  f.command('rm')
    .description('delete files (or, with --recursive, directories) on every board of the target')
    .requiredOption('--target <target>', 'the boards (docs/exec.md "Targets")', target)
    .option('-r, --recursive', 'delete directories with what they hold')
    .option('--json', 'print JSON')
    .argument('<path...>', 'absolute paths on the boards')
    .action(async (paths: string[], o: { target: string; recursive?: boolean; json?: boolean }) => {
      for (const x of paths) boardPath(x);
      const r = await api<RemoveReply>(base(), 'POST', '/api/v1/files/remove', {
        target: o.target,
        paths,
        recursive: o.recursive === true,
      });
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['NODE', 'PATH', 'RESULT', 'MESSAGE'],
            r.results.map((x) => [x.node, x.path, x.ok ? x.removed : x.error, x.message]),
          ),
        );
      const failed = r.results.filter((x) => !x.ok).length;
      if (failed > 0) throw new CliError(`${failed} of ${r.results.length} removal(s) failed`, 1);
    });

  f.command('ls')
    .description('list a directory on a board')
    .argument('<node>', 'node id box-slot-cpu', nodeId)
    .argument('<dir>', 'absolute directory on the board', boardPath)
    .option('--json', 'print JSON')
    .action(async (node: string, dir: string, o: { json?: boolean }) => {
      const l = await api<NodeListReply>(base(), 'GET', `/api/v1/nodes/${node}/files?path=${encodeURIComponent(dir)}`);
      console.log(o.json ? JSON.stringify(l, null, 2) : renderList(l));
    });

  f.command('pull')
    .description('fetch a file from a board (streamed through the manager)')
    .argument('<node>', 'node id box-slot-cpu', nodeId)
    .argument('<path>', 'absolute path on the board', boardPath)
    .option('-o, --output <file>', 'where to write it; - = stdout (default: its name in the current directory)')
    .action(async (node: string, p: string, o: { output?: string }) => {
      const res = await rawApi(base(), 'GET', `/api/v1/nodes/${node}/files/content?path=${encodeURIComponent(p)}`);
      const size = Number(res.headers['content-length']);
      const dest = o.output ?? path.basename(p);
      const n = await saveStream(res.body, dest, Number.isFinite(size) ? size : undefined);
      if (dest !== '-') console.error(`${node}:${p} → ${dest} (${bytes(n)})`);
    });
}
