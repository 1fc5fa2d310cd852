/**
 * undici, imported on first use by the code that needs it (the agent's downloads, the CLI's API
 * verbs), so that neither daemon loads it at start (docs/operations.md "Agent footprint").
 */
type Undici = typeof import('undici');

/**
 * The undici module. In the offline bundle (esbuild) a dynamic import of a CommonJS package
 * yields a namespace holding only `default` (its module.exports); under Node's own loader the
 * named exports are there as well: `default` is taken when present, so both work.
 */
export async function loadUndici(): Promise<Undici> {
  const m = (await import('undici')) as Undici & { default?: Undici };
  return m.default ?? m;
}
