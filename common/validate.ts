/**
 * Validation helpers shared by both daemons: compile a schema of common/protocol.ts (or a config
 * schema) and turn validation errors into one clear `{ field, message }` naming the field.
 */
import type { TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

/** One validation error as both TypeBox and ajv (fastify) report it. */
export interface RawError {
  instancePath: string;
  schemaPath?: string;
  keyword: string;
  params?: Record<string, unknown>;
  message?: string;
}

/** A validation failure: the JSON pointer of the offending field and why. */
export interface FieldError {
  /** JSON pointer of the field, e.g. `/data/manager_port`; `/` for the whole body. */
  field: string;
  /** Why it was refused, e.g. `must be <= 65535`. */
  message: string;
}

/**
 * Picks the most useful error of a list and phrases it: the first field in order wins, a union's
 * alternatives are folded into one "must be one of" message, a missing property names itself.
 */
export function describeErrors(errors: readonly RawError[]): FieldError {
  if (errors.length === 0) return { field: '/', message: 'invalid' };
  // A missing required property: name it as the field.
  const fieldOf = (e: RawError): string => {
    const missing =
      e.keyword === 'required'
        ? (e.params?.missingProperty ?? (e.params?.requiredProperties as string[] | undefined)?.[0])
        : undefined;
    const base = e.instancePath || '';
    return missing !== undefined ? `${base}/${String(missing)}` : base || '/';
  };
  // Errors about extra properties never win over a real type error; the first in document order does.
  const relevant = errors.filter((e) => e.keyword !== 'boolean' && e.keyword !== 'additionalProperties');
  const pool = relevant.length > 0 ? relevant : errors;
  const field = fieldOf(pool.find((e) => e.keyword !== 'anyOf') ?? (pool[0] as RawError));
  const sameField = pool.filter((e) => fieldOf(e) === field);
  const alternatives = sameField.filter((e) => (e.schemaPath ?? '').includes('anyOf') && e.keyword !== 'anyOf');
  if (alternatives.length > 1 || sameField.some((e) => e.keyword === 'anyOf')) {
    const options = new Set<string>();
    for (const e of alternatives) {
      if (e.keyword === 'const') options.add(JSON.stringify(e.params?.allowedValue));
      else if (e.keyword === 'type') options.add(String(e.params?.type));
      else if (e.message) options.add(e.message);
    }
    if (options.size > 0) return { field, message: `must be one of ${[...options].join(', ')}` };
  }
  const first = sameField.find((e) => e.keyword !== 'anyOf') ?? (sameField[0] as RawError);
  // additionalProperties: false reports the extra key itself as a "boolean schema" failure.
  if (first.keyword === 'boolean') return { field, message: 'is not a known key' };
  if (first.keyword === 'required') return { field, message: 'is required' };
  if (first.keyword === 'const') return { field, message: `must be ${JSON.stringify(first.params?.allowedValue)}` };
  if (first.keyword === 'additionalProperties') {
    const extra = (first.params?.additionalProperties as string[] | undefined)?.[0] ?? first.params?.additionalProperty;
    return { field: `${field === '/' ? '' : field}/${String(extra)}`, message: 'is not a known key' };
  }
  return { field, message: first.message ?? first.keyword };
}

/** A compiled checker for one schema. */
export interface Checker<T> {
  /** Returns the value typed when valid, or the first error naming the field. */
  check(value: unknown): { ok: true; value: T } | { ok: false; error: FieldError };
}

/** Compiles `schema` once; `check` is then cheap enough for every datagram. */
export function compile<T>(schema: TSchema): Checker<T> {
  const validator = Compile(schema);
  return {
    check(value: unknown) {
      if (validator.Check(value)) return { ok: true, value: value as T };
      return { ok: false, error: describeErrors(validator.Errors(value) as unknown as RawError[]) };
    },
  };
}
