#!/usr/bin/env node
/**
 * Fails (exit 1) on an import cycle among the product sources, or on an import that crosses a
 * boundary the layout forbids. Part of `npm run check`.
 *
 *   node scripts/check-cycles.mjs [--root DIR] [DIR...]
 *
 * DIRs (relative to the root; default `manager agent cli common`) are scanned for .ts/.mts/.js/.mjs
 * files (not .d.ts). Edges are the *relative* imports between those files, read with the
 * `typescript` parser (no new dependency):
 *
 *   - `import … from`, `import type … from`, `import './x.js'`, `export … from`,
 *     `export type … from`, `import x = require(…)` and type-position `import('./x.js').T`
 *     are edges: a cycle through a type-only import is still a cycle (it ties the two modules
 *     together for every reader and for the compiler, and turns into a runtime cycle the day a
 *     value import is added);
 *   - a dynamic `import('./x.js')` *call* is NOT an edge: it is how the CLI loads a daemon's entry
 *     point on purpose (`muster manager` / `muster agent`), so that `muster nodes` loads no daemon
 *     code. Such an import is resolved only when it runs, so it cannot make a load-order cycle.
 *
 * A specifier ending in `.js` / `.mjs` names the `.ts` / `.mts` source beside it (nodenext
 * resolution); `./x` also finds `./x.ts` and `./x/index.ts`. Package imports are not followed.
 *
 * Cycles: Tarjan's strongly connected components; for each component the shortest cycle through
 * each of its files is printed as `a.ts → b.ts → a.ts` (paths relative to the root).
 *
 * Boundaries (static imports and `import type`; dynamic `import()` is allowed), checked over the
 * directories that exist under the root:
 *   - `cli/` imports only `common/` and its own files: never `manager/` or `agent/`;
 *   - `dashboard/` (the browser page) imports only `common/` and its own files, and `manager/`
 *     never imports `dashboard/` (it serves the built files);
 *   - `bench/` never imports `tests/`, and `tests/` never imports `bench/`: both share `testkit/`;
 *   - `testkit/` imports neither `tests/` nor `bench/`.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const DEFAULT_DIRS = ['manager', 'agent', 'cli', 'common', 'dashboard'];
const SOURCE = /\.(ts|mts|cts|tsx|js|mjs|cjs)$/;

/** `[from dir, forbidden dirs, why]`: a static import from the first into one of the second fails. */
const BOUNDARIES = [
  ['cli', ['manager', 'agent'], 'the CLI imports only common/ and its own files; daemons load by dynamic import()'],
  ['dashboard', ['manager', 'agent', 'cli'], 'the dashboard is a client of common/api only (a page in the browser)'],
  ['manager', ['dashboard'], 'the manager serves the built dashboard files; it imports none of its sources'],
  ['bench', ['tests'], 'bench and tests share testkit/, never each other'],
  ['tests', ['bench'], 'bench and tests share testkit/, never each other'],
  ['testkit', ['tests', 'bench'], 'testkit/ is the shared base of tests and bench'],
];

/** Every source file under `dir` (absolute paths), skipping node_modules, dist and fixtures. */
function listSources(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'fixtures') continue;
      listSources(p, out);
    } else if (SOURCE.test(e.name) && !/\.d\.[cm]?ts$/.test(e.name)) out.push(p);
  }
  return out;
}

/**
 * The module specifiers `file` imports, each with `dynamic` true for an `import()` call.
 * @param {string} file
 * @returns {{ spec: string, dynamic: boolean }[]}
 */
