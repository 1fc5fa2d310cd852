/**
 * The metrics an alert rule may name: every number of a resource report (docs/protocol.md "3. Resource report"),
 * read off the protocol schemas in common/protocol.ts so that a field added there is a metric
 * here too. Names are the report's own paths: `cpu.temperature`, `memory.usage_percent`;
 * figures of lists are per instance: `disk.usage_percent` per mount point, `gpu.temperature` per
 * GPU index, `network.rx_errors` per interface, `component.cpu.load` per component uuid.
 */
import type { TSchema } from 'typebox';
import {
  Component,
  CpuResource,
  DiskResource,
  GpuResource,
  MemoryResource,
  NetworkResource,
  type ResourceData,
} from '../../common/protocol.js';

/** One metric a rule may use. */
export interface MetricInfo {
  name: string;
  /** What the figure is and its unit, from the schema's description. */
  description: string;
  /** The unit: %, °C, V, A, W, bytes, or '' for a count. */
  unit: string;
  /** What tells instances apart (`mount_point`, `index`, `interface`, `uuid`), or null for one per board. */
  instance: string | null;
}

/** One value of a metric on a board: `instance` names which disk, GPU, interface or component. */
export interface Sample {
  instance: string | null;
  /** null when the board has no such sensor. */
  value: number | null;
}

type Reader = (r: ResourceData) => Sample[];
/** A comparison of a value with a threshold (a rule's op). */
export type Test = (v: number, threshold: number) => boolean;
/** Whether any value of a metric in a report passes a test (builds no Sample). */
type AnyReader = (r: ResourceData, test: Test, threshold: number) => boolean;

function unitOf(description: string): string {
  const m = /(%|°C|\bV\b|\bA\b|\bW\b|bytes)/.exec(description);
  return m ? (m[1] as string) : '';
}

/** Numeric leaves of an object schema, as [dotted path, description]. */
function numericLeaves(schema: TSchema, prefix = ''): [string, string][] {
  const out: [string, string][] = [];
  const s = schema as {
    type?: string | string[];
    properties?: Record<string, TSchema>;
    anyOf?: TSchema[];
    description?: string;
  };
  if (s.properties) {
    for (const [k, v] of Object.entries(s.properties)) out.push(...numericLeaves(v, prefix ? `${prefix}.${k}` : k));
    return out;
  }
  const types = s.anyOf ? s.anyOf.map((x) => (x as { type?: string }).type) : [s.type];
  const desc = s.description ?? s.anyOf?.map((x) => (x as { description?: string }).description).find(Boolean) ?? '';
  if (types.some((t) => t === 'number' || t === 'integer')) out.push([prefix, desc]);
  return out;
}

function get(obj: unknown, keys: readonly string[]): number | null {
  let cur: unknown = obj;
  for (const k of keys) {
    if (typeof cur !== 'object' || cur === null) return null;
    cur = (cur as Record<string, unknown>)[k];
  }
  return typeof cur === 'number' && Number.isFinite(cur) ? cur : null;
}

const catalog = new Map<string, MetricInfo & { read: Reader; any: AnyReader }>();

function addGroup(
  group: string,
  schema: TSchema,
  list: ((r: ResourceData) => unknown[]) | null,
  instanceField: string | null,
  /** Leaves to leave out (identifiers, not figures). */
  skip: string[] = [],
): void {
  for (const [leaf, description] of numericLeaves(schema)) {
    if (skip.includes(leaf)) continue;
    // A component's figures sit under `resource`: named component.cpu.load, not component.resource.cpu.load.
    const name = `${group}.${leaf.replace(/^resource\./, '')}`;
    const keys = leaf.split('.');
    const read: Reader = list
      ? (r) =>
          list(r).map((item) => ({
            instance: String((item as Record<string, unknown>)[instanceField as string]),
            value: get(item, keys),
          }))
      : (r) => [{ instance: null, value: get((r.resource as unknown as Record<string, unknown>)[group], keys) }];
    const any: AnyReader = list
      ? (r, test, t) => {
          const items = list(r);
          for (let i = 0; i < items.length; i++) {
            const v = get(items[i], keys);
            if (v !== null && test(v, t)) return true;
          }
          return false;
        }
      : (r, test, t) => {
          const v = get((r.resource as unknown as Record<string, unknown>)[group], keys);
          return v !== null && test(v, t);
        };
    catalog.set(name, { name, description, unit: unitOf(description), instance: instanceField, read, any });
  }
}

addGroup('cpu', CpuResource, null, null);
addGroup('memory', MemoryResource, null, null);
addGroup('disk', DiskResource, (r) => r.resource.disk, 'mount_point');
addGroup('gpu', GpuResource, (r) => r.resource.gpu, 'index', ['index']);
addGroup('network', NetworkResource, (r) => r.resource.network, 'interface');
addGroup('component', Component, (r) => r.component, 'uuid', ['index']);

/** Every metric a rule may use, by name. */
export function metricCatalog(): MetricInfo[] {
  return [...catalog.values()].map(({ read: _read, any: _any, ...info }) => info);
}

/** Whether `name` is a metric of the catalog. */
export function isMetric(name: string): boolean {
  return catalog.has(name);
}

/** The names of the catalog, for error messages. */
export function metricNames(): string[] {
  return [...catalog.keys()];
}

/**
 * The values of `metric` in a resource report: one for board-wide figures, one per instance for
 * disks, GPUs, interfaces and components.
 * @throws Error when `metric` is not in the catalog
 */
export function readMetric(metric: string, r: ResourceData): Sample[] {
  const m = catalog.get(metric);
  if (!m) throw new Error(`unknown metric ${metric}`);
  return m.read(r);
}

/**
 * Whether any value of `metric` in `r` passes `test(value, threshold)`: what readMetric would
 * give, without building its samples (the alert engine's per-report check).
 * @throws Error when `metric` is not in the catalog
 */
export function anyMetricValue(metric: string, r: ResourceData, test: Test, threshold: number): boolean {
  const m = catalog.get(metric);
  if (!m) throw new Error(`unknown metric ${metric}`);
  return m.any(r, test, threshold);
}
