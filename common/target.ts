/**
 * Targets: which nodes a task, a file push or a screen capture acts on (docs/exec.md "Targets").
 *
 * A target is a conjunction of terms separated by spaces or `&`:
 * - a node pattern: `1-3-0`, a glob `1-*-0` (`*` any run of characters, `?` one), or a list of
 *   them `1-1-0,1-2-*` (any of);
 * - an attribute: `key=value[,value...]` (any of; values are globs) or `key!=value[,...]`
 *   (none of). Keys: `box`, `slot`, `cpu` (the position), `state` (online, suspect, offline),
 *   `board_type`, `box_type`, `cpu_arch`, `cpu_type`, `os_type`, `resource_type`, `hostname`,
 *   `host_ip`, `link` (mcast, ws); `label.<name>` or any other key is an agent label;
 * - `all` or `*`: every node;
 * - SSH servers behind a relay (docs/links.md "Running commands through a relay"): `server:<glob>`
 *   (servers by name) and `relay:<glob>` (every server behind the relays named); a target naming
 *   servers names nothing else ({@link serverTerms}).
 * Matching is case-sensitive except for the attribute keys. Resolution against the registry is
 * the manager's (manager/targets.ts); this module is pure so the CLI can check a target too.
 */

/** What a target is matched against: a node's id and its attributes as strings. */
export interface TargetNode {
  /** Node id (`box-slot-cpu`, or a linked node's id). */
  id: string;
  /** Attributes by key (`box`, `slot`, `cpu`, `state`, `board_type`, ...); absent = unknown. */
  attrs: Readonly<Record<string, string | undefined>>;
  /** Agent labels (config `labels`), by name. */
  labels: Readonly<Record<string, string>>;
}

/** One parsed term. */
export type TargetTerm =
  | { kind: 'all' }
  | { kind: 'node'; patterns: string[] }
  | { kind: 'attr'; key: string; negate: boolean; values: string[] };

/** A parsed target: the text it came from and its terms (all must match). */
export interface Target {
  text: string;
  terms: TargetTerm[];
}

/** Largest target text, characters. */
export const MAX_TARGET_LENGTH = 4096;
/** Most terms in one target, and most values in one term. */
export const MAX_TARGET_TERMS = 64;

/** Attribute keys with a fixed meaning (others are labels). */
export const TARGET_KEYS = [
  'box',
  'slot',
  'cpu',
  'state',
  'board_type',
  'box_type',
  'cpu_arch',
  'cpu_type',
  'os_type',
  'resource_type',
  'hostname',
  'host_ip',
  'link',
] as const;

const KEY_RE = /^(?:label\.)?[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;
const NODE_PATTERN_RE = /^[A-Za-z0-9_.:*?-]{1,128}$/;

/** A target text that cannot be parsed; `message` says which term and why. */
export class TargetError extends Error {}

/**
 * Parses a target text.
 * @throws TargetError for an empty or too long text, too many terms or values, a bad key or a
 *   node pattern with characters other than letters, digits, `_ . : - * ?`
 */
export function parseTarget(text: string): Target {
  if (text.length > MAX_TARGET_LENGTH) throw new TargetError(`target is longer than ${MAX_TARGET_LENGTH} characters`);
  const parts = text
    .split(/[\s&]+/)
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (parts.length === 0) throw new TargetError('target is empty');
  if (parts.length > MAX_TARGET_TERMS) throw new TargetError(`target has more than ${MAX_TARGET_TERMS} terms`);
  const terms = parts.map((part): TargetTerm => {
    if (part === 'all' || part === '*') return { kind: 'all' };
    const eq = part.indexOf('=');
    if (eq < 0) {
      const patterns = splitValues(part);
      for (const p of patterns) {
        if (!NODE_PATTERN_RE.test(p)) throw new TargetError(`bad node pattern ${JSON.stringify(p)}`);
      }
      return { kind: 'node', patterns };
    }
    const negate = part[eq - 1] === '!';
    const key = part.slice(0, negate ? eq - 1 : eq);
    if (!KEY_RE.test(key))
      throw new TargetError(`bad attribute name ${JSON.stringify(key)} in ${JSON.stringify(part)}`);
    const values = splitValues(part.slice(eq + 1));
    return { kind: 'attr', key: normalizeKey(key), negate, values };
  });
  return { text, terms };
}

function splitValues(s: string): string[] {
  const values = s.split(',').filter((v) => v !== '');
  if (values.length === 0) throw new TargetError(`no value in ${JSON.stringify(s)}`);
  if (values.length > MAX_TARGET_TERMS) throw new TargetError(`more than ${MAX_TARGET_TERMS} values in one term`);
  return values;
}

function normalizeKey(key: string): string {
  const lower = key.toLowerCase();
  if (lower === 'cpu_id') return 'cpu';
  if (lower === 'box_id') return 'box';
  if (lower === 'slot_id') return 'slot';
  return (TARGET_KEYS as readonly string[]).includes(lower) ? lower : key;
}

const globCache = new Map<string, RegExp>();
/** A glob (`*`, `?`) as an anchored RegExp; other characters literal. */
export function globToRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (!re) {
    const body = glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.');
    re = new RegExp(`^${body}$`);
    if (globCache.size > 1000) globCache.clear();
    globCache.set(glob, re);
  }
  return re;
}

