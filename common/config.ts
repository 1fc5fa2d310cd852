/**
 * Config loading shared by both daemons: YAML defaults from `config/<name>.yaml`, an optional
 * `--config FILE` merged over them, then `MUSTER_<DAEMON>_<PATH>` env vars, then `--set path=value`
 * flags. The result is validated against the daemon's schema: an unknown key or a wrong type stops
 * the daemon at start with the key's path and what was expected (docs/configuration.md "How a
 * daemon's config is built"). A secret (isSecretKey) is refused with `--set`: `ps` shows it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { TSchema } from 'typebox';
import YAML from 'yaml';
import { packageRoot } from './paths.js';
import { compile } from './validate.js';

/** Thrown when a config cannot be read or does not validate; `message` names the key and reason. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Where to read a daemon's config from. */
export interface ConfigSources {
  /** Name of the shipped defaults, `config/<name>.yaml` (`agent` or `manager`). */
  name: 'agent' | 'manager' | 'relay';
  /** A YAML file merged over the defaults (`--config FILE`). */
  file?: string | undefined;
  /** `path.to.key=value` overrides (`--set`), applied last. */
  sets?: readonly string[] | undefined;
  /** Environment to read `MUSTER_<NAME>_...` overrides from; defaults to process.env. */
  env?: NodeJS.ProcessEnv | undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep-merges `over` into `base` (objects merge, everything else replaces). */
export function merge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

function readYaml(file: string): Obj {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text) ?? {};
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (!isObj(doc)) throw new ConfigError(`config ${file}: the top level must be a mapping of keys`);
  return doc;
}

/** Leaf keys of an object schema as dotted paths with their schema (arrays are leaves). */
export function leafPaths(schema: TSchema, prefix = ''): Map<string, TSchema> {
  const out = new Map<string, TSchema>();
  const props = (schema as { properties?: Record<string, TSchema> }).properties;
  if ((schema as { type?: string }).type === 'object' && props) {
    for (const [k, s] of Object.entries(props)) {
      for (const [p, ls] of leafPaths(s, prefix ? `${prefix}.${k}` : k)) out.set(p, ls);
    }
  } else if (prefix) out.set(prefix, schema);
  return out;
}

/** Parses an override's text as its schema expects: strings stay raw, anything else is YAML. */
function parseValue(raw: string, schema: TSchema): unknown {
  if ((schema as { type?: string }).type === 'string') return raw;
  try {
    return YAML.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Whether the config key `dotted` holds a secret (docs/configuration.md "Secrets"): its last part
 * names a password, token, secret or api_key (`deploy.token`, `deploy.tokens`, `auth.token`,
 * `telemetry.influxdb.password`). A `*_file` key holds a path, not the secret, and is not one.
 */
export function isSecretKey(dotted: string): boolean {
  const last = dotted.split('.').pop() ?? '';
  if (last.endsWith('_file')) return false;
  return /password|passwd|token|secret|api_?key/i.test(last);
}

/**
 * Why `--set dotted=...` is refused for a secret: the command line is visible to every user in
 * `ps` and /proc/<pid>/cmdline. Names the `<key>_file` sibling when the schema has one, the
 * environment variable and the config file as the alternatives.
 */
function secretOnCommandLine(name: string, dotted: string, leaves: Map<string, TSchema>): ConfigError {
  const file = leaves.has(`${dotted}_file`) ? `${dotted}_file (a file, mode 0600), ` : '';
  return new ConfigError(
    `--set ${dotted}: refused, a secret on the command line is visible to every user in ps; use ${file}the environment variable ${envName(name, dotted)} or --config FILE instead`,
  );
}

function setPath(obj: Obj, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isObj(cur[k])) cur[k] = {};
    cur = cur[k] as Obj;
  }
  cur[keys[keys.length - 1] as string] = value;
}

/** The env var that overrides `dotted` for daemon `name`, e.g. `MUSTER_AGENT_IDENTITY_BOX_ID`. */
export function envName(name: string, dotted: string): string {
  return `MUSTER_${name}_${dotted.replace(/\./g, '_')}`.toUpperCase();
}

/**
 * Loads, merges and validates a daemon config.
 * @returns the config typed by `schema`, with the files it came from in `sources`.
 * @throws ConfigError naming the file, env var or key that is wrong and what was expected; naming
 *   the `_file` or environment alternative for a secret given with `--set`.
 */
export function loadConfig<T>(schema: TSchema, src: ConfigSources): T {
  const leaves = leafPaths(schema);
  let cfg = readYaml(path.join(packageRoot(), 'config', `${src.name}.yaml`));
  if (src.file) cfg = merge(cfg, readYaml(src.file));
  const env = src.env ?? process.env;
  const origin = new Map<string, string>();
  for (const [dotted, leaf] of leaves) {
    const name = envName(src.name, dotted);
    const v = env[name];
    if (v === undefined) continue;
    setPath(cfg, dotted, parseValue(v, leaf));
    origin.set(dotted, `from ${name}`);
  }
  for (const set of src.sets ?? []) {
    const eq = set.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${set}: expected path.to.key=value`);
    const dotted = set.slice(0, eq).trim();
    const leaf = leaves.get(dotted);
    if (!leaf) throw new ConfigError(`--set ${dotted}: unknown key (known: ${[...leaves.keys()].join(', ')})`);
    if (isSecretKey(dotted)) throw secretOnCommandLine(src.name, dotted, leaves);
    setPath(cfg, dotted, parseValue(set.slice(eq + 1), leaf));
    origin.set(dotted, 'from --set');
  }
  const result = compile<T>(schema).check(cfg);
  if (!result.ok) {
    const key = result.error.field.replace(/^\//, '').replace(/\//g, '.') || '(top level)';
    const from = [...origin].find(([k]) => key === k || key.startsWith(`${k}.`))?.[1];
    const where = from ? ` (${from})` : src.file ? ` (config ${src.file} over the defaults)` : '';
    throw new ConfigError(`config key ${key}: ${result.error.message}${where}`);
  }
  return result.value;
}
