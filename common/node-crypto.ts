/**
 * `node:crypto` on first use (docs/operations.md "Agent footprint"): loading it initialises
 * OpenSSL and Node's crypto modules, ~2.3 MiB of RSS, which an agent that only answers queries
 * never needs. Modules on the agent's start path call this where they hash or compare instead of
 * importing `node:crypto` at the top; Node caches the module, so each call after the first is a
 * lookup.
 */
export function nodeCrypto(): typeof import('node:crypto') {
  return process.getBuiltinModule('node:crypto');
}
