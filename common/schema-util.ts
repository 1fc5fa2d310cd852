/** Small schema builders for config files: every object is closed, so an unknown key is an error. */
import { type TProperties, Type } from 'typebox';

/** An object schema that refuses keys it does not name (config typos fail at start). */
export const Strict = <T extends TProperties>(props: T, description?: string) =>
  Type.Object(props, { additionalProperties: false, ...(description ? { description } : {}) });

/** Milliseconds, a whole number ≥ `min`. */
export const Millis = (description: string, min = 0) =>
  Type.Integer({ minimum: min, description: `${description}, ms` });
