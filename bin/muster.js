#!/usr/bin/env node
// The `muster` binary: runs the compiled CLI from dist/ when it is up to date, otherwise the
// TypeScript sources through tsx (a development checkout whose sources changed since the last
// `npm run build`). MUSTER_FROM_SOURCE=1 forces the sources (the tests set it).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// muster runs on its pinned Node.js major (scripts/runtime.env). Started by an older node (a
// machine with Node 20), it runs itself again with the project-local runtime that `make` fetched.
const PINNED_MAJOR = 24;
if (Number(process.versions.node.split('.')[0]) < PINNED_MAJOR) {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const local = `${root}.runtime/node-linux-${arch}/bin/node`;
  if (!existsSync(local)) {
    console.error(
      `muster needs Node.js >= ${PINNED_MAJOR} (this is ${process.version}); run \`make\` or scripts/node.sh bin to fetch the pinned runtime`,
    );
    process.exit(1);
  }
  const r = spawnSync(local, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
  });
  process.exit(r.status ?? (r.signal ? 128 + 15 : 1));
}
const built = `${root}dist/cli/main.js`;

/** Newest mtime (ms) of the .ts sources under the given dirs; 0 when there are none (an install). */
function newestSource(dirs) {
  let newest = 0;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  for (const d of dirs) if (existsSync(`${root}${d}`)) walk(`${root}${d}`);
  return newest;
}

const fresh = existsSync(built) && statSync(built).mtimeMs >= newestSource(['common', 'agent', 'manager', 'cli']);
let entry;
if (fresh && process.env.MUSTER_FROM_SOURCE !== '1') {
  entry = pathToFileURL(built).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('../cli/main.ts', import.meta.url).href;
}
const { main } = await import(entry);
await main();