function attrOf(node: TargetNode, key: string): string | undefined {
  if (key.startsWith('label.')) return node.labels[key.slice(6)];
  if ((TARGET_KEYS as readonly string[]).includes(key)) return node.attrs[key];
  return node.labels[key];
}

/** Whether `node` matches every term of `target`. */
export function matchesTarget(target: Target, node: TargetNode): boolean {
  return target.terms.every((t) => {
    if (t.kind === 'all') return true;
    if (t.kind === 'node') return t.patterns.some((p) => globToRegExp(p).test(node.id));
    const v = attrOf(node, t.key);
    const hit = v !== undefined && t.values.some((p) => globToRegExp(p).test(v));
    return t.negate ? !hit : hit;
  });
}

/** The nodes of `nodes` that `target` selects, in their order. */
export function selectTarget<N extends TargetNode>(target: Target, nodes: Iterable<N>): N[] {
  const out: N[] = [];
  for (const n of nodes) if (matchesTarget(target, n)) out.push(n);
  return out;
}

/** An SSH server as a target sees it: its name and the relay it is behind. */
export interface TargetServer {
  name: string;
  relay: string;
}

/**
 * Whether `target` names SSH servers (docs/links.md "Running commands through a relay"): null
 * when none of its terms starts with `server:` or `relay:`, else its terms as lists of
 * `server:`/`relay:` patterns (each term any of its patterns; all terms must match).
 * @throws TargetError when a target mixes servers with nodes, attributes or `all`
 */
export function serverTerms(target: Target): string[][] | null {
  const isServer = (p: string) => p.startsWith('server:') || p.startsWith('relay:');
  const named = target.terms.some((t) => t.kind === 'node' && t.patterns.some(isServer));
  if (!named) return null;
  return target.terms.map((t) => {
    if (t.kind !== 'node' || !t.patterns.every(isServer) || t.patterns.some((p) => p.indexOf(':') === p.length - 1))
      throw new TargetError('a target naming SSH servers (server:NAME, relay:NAME) names nothing else');
    return t.patterns;
  });
}

/** The servers of `servers` that the server terms `terms` ({@link serverTerms}) select, in their order. */
export function selectServers<S extends TargetServer>(terms: readonly string[][], servers: Iterable<S>): S[] {
  const out: S[] = [];
  for (const s of servers) {
    const hit = terms.every((ps) =>
      ps.some((p) =>
        p.startsWith('server:') ? globToRegExp(p.slice(7)).test(s.name) : globToRegExp(p.slice(6)).test(s.relay),
      ),
    );
    if (hit) out.push(s);
  }
  return out;
}
