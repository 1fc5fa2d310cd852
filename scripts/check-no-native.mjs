#!/usr/bin/env node
// Nothing compiled at install (docs/operations.md "Runtime and bundles"): fails, naming the package, when a runtime dependency of
// muster (dependencies and optionalDependencies, followed through the whole installed tree; never
// devDependencies) would build a native addon or fetch a binary when installed:
//   - a binding.gyp, or `"gypfile": true` in its package.json (npm runs node-gyp for those);
//   - a preinstall / install / postinstall script (npm runs them at install). One that builds or
//     downloads (node-gyp, prebuild-install, node-pre-gyp, cmake-js, curl, ...) is named as such;
//     any other is still refused until someone has read it and listed it in ALLOW below;
//   - a dependency on a loader of prebuilt binaries (node-gyp-build, prebuild-install, ...);
//   - a compiled addon (*.node) shipped in the package.
//   node scripts/check-no-native.mjs [--root DIR]   (DIR: the project, default this checkout)
// Exit 0 and a one-line summary when clean; exit 1 and one line per finding otherwise.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/**
 * Reviewed exceptions: package name → the findings it may have, and why that is safe. Every
 * allowed native part must be optional with a JavaScript fallback that muster's bundle uses:
 * scripts/build-dist.mjs keeps them out of lib/ (NEVER_BUNDLED) and fails if one gets in.
 */
export const ALLOW = {
  // dockerode → docker-modem → ssh2 (for ssh:// docker hosts; muster talks to the unix socket).
  // Its install script tries `node-gyp rebuild` of an optional crypto binding and ignores failure;
  // lib/protocol/crypto.js loads the binding in try/catch and falls back to node:crypto + wasm.
  ssh2: { gyp: true, script: true, addon: true },
  // ssh2's optionalDependency: a CPU feature probe built with node-gyp at install. ssh2 requires
  // it in try/catch (only to prefer AES-GCM when the CPU has AES-NI); the bundle leaves it out.
  'cpu-features': { gyp: true, script: true, addon: true },
  // dockerode → @grpc/proto-loader → protobufjs: the postinstall only prints a warning when a
  // dependent asks for an incompatible version scheme (scripts/postinstall.js); it builds and
  // fetches nothing.
  protobufjs: { script: true },
};

const SCRIPTS = ['preinstall', 'install', 'postinstall'];
const BUILDS =
  /node-gyp|prebuild|node-pre-gyp|cmake-js|napi|\bgyp\b|\bmake\b|\bgcc\b|\bg\+\+|\bcc\b|curl|wget|download|https?:\/\//;
const LOADERS = ['node-gyp-build', 'prebuild-install', '@mapbox/node-pre-gyp', 'node-pre-gyp', 'bindings', 'cmake-js'];

/** Directory of `name` as Node would resolve it from `from` (a package directory), or null. */
function resolvePackage(name, from, top) {
  let dir = from;
  for (;;) {
    const cand = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(cand, 'package.json'))) return cand;
    if (dir === top) return null;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** True when `dir` holds a file named *.node (not looking into nested node_modules). */
function hasAddon(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && hasAddon(path.join(dir, e.name))) return true;
    } else if (e.name.endsWith('.node')) return true;
  }
  return false;
}

/**
 * Walks the production dependency tree of the project at `root` (its node_modules as installed).
 * @returns {{ checked: number, problems: string[], allowed: string[] }} problems name the package
 *   and its path from the project; allowed lists the ALLOW entries that were used.
 */
export function check(root, allow = ALLOW) {
  const top = path.resolve(root);
  const rootPkg = JSON.parse(readFileSync(path.join(top, 'package.json'), 'utf8'));
  const problems = [];
  const allowed = new Set();
  const seen = new Set();
  const queue = [];
  const deps = (pkg) => [
    ...Object.keys(pkg.dependencies ?? {}).map((n) => [n, false]),
    ...Object.keys(pkg.optionalDependencies ?? {}).map((n) => [n, true]),
  ];
  for (const [name, optional] of deps(rootPkg)) queue.push({ name, from: top, via: [], optional });
  while (queue.length > 0) {
    const { name, from, via, optional } = queue.shift();
    const dir = resolvePackage(name, from, top);
    const chain = [...via, name].join(' > ');
    if (!dir) {
      // An optional dependency that is not installed (another platform's) is fine.
      if (!optional)
        problems.push(`${name}: not installed (needed by ${via.join(' > ') || 'muster'}); run npm install`);
      continue;
    }
    if (seen.has(dir)) continue;
    seen.add(dir);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    const ok = allow[name] ?? {};
    const found = (kind, what) => {
      if (ok[kind]) allowed.add(name);
      else problems.push(`${name}@${pkg.version} (${chain}): ${what}`);
    };
    if (existsSync(path.join(dir, 'binding.gyp')))
      found('gyp', 'has a binding.gyp: npm builds it with node-gyp at install');
    else if (pkg.gypfile === true) found('gyp', 'has "gypfile": true: npm builds it with node-gyp at install');
    for (const s of SCRIPTS) {
      const cmd = pkg.scripts?.[s];
      if (!cmd) continue;
      found(
        'script',
        BUILDS.test(cmd)
          ? `its ${s} script builds or downloads at install: ${cmd}`
          : `its ${s} script runs at install and is not reviewed (read it, then list it in ALLOW in scripts/check-no-native.mjs): ${cmd}`,
      );
    }
    for (const l of LOADERS)
      if (pkg.dependencies?.[l] || pkg.optionalDependencies?.[l])
        found('loader', `depends on ${l}, a loader of compiled addons`);
    if (hasAddon(dir)) found('addon', 'ships a compiled addon (*.node)');
    for (const [n, opt] of deps(pkg)) queue.push({ name: n, from: dir, via: [...via, name], optional: opt });
  }
  return { checked: seen.size, problems, allowed: [...allowed].sort() };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { root: { type: 'string', default: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..') } },
  });
  const r = check(values.root);
  if (r.problems.length > 0) {
    for (const p of r.problems) console.error(`check-no-native: ${p}`);
    console.error(
      `check-no-native: ${r.problems.length} finding(s): runtime dependencies must not compile or fetch anything at install (docs/operations.md#runtime-and-bundles)`,
    );
    process.exit(1);
  }
  console.log(
    `check-no-native: ${r.checked} runtime packages, nothing compiled or fetched at install${r.allowed.length ? ` (reviewed optional native parts: ${r.allowed.join(', ')})` : ''}`,
  );
}
