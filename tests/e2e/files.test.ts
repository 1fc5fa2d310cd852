/**
 * Files end to end on real parts (docs/files.md): a manager and three agents, each in its own
 * network namespace on one bridge, driven by the `muster` CLI inside the manager's namespace.
 * One push goes to all three boards while board b2's link is slowed (an nftables policer) and then cut in the
 * middle of its transfer and restored: b2 resumes from the offset it holds and ends with the same
 * sha256 as the others, and a reader polling the three target paths never sees a partial file.
 * Refused: a path outside files.roots, a `..` path, a symlink escaping a root, a file over
 * files.max_bytes, a full disk (a small tmpfs root), and a viewer (403). Then ls, pull and rm.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Proc, runMuster, sets, startMuster, watchDaemons } from '../helpers/daemons.js';
import { missingCommand, missingRoot, needs } from '../helpers/need.js';
import { createLan, type Lan } from '../helpers/netns.js';

const PREFIX = 'mfl';
const BOARDS = ['b1', 'b2', 'b3'] as const;
const IDS = ['4-1-0', '4-2-0', '4-3-0'] as const;
const TOKEN = 'files-e2e-token-7c21';
const MIB = 1 << 20;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe(
  'files: push with a cut link, refusals, ls, pull, rm',
  needs(missingRoot(), missingCommand('ip'), missingCommand('nft')),
  () => {
    let lan: Lan | undefined;
    let manager: Proc | undefined;
    const agents = new Map<string, Proc>();
    let tmp = '';
    let tmpfs = '';
    let managerUrl = '';
    const rootOf = (b: string) => path.join(tmp, b, 'root');

    const named = (): [string, Proc][] => [
      ...(manager ? [['manager', manager] as [string, Proc]] : []),
      ...[...agents].map(([h, p]) => [`agent ${h}`, p] as [string, Proc]),
    ];
    const logs = () =>
      named()
        .map(([n, p]) => `----- ${n} -----\n${p.output().slice(-4000)}`)
        .join('\n');
    const { withLogs, until } = watchDaemons(named, logs);
    const cli = (args: string[], env?: NodeJS.ProcessEnv) =>
      runMuster(['--manager', managerUrl, ...args], {
        netns: lan?.ns('mgr'),
        timeoutMs: 60_000,
        ...(env ? { env } : {}),
      });

    before(
      async () => {
        tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-files-e2e-'));
        writeFileSync(path.join(tmp, 'token'), `${TOKEN}\n`);
        // A small file system for the full-disk case, mounted before the agents start.
        tmpfs = path.join(tmp, 'small');
        mkdirSync(tmpfs);
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', tmpfs]);
        lan = createLan({ prefix: PREFIX, hosts: ['mgr', ...BOARDS] });
        managerUrl = `http://${lan.ip('mgr')}:3926`;
        manager = startMuster(
          [
            'manager',
            ...sets({
              'multicast.interface': 'eth0',
              'query.heartbeat_interval_ms': 500,
              'query.resource_interval_ms': 1000,
              'liveness.suspect_after_rounds': 20,
              'liveness.offline_after_rounds': 40,
              'deploy.token_file': path.join(tmp, 'token'),
              'files.stall_timeout_ms': 1500,
              'files.request_timeout_ms': 1000,
              'files.retry_backoff_ms': 300,
              'files.retry_backoff_max_ms': 1000,
              'files.retries': 12,
              'log.level': 'warn',
              data_dir: path.join(tmp, 'manager'),
            }),
          ],
          { netns: lan.ns('mgr') },
        );
        for (const [i, b] of BOARDS.entries()) {
          mkdirSync(rootOf(b), { recursive: true });
          const roots = b === 'b3' ? `[${rootOf(b)}, ${tmpfs}]` : `[${rootOf(b)}]`;
          agents.set(
            b,
            startMuster(
              [
                'agent',
                ...sets({
                  'multicast.interface': 'eth0',
                  'identity.box_id': 4,
                  'identity.slot_id': i + 1,
                  'identity.cpu_id': 0,
                  'report.jitter_ms': 100,
                  'auth.token_file': path.join(tmp, 'token'),
                  'files.roots': roots,
                  'files.max_bytes': 16 * MIB,
                  'files.min_free_bytes': 0,
                  data_dir: path.join(tmp, b, 'data'),
                }),
              ],
              { netns: lan.ns(b) },
            ),
          );
        }
        symlinkSync('/etc', path.join(rootOf('b1'), 'evil'));
      },
      { timeout: 30_000 },
    );

    after(
      async () => {
        await Promise.allSettled(named().map(([, p]) => p.stop()));
        try {
          lan?.destroy();
        } finally {
          if (tmpfs) execFileSync('umount', ['-l', tmpfs]);
          if (tmp) rmSync(tmp, { recursive: true, force: true });
        }
      },
      { timeout: 30_000 },
    );

    test(
      'push to three boards; b2 cut mid-transfer resumes from its offset; no reader sees a partial file',
      { timeout: 60_000 },
      () =>
        withLogs(async () => {
          await until(
            'three boards online',
            async () => {
              const r = await cli(['nodes', '--json']);
              if (r.code !== 0) return false;
              const nodes = JSON.parse(r.output) as { id: string; state: string }[];
              return IDS.every((id) => nodes.some((n) => n.id === id && n.state === 'online'));
            },
            30_000,
            500,
          );
          const data = Buffer.alloc(8 * MIB);
          for (let i = 0; i < data.length; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
          const src = path.join(tmp, 'model.bin');
          writeFileSync(src, data);
          const want = sha(data);
          const targets = BOARDS.map((b) => path.join(rootOf(b), 'models', 'model.bin'));

          // A reader polling every target path: whatever it sees must be the whole file.
          let reading = true;
          let seen = 0;
          const partialSeen: string[] = [];
          const reader = (async () => {
            while (reading) {
              for (const t of targets) {
                try {
                  const st = statSync(t);
                  seen++;
                  if (st.size !== data.length) partialSeen.push(`${t}: ${st.size} bytes`);
                } catch {
                  // not there yet
                }
              }
              await new Promise((r) => setTimeout(r, 5));
            }
          })();
          // b2 takes at most ~3 MB/s on its command port (an nftables policer in its namespace; no
          // netem needed): its transfer takes seconds, long enough to cut it midway.
          const ns2 = lan?.ns('b2') as string;
          execFileSync('ip', [
            'netns',
            'exec',
            ns2,
            'nft',
            [
              'add table inet mfl_rate',
              'add chain inet mfl_rate in { type filter hook input priority 0; }',
              'add rule inet mfl_rate in tcp dport 23980 limit rate over 3 mbytes/second drop',
            ].join('; '),
          ]);
          // A .. path is refused by the CLI before anything is sent (and by the manager and agents).
          const dots = await cli(['files', 'push', '--target', 'box=4', src, '--to', `${rootOf('b1')}/../..`]);
          assert.notEqual(dots.code, 0);
          assert.match(dots.output, /\.\. segment/);

          // Each board's root differs: one push per board, all at once.
          const runs = BOARDS.map((b, i) =>
            cli([
              'files',
              'push',
              '--target',
              IDS[i] as string,
              src,
              '--to',
              path.join(rootOf(b), 'models'),
              '--mode',
              '0640',
            ]),
          );
          const partDir = path.join(rootOf('b2'), 'models');
          const partSize = () => {
            try {
              const f = execFileSync('sh', ['-c', `ls -1 ${partDir}/.model.bin.muster-part-* 2>/dev/null | head -1`], {
                encoding: 'utf8',
              }).trim();
              return f ? statSync(f).size : 0;
            } catch {
              return 0;
            }
          };
          await until('b2 to hold a part of the file', async () => partSize() > 2 * MIB, 30_000, 50).catch((e) => {
            reading = false;
            throw e;
          });
          lan?.cut('b2');
          const heldAtCut = partSize();
          await new Promise((r) => setTimeout(r, 3500));
          lan?.restore('b2');
          execFileSync('ip', ['netns', 'exec', ns2, 'nft', 'delete', 'table', 'inet', 'mfl_rate']);
          const results = await Promise.all(runs).finally(() => {
            reading = false;
          });
          await reader;

          for (const [i, r] of results.entries()) assert.equal(r.code, 0, `push to ${IDS[i]}: ${r.output}`);
          for (const t of targets) {
            assert.equal(sha(readFileSync(t)), want, t);
            assert.equal(statSync(t).mode & 0o777, 0o640);
          }
          assert.deepEqual(partialSeen, [], 'a reader saw a partial file');
          assert.ok(seen > 0, 'the reader saw the files');
          const b2 = results[1]?.output ?? '';
          assert.match(b2, /resumed from/, b2);
          const id = /push ([0-9a-f-]{36})/.exec(b2)?.[1];
          assert.ok(id, b2);
          const hist = await cli(['history', '--node', '4-2-0', '--json']);
          const entries = JSON.parse(hist.output) as {
            history: {
              operation: string;
              result: number;
              args: { resumed_from?: number[]; files?: { sha256: string }[] };
            }[];
          };
          const push2 = entries.history.find((e) => e.operation === 'files.push');
          assert.equal(push2?.result, 0);
          assert.equal(push2?.args.files?.[0]?.sha256, want);
          const resumed = push2?.args.resumed_from ?? [];
          assert.ok(resumed.length > 0 && (resumed[0] as number) > 0, `resumed_from ${JSON.stringify(resumed)}`);
          assert.ok(
            (resumed[0] as number) <= data.length && heldAtCut > 0,
            `held ${heldAtCut} at the cut, resumed from ${resumed}`,
          );
          assert.equal(
            execFileSync('sh', ['-c', `ls -a ${partDir}`], { encoding: 'utf8' }).includes('muster-part'),
            false,
          );
        }),
    );

    test('refused: outside the roots, a symlink escape, too large, a full disk, a viewer', { timeout: 60_000 }, () =>
      withLogs(async () => {
        const small = path.join(tmp, 'small.bin');
        writeFileSync(small, 'hello\n');
        const failed = async (args: string[], re: RegExp) => {
          const r = await cli(args);
          assert.equal(r.code, 1, r.output);
          assert.match(r.output, re);
        };
        await failed(
          ['files', 'push', '--target', '4-1-0', small, '--to', '/etc'],
          /outside_roots: .*outside the allowed roots/,
        );
        await failed(
          ['files', 'push', '--target', '4-1-0', small, '--to', path.join(rootOf('b1'), 'evil')],
          /outside_roots: .*resolves to \/etc/,
        );
        assert.throws(() => statSync('/etc/small.bin'), /ENOENT/);
        const big = path.join(tmp, 'big.bin');
        writeFileSync(big, Buffer.alloc(17 * MIB));
        await failed(
          ['files', 'push', '--target', '4-1-0', big, '--to', rootOf('b1')],
          /too_large: .*files\.max_bytes/,
        );
        const six = path.join(tmp, 'six.bin');
        writeFileSync(six, Buffer.alloc(6 * MIB, 1));
        await failed(
          ['files', 'push', '--target', '4-3-0', six, '--to', path.join(tmpfs, 'd')],
          /no_space: .*do not fit/,
        );
        // A viewer may list but not push.
        const tok = await cli(['tokens', 'create', '--name', 'vera', '--role', 'viewer', '--json']);
        assert.equal(tok.code, 0, tok.output);
        const token = (JSON.parse(tok.output.slice(tok.output.indexOf('{'))) as { token: string }).token;
        const v = await cli(['files', 'push', '--target', '4-1-0', small, '--to', rootOf('b1')], {
          MUSTER_TOKEN: token,
        });
        assert.equal(v.code, 5, v.output);
        assert.match(v.output, /viewer cannot POST/);
        const ls = await cli(['files', 'ls', '4-1-0', path.join(rootOf('b1'), 'models')], { MUSTER_TOKEN: token });
        assert.equal(ls.code, 0, ls.output);
        assert.match(ls.output, /model\.bin/);
        const pull = await cli(['files', 'pull', '4-1-0', path.join(rootOf('b1'), 'models', 'model.bin'), '-o', '-'], {
          MUSTER_TOKEN: token,
        });
        assert.equal(pull.code, 5, pull.output);
      }),
    );

    test('ls, pull and rm through the manager', { timeout: 60_000 }, () =>
      withLogs(async () => {
        const dir = path.join(rootOf('b3'), 'models');
        const ls = await cli(['files', 'ls', '4-3-0', dir]);
        assert.equal(ls.code, 0, ls.output);
        assert.match(ls.output, /0640\s+file\s+8388608 .*model\.bin/);
        const out = path.join(tmp, 'pulled.bin');
        const pull = await cli(['files', 'pull', '4-3-0', path.join(dir, 'model.bin'), '-o', out]);
        assert.equal(pull.code, 0, pull.output);
        assert.equal(sha(readFileSync(out)), sha(readFileSync(path.join(dir, 'model.bin'))));
        const rmDir = await cli(['files', 'rm', '--target', 'box=4', path.join(rootOf('b3'), 'models')]);
        assert.equal(rmDir.code, 1, 'a directory needs --recursive');
        assert.match(rmDir.output, /not_empty|outside_roots/);
        const rm = await cli(['files', 'rm', '--target', '4-3-0', '--recursive', dir]);
        assert.equal(rm.code, 0, rm.output);
        assert.throws(() => statSync(dir), /ENOENT/);
      }),
    );
  },
);
