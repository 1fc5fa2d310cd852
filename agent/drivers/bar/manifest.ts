/**
 * `bar.yaml`, the manifest at the root of a bar bundle (docs/protocol.md "bar: what a bundle is"):
 *
 *     name: detector            # string
 *     version: "1.4.2"          # string (quote numbers)
 *     command: [./run.sh, --fast]   # argv, non-empty list of strings, run in the bundle dir
 *     env: { MODE: fast }       # optional, string values
 *     stop_signal: SIGTERM      # optional, a signal name (default SIGTERM; "TERM" also accepted)
 *     stop_grace_ms: 5000       # optional, ms before SIGKILL (default: the agent's stop grace)
 *
 * Unknown keys are ignored, so that newer bundles still run on older agents.
 */
import { constants } from 'node:os';
import { parse } from 'yaml';
import { DeployError, RESULT } from '../../deploy/results.js';

/** A validated bar.yaml. */
export interface Manifest {
  name: string;
  version: string;
  /** argv; command[0] is a path relative to the bundle dir (`./run.sh`) or a name on PATH. */
  command: string[];
  env: Record<string, string>;
  stopSignal: NodeJS.Signals;
  /** ms; undefined = the agent's configured stop grace. */
  stopGraceMs: number | undefined;
}

/** Largest bar.yaml read, bytes. */
export const MAX_MANIFEST_BYTES = 64 * 1024;

const bad = (key: string, what: string): DeployError =>
  new DeployError(RESULT.FETCH_FAILED, `bar.yaml ${key}: ${what}`);

/** `SIGTERM`, `TERM`, `sigterm` → `SIGTERM`; null when no such signal. */
export function signalName(raw: string): NodeJS.Signals | null {
  const up = raw.trim().toUpperCase();
  const name = up.startsWith('SIG') ? up : `SIG${up}`;
  return Object.hasOwn(constants.signals, name) ? (name as NodeJS.Signals) : null;
}

/**
 * Parses and validates a bar.yaml text.
 * @throws DeployError FETCH_FAILED naming the offending key
 */
export function parseManifest(text: string): Manifest {
  let doc: unknown;
  try {
    doc = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new DeployError(RESULT.FETCH_FAILED, `bar.yaml: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DeployError(RESULT.FETCH_FAILED, 'bar.yaml: must be a mapping (name, version, command, ...)');
  }
  const m = doc as Record<string, unknown>;
  if (typeof m.name !== 'string' || m.name.trim() === '') throw bad('name', 'must be a non-empty string');
  if (typeof m.version !== 'string') {
    throw bad('version', `must be a string${typeof m.version === 'number' ? ' (quote it)' : ''}`);
  }
  const cmd = m.command;
  if (!Array.isArray(cmd) || cmd.length === 0 || !cmd.every((a) => typeof a === 'string')) {
    throw bad('command', 'must be a non-empty list of strings (argv), e.g. [./run.sh, --flag]');
  }
  if (cmd[0] === '') throw bad('command', 'command[0] must not be empty');
  const env: Record<string, string> = {};
  if (m.env !== undefined && m.env !== null) {
    if (typeof m.env !== 'object' || Array.isArray(m.env)) throw bad('env', 'must be a map of names to strings');
    for (const [k, v] of Object.entries(m.env as Record<string, unknown>)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw bad(`env.${k}`, 'not a valid variable name');
      if (typeof v !== 'string') throw bad(`env.${k}`, 'must be a string (quote numbers and booleans)');
      env[k] = v;
    }
  }
  let stopSignal: NodeJS.Signals = 'SIGTERM';
  if (m.stop_signal !== undefined && m.stop_signal !== null) {
    const s = typeof m.stop_signal === 'string' ? signalName(m.stop_signal) : null;
    if (!s) throw bad('stop_signal', `${JSON.stringify(m.stop_signal)} is not a signal name (e.g. SIGTERM, SIGINT)`);
    stopSignal = s;
  }
  let stopGraceMs: number | undefined;
  if (m.stop_grace_ms !== undefined && m.stop_grace_ms !== null) {
    const g = m.stop_grace_ms;
    if (typeof g !== 'number' || !Number.isInteger(g) || g < 0)
      throw bad('stop_grace_ms', 'must be an integer ≥ 0 (ms)');
    stopGraceMs = g;
  }
  return { name: m.name, version: m.version, command: cmd as string[], env, stopSignal, stopGraceMs };
}
