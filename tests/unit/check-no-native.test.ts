/**
 * scripts/check-no-native.mjs against fake installed trees: what counts as compiling or fetching
 * at install, that only the production tree is walked (with Node's resolution, nested copies too),
 * and the reviewed allowlist.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../scripts/check-no-native.mjs');
const dirs: string[] = [];

interface Pkg {
  version?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  scripts?: Record<string, string>;
  gypfile?: boolean;
}

/**
 * A project: `root` is its package.json; `modules` maps install paths (`a`, `a/node_modules/b`,
 * `@s/c`) to their package.json, plus extra files (`binding.gyp`, `build/x.node`).
 */
function project(root: Pkg, modules: Record<string, Pkg & { files?: string[] }>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'muster-native-'));
  dirs.push(dir);
  writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'muster', ...root }));
  for (const [where, { files = [], ...pkg }] of Object.entries(modules)) {
    const p = path.join(dir, 'node_modules', where);
    mkdirSync(p, { recursive: true });
    const name = where.split('/node_modules/').at(-1);
    writeFileSync(path.join(p, 'package.json'), JSON.stringify({ name, version: '1.0.0', ...pkg }));
    for (const f of files) {
      mkdirSync(path.dirname(path.join(p, f)), { recursive: true });
      writeFileSync(path.join(p, f), '');
    }
  }
  return dir;
}

function run(dir: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [SCRIPT, '--root', dir], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('check-no-native', () => {
  test('a clean production tree passes; devDependencies are not walked', () => {
    const dir = project(
      { dependencies: { a: '1' }, devDependencies: { builder: '1' } },
      {
        a: { dependencies: { b: '1' }, scripts: { test: 'node-gyp rebuild' } },
        b: {},
        builder: { scripts: { install: 'node-gyp rebuild' }, files: ['binding.gyp'] },
      },
    );
    const r = run(dir);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /2 runtime packages, nothing compiled or fetched at install/);
  });

  test('binding.gyp, gypfile, building and downloading install scripts fail, naming the package and its path', () => {
    const dir = project(
      { dependencies: { a: '1', gyp: '1', flag: '1' } },
      {
        a: { dependencies: { deep: '1', fetcher: '1' } },
        deep: { version: '2.3.4', scripts: { install: 'prebuild-install || node-gyp rebuild' } },
        fetcher: { scripts: { postinstall: 'curl -L https://example.com/bin.tgz | tar xz' } },
        gyp: { files: ['binding.gyp'] },
        flag: { gypfile: true },
      },
    );
    const r = run(dir);
    assert.equal(r.code, 1, r.out);
    assert.match(
      r.out,
      /deep@2\.3\.4 \(a > deep\): its install script builds or downloads at install: prebuild-install/,
    );
    assert.match(r.out, /fetcher@1\.0\.0 \(a > fetcher\): its postinstall script builds or downloads/);
    assert.match(r.out, /gyp@1\.0\.0 \(gyp\): has a binding\.gyp/);
    assert.match(r.out, /flag@1\.0\.0 \(flag\): has "gypfile": true/);
    assert.match(r.out, /4 finding\(s\): runtime dependencies must not compile or fetch anything at install/);
  });

  test('an unreviewed install script, a prebuilt-binary loader and a shipped .node file fail too', () => {
    const dir = project(
      { dependencies: { s: '1', l: '1', n: '1' } },
      {
        s: { scripts: { preinstall: 'node setup.js' } },
        l: { dependencies: { 'node-gyp-build': '4' } },
        'node-gyp-build': {},
        n: { files: ['prebuilds/linux-x64/n.node'] },
      },
    );
    const r = run(dir);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /s@1\.0\.0 \(s\): its preinstall script runs at install and is not reviewed/);
    assert.match(r.out, /l@1\.0\.0 \(l\): depends on node-gyp-build/);
    assert.match(r.out, /n@1\.0\.0 \(n\): ships a compiled addon/);
  });

  test('a nested copy is checked where Node resolves it, not the hoisted one', () => {
    const dir = project(
      { dependencies: { a: '1', b: '1' } },
      {
        a: { dependencies: { b: '2' } },
        'a/node_modules/b': { version: '2.0.0', files: ['binding.gyp'] },
        b: {},
      },
    );
    const r = run(dir);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /b@2\.0\.0 \(a > b\): has a binding\.gyp/);
  });

  test('reviewed optional native parts pass (ssh2 and cpu-features); a missing optional dependency is fine', () => {
    const dir = project(
      { dependencies: { dockerode: '1' } },
      {
        dockerode: { dependencies: { ssh2: '1' }, optionalDependencies: { 'not-for-linux': '1' } },
        ssh2: {
          scripts: { install: 'node install.js' },
          optionalDependencies: { 'cpu-features': '1' },
          files: ['lib/protocol/crypto/binding.gyp', 'lib/protocol/crypto/build/Release/sshcrypto.node'],
        },
        'cpu-features': {
          scripts: { install: 'node buildcheck.js > buildcheck.gypi && node-gyp rebuild' },
          files: ['binding.gyp'],
        },
      },
    );
    const r = run(dir);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /reviewed optional native parts: cpu-features, ssh2/);
  });

  test('a missing required dependency is reported', () => {
    const dir = project({ dependencies: { gone: '1' } }, {});
    const r = run(dir);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /gone: not installed/);
  });
});
