/**
 * The agent's file side on a real file system (agent/files/: paths.ts, uploads.ts, ops.ts;
 * docs/files.md "Roots", "Resume protocol", "Limits"): path checks (`..`, relative, NUL, outside,
 * symlink escapes for writing and reading, a root itself), resumable uploads (offset after a
 * broken body, resume to the right hash, a wrong hash discarded, offset mismatch, too large, no
 * space, busy, a newer request superseding an older one, expiry of partial files), list and
 * delete; and the screen's image codecs (XWD and PPM to PNG, decoded again with pngjs).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { PNG } from 'pngjs';
import { deletePath, listDir, openFile } from '../../agent/files/ops.js';
import { checkPathText, FileRefusal, Roots } from '../../agent/files/paths.js';
import { PART_MARK, partPath, type UploadLimits, Uploads } from '../../agent/files/uploads.js';
import { ScreenCapturer } from '../../agent/screen/capture.js';
import type { ScreenConfig, ScreenMethodImpl } from '../../agent/screen/method.js';
import { decodePpm, decodeXwd, encodePng } from '../../agent/screen/png.js';

const log = pino({ level: 'silent' });
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const LIMITS: UploadLimits = {
  max_bytes: 1 << 20,
  max_concurrent_uploads: 2,
  min_free_bytes: 0,
  partial_ttl_ms: 60_000,
  idle_timeout_ms: 5_000,
};

async function refused(p: Promise<unknown>, code: string, re?: RegExp): Promise<FileRefusal> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof FileRefusal, `expected a FileRefusal, got ${(err as Error).stack}`);
    assert.equal(err.code, code, err.message);
    if (re) assert.match(err.message, re);
    return err;
  }
  assert.fail(`expected refusal ${code}`);
}

/** A body that sends `data` and then ends, or breaks off (errors) after it when `broken`. */
function body(data: Buffer, broken = false): Readable {
  const s = new PassThrough();
  s.write(data);
  if (broken) setTimeout(() => s.destroy(new Error('connection reset')), 30);
  else s.end();
  return s;
}

