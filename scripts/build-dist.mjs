#!/usr/bin/env node
// Builds the offline bundles (`make dist`, docs/operations.md#runtime-and-bundles):
//   node scripts/build-dist.mjs [--out DIR] [--arch x64] [--arch arm64]
// For each architecture (default both) DIR/muster-<version>-linux-<arch>/ and its .tar.gz:
//   node/bin/node      the pinned Node.js runtime for that architecture (scripts/node.sh fetch)
//   lib/muster.js      the application bundled by esbuild (ESM, node24), plus its lazy chunks
//   bin/muster         sh wrapper: node/bin/node lib/muster.js "$@"
//   systemd/ config/ docs/ dist/dashboard/ install.sh VERSION BUILD-INFO
// The JavaScript is the same for both architectures: nothing in it is compiled, and the optional
// native parts of dependencies are left out (see NEVER_BUNDLED and scripts/check-no-native.mjs).
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { bundleApp } from './bundle-app.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(root, 'build') },
    arch: { type: 'string', multiple: true, default: ['x64', 'arm64'] },
  },
});
const out = path.resolve(opts.out);
const archs = opts.arch.flatMap((a) => a.split(',')).filter(Boolean);
for (const a of archs) if (a !== 'x64' && a !== 'arm64') fail(`unknown architecture ${a} (x64 or arm64)`);

function fail(msg) {
  console.error(`build-dist: ${msg}`);
  process.exit(1);
}
const sh = (cmd, args, o = {}) => execFileSync(cmd, args, { cwd: root, encoding: 'utf8', ...o }).trim();

// NEVER_BUNDLED: the optional native parts of dependencies (see scripts/bundle-app.mjs).

const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
const version = pkg.version;
let commit = 'unknown';
try {
  commit = sh('git', ['rev-parse', '--short', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] });
  // Uncommitted changes to tracked files: say so, the commit alone would not reproduce the bundle.
  if (sh('git', ['status', '--porcelain', '--untracked-files=no'], { stdio: ['ignore', 'pipe', 'ignore'] }))
    commit += '-dirty';
} catch {
  // not a git checkout (a source tarball): the bundle says `unknown`
}
const nodeVersion = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(path.join(root, 'scripts/runtime.env'), 'utf8'))?.[1];
if (!nodeVersion) fail('no NODE_VERSION in scripts/runtime.env');

// 0. The web dashboard (browser files, the same for every architecture).
const dashboardOut = path.join(out, '.dashboard');
execFileSync(process.execPath, [path.join(root, 'scripts', 'build-dashboard.mjs'), '--out', dashboardOut], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});

// 1. The application, once for every architecture.
const started = Date.now();
mkdirSync(out, { recursive: true });
const lib = path.join(out, '.lib');
rmSync(lib, { recursive: true, force: true });
const result = await bundleApp({ root, outdir: lib, version, commit });

// What went in: only runtime code, nothing from devDependencies, none of the native parts.
const inputs = Object.keys(result.metafile.inputs);
const packages = new Set();
for (const i of inputs) {
  const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(i);
  if (m) packages.add(m[1]);
}
for (const dev of Object.keys(pkg.devDependencies ?? {}))
  if (packages.has(dev)) fail(`devDependency ${dev} ended up in the bundle`);
for (const i of inputs) {
  if (i.endsWith('.node') || i.includes('node_modules/cpu-features/')) fail(`native part ${i} ended up in the bundle`);
}
const outputs = readdirSync(lib);
for (const f of outputs) if (!f.endsWith('.js')) fail(`unexpected file ${f} in the bundle`);

// Licences of what is bundled (MIT and friends ask for their notice to travel with the code).
let notices = `Third-party software bundled in lib/ of muster ${version}, with its licence.\n`;
for (const name of [...packages].sort()) {
  const dir = path.join(root, 'node_modules', name);
  const p = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  notices += `\n======== ${name}@${p.version} (${p.license ?? 'see below'}) ========\n`;
  if (file) notices += `${readFileSync(path.join(dir, file), 'utf8').trim()}\n`;
}
writeFileSync(path.join(lib, 'THIRD-PARTY-NOTICES.txt'), notices);

// 2. One directory and tarball per architecture.
const here = (...p) => path.join(root, ...p);
for (const arch of archs) {
  const name = `muster-${version}-linux-${arch}`;
  const top = path.join(out, name);
  rmSync(top, { recursive: true, force: true });
  const node = sh(here('scripts/node.sh'), ['fetch', arch], { stdio: ['ignore', 'pipe', 'inherit'] });
  mkdirSync(path.join(top, 'node', 'bin'), { recursive: true });
  copyFileSync(node, path.join(top, 'node', 'bin', 'node'));
  chmodSync(path.join(top, 'node', 'bin', 'node'), 0o755);
  const nodeLicense = path.join(path.dirname(path.dirname(node)), 'LICENSE');
  if (existsSync(nodeLicense)) copyFileSync(nodeLicense, path.join(top, 'node', 'LICENSE'));
  cpSync(lib, path.join(top, 'lib'), { recursive: true });
  // The web dashboard's built files, where the manager looks for them (docs/dashboard.md).
  cpSync(dashboardOut, path.join(top, 'dist', 'dashboard'), { recursive: true });
  mkdirSync(path.join(top, 'bin'));
  copyFileSync(here('scripts/bundle/muster'), path.join(top, 'bin', 'muster'));
  chmodSync(path.join(top, 'bin', 'muster'), 0o755);
  copyFileSync(here('scripts/bundle/install.sh'), path.join(top, 'install.sh'));
  chmodSync(path.join(top, 'install.sh'), 0o755);
  cpSync(here('systemd'), path.join(top, 'systemd'), { recursive: true });
  cpSync(here('config'), path.join(top, 'config'), { recursive: true });
  cpSync(here('docs'), path.join(top, 'docs'), { recursive: true });
  copyFileSync(here('README.md'), path.join(top, 'docs', 'README.md'));
  writeFileSync(path.join(top, 'VERSION'), `${version}\n`);
  const info = { version, commit, arch, runtime: `v${nodeVersion}`, built_at: new Date().toISOString() };
  writeFileSync(path.join(top, 'BUILD-INFO'), `${JSON.stringify(info, null, 2)}\n`);
  const tgz = path.join(out, `${name}.tar.gz`);
  sh('tar', ['--owner=0', '--group=0', '--numeric-owner', '-czf', tgz, '-C', out, name]);
  const mib = (statSync(tgz).size / 2 ** 20).toFixed(1);
  console.log(`build-dist: ${tgz} (${mib} MiB)`);
}
rmSync(lib, { recursive: true, force: true });
const jsBytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(
  `build-dist: muster ${version} (${commit}), node v${nodeVersion}, lib/ ${outputs.length} files ${(jsBytes / 2 ** 20).toFixed(1)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
);
