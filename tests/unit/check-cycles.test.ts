/**
 * scripts/check-cycles.mjs (run by `npm run check`) on small source trees in a temporary directory:
 * a cycle is found even through `import type`, a dynamic `import()` is not an edge, an acyclic
 * tree passes, and the CLI / tests / bench boundaries are enforced.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ROOT } from '../../testkit/process.js';

const SCRIPT = path.join(ROOT, 'scripts', 'check-cycles.mjs');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Writes `files` (path → text) into a fresh directory and runs the check on it. */
function check(files: Record<string, string>, args: string[] = []): { code: number | null; out: string } {
  const root = mkdtempSync(path.join(os.tmpdir(), 'muster-cycles-'));
  dirs.push(root);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    writeFileSync(path.join(root, f), text);
  }
  const r = spawnSync(process.execPath, [SCRIPT, '--root', root, ...args], { encoding: 'utf8' });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('check-cycles', () => {
  it('passes an acyclic tree (a diamond, a package import, a re-export)', () => {
    const r = check({
      'common/a.ts': "import { b } from './b.js';\nimport { c } from './c.js';\nexport const a = b + c;\n",
      'common/b.ts': "import { d } from './d.js';\nexport const b = d;\n",
      'common/c.ts': "import { d } from './d.js';\nimport path from 'node:path';\nexport const c = d + path.sep;\n",
      'common/d.ts': 'export const d = 1;\n',
      'manager/m.ts': "export { a } from '../common/a.js';\nexport type { b } from '../common/b.js';\n",
      'cli/main.ts': "import { a } from '../common/a.js';\nexport const x = a;\n",
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /no import cycle among 6 files/);
  });

  it('finds a cycle that goes through a type-only import', () => {
    const r = check({
      'manager/server.ts': "import type { Manager } from './manager.js';\nexport let m: Manager | undefined;\n",
      'manager/manager.ts': "import { m } from './server.js';\nexport class Manager { s = m; }\n",
    });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^import cycle: manager\/manager\.ts → manager\/server\.ts → manager\/manager\.ts$/m);
    assert.match(r.out, /1 import cycle\(s\), 0 forbidden import\(s\)/);
  });

  it('finds cycles through `export … from`, `export type`, a type-position import() and across directories', () => {
    const r = check({
      'common/a.ts': "export * from './b.js';\n",
      'common/b.ts': "export type { C } from './c.js';\n",
      'common/c.ts': "export type C = import('./a.js').A;\nexport type A = 1;\n",
      'agent/x.ts': "import { y } from '../common/y.js';\nexport const x = y;\n",
      'common/y.ts': "import { x } from '../agent/x.js';\nexport const y = x;\n",
    });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^import cycle: common\/a\.ts → common\/b\.ts → common\/c\.ts → common\/a\.ts$/m);
    assert.match(r.out, /^import cycle: agent\/x\.ts → common\/y\.ts → agent\/x\.ts$/m);
    assert.match(r.out, /2 import cycle\(s\)/);
  });

  it('prints each distinct cycle of a tangle once', () => {
    // server ↔ route1, server ↔ route2, manager → server → route2 → manager
    const r = check({
      'manager/manager.ts': "import './server.js';\n",
      'manager/server.ts': "import './routes/one.js';\nimport './routes/two.js';\n",
      'manager/routes/one.ts': "import '../server.js';\n",
      'manager/routes/two.ts': "import '../server.js';\nimport '../manager.js';\n",
    });
    assert.equal(r.code, 1, r.out);
    const lines = r.out.split('\n').filter((l) => l.startsWith('import cycle: '));
    assert.deepEqual(lines.sort(), [
      'import cycle: manager/manager.ts → manager/server.ts → manager/routes/two.ts → manager/manager.ts',
      'import cycle: manager/routes/one.ts → manager/server.ts → manager/routes/one.ts',
      'import cycle: manager/routes/two.ts → manager/server.ts → manager/routes/two.ts',
    ]);
  });

  it('does not count a dynamic import() as an edge', () => {
    const r = check({
      'cli/verbs.ts':
        "export async function run() {\n  const { start } = await import('../manager/main.js');\n  start();\n}\n",
      'manager/main.ts': "import { run } from '../cli/verbs.js';\nexport const start = () => run;\n",
    });
    // manager → cli is allowed (only cli → manager/agent is forbidden), and the way back is dynamic
    assert.equal(r.code, 0, r.out);
  });

  it('refuses a static or type-only import of manager/ or agent/ from cli/, allows a dynamic one', () => {
    const r = check({
      'cli/a.ts': "import type { View } from '../manager/views.js';\nexport let v: View | undefined;\n",
      'cli/b.ts': "import { go } from '../agent/agent.js';\nexport const b = go;\n",
      'cli/c.ts': "export const c = () => import('../agent/agent.js');\n",
      'manager/views.ts': 'export type View = { id: string };\n',
      'agent/agent.ts': 'export const go = 1;\n',
    });
    assert.equal(r.code, 1, r.out);
    const lines = r.out.split('\n').filter((l) => l.startsWith('forbidden import: '));
    assert.equal(lines.length, 2, r.out);
    assert.match(lines[0] ?? '', /^forbidden import: cli\/a\.ts → manager\/views\.ts /);
    assert.match(lines[1] ?? '', /^forbidden import: cli\/b\.ts → agent\/agent\.ts /);
  });

  it('refuses tests ↔ bench imports in either direction, allows both to import testkit/', () => {
    const ok = check({
      'testkit/bodies.ts': 'export const hb = 1;\n',
      'tests/unit/x.test.ts': "import { hb } from '../../testkit/bodies.js';\nexport const x = hb;\n",
      'bench/ingest.ts': "import { hb } from '../testkit/bodies.js';\nexport const y = hb;\n",
    });
    assert.equal(ok.code, 0, ok.out);
    const bad = check({
      'testkit/bodies.ts': "import '../tests/helpers/d.js';\n",
      'tests/helpers/d.ts': "import { f } from '../../bench/fleet.js';\nexport const d = f;\n",
      'bench/fleet.ts': "import type { d } from '../tests/helpers/d.js';\nexport const f = 1 as unknown as typeof d;\n",
    });
    assert.equal(bad.code, 1, bad.out);
    assert.match(bad.out, /^forbidden import: bench\/fleet\.ts → tests\/helpers\/d\.ts /m);
    assert.match(bad.out, /^forbidden import: tests\/helpers\/d\.ts → bench\/fleet\.ts /m);
    assert.match(bad.out, /^forbidden import: testkit\/bodies\.ts → tests\/helpers\/d\.ts /m);
  });

  it('reads a specifier without extension and a directory index', () => {
    const r = check({
      'common/a.ts': "import { b } from './b';\nexport const a = b;\n",
      'common/b/index.ts': "import { a } from '../a.js';\nexport const b = a;\n",
    });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^import cycle: common\/a\.ts → common\/b\/index\.ts → common\/a\.ts$/m);
  });
});
