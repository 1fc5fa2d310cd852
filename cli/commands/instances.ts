/**
 * Business instances (docs/scheduling.md "Instances", "The spec file"):
 *   muster instance apply app.yaml     store the spec; the manager places and keeps its components running
 *   muster instance plan app.yaml      what apply would do now (nothing changes)
 *   muster instance list               every instance with its group counts
 *   muster instance status <id>        one instance: groups and components (node, phase, reported state)
 *   muster instance history <id>       what the manager did for it, newest first
 *   muster instance stop <id>          stop every component (apply runs it again)
 *   muster instance rm <id>            stop every component, then forget the instance
 * Every verb takes --json. The spec file is YAML (or JSON) shaped as common/api/instances.ts's
 * InstanceSpec; sizes may be written `64M` and durations `30s` (keys `interval`, `delay`,
 * `max_delay`, `min_healthy`, `reschedule_after` become their `_ms` fields).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { InstanceEvent, InstanceSpec, InstanceView, Plan } from '../../common/api/instances.js';
import { INSTANCE_ID_PATTERN } from '../../common/api/instances.js';
import { parseConstraints } from '../../common/constraints.js';
import { parseDuration } from '../../common/time.js';
import { parseSize } from '../../common/units.js';
import { api, CliError, managerUrl } from '../client.js';
import { ago, bytes, table } from '../format.js';

/** Largest spec file read, bytes. */
const MAX_SPEC_BYTES = 1 << 20;
const DURATION_KEYS = ['interval', 'delay', 'max_delay', 'min_healthy', 'reschedule_after'];

/** Turns `x: 30s` into `x_ms: 30000` for the duration keys, recursively, and `memory: 64M` into bytes. */
function normalize(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => normalize(x, `${path}[${i}]`));
  if (typeof v !== 'object' || v === null) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    const at = path ? `${path}.${k}` : k;
    if (DURATION_KEYS.includes(k)) {
      out[`${k}_ms`] = typeof x === 'number' ? x : parseDuration(String(x), at);
    } else if (k.endsWith('_ms') && typeof x === 'string') {
      out[k] = parseDuration(x, at);
    } else if (k === 'memory' && typeof x === 'string') {
      out[k] = parseSize(x, at);
    } else out[k] = normalize(x, at);
  }
  return out;
}

/**
 * Reads a spec file: YAML or JSON, sizes and durations as text allowed; groups get `gpu: 0` when
 * their require names none. Constraints are checked here too, so a typo is named before sending.
 * @throws CliError naming the file and what is wrong
 */
