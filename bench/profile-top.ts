/**
 * Summarises a V8 CPU profile (`node --cpu-prof`, e.g. the managers the bench starts with
 * MUSTER_BENCH_PROFILE_DIR set): the share of sampled time by function (self time) and by
 * area (muster's own directories, each dependency package, node internals, GC, idle).
 *   node --import tsx bench/profile-top.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMain } from './common.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Self-time shares of one profile: by function and by area, each sorted descending (fractions of all samples). */
export interface ProfileSummary {
  totalMs: number;
  functions: [string, number][];
  areas: [string, number][];
}

/** The area a script URL belongs to: `manager/store`, `npm:fastify`, `node:internal`, `(gc)`... */
export function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return `npm:${rest[0]?.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  if (url.startsWith('node:')) return 'node:internal';
  const m =
    /\/dist\/(manager|agent|common|cli)\/(?:([a-z-]+)\/)?/.exec(url) ??
    /\/(manager|agent|common|cli)\/(?:([a-z-]+)\/)?/.exec(url);
  if (m) return m[2] && !m[2].endsWith('.js') ? `${m[1]}/${m[2]}` : `${m[1]}`;
  return url;
}

/** Reads and summarises a profile file. */
export function summarise(file: string): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  }
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const short = url.replace(/^.*\/(node_modules|dist)\//, '$1/').replace(/^file:\/\//, '');
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + t);
    const a = areaOf(url, functionName);
    areas.set(a, (areas.get(a) ?? 0) + t);
  }
  const sorted = (m: Map<string, number>) =>
    [...m.entries()].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, v / total] as [string, number]);
  return { totalMs: total / 1000, functions: sorted(fns), areas: sorted(areas) };
}

/** The summary as text: the top `top` functions and every area above 0.5 %. */
export function formatSummary(s: ProfileSummary, top = 25): string {
  const pct = (f: number) => `${(f * 100).toFixed(1).padStart(5)} %`;
  return [
    `sampled ${(s.totalMs / 1000).toFixed(1)} s`,
    'by area (self time):',
    ...s.areas.filter(([, f]) => f >= 0.005).map(([k, f]) => `  ${pct(f)}  ${k}`),
    `top ${top} functions (self time):`,
    ...s.functions.slice(0, top).map(([k, f]) => `  ${pct(f)}  ${k}`),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' } },
  });
  for (const f of positionals) process.stdout.write(`${f}\n${formatSummary(summarise(f), Number(values.top))}\n`);
}
