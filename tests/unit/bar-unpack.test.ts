/**
 * Bar bundle unpacking and validation without processes or network: tarballs are built here
 * with node-tar (`create` for well-formed bundles, raw `Header` blocks for hostile entries that
 * `create` would not write), bar.yaml rules, /proc/<pid>/stat parsing, url/file validation.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { create, Header } from 'tar';
import { DeployError, RESULT } from '../../agent/deploy/results.js';
import { cgroupsOf, detectLayout } from '../../agent/drivers/bar/cgroup.js';
import { bundleUrl, validateBarSource } from '../../agent/drivers/bar/driver.js';
import { parseManifest, signalName } from '../../agent/drivers/bar/manifest.js';
import { parseStat } from '../../agent/drivers/bar/proc.js';
import {
  BundleRefused,
  EntryGuard,
  extractCounted,
  resolveInside,
  sniff,
  type UnpackLimits,
  unpackBundle,
} from '../../agent/drivers/bar/unpack.js';

interface RawEntry {
  path: string;
  type?: 'File' | 'Directory' | 'SymbolicLink' | 'Link' | 'FIFO' | 'CharacterDevice' | 'BlockDevice';
  body?: string;
  linkpath?: string;
  mode?: number;
}

/** A gzip tar of exactly these entries (no path rewriting, unlike tar.create). */
function rawTgz(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'File';
    const body = Buffer.from(type === 'File' ? (e.body ?? '') : '');
    const h = new Header({
      path: e.path,
      type,
      mode: e.mode ?? (type === 'Directory' ? 0o755 : 0o644),
      size: body.length,
      linkpath: e.linkpath ?? '',
      uid: 0,
      gid: 0,
      mtime: new Date(),
    });
    h.encode();
    blocks.push(h.block as Buffer, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

const MANIFEST = 'name: demo\nversion: "1.0"\ncommand: [./run.sh]\n';

let tmp: string;
let n = 0;
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'muster-bar-unit-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Writes `data` as a blob and returns [blob path, fresh empty bundle dir under a work dir]. */
async function blobOf(data: Buffer | string): Promise<{ blob: string; work: string; bundle: string }> {
  const work = path.join(tmp, `w${++n}`);
  await mkdir(work, { recursive: true });
  const blob = path.join(tmp, `blob${n}`);
  await writeFile(blob, data);
  return { blob, work, bundle: path.join(work, 'bundle') };
}

async function rejectsWith(p: Promise<unknown>, code: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof DeployError, `expected a DeployError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, re);
    return true;
  });
}

/** Every path under `dir`, relative. */
async function tree(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

describe('bar bundle unpack', () => {
  test('a well-formed gzip tar is unpacked and its bar.yaml read', async () => {
    const src = path.join(tmp, 'src-good');
    await mkdir(path.join(src, 'lib'), { recursive: true });
    await writeFile(
      path.join(src, 'bar.yaml'),
      'name: demo\nversion: "1.0"\ncommand: [./run.sh, --x]\nenv: { MODE: fast }\nstop_signal: INT\nstop_grace_ms: 250\n',
    );
    await writeFile(path.join(src, 'run.sh'), '#!/bin/sh\necho hi\n');
    await chmod(path.join(src, 'run.sh'), 0o755);
    await writeFile(path.join(src, 'lib', 'data.txt'), 'data');
    const { blob, bundle } = await blobOf('');
    await create({ gzip: true, file: blob, cwd: src, portable: true }, ['.']);
    assert.equal(await sniff(blob), 'tgz');
    const { manifest, kind } = await unpackBundle(blob, 'demo.bar', bundle);
    assert.equal(kind, 'tgz');
    assert.deepEqual(manifest, {
      name: 'demo',
      version: '1.0',
      command: ['./run.sh', '--x'],
      env: { MODE: 'fast' },
      stopSignal: 'SIGINT',
      stopGraceMs: 250,
    });
    assert.equal(await readFile(path.join(bundle, 'lib', 'data.txt'), 'utf8'), 'data');
    assert.ok(((await stat(path.join(bundle, 'run.sh'))).mode & 0o111) !== 0, 'run.sh keeps its x bits');
  });

  test('a relative symlink that stays inside is accepted', async () => {
    const { blob, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'lib/', type: 'Directory' },
        { path: 'real.txt', body: 'r' },
        { path: 'lib/alias.txt', type: 'SymbolicLink', linkpath: '../real.txt' },
        { path: 'hard.txt', type: 'Link', linkpath: 'real.txt' },
      ]),
    );
    await unpackBundle(blob, 'x.bar', bundle);
    assert.equal(await readFile(path.join(bundle, 'lib', 'alias.txt'), 'utf8'), 'r');
    assert.equal(await readFile(path.join(bundle, 'hard.txt'), 'utf8'), 'r');
  });

  test('a file that is neither a gzip tar nor an executable is refused', async () => {
    const { blob, bundle } = await blobOf('just some text\n');
    await rejectsWith(
      unpackBundle(blob, 'notes.txt', bundle),
      RESULT.FETCH_FAILED,
      /not a gzip tar bundle or an executable/,
    );
  });

  test('a gzip that is not a tar is refused', async () => {
    const { blob, bundle } = await blobOf(gzipSync(Buffer.from('not a tar archive at all, just text '.repeat(40))));
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /gzip tar/);
  });

  test('a gzip tar without bar.yaml is refused, naming bar.yaml', async () => {
    const { blob, bundle } = await blobOf(rawTgz([{ path: 'run.sh', body: '#!/bin/sh\n', mode: 0o755 }]));
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /bar\.yaml/);
  });

  test('bar.yaml in a sub-directory only does not count', async () => {
    const { blob, bundle } = await blobOf(rawTgz([{ path: 'sub/bar.yaml', body: MANIFEST }]));
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /bar\.yaml/);
  });

  test('an entry ../evil is refused and nothing is written', async () => {
    const { blob, work, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: '../evil', body: 'pwned' },
      ]),
    );
    await rejectsWith(
      unpackBundle(blob, 'x.bar', bundle),
      RESULT.FETCH_FAILED,
      /entry "\.\.\/evil" escapes the bundle directory/,
    );
    assert.equal(existsSync(path.join(work, 'evil')), false);
    assert.deepEqual(await tree(bundle), []);
  });

  test('a nested a/../../evil is refused', async () => {
    const { blob, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'a/../../evil', body: 'pwned' },
      ]),
    );
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /escapes the bundle directory/);
  });

  test('an absolute /tmp/evil entry is refused and /tmp/evil is not written', async () => {
    const existed = existsSync('/tmp/evil');
    const before = existed ? await readFile('/tmp/evil', 'utf8').catch(() => '') : '';
    const marker = `pwned-${process.pid}-${Date.now()}`;
    const { blob, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: '/tmp/evil', body: marker },
      ]),
    );
    await rejectsWith(
      unpackBundle(blob, 'x.bar', bundle),
      RESULT.FETCH_FAILED,
      /entry "\/tmp\/evil" escapes the bundle directory/,
    );
    assert.equal(existsSync('/tmp/evil'), existed);
    if (existed) assert.equal(await readFile('/tmp/evil', 'utf8').catch(() => ''), before);
    assert.deepEqual(await tree(bundle), []);
    assert.equal(existsSync(path.join(bundle, 'tmp', 'evil')), false);
  });

  test('a symlink to /etc is refused (and nothing is written through it)', async () => {
    const { blob, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'etc', type: 'SymbolicLink', linkpath: '/etc' },
        { path: 'etc/muster-evil', body: 'pwned' },
      ]),
    );
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /"etc" \(symlink to "\/etc"\) escapes/);
    assert.equal(existsSync('/etc/muster-evil'), false);
    assert.deepEqual(await tree(bundle), []);
  });

  test('a symlink chain that escapes only when followed (a -> ., b -> a/..) is refused', async () => {
    const { blob, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'a', type: 'SymbolicLink', linkpath: '.' },
        { path: 'b', type: 'SymbolicLink', linkpath: 'a/..' },
      ]),
    );
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /"b" \(symlink to "a\/\.\."\) escapes/);
  });

  test('a relative symlink climbing out (../../etc) and a hardlink to ../x are refused', async () => {
    for (const e of [
      { path: 'lib/up', type: 'SymbolicLink' as const, linkpath: '../../etc/passwd' },
      { path: 'h', type: 'Link' as const, linkpath: '../x' },
      { path: 'h', type: 'Link' as const, linkpath: '/etc/passwd' },
    ]) {
      const { blob, bundle } = await blobOf(rawTgz([{ path: 'bar.yaml', body: MANIFEST }, e]));
      await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /escapes the bundle directory/);
      assert.deepEqual(await tree(bundle), []);
    }
  });

  test('fifo and device entries are refused', async () => {
    for (const type of ['FIFO', 'CharacterDevice', 'BlockDevice'] as const) {
      const { blob, bundle } = await blobOf(
        rawTgz([
          { path: 'bar.yaml', body: MANIFEST },
          { path: 'dev0', type },
        ]),
      );
      await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /"dev0": .*not allowed/);
    }
  });

  test('bar.yaml with command not a list is refused, naming command', async () => {
    const { blob, bundle } = await blobOf(
      rawTgz([{ path: 'bar.yaml', body: 'name: demo\nversion: "1"\ncommand: ./run.sh\n' }]),
    );
    await rejectsWith(unpackBundle(blob, 'x.bar', bundle), RESULT.FETCH_FAILED, /bar\.yaml command:/);
  });

  test('a #! script is a bundle of one', async () => {
    const { blob, bundle } = await blobOf('#!/bin/sh\necho one\n');
    const { manifest, kind } = await unpackBundle(blob, 'tool.sh', bundle);
    assert.equal(kind, 'script');
    assert.equal(manifest.name, 'tool.sh');
    assert.deepEqual(manifest.command, ['./tool.sh']);
    assert.equal((await stat(path.join(bundle, 'tool.sh'))).mode & 0o777, 0o755);
  });

  test('an ELF binary is a bundle of one', async () => {
    const { blob, bundle } = await blobOf(await readFile('/bin/true'));
    const { manifest, kind } = await unpackBundle(blob, 'true', bundle);
    assert.equal(kind, 'elf');
    assert.deepEqual(manifest.command, ['./true']);
  });
});

describe('entry guard', () => {
  test('paths and links', () => {
    const g = new EntryGuard();
    g.check({ path: './', type: 'Directory' });
    g.check({ path: './bar.yaml', type: 'File' });
    assert.equal(g.hasManifest, true);
    g.check({ path: 'bin/', type: 'Directory' });
    g.check({ path: 'bin/tool', type: 'SymbolicLink', linkpath: '../lib/tool' });
    assert.throws(() => g.check({ path: 'bin/x/../../..', type: 'File' }), /escapes/);
    assert.throws(() => g.check({ path: 'C:/x', type: 'File' }), /escapes/);
    assert.throws(() => g.check({ path: 'loop', type: 'SymbolicLink', linkpath: '' }), /escapes/);
    g.check({ path: 'self', type: 'SymbolicLink', linkpath: 'self2' });
    g.check({ path: 'self2', type: 'SymbolicLink', linkpath: 'self' });
    assert.throws(() => g.check({ path: 'self/x', type: 'File' }), /escapes/, 'symlink loops are refused');
    assert.throws(() => g.check({ path: 'odd', type: 'Unsupported' }), /unsupported entry type/);
  });
});

describe('bar.yaml', () => {
  test('defaults', () => {
    const m = parseManifest(MANIFEST);
    assert.equal(m.stopSignal, 'SIGTERM');
    assert.equal(m.stopGraceMs, undefined);
    assert.deepEqual(m.env, {});
  });
  const cases: [string, RegExp][] = [
    ['[1, 2]', /must be a mapping/],
    ['name: [x]\nversion: "1"\ncommand: [a]', /bar\.yaml name:/],
    ['name: x\nversion: 1.0\ncommand: [a]', /bar\.yaml version: .*quote/],
    ['name: x\nversion: "1"\ncommand: []', /bar\.yaml command:/],
    ['name: x\nversion: "1"\ncommand: [a, 3]', /bar\.yaml command:/],
    ['name: x\nversion: "1"', /bar\.yaml command:/],
    ['name: x\nversion: "1"\ncommand: [a]\nenv: [A]', /bar\.yaml env:/],
    ['name: x\nversion: "1"\ncommand: [a]\nenv: { N: 3 }', /bar\.yaml env\.N:/],
    ['name: x\nversion: "1"\ncommand: [a]\nenv: { "A-B": x }', /bar\.yaml env\.A-B:/],
    ['name: x\nversion: "1"\ncommand: [a]\nstop_signal: SIGNOPE', /bar\.yaml stop_signal:/],
    ['name: x\nversion: "1"\ncommand: [a]\nstop_grace_ms: -1', /bar\.yaml stop_grace_ms:/],
    ['name: x\nversion: "1"\ncommand: [a]\nstop_grace_ms: 1.5', /bar\.yaml stop_grace_ms:/],
    ['name: x\n  version: : :', /not valid YAML/],
  ];
  for (const [text, re] of cases) {
    test(`refuses ${JSON.stringify(text)}`, () => {
      assert.throws(
        () => parseManifest(text),
        (err: unknown) => err instanceof DeployError && err.code === RESULT.FETCH_FAILED && re.test(err.message),
      );
    });
  }
  test('signal names', () => {
    assert.equal(signalName('term'), 'SIGTERM');
    assert.equal(signalName('SIGUSR1'), 'SIGUSR1');
    assert.equal(signalName('NOPE'), null);
  });
});

describe('/proc/<pid>/stat parsing', () => {
  test('a comm with spaces and parentheses', () => {
    const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
    fields[0] = 'S';
    const st = parseStat(`4242 (we ird) (name) ${fields.join(' ')}\n`);
    assert.ok(st);
    assert.equal(st.pid, 4242);
    assert.equal(st.state, 'S');
    assert.equal(st.ppid, 4);
    assert.equal(st.pgrp, 5);
    assert.equal(st.utime, 14);
    assert.equal(st.stime, 15);
    assert.equal(st.startTicks, 22);
  });
  test('garbage', () => {
    assert.equal(parseStat(''), null);
    assert.equal(parseStat('12 no parens'), null);
  });
});

describe('url and file', () => {
  test('validate', () => {
    assert.equal(validateBarSource('http://10.0.0.1:8080/bundles', 'a.bar'), null);
    assert.equal(validateBarSource('https://repo/x/', 'a.bar'), null);
    assert.match(validateBarSource('ftp://repo/x', 'a.bar') ?? '', /^url .*http/);
    assert.match(validateBarSource('10.0.0.1:5000', 'a.bar') ?? '', /^url /);
    assert.match(validateBarSource('not a url', 'a.bar') ?? '', /^url /);
    assert.match(validateBarSource('http://repo', '../a') ?? '', /^file /);
    assert.match(validateBarSource('http://repo', 'a/b') ?? '', /^file /);
    assert.match(validateBarSource('http://repo', '') ?? '', /^file /);
  });
  test('bundleUrl', () => {
    assert.equal(bundleUrl('http://h:1/a/', 'x.bar'), 'http://h:1/a/x.bar');
    assert.equal(bundleUrl('http://h:1/a', 'x.bar'), 'http://h:1/a/x.bar');
    assert.equal(bundleUrl('http://h:1', 'x.bar'), 'http://h:1/x.bar');
    assert.equal(bundleUrl('http://h/r?t=1', 'a b'), 'http://h/r/a%20b?t=1');
  });
});

describe('cgroup layout', () => {
  const tree = async (files: Record<string, string>): Promise<string> => {
    const root = path.join(tmp, `cg${++n}`);
    for (const [f, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(root, f)), { recursive: true });
      await writeFile(path.join(root, f), content);
    }
    await mkdir(root, { recursive: true });
    return root;
  };
  test('v1 (both, or one hierarchy), preferred over a hybrid unified mount', async () => {
    const r = await tree({
      'cpuset/cpuset.cpus': '0-3',
      'memory/memory.limit_in_bytes': '0',
      'unified/cgroup.controllers': 'memory',
    });
    assert.deepEqual(await detectLayout(r), {
      kind: 'v1',
      cpuset: path.join(r, 'cpuset'),
      memory: path.join(r, 'memory'),
    });
    assert.deepEqual(cgroupsOf(await detectLayout(r), 'u1'), {
      version: 1,
      dirs: [path.join(r, 'cpuset/muster/u1'), path.join(r, 'memory/muster/u1')],
      cpusetDir: path.join(r, 'cpuset/muster/u1'),
      memoryDir: path.join(r, 'memory/muster/u1'),
    });
    const m = await tree({ 'memory/memory.limit_in_bytes': '0' });
    assert.deepEqual(await detectLayout(m), { kind: 'v1', cpuset: null, memory: path.join(m, 'memory') });
  });
  test('v2 at the root, or hybrid unified with the controllers', async () => {
    const r = await tree({ 'cgroup.controllers': 'cpuset cpu io memory pids' });
    assert.deepEqual(await detectLayout(r), { kind: 'v2', root: r });
    assert.deepEqual(cgroupsOf(await detectLayout(r), 'u1')?.dirs, [path.join(r, 'muster/u1')]);
    const h = await tree({ 'unified/cgroup.controllers': 'cpuset memory' });
    assert.deepEqual(await detectLayout(h), { kind: 'v2', root: path.join(h, 'unified') });
  });
  test('none: no hierarchy, or a unified mount without cpuset and memory', async () => {
    assert.equal((await detectLayout(await tree({ 'unified/cgroup.controllers': 'hugetlb' }))).kind, 'none');
    assert.equal((await detectLayout(path.join(tmp, 'no-such-root'))).kind, 'none');
    assert.equal(cgroupsOf({ kind: 'none', why: 'x' }, 'u1'), null);
  });
});

/** A gzip tar of bar.yaml then one member of `random` random bytes followed by `zeros` zero bytes. */
function bombTgz(random: number, zeros: number): Buffer {
  const body = Buffer.concat([randomBytes(random), Buffer.alloc(zeros)]);
  const blocks: Buffer[] = [];
  for (const [p, b] of [
    ['bar.yaml', Buffer.from(MANIFEST)],
    ['payload.bin', body],
  ] as const) {
    const h = new Header({ path: p, type: 'File', mode: 0o644, size: b.length, uid: 0, gid: 0, mtime: new Date() });
    h.encode();
    blocks.push(h.block as Buffer, b, Buffer.alloc((512 - (b.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(blocks));
}

describe('bounds while unpacking', () => {
  const limits = (over: Partial<UnpackLimits> = {}): UnpackLimits => ({
    maxBytes: 1 << 20,
    maxFiles: 100,
    allowSymlinks: true,
    ...over,
  });
  /** Entries beside `bundle` in its work dir (temp dirs included). */
  const beside = async (work: string) => (await readdir(work)).sort();

  test('a bomb (random bytes, then zeros) past max_unpacked_bytes is refused; no temp dir is left', async () => {
    const data = bombTgz(64 * 1024, 8 << 20);
    assert.ok(data.length < 200 * 1024, 'the bomb is small compressed');
    const { blob, work, bundle } = await blobOf(data);
    await assert.rejects(unpackBundle(blob, 'bomb.bar', bundle, limits()), (err: unknown) => {
      assert.ok(err instanceof BundleRefused);
      assert.equal(err.code, RESULT.FETCH_FAILED);
      assert.equal(err.reason, 'unpacked_bytes');
      assert.match(err.message, /unpacks to more than 1 MiB \(bar\.max_unpacked_bytes\)/);
      return true;
    });
    assert.deepEqual(await beside(work), [], 'neither the bundle dir nor a temp dir is left');
  });

  test('the streamed count stops the extraction at the bound (declared sizes aside)', async () => {
    const data = bombTgz(1000, 3 << 20);
    const { blob, work } = await blobOf(data);
    const dir = path.join(work, 'x');
    await mkdir(dir);
    // maxBytes below the member: refused before its first byte is written.
    await assert.rejects(
      extractCounted(blob, dir, limits({ maxBytes: 2 << 20 })),
      (err: unknown) => err instanceof BundleRefused && err.reason === 'unpacked_bytes',
    );
    const st = await stat(path.join(dir, 'payload.bin')).catch(() => null);
    assert.ok(st === null || st.size <= 2 << 20, `payload.bin: ${st?.size} bytes written`);
    // Within the bound: everything is counted.
    const dir2 = path.join(work, 'y');
    await mkdir(dir2);
    const ok = await extractCounted(blob, dir2, limits({ maxBytes: 4 << 20 }));
    assert.equal(ok.files, 2);
    assert.equal(ok.bytes, MANIFEST.length + 1000 + (3 << 20));
  });

  test('more entries than max_files are refused', async () => {
    const entries: RawEntry[] = [{ path: 'bar.yaml', body: MANIFEST }];
    for (let i = 0; i < 20; i++) entries.push({ path: `f${i}`, body: 'x' });
    const { blob, work, bundle } = await blobOf(rawTgz(entries));
    await assert.rejects(
      unpackBundle(blob, 'many.bar', bundle, limits({ maxFiles: 10 })),
      (err: unknown) => err instanceof BundleRefused && err.reason === 'files' && /bar\.max_files/.test(err.message),
    );
    assert.deepEqual(await beside(work), []);
    const ok = await unpackBundle(blob, 'many.bar', bundle, limits({ maxFiles: 21 }));
    assert.equal(ok.files, 21);
  });

  test('an out-of-order link chain that leaves the bundle only once all links exist is refused', async () => {
    // esc -> a/b/../.. is the bundle root while a and b do not exist yet; once a -> . and
    // b -> . are defined (later in the archive), it is the work dir's parent.
    const { blob, work, bundle } = await blobOf(
      rawTgz([
        { path: 'bar.yaml', body: MANIFEST },
        { path: 'esc', type: 'SymbolicLink', linkpath: 'a/b/../..' },
        { path: 'a', type: 'SymbolicLink', linkpath: '.' },
        { path: 'b', type: 'SymbolicLink', linkpath: '.' },
      ]),
    );
    await assert.rejects(unpackBundle(blob, 'chain.bar', bundle, limits()), (err: unknown) => {
      assert.ok(err instanceof BundleRefused, String(err));
      assert.equal(err.reason, 'link');
      assert.match(err.message, /symlink "esc" -> "a\/b\/\.\.\/\.\." resolves outside the bundle directory/);
      return true;
    });
    assert.deepEqual(await beside(work), []);
  });

  test('links whose final targets stay inside are accepted; none at all when symlinks are not allowed', async () => {
    const entries: RawEntry[] = [
      { path: 'bar.yaml', body: MANIFEST },
      { path: 'lib/', type: 'Directory' },
      { path: 'lib/libx.so.1', body: 'elf' },
      { path: 'cur', type: 'SymbolicLink', linkpath: 'lib/libx.so' },
      { path: 'lib/libx.so', type: 'SymbolicLink', linkpath: 'libx.so.1' },
      { path: 'dangling', type: 'SymbolicLink', linkpath: 'nothing/here' },
    ];
    const { blob, work, bundle } = await blobOf(rawTgz(entries));
    await unpackBundle(blob, 'libs.bar', bundle, limits());
    assert.equal(await readFile(path.join(bundle, 'cur'), 'utf8'), 'elf');
    const b2 = path.join(work, 'bundle2');
    await assert.rejects(
      unpackBundle(blob, 'libs.bar', b2, limits({ allowSymlinks: false })),
      (err: unknown) =>
        err instanceof BundleRefused && err.reason === 'symlinks' && /bar\.allow_symlinks/.test(err.message),
    );
    assert.ok(!existsSync(b2));
  });

  test('resolveInside follows links on disk, refuses leaving the root at any step and loops', async () => {
    const root = path.join(tmp, 'resolve');
    await mkdir(path.join(root, 'd'), { recursive: true });
    await symlink('.', path.join(root, 'here'));
    await symlink('d', path.join(root, 'dl'));
    await symlink('../..', path.join(root, 'd', 'up2'));
    await symlink('loop2', path.join(root, 'loop1'));
    await symlink('loop1', path.join(root, 'loop2'));
    assert.equal(await resolveInside(root, 'here/here/d'), 'd');
    assert.equal(await resolveInside(root, 'dl/..'), '');
    assert.equal(await resolveInside(root, 'dl/missing/x'), 'd/missing/x');
    assert.equal(await resolveInside(root, 'd/up2'), null);
    assert.equal(await resolveInside(root, 'loop1'), null);
    assert.equal(await resolveInside(root, '../resolve/d'), null);
  });
});
