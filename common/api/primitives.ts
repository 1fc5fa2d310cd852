/**
 * The small shared vocabulary of the REST contract and the daemons: one schema and one type for
 * each, used by the manager's routes, the agent, the CLI and the dashboard alike
 * (docs/architecture.md "One source of truth").
 */
import {
  type Static,
  type TLiteral,
  type TObject,
  type TSchema,
  type TSchemaOptions,
  type TUnion,
  type TUnsafe,
  Type,
} from 'typebox';

/**
 * A union of literals from a constant list, typed so that `Static<>` is the union of the values
 * (`Type.Union(list.map(Type.Literal))` alone types as `never`).
 */
export function literalUnion<const T extends readonly (string | number)[]>(
  values: T,
  options?: TSchemaOptions,
): TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    options,
  ) as unknown as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>;
}

/** The workload kinds an agent runs (docs/protocol.md "/deploy": `type`). */
export const WORKLOAD_TYPES = ['docker', 'bar'] as const;
/** A workload kind: `docker` (a container) or `bar` (a native bundle). */
export type WorkloadType = (typeof WORKLOAD_TYPES)[number];
/** Schema of {@link WorkloadType}. */
export const WorkloadTypeSchema = literalUnion(WORKLOAD_TYPES, {
  description: 'workload kind: docker (container) or bar (native bundle)',
});

/**
 * Pattern of a node id: a board's position `box-slot-cpu` (e.g. `1-3-0`), or the `node_id` of a
 * node on the WebSocket link that reports no position (docs/links.md "Node ids": letters, digits,
 * `_ . -`, at most 64, e.g. `node-001` or a UUID). The second form contains the first; both are
 * spelled out so that the position form stays visible.
 */
export const NODE_ID_PATTERN = '^(?:[0-9]{1,9}-[0-9]{1,9}-[0-9]{1,9}|[A-Za-z0-9][A-Za-z0-9_.-]{0,63})$';
/** The same pattern as a RegExp (for the CLI's argument checks). */
export const NODE_ID_RE = new RegExp(NODE_ID_PATTERN);
/** Schema of a node id (`box-slot-cpu`, or a linked node's node_id). */
export const NodeIdSchema = Type.String({
  pattern: NODE_ID_PATTERN,
  description: 'node id: box-slot-cpu (e.g. 1-3-0) or a linked node id (e.g. node-001)',
});
/** A node id `box-slot-cpu`. */
export type NodeId = Static<typeof NodeIdSchema>;

/** Alert severities, most severe first (docs/configuration.md#alerts). */
export const SEVERITIES = ['critical', 'warning', 'info'] as const;
/** An alert severity. */
export type Severity = (typeof SEVERITIES)[number];
/** Schema of {@link Severity}. */
export const SeveritySchema = literalUnion(SEVERITIES, { description: 'critical, warning or info' });

/**
 * A copy of `schema` in which every object accepts properties it does not name
 * (`additionalProperties: true`), at every depth. Response schemas of bodies the manager passes on
 * as the board sent them (a heartbeat's or a resource report's `data`, an agent's deploy reply)
 * use it, so that the serializer keeps the unknown fields of a newer agent (docs/protocol.md
 * "6. Interoperability rules"). The static type is unchanged.
 */
export function openSchema<T extends TSchema>(schema: T): T {
  const copy = (s: unknown): unknown => {
    if (Array.isArray(s)) return s.map(copy);
    if (typeof s !== 'object' || s === null) return s;
    const out = Object.defineProperties({}, Object.getOwnPropertyDescriptors(s)) as Record<string, unknown>;
    for (const k of ['properties', 'patternProperties'] as const) {
      const props = out[k] as Record<string, unknown> | undefined;
      if (props) out[k] = Object.fromEntries(Object.entries(props).map(([n, v]) => [n, copy(v)]));
    }
    for (const k of ['items', 'anyOf', 'allOf', 'oneOf'] as const) if (out[k] !== undefined) out[k] = copy(out[k]);
    if (out.type === 'object') out.additionalProperties = true;
    return out;
  };
  return copy(schema) as T;
}

/**
 * `schema` (an object, opened with {@link openSchema}) or null, as `type: ['object', 'null']`
 * rather than an `anyOf`: the serializer then writes the object as it is, without validating it
 * against the schema first (a large body, a heartbeat or a resource report, would be checked on
 * every answer, and an answer that did not match would fail).
 */
export function openOrNull<T extends TObject>(schema: T): TUnsafe<Static<T> | null> {
  const open = openSchema(schema) as unknown as Record<string, unknown>;
  return Type.Unsafe<Static<T> | null>({ ...open, type: ['object', 'null'] });
}