export function importsOf(file) {
  const text = readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out = [];
  const literal = (n) => (n && ts.isStringLiteralLike(n) ? n.text : undefined);
  const visit = (node) => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) {
      const s = literal(node.moduleSpecifier);
      if (s !== undefined) out.push({ spec: s, dynamic: false });
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      const s = literal(node.moduleReference.expression);
      if (s !== undefined) out.push({ spec: s, dynamic: false });
    } else if (ts.isImportTypeNode(node)) {
      // `import('./x.js').T` in a type position: a type-only import, so an edge.
      const arg = node.argument;
      const s = ts.isLiteralTypeNode(arg) ? literal(arg.literal) : undefined;
      if (s !== undefined) out.push({ spec: s, dynamic: false });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const s = literal(node.arguments[0]);
      if (s !== undefined) out.push({ spec: s, dynamic: true });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The source file a relative specifier names, or undefined (package imports, missing files). */
function resolve(fromFile, spec) {
  if (!spec.startsWith('./') && !spec.startsWith('../')) return undefined;
  const base = path.resolve(path.dirname(fromFile), spec);
  const candidates = [];
  const m = /\.(m|c)?js$/.exec(base);
  if (m) {
    const stem = base.slice(0, -m[0].length);
    candidates.push(`${stem}.${m[1] ?? ''}ts`, `${stem}.tsx`, base);
  } else if (SOURCE.test(base)) {
    candidates.push(base);
  } else {
    candidates.push(`${base}.ts`, `${base}.tsx`, `${base}.mts`, path.join(base, 'index.ts'), `${base}.js`);
  }
  return candidates.find((c) => existsSync(c) && statSync(c).isFile());
}

/**
 * The import graph of `dirs` under `root`: file (relative, `/`-separated) → files it imports
 * statically (sorted), and every import (dynamic ones included) for the boundary rules.
 */
export function buildGraph(root, dirs) {
  const rel = (f) => path.relative(root, f).split(path.sep).join('/');
  const files = dirs.flatMap((d) => listSources(path.join(root, d))).sort();
  const inScope = new Set(files.map(rel));
  /** @type {Map<string, string[]>} */
  const graph = new Map();
  /** @type {{ from: string, to: string, dynamic: boolean }[]} */
  const imports = [];
  for (const f of files) {
    const edges = new Set();
    for (const { spec, dynamic } of importsOf(f)) {
      const target = resolve(f, spec);
      if (!target) continue;
      const to = rel(target);
      imports.push({ from: rel(f), to, dynamic });
      if (!dynamic && inScope.has(to)) edges.add(to);
    }
    graph.set(rel(f), [...edges].sort());
  }
  return { graph, imports };
}

/** Tarjan's strongly connected components (iterative), each in discovery order. */
export function stronglyConnected(graph) {
  let next = 0;
  const index = new Map();
  const low = new Map();
  const onStack = new Set();
  const stack = [];
  const out = [];
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work = [{ v: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1];
      const succ = graph.get(top.v) ?? [];
      if (top.i < succ.length) {
        const w = succ[top.i++];
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v), index.get(w)));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1].v;
        low.set(parent, Math.min(low.get(parent), low.get(top.v)));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const comp = [];
        let w;
        do {
          w = stack.pop();
          onStack.delete(w);
          comp.push(w);
        } while (w !== top.v);
        out.push(comp.reverse());
      }
    }
  }
  return out;
}

/** The shortest cycle through `start` inside `members` (BFS), as a closed path. */
function shortestCycle(graph, members, start) {
  const prev = new Map();
  const queue = [start];
  for (let k = 0; k < queue.length; k++) {
    const v = queue[k];
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const pathBack = [v];
        while (pathBack[pathBack.length - 1] !== start) pathBack.push(prev.get(pathBack[pathBack.length - 1]));
        return [...pathBack.reverse(), start];
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  return undefined;
}

/** Every cycle to report: per component, the distinct shortest cycles through its files. */
export function findCycles(graph) {
  const cycles = [];
  for (const comp of stronglyConnected(graph)) {
    const members = new Set(comp);
    if (comp.length === 1 && !(graph.get(comp[0]) ?? []).includes(comp[0])) continue;
    const seen = new Set();
    for (const v of comp) {
      const c = shortestCycle(graph, members, v);
      if (!c) continue;
      // one key per cycle whatever file it starts from: rotate to its smallest file
      const ring = c.slice(0, -1);
      const at = ring.indexOf([...ring].sort()[0]);
      const rotated = [...ring.slice(at), ...ring.slice(0, at)];
      const key = rotated.join('\0');
      if (seen.has(key)) continue;
      seen.add(key);
      cycles.push([...rotated, rotated[0]]);
    }
  }
  return cycles;
}

/** Static imports that cross a forbidden boundary, as `from → to (why)`. */
export function boundaryViolations(imports) {
  const top = (f) => f.split('/')[0];
  const out = [];
  for (const { from, to, dynamic } of imports) {
    if (dynamic) continue;
    for (const [src, banned, why] of BOUNDARIES) {
      if (top(from) === src && banned.includes(top(to))) out.push(`${from} → ${to} (${why})`);
    }
  }
  return out;
}

function main(argv) {
  let root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const dirs = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--root') root = path.resolve(argv[++i] ?? '.');
    else dirs.push(argv[i]);
  }
  const scan = dirs.length > 0 ? dirs : DEFAULT_DIRS;
  const { graph, imports } = buildGraph(root, scan);
  const cycles = findCycles(graph);
  // Boundary rules read every directory they name, not only the ones scanned for cycles.
  const boundaryDirs = [...new Set(BOUNDARIES.flatMap(([src]) => src))].filter((d) => !scan.includes(d));
  const extra = buildGraph(root, boundaryDirs).imports;
  const violations = boundaryViolations([...imports, ...extra]);

  for (const c of cycles) console.error(`import cycle: ${c.join(' → ')}`);
  for (const v of violations) console.error(`forbidden import: ${v}`);
  if (cycles.length > 0 || violations.length > 0) {
    console.error(
      `check-cycles: ${cycles.length} import cycle(s), ${violations.length} forbidden import(s) in ${scan.join(', ')}`,
    );
    return 1;
  }
  console.log(`check-cycles: no import cycle among ${graph.size} files in ${scan.join(', ')}; no forbidden import`);
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
