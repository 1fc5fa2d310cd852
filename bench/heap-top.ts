/**
 * Summarises a V8 heap snapshot (`.heapsnapshot`, e.g. written by a manager the scale benchmark
 * started with --profile, on SIGUSR2): self size by node type and constructor name, largest
 * first, as shares of the snapshot's total self size.
 *   node --import tsx bench/heap-top.ts <file.heapsnapshot> [--top 20]
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isMain, mib } from './common.js';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size by `type:name` (objects by constructor, strings, arrays, code...), largest first, bytes. */
export interface HeapSummary {
  total: number;
  count: number;
  groups: { key: string; bytes: number; count: number }[];
}

/** Reads and summarises a heap snapshot. */
export function summariseHeap(file: string): HeapSummary {
  const s = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const f = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const groups = new Map<string, { bytes: number; count: number }>();
  let total = 0;
  let count = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + iType] as number] ?? '?';
    const size = s.nodes[i + iSize] as number;
    // Strings and code are grouped by type; objects by constructor name.
    const name =
      type === 'object' || type === 'closure' || type === 'native'
        ? (s.strings[s.nodes[i + iName] as number] ?? '?').slice(0, 60)
        : '';
    const key = name ? `${type}:${name}` : type;
    const g = groups.get(key) ?? { bytes: 0, count: 0 };
    g.bytes += size;
    g.count++;
    groups.set(key, g);
    total += size;
    count++;
  }
  return {
    total,
    count,
    groups: [...groups.entries()].map(([key, g]) => ({ key, ...g })).sort((a, b) => b.bytes - a.bytes),
  };
}

/** The summary as text: the total and the top `top` groups. */
export function formatHeap(h: HeapSummary, top = 20): string {
  return [
    `heap snapshot: ${mib(h.total)} self size in ${h.count} objects`,
    ...h.groups
      .slice(0, top)
      .map(
        (g) =>
          `  ${((g.bytes / h.total) * 100).toFixed(1).padStart(5)} %  ${mib(g.bytes).padStart(10)}  ${String(g.count).padStart(9)}  ${g.key}`,
      ),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '20' } },
  });
  for (const f of positionals) process.stdout.write(`${f}\n${formatHeap(summariseHeap(f), Number(values.top))}\n`);
}