describe('agent files: paths', () => {
  let tmp: string;
  let root: string;
  let roots: Roots;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-files-'));
    root = path.join(tmp, 'root');
    mkdirSync(path.join(tmp, 'outside'));
    writeFileSync(path.join(tmp, 'outside', 'secret'), 'secret');
    ({ roots } = await Roots.open([root]));
    symlinkSync(path.join(tmp, 'outside'), path.join(root, 'escape'));
    symlinkSync(path.join(tmp, 'outside', 'secret'), path.join(root, 'secret-link'));
    mkdirSync(path.join(root, 'inner'));
    symlinkSync(path.join(root, 'inner'), path.join(root, 'inner-link'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('refuses relative paths, .. segments, NUL bytes and paths longer than PATH_MAX', () => {
    for (const [p, re] of [
      ['etc/passwd', /not an absolute path/],
      ['/srv/files/../../etc/passwd', /\.\. segment/],
      ['/srv/files/..', /\.\. segment/],
      ['/srv/a\0b', /NUL/],
      [`/${'a'.repeat(5000)}`, /longer than 4096/],
      ['', /no path/],
    ] as const) {
      assert.throws(
        () => checkPathText(p),
        (e: FileRefusal) => e.code === 'bad_path' && re.test(e.message),
        p,
      );
    }
    assert.equal(checkPathText('/srv//files/a/'), '/srv/files/a');
  });

  it('allows paths inside a root and refuses everything else, a .. path included', async () => {
    assert.equal(await roots.writable(path.join(root, 'a.txt')), path.join(root, 'a.txt'));
    await refused(roots.writable('/etc/passwd'), 'outside_roots', /outside the allowed roots/);
    await refused(roots.writable(`${root}/../outside/x`), 'bad_path');
    await refused(roots.writable(`${root}-sibling/x`), 'outside_roots');
  });

  it('refuses a symlink that leaves a root, for writing, reading and listing; one inside is fine', async () => {
    await refused(roots.writable(path.join(root, 'escape', 'x')), 'outside_roots', /resolves to .*outside/);
    await refused(roots.writable(path.join(root, 'escape', 'new', 'x'), { create: true }), 'outside_roots');
    await refused(roots.readable(path.join(root, 'secret-link')), 'outside_roots');
    await refused(openFile(roots, path.join(root, 'escape', 'secret')), 'outside_roots');
    await refused(listDir(roots, path.join(root, 'escape'), 10), 'outside_roots');
    assert.equal(await roots.writable(path.join(root, 'inner-link', 'x')), path.join(root, 'inner', 'x'));
  });

  it('never writes or deletes a root itself; a missing parent is made only inside a root', async () => {
    await refused(roots.writable(root), 'bad_path', /allowed root itself/);
    await refused(deletePath(roots, root, true), 'bad_path');
    const deep = path.join(root, 'd1', 'd2', 'f');
    assert.equal(await roots.writable(deep, { create: true }), deep);
    assert.ok(statSync(path.join(root, 'd1', 'd2')).isDirectory());
  });

  it('a root of files.roots that does not exist is made; with no roots every path is refused', async () => {
    const none = (await Roots.open([])).roots;
    await refused(none.writable('/tmp/x'), 'outside_roots', /no files\.roots are configured/);
    const fresh = path.join(tmp, 'fresh', 'root');
    const r = await Roots.open([fresh, 'relative/root']);
    assert.deepEqual(r.roots.resolved, [fresh]);
    assert.deepEqual(r.missing, ['relative/root']);
  });
});

describe('agent files: resumable uploads', () => {
  let tmp: string;
  let root: string;
  let roots: Roots;
  const data = Buffer.alloc(300_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
  const hash = sha(data);
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-uploads-'));
    root = path.join(tmp, 'root');
    ({ roots } = await Roots.open([root]));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const parts = (dir: string) => readdirSync(dir).filter((n) => n.includes(PART_MARK));

  it('a broken body leaves a partial file; the offset says where to resume; the resumed file has the hash', async () => {
    const u = new Uploads(roots, LIMITS, log);
    const dest = path.join(root, 'sub', 'model.bin');
    const spec = { path: dest, sha256: hash, size: data.length };
    assert.equal((await u.offset(spec)).offset, 0);
    await refused(u.put({ ...spec, offset: 0 }, body(data.subarray(0, 100_000), true)), 'bad_request', /broke off/);
    const { offset } = await u.offset(spec);
    assert.equal(offset, 100_000);
    assert.equal(parts(path.dirname(dest)).length, 1);
    assert.throws(() => statSync(dest), /ENOENT/, 'no file at the target before it is whole');
    const out = await u.put({ ...spec, offset, mode: 0o640 }, body(data.subarray(offset)));
    assert.deepEqual(out, { path: dest, size: data.length, sha256: hash, received: data.length - offset, offset });
    assert.equal(sha(readFileSync(dest)), hash);
    assert.equal(statSync(dest).mode & 0o777, 0o640);
    assert.deepEqual(parts(path.dirname(dest)), [], 'the partial file is renamed into place');
  });

  it('a body that ends early keeps its bytes; an offset past them is refused with the offset held', async () => {
    const u = new Uploads(roots, LIMITS, log);
    const spec = { path: path.join(root, 'short.bin'), sha256: hash, size: data.length };
    await refused(u.put({ ...spec, offset: 0 }, body(data.subarray(0, 5000))), 'bad_request', /ended after 5000/);
    const e = await refused(u.put({ ...spec, offset: 9000 }, body(data.subarray(9000))), 'offset_mismatch');
    assert.equal(e.offset, 5000);
    // An offset below what is held starts over from there (the rest is truncated).
    const out = await u.put({ ...spec, offset: 1000 }, body(data.subarray(1000)));
    assert.equal(out.sha256, hash);
  });

  it('a wrong hash is refused and the partial file deleted; a resume then starts at 0', async () => {
    const u = new Uploads(roots, LIMITS, log);
    const bad = Buffer.from(data);
    bad[12345] = (bad[12345] as number) ^ 0xff;
    const spec = { path: path.join(root, 'bad.bin'), sha256: hash, size: data.length };
    await refused(u.put({ ...spec, offset: 0 }, body(bad)), 'hash_mismatch', /discarded/);
    assert.deepEqual(
      parts(root).filter((n) => n.startsWith('.bad.bin')),
      [],
    );
    assert.throws(() => statSync(spec.path), /ENOENT/);
    assert.equal((await u.offset(spec)).offset, 0);
  });

  it('a symlink or hard link planted at the partial file name is never written through, chmod-ed or chown-ed', async () => {
    const u = new Uploads(roots, LIMITS, log);
    const outside = path.join(tmp, 'victim.txt');
    writeFileSync(outside, 'precious\n');
    chmodSync(outside, 0o600);
    const spec = { path: path.join(root, 'planted.bin'), sha256: hash, size: data.length };
    const part = partPath(path.join(realpathSync(root), 'planted.bin'), hash, data.length);
    symlinkSync(outside, part);
    await refused(u.put({ ...spec, offset: 0, mode: 0o777 }, body(data)), 'outside_roots', /symlink/);
    assert.equal(readFileSync(outside, 'utf8'), 'precious\n');
    assert.equal(statSync(outside).mode & 0o777, 0o600, 'the link target keeps its mode');
    rmSync(part);
    // A hard link to a file elsewhere on the same file system: refused too.
    linkSync(outside, part);
    await refused(u.put({ ...spec, offset: 0, mode: 0o777 }, body(data)), 'outside_roots', /not a plain file/);
    assert.equal(readFileSync(outside, 'utf8'), 'precious\n');
    assert.equal(statSync(outside).mode & 0o777, 0o600);
    rmSync(part);
    // Without the plant the same upload goes through.
    await u.put({ ...spec, offset: 0 }, body(data));
    assert.equal(sha(readFileSync(spec.path)), hash);
  });

  it('too large, longer than announced, no free space', async () => {
    const u = new Uploads(roots, LIMITS, log);
    await refused(
      u.offset({ path: path.join(root, 'huge'), sha256: hash, size: (1 << 20) + 1 }),
      'too_large',
      /files\.max_bytes/,
    );
    await refused(
      u.put({ path: path.join(root, 'long'), sha256: hash, size: 10, offset: 0 }, body(Buffer.alloc(11))),
      'bad_request',
      /longer than 10 bytes/,
    );
    const tight = new Uploads(roots, { ...LIMITS, min_free_bytes: Number.MAX_SAFE_INTEGER }, log);
    await refused(
      tight.offset({ path: path.join(root, 'x'), sha256: hash, size: 10 }),
      'no_space',
      /files\.min_free_bytes/,
    );
  });

  it('bounds concurrent uploads (busy), and a newer request for the same upload supersedes the older', async () => {
    const u = new Uploads(roots, { ...LIMITS, max_concurrent_uploads: 1 }, log);
    const spec = { path: path.join(root, 'slow.bin'), sha256: hash, size: data.length };
    const slow = new PassThrough();
    slow.write(data.subarray(0, 1000));
    const first = refused(u.put({ ...spec, offset: 0 }, slow), 'busy', /superseded/);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(u.inFlight, 1);
    await refused(
      u.put({ ...spec, path: path.join(root, 'other.bin'), offset: 0 }, body(data)),
      'busy',
      /max_concurrent_uploads/,
    );
    // The same upload again: the first request's body is dropped, then the offset is what it wrote.
    const { offset } = await u.offset(spec);
    await first;
    assert.equal(offset, 1000);
    const out = await u.put({ ...spec, offset }, body(data.subarray(offset)));
    assert.equal(out.sha256, hash);
  });

  it('drops a body idle for files.idle_timeout_ms, keeping its bytes', async () => {
    const u = new Uploads(roots, { ...LIMITS, idle_timeout_ms: 100 }, log);
    const spec = { path: path.join(root, 'idle.bin'), sha256: hash, size: data.length };
    const idle = new PassThrough();
    idle.write(data.subarray(0, 2000));
    await refused(u.put({ ...spec, offset: 0 }, idle), 'bad_request', /no data for 100 ms/);
    assert.equal((await u.offset(spec)).offset, 2000);
  });

  it('deletes partial files older than files.partial_ttl_ms, also those of a previous run', async () => {
    const dir = path.join(root, 'old');
    mkdirSync(dir);
    const stale = path.join(dir, `.f${PART_MARK}0123456789abcdef`);
    writeFileSync(stale, 'partial');
    const past = new Date(Date.now() - 120_000);
    utimesSync(stale, past, past);
    const u = new Uploads(roots, LIMITS, log);
    await u.start();
    u.stop();
    assert.throws(() => statSync(stale), /ENOENT/);
  });
});

describe('agent files: list, read, delete', () => {
  let tmp: string;
  let root: string;
  let roots: Roots;
  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'muster-ops-'));
    root = path.join(tmp, 'root');
    ({ roots } = await Roots.open([root]));
    mkdirSync(path.join(root, 'd', 'e'), { recursive: true });
    writeFileSync(path.join(root, 'd', 'a'), 'aaa');
    writeFileSync(path.join(root, 'd', 'e', 'b'), 'b');
    mkdirSync(path.join(tmp, 'keep'));
    writeFileSync(path.join(tmp, 'keep', 'k'), 'k');
    symlinkSync(path.join(tmp, 'keep'), path.join(root, 'd', 'link'));
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('lists entries with type, size and mode, bounded', async () => {
    const l = await listDir(roots, path.join(root, 'd'), 100);
    assert.deepEqual(
      l.entries.map((e) => [e.name, e.type]),
      [
        ['a', 'file'],
        ['e', 'dir'],
        ['link', 'symlink'],
      ],
    );
    assert.equal(l.entries[0]?.size, 3);
    assert.match(l.entries[0]?.mode ?? '', /^0[0-7]{3}$/);
    assert.equal((await listDir(roots, path.join(root, 'd'), 2)).truncated, true);
    await refused(listDir(roots, path.join(root, 'd', 'a'), 10), 'bad_request', /not a directory/);
  });

  it('reads a file back; a directory is refused', async () => {
    const f = await openFile(roots, path.join(root, 'd', 'a'));
    assert.equal(f.size, 3);
    const chunks: Buffer[] = [];
    for await (const c of f.stream) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'aaa');
    await refused(openFile(roots, path.join(root, 'd')), 'is_directory');
    await refused(openFile(roots, path.join(root, 'nope')), 'not_found');
  });

  it('deletes a file, a directory only with recursive, a symlink without following it', async () => {
    await refused(deletePath(roots, path.join(root, 'd'), false), 'not_empty', /recursive/);
    assert.equal((await deletePath(roots, path.join(root, 'd', 'a'), false)).removed, 'file');
    assert.equal((await deletePath(roots, path.join(root, 'd', 'a'), false)).removed, 'absent');
    assert.equal((await deletePath(roots, path.join(root, 'd'), true)).removed, 'dir');
    assert.equal(readFileSync(path.join(tmp, 'keep', 'k'), 'utf8'), 'k', 'the link target outside is kept');
    await refused(deletePath(roots, '/etc/hostname', false), 'outside_roots');
  });
});

