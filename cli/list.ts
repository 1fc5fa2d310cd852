/**
 * What the list verbs (`muster alerts`, `muster history`) share: option parsers that refuse a bad
 * value naming the flag, and paging through the API's `{ ..., next }` pages (newest first).
 */
import { InvalidArgumentError } from 'commander';
import { MAX_PAGE_LIMIT, type Page } from '../common/api/paging.js';
import { NODE_ID_RE } from '../common/api/primitives.js';
import { parseSince } from '../common/time.js';
import { api, CliError } from './client.js';

/** Most items the API returns in one page. */
export const MAX_LIMIT = MAX_PAGE_LIMIT;

/** `--node`: a node id box-slot-cpu. */
export function nodeId(v: string): string {
  if (!NODE_ID_RE.test(v))
    throw new InvalidArgumentError('expected box-slot-cpu (e.g. 1-3-0) or a linked node id (e.g. node-001)');
  return v;
}

/** `--since`: checked here with the manager's own parser, but sent as typed (the manager reads it again). */
export function since(v: string): string {
  let ms: number;
  try {
    ms = parseSince(v, '--since');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message.replace(/^--since: /, ''));
  }
  // new Date() holds ±8.64e15 ms; beyond that (or Infinity from a very long number) no time is meant.
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new InvalidArgumentError('not a time a date can hold');
  return v.trim();
}

/** `--limit`: items per page, 1 to 1000. */
export function limit(v: string): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
  if (!(n >= 1 && n <= MAX_LIMIT)) throw new InvalidArgumentError(`expected a whole number from 1 to ${MAX_LIMIT}`);
  return n;
}

/** `--before`: an id (the `more:` line of the previous page names it). */
export function id(v: string): number {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : Number.NaN;
  if (!(n >= 1 && Number.isSafeInteger(n))) throw new InvalidArgumentError('expected an id, a whole number ≥ 1');
  return n;
}

export type { Page };

/**
 * GETs `path?<query>&before=` from the manager and reads the list under `key` (`alerts`,
 * `history`): the page before `before` (the newest when undefined) and, with `all`, every older
 * page after it, following `next` until it is null.
 * @throws CliError when the manager's `next` does not move back (it would never end)
 */
export async function listPages<T>(
  base: string,
  path: string,
  key: string,
  query: URLSearchParams,
  before: number | undefined,
  all: boolean,
): Promise<Page<T>> {
  const fetchPage = async (b: number | undefined): Promise<Page<T>> => {
    const q = new URLSearchParams(query);
    if (b !== undefined) q.set('before', String(b));
    const qs = q.size > 0 ? `?${q}` : '';
    const r = await api<Record<string, T[]> & { next: number | null }>(base, 'GET', `${path}${qs}`);
    return { items: r[key] as T[], next: r.next };
  };
  const first = await fetchPage(before);
  if (!all) return first;
  const items = [...first.items];
  let next = first.next;
  let last = before;
  while (next !== null) {
    if (last !== undefined && next >= last)
      throw new CliError(`the manager's paging does not move back (next ${next})`);
    last = next;
    const page = await fetchPage(next);
    items.push(...page.items);
    next = page.next;
  }
  return { items, next: null };
}

/** Quotes a word for a POSIX shell when it needs it. */
export const shellWord = (s: string): string => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/**
 * The command that shows the next page: `muster alerts --open --before 123`. `args` are the
 * flags of this call that select what is listed (without `--before`, `--all`, `--json`).
 */
export function moreHint(verb: string[], args: (string | number)[], next: number, manager?: string): string {
  const words = [
    'muster',
    ...(manager ? ['--manager', manager] : []),
    ...verb,
    ...args.map(String),
    '--before',
    String(next),
  ];
  return `more: ${words.map(shellWord).join(' ')}`;
}

/** The terminal width to fit tables to, or undefined when stdout is not a terminal (nothing is cut). */
export const terminalColumns = (): number | undefined => (process.stdout.isTTY ? process.stdout.columns : undefined);
