#!/usr/bin/env node
/**
 * Builds the web dashboard (docs/dashboard.md): bundles dashboard/src/main.ts with its CSS (preact,
 * htm, uplot from node_modules; nothing fetched at run time) into dist/dashboard/{index.html,
 * app.js, app.css}, minified. index.html names the files with a content hash so a browser never
 * runs a stale script after an upgrade. Prints the sizes, raw and gzip-compressed (what a browser
 * transfers). Part of `npm run build` (`make build`); the output is not committed.
 *
 *   node scripts/build-dashboard.mjs [--out DIR]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const i = process.argv.indexOf('--out');
const out = i > 0 ? path.resolve(process.argv[i + 1]) : path.join(root, 'dist', 'dashboard');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: path.join(root, 'dashboard', 'src', 'main.ts') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['chrome100', 'firefox100', 'safari15'],
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
  tsconfig: path.join(root, 'dashboard', 'tsconfig.json'),
});
const hash = (f) =>
  createHash('sha256')
    .update(readFileSync(path.join(out, f)))
    .digest('hex')
    .slice(0, 12);
const html = readFileSync(path.join(root, 'dashboard', 'index.html'), 'utf8')
  .replace('%JS_HASH%', hash('app.js'))
  .replace('%CSS_HASH%', hash('app.css'));
writeFileSync(path.join(out, 'index.html'), html);
let raw = 0;
let gz = 0;
for (const f of ['index.html', 'app.js', 'app.css']) {
  const b = readFileSync(path.join(out, f));
  raw += b.length;
  gz += gzipSync(b, { level: 9 }).length;
}
console.log(
  `dashboard built in ${path.relative(root, out) || out}: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzip-compressed`,
);
