#!/usr/bin/env node
// The `muster` binary: runs the compiled CLI from dist/, or the TypeScript sources through tsx
// when no build is present (a development checkout) or MUSTER_FROM_SOURCE=1 (the tests).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const built = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
let entry;
if (existsSync(built) && process.env.MUSTER_FROM_SOURCE !== '1') {
  entry = pathToFileURL(built).href;
} else {
  const { register } = await import('tsx/esm/api');
  register();
  entry = new URL('../cli/main.ts', import.meta.url).href;
}
const { main } = await import(entry);
await main();