describe('agent screen: image codecs and the capture order', () => {
  /** An XWD dump (version 7, ZPixmap, 32 bpp TrueColor) of a w×h image from `pixel(x, y)`. */
  function xwd(w: number, h: number, pixel: (x: number, y: number) => [number, number, number], msb = false) {
    const head = Buffer.alloc(100 + 4);
    const f = [
      104,
      7,
      2,
      24,
      w,
      h,
      0,
      msb ? 1 : 0,
      32,
      1,
      32,
      32,
      w * 4,
      4,
      0xff0000,
      0xff00,
      0xff,
      8,
      256,
      0,
      w,
      h,
      0,
      0,
      0,
    ];
    for (const [i, v] of f.entries()) head.writeUInt32BE(v, i * 4);
    head.write('root', 100);
    const data = Buffer.alloc(w * h * 4);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const [r, g, b] = pixel(x, y);
        const v = ((r << 16) | (g << 8) | b) >>> 0;
        if (msb) data.writeUInt32BE(v, (y * w + x) * 4);
        else data.writeUInt32LE(v, (y * w + x) * 4);
      }
    return Buffer.concat([head, data]);
  }
  const picture = (x: number, y: number): [number, number, number] =>
    x >= 4 && x < 12 && y >= 2 && y < 6 ? [255, 0, 0] : [32, 64, 128];

  it('decodes XWD (both byte orders) and encodes a PNG that pngjs reads back pixel for pixel', () => {
    for (const msb of [false, true]) {
      const img = decodeXwd(xwd(16, 8, picture, msb));
      const png = PNG.sync.read(encodePng(img));
      assert.equal(png.width, 16);
      assert.equal(png.height, 8);
      for (const [x, y] of [
        [0, 0],
        [5, 3],
        [11, 5],
        [12, 5],
        [15, 7],
      ] as const) {
        const o = (y * 16 + x) * 4;
        assert.deepEqual([...png.data.subarray(o, o + 3)], picture(x, y), `pixel ${x},${y} msb=${msb}`);
      }
    }
  });

  it('refuses truncated or foreign dumps; decodes a binary PPM', () => {
    const good = xwd(4, 4, picture);
    assert.throws(() => decodeXwd(good.subarray(0, 150)), /truncated/);
    assert.throws(() => decodeXwd(Buffer.alloc(50)), /shorter than its header/);
    const ppm = Buffer.concat([Buffer.from('P6\n# fb\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]);
    assert.deepEqual([...decodePpm(ppm).rgb], [1, 2, 3, 4, 5, 6]);
    assert.throws(() => decodePpm(Buffer.from('P3\n1 1\n255\n0 0 0\n')), /not a binary PPM/);
  });

  const cfg: ScreenConfig = {
    methods: ['x11', 'wayland', 'fb'],
    timeout_ms: 5000,
    max_bytes: 1 << 20,
    display: '',
    xauthority: '',
    x11_socket_dir: '/nonexistent',
    wayland_display: '',
    xdg_runtime_dir: '/nonexistent',
    fb_device: '/nonexistent/fb0',
  };
  const absent = (name: 'x11' | 'wayland' | 'fb'): ScreenMethodImpl => ({
    name,
    find: async () => null,
    absent: () => false,
  });

  it('no method finds a display: no_display, never an empty image', async () => {
    const c = new ScreenCapturer(cfg, { x11: absent('x11'), wayland: absent('wayland'), fb: absent('fb') });
    await refused(c.capture(), 'no_display', /no display on this board/);
    // The real methods on this configuration find nothing either.
    await refused(new ScreenCapturer(cfg).capture(), 'no_display');
  });

  it('the real fb method: fbcat, or fbgrab when fbcat is missing; the real wayland method: grim with the socket found', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-screen-'));
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    const oldPath = process.env.PATH;
    const script = (name: string, body: string) =>
      writeFileSync(path.join(bin, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
    const png = encodePng({ width: 2, height: 1, rgb: Buffer.from([0, 255, 0, 0, 0, 255]) });
    writeFileSync(path.join(dir, 'shot.png'), png);
    const server = net.createServer();
    try {
      process.env.PATH = `${bin}:/usr/bin:/bin`;
      // /dev/null is a character device: it stands in for /dev/fb0.
      const fbCfg: ScreenConfig = { ...cfg, methods: ['fb'], fb_device: '/dev/null' };
      script('fbcat', `[ "$1" = /dev/null ] || exit 9; printf 'P6 1 1 255 \\000\\000\\377'`);
      let shot = await new ScreenCapturer(fbCfg).capture();
      assert.equal(shot.method, 'fb');
      assert.deepEqual([...PNG.sync.read(shot.png).data.subarray(0, 3)], [0, 0, 255]);
      rmSync(path.join(bin, 'fbcat'));
      script('fbgrab', `[ "$1 $2" = "-d /dev/null" ] || exit 9; cat ${path.join(dir, 'shot.png')} > "$3"`);
      shot = await new ScreenCapturer(fbCfg).capture();
      assert.deepEqual([...PNG.sync.read(shot.png).data.subarray(0, 4)], [0, 255, 0, 255]);
      // Wayland: the first wayland-<n> socket of the runtime directory, passed to grim.
      const run = path.join(dir, 'run');
      mkdirSync(run);
      await new Promise<void>((r) => server.listen(path.join(run, 'wayland-1'), r));
      script(
        'grim',
        `[ "$WAYLAND_DISPLAY" = wayland-1 ] && [ "$XDG_RUNTIME_DIR" = ${run} ] && [ "$1" = - ] || exit 9; cat ${path.join(dir, 'shot.png')}`,
      );
      shot = await new ScreenCapturer({ ...cfg, methods: ['wayland', 'fb'], xdg_runtime_dir: run }).capture();
      assert.equal(shot.method, 'wayland');
      assert.ok(shot.png.equals(png));
      // No socket, no frame buffer device: "no display".
      await refused(
        new ScreenCapturer({ ...cfg, methods: ['wayland', 'fb'], xdg_runtime_dir: path.join(dir, 'none') }).capture(),
        'no_display',
      );
    } finally {
      process.env.PATH = oldPath;
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tries the methods in order: a failing one is named, the next one gives the PNG; size and time bounds', async () => {
    const failing: ScreenMethodImpl = {
      name: 'x11',
      find: async () => ({
        argv: ['sh', '-c', 'echo broken >&2; exit 3'],
        env: {},
        toPng: (b) => b,
        what: 'DISPLAY=:9',
      }),
      absent: () => false,
    };
    const fb: ScreenMethodImpl = {
      name: 'fb',
      find: async () => ({
        argv: ['printf', 'P6 1 1 255 \\377\\000\\000'],
        env: {},
        toPng: (b) => encodePng(decodePpm(b)),
        what: 'fb',
      }),
      absent: () => false,
    };
    const shot = await new ScreenCapturer(
      { ...cfg, methods: ['x11', 'fb'] },
      { x11: failing, wayland: absent('wayland'), fb },
    ).capture();
    assert.equal(shot.method, 'fb');
    assert.deepEqual([...PNG.sync.read(shot.png).data.subarray(0, 3)], [255, 0, 0]);
    await refused(
      new ScreenCapturer({ ...cfg, methods: ['x11'] }, { x11: failing, wayland: absent('wayland'), fb }).capture(),
      'capture_failed',
      /x11 \(DISPLAY=:9\): sh exited 3: broken/,
    );
    const big: ScreenMethodImpl = {
      name: 'x11',
      find: async () => ({ argv: ['head', '-c', '5000', '/dev/zero'], env: {}, toPng: (b) => b, what: 'big' }),
      absent: () => false,
    };
    await refused(
      new ScreenCapturer(
        { ...cfg, methods: ['x11'], max_bytes: 1024 },
        { x11: big, wayland: absent('wayland'), fb },
      ).capture(),
      'capture_failed',
      /more than 1024 bytes \(screen\.max_bytes\)/,
    );
    const slow: ScreenMethodImpl = {
      name: 'x11',
      find: async () => ({ argv: ['sleep', '5'], env: {}, toPng: (b) => b, what: 'slow' }),
      absent: () => false,
    };
    await refused(
      new ScreenCapturer(
        { ...cfg, methods: ['x11'], timeout_ms: 200 },
        { x11: slow, wayland: absent('wayland'), fb },
      ).capture(),
      'capture_failed',
      /longer than 200 ms \(screen\.timeout_ms\)/,
    );
  });
});
