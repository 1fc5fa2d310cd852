#!/usr/bin/env node
// Runs the whole test suite with node's test runner: unit tests first, then end-to-end tests
// (one file at a time: they start daemons and network namespaces). Extra args filter by path.
import { spawnSync } from 'node:child_process';
import { closeSync, readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

// `flock /tmp/muster-e2e.lock node scripts/test.mjs` hands us the lock file open (not
// close-on-exec): every process a test starts would inherit it, and one left running (a dockerd
// the docker fixtures start) would hold the global e2e lock after we exit, forever. flock holds
// its own copy until we exit, so closing ours releases nothing early. (`flock -o` does the same.)
for (const fd of readdirSync('/proc/self/fd')) {
  if (Number(fd) <= 2) continue;
  try {
    if (readlinkSync(`/proc/self/fd/${fd}`).endsWith('.lock')) closeSync(Number(fd));
  } catch {
    // gone already (the directory's own fd)
  }
}

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const list = (dir) =>
  readdirSync(path.join(root, dir))
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => path.join(dir, f));
const filters = process.argv.slice(2);
const files = [...list('tests/unit'), ...list('tests/e2e')].filter(
  (f) => filters.length === 0 || filters.some((x) => f.includes(x)),
);
if (files.length === 0) {
  console.error('no test files match', filters.join(' '));
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
process.exit(r.status ?? 1);