export function readSpec(file: string): InstanceSpec {
  let text: string;
  try {
    if (statSync(file).size > MAX_SPEC_BYTES) throw new Error(`larger than ${MAX_SPEC_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`, 1);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new CliError(`${file}: not YAML: ${(err as Error).message}`, 1);
  }
  let spec: InstanceSpec;
  try {
    spec = normalize(doc, '') as InstanceSpec;
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`, 1);
  }
  if (typeof spec !== 'object' || spec === null || typeof spec.instance_id !== 'string')
    throw new CliError(`${file}: instance_id is missing`, 1);
  if (!new RegExp(INSTANCE_ID_PATTERN).test(spec.instance_id))
    throw new CliError(
      `${file}: instance_id ${JSON.stringify(spec.instance_id)}: letters, digits, _ and - (at most 48)`,
      1,
    );
  for (const [name, g] of Object.entries(spec.groups ?? {})) {
    if (g && typeof g === 'object' && g.require && typeof g.require === 'object' && g.require.gpu === undefined)
      g.require.gpu = 0;
    try {
      parseConstraints(g?.constraints ?? []);
    } catch (err) {
      throw new CliError(`${file}: groups.${name}.${(err as Error).message}`, 1);
    }
  }
  return spec;
}

/** The `muster instance list` table. */
export function renderInstances(list: InstanceView[]): string {
  if (list.length === 0) return 'no instances';
  return table(
    ['INSTANCE', 'STATUS', 'VERSION', 'GROUPS', 'RUNNING', 'WANTED', 'UPDATED', 'BY'],
    list.map((i) => {
      const gs = Object.values(i.groups);
      return [
        i.instance_id,
        i.status,
        i.version,
        Object.keys(i.groups).join(','),
        gs.reduce((s, g) => s + g.running, 0),
        gs.reduce((s, g) => s + g.count, 0),
        ago(new Date(i.updated_at).toISOString()),
        i.who,
      ];
    }),
  );
}

/** The `muster instance status` text. */
export function renderInstance(i: InstanceView, now = Date.now()): string {
  const head = `instance ${i.instance_id}: ${i.status}, version ${i.version}, applied by ${i.who} ${ago(new Date(i.updated_at).toISOString(), now)}`;
  const groups = table(
    [
      'GROUP',
      'WANTED',
      'RUNNING',
      'STARTING',
      'FAILED',
      'LOST',
      'STOPPING',
      'OUTDATED',
      'TYPE',
      'FILE',
      'CPU',
      'MEMORY',
    ],
    Object.entries(i.groups).map(([name, g]) => {
      const s = i.spec.groups[name];
      return [
        name,
        g.count,
        g.running,
        g.starting,
        g.failed,
        g.lost,
        g.stopping,
        g.outdated,
        s?.type,
        s?.file,
        s?.require.cpu,
        bytes(s?.require.memory),
      ];
    }),
  );
  const comps =
    i.components.length === 0
      ? 'no components'
      : table(
          ['GROUP', 'INDEX', 'UUID', 'NODE', 'VERSION', 'PHASE', 'REPORTED', 'SINCE', 'REASON'],
          i.components.map((c) => [
            c.group,
            c.index,
            c.uuid,
            c.node,
            c.version,
            c.phase,
            c.reported ?? '-',
            c.running_since ? ago(new Date(c.running_since).toISOString(), now) : '-',
            c.reason,
          ]),
        );
  return `${head}\n\n${groups}\n\n${comps}`;
}

/** The `muster instance plan` text (also printed by apply). */
export function renderPlan(p: Plan): string {
  const head = p.changed
    ? `instance ${p.instance_id}: apply makes version ${p.version}`
    : `instance ${p.instance_id}: spec unchanged (version ${p.version})`;
  if (p.steps.length === 0) return `${head}\n  nothing to do`;
  const lines = p.steps.map((s) => {
    const where = s.group ? `${s.group}${s.index !== null ? `[${s.index}]` : ''}` : '';
    return `  ${s.action.padEnd(9)} ${where.padEnd(14)} ${s.message}`;
  });
  return `${head}\n${lines.join('\n')}`;
}

/** The `muster instance history` table. */
export function renderEvents(es: InstanceEvent[]): string {
  if (es.length === 0) return 'no history';
  return table(
    ['ID', 'WHEN', 'ACTION', 'COMPONENT', 'NODE', 'WHO', 'MESSAGE'],
    es.map((e) => [
      e.id,
      e.at.replace('T', ' ').slice(0, 19),
      e.action,
      e.group !== null ? `${e.group}[${e.index ?? ''}]` : '',
      e.node,
      e.who,
      e.message,
    ]),
  );
}

const idArg = (v: string): string => {
  if (!new RegExp(INSTANCE_ID_PATTERN).test(v))
    throw new CliError(`instance id ${JSON.stringify(v)}: letters, digits, _ and -`, 1);
  return v;
};

/** Registers `instance apply|plan|list|status|history|stop|rm` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const inst = p
    .command('instance')
    .description('business instances: groups of components the manager places and keeps running (docs/scheduling.md)');

  inst
    .command('apply <file>')
    .description('store an instance spec (YAML); the manager starts, restarts, reschedules and updates its components')
    .option('--json', 'print { instance, plan } as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const spec = readSpec(file);
      const r = await api<{ instance: InstanceView; plan: Plan }>(
        base(),
        'PUT',
        `/api/v1/instances/${spec.instance_id}`,
        spec,
      );
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else console.log(`${renderPlan(r.plan)}\napplied: muster instance status ${spec.instance_id}`);
    });

  inst
    .command('plan <file>')
    .description('show what apply would do now, with the nodes the scheduler would pick (nothing changes)')
    .option('--json', 'print { plan } as JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      const spec = readSpec(file);
      const r = await api<{ plan: Plan }>(base(), 'POST', `/api/v1/instances/${spec.instance_id}/plan`, spec);
      console.log(o.json ? JSON.stringify(r, null, 2) : renderPlan(r.plan));
    });

  inst
    .command('list')
    .description('every instance with its desired status and running counts')
    .option('--json', 'print { instances } as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<{ instances: InstanceView[] }>(base(), 'GET', '/api/v1/instances');
      console.log(o.json ? JSON.stringify(r, null, 2) : renderInstances(r.instances));
    });

  inst
    .command('status <id>')
    .description('one instance: its groups and components (node, phase, reported state)')
    .option('--json', 'print { instance } as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await api<{ instance: InstanceView }>(base(), 'GET', `/api/v1/instances/${idArg(id)}`);
      console.log(o.json ? JSON.stringify(r, null, 2) : renderInstance(r.instance));
    });

  inst
    .command('history <id>')
    .description('what the manager did for an instance, newest first')
    .option('--limit <n>', 'entries, 1-1000 (default 50)')
    .option('--before <id>', 'entries older than this id')
    .option('--json', 'print { events, next } as JSON')
    .action(async (id: string, o: { limit?: string; before?: string; json?: boolean }) => {
      const q = new URLSearchParams();
      if (o.limit !== undefined) q.set('limit', o.limit);
      if (o.before !== undefined) q.set('before', o.before);
      const qs = q.size > 0 ? `?${q}` : '';
      const r = await api<{ events: InstanceEvent[]; next: number | null }>(
        base(),
        'GET',
        `/api/v1/instances/${idArg(id)}/history${qs}`,
      );
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(renderEvents(r.events));
        if (r.next !== null) console.log(`\nmore: muster instance history ${id} --before ${r.next}`);
      }
    });

  inst
    .command('stop <id>')
    .description('stop every component of an instance (apply runs it again)')
    .option('--json', 'print { instance } as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await api<{ instance: InstanceView }>(base(), 'POST', `/api/v1/instances/${idArg(id)}/stop`, {});
      console.log(o.json ? JSON.stringify(r, null, 2) : `instance ${id}: stopping its components`);
    });

  inst
    .command('rm <id>')
    .description('stop every component of an instance, then forget it')
    .option('--json', 'print { instance } as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await api<{ instance: InstanceView }>(base(), 'DELETE', `/api/v1/instances/${idArg(id)}`);
      if (!r?.instance) throw new CliError(`instance ${id}: no answer`, 1);
      console.log(o.json ? JSON.stringify(r, null, 2) : `instance ${id}: removing (its components are stopped first)`);
    });
}
