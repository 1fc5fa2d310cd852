/**
 * The docker engine as the driver talks to it: a dockerode client on a unix socket, loaded on
 * first use (a board that never runs a container does not carry ~25 MiB of dockerode, ssh2 and
 * protobufjs: the agent footprint benchmark depends on it), the engine's errors turned into
 * DeployErrors (docs/protocol.md "Result codes": 3 fetch failed, 4 runtime error), and the
 * JSON-lines progress stream of pull and load.
 */
import type Docker from 'dockerode';
import { DeployError, RESULT } from '../../deploy/results.js';

/** At most one throttled progress line per this many ms. */
export const PROGRESS_EVERY_MS = 1000;

/** Percent of `part` in `total`, rounded, at most 100. */
export const pct = (part: number, total: number): number => Math.min(100, Math.round((part / total) * 100));

/** An engine error as dockerode (docker-modem) gives it. */
interface EngineError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
}

/** The engine's own words for an error (docker-modem's `(HTTP code N) ... - ` prefix removed). */
export function reason(err: unknown): string {
  const e = err as EngineError;
  const msg = e?.json && typeof e.json === 'object' && e.json.message ? e.json.message : (e?.message ?? String(err));
  return msg.replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

/** Whether an engine error has one of the HTTP `codes`. */
export const isStatus = (err: unknown, ...codes: number[]): boolean =>
  codes.includes((err as EngineError | undefined)?.statusCode ?? -1);

/** An error for a time-bounded fetch (pull, tarball download and load) that ran out of time. */
export class FetchTimeout extends Error {}

/** The engine of one docker driver: its client, loaded lazily, and its error mapping. */
export class Engine {
  private client: Docker | undefined;

  /**
   * @param socketPath the engine socket, e.g. `/var/run/docker.sock` (deploy.docker_socket)
   * @param fetchTimeoutMs the time limit of a fetch, ms, for the message of a FetchTimeout
   */
  constructor(
    readonly socketPath: string,
    private readonly fetchTimeoutMs: number,
  ) {}

  /** The dockerode client, imported and created on first use. */
  async docker(): Promise<Docker> {
    if (!this.client) {
      const { default: DockerCtor } = await import('dockerode');
      this.client = new DockerCtor({ socketPath: this.socketPath });
    }
    return this.client;
  }

  /** A RUNTIME_ERROR DeployError for an engine failure; `what` says which step. */
  runtimeError(what: string, err: unknown): DeployError {
    const e = err as EngineError;
    if (
      e?.statusCode === undefined &&
      ['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(e?.code ?? '')
    ) {
      return new DeployError(
        RESULT.RUNTIME_ERROR,
        `${what}: docker engine unreachable at ${this.socketPath} (${e.code}): is dockerd running?`,
      );
    }
    return new DeployError(RESULT.RUNTIME_ERROR, `${what}: ${reason(err)}`);
  }

  /** A DeployError for an image that could not be had: FETCH_FAILED, or RUNTIME_ERROR if the engine is down. */
  fetchError(what: string, err: unknown): DeployError {
    if (err instanceof DeployError) return err;
    const r = this.runtimeError(what, err);
    if (r.message.includes('docker engine unreachable')) return r;
    if (err instanceof FetchTimeout) {
      return new DeployError(RESULT.FETCH_FAILED, `${what}: time limit of ${this.fetchTimeoutMs} ms exceeded`);
    }
    return new DeployError(RESULT.FETCH_FAILED, `${what}: ${reason(err)}`);
  }
}

/**
 * Reads a JSON-lines progress stream of the engine (pull, load) to its end.
 * Like `docker.modem.followProgress`, but a malformed line is skipped instead of throwing inside
 * a stream handler, an `error` event of the stream rejects, and `signal` ends it early.
 * @returns every event
 * @throws the first `{error}` event's message, a stream error, or FetchTimeout on abort
 */
export function followJsonLines(
  stream: NodeJS.ReadableStream,
  signal: AbortSignal,
  onEvent: (ev: Record<string, unknown>) => void,
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const events: Record<string, unknown>[] = [];
    let buf = '';
    let done = false;
    let failure: Error | undefined;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (err) {
        (stream as unknown as { destroy?: () => void }).destroy?.();
        reject(err);
      } else resolve(events);
    };
    const onAbort = () => finish(new FetchTimeout('time limit exceeded'));
    const line = (raw: string) => {
      const s = raw.trim();
      if (!s) return;
      let ev: Record<string, unknown>;
      try {
        ev = JSON.parse(s) as Record<string, unknown>;
      } catch {
        return;
      }
      events.push(ev);
      const detail = ev.errorDetail as { message?: string } | undefined;
      if (ev.error !== undefined || detail?.message) {
        failure ??= new Error(String(detail?.message ?? ev.error));
        return;
      }
      try {
        onEvent(ev);
      } catch {
        // a progress callback never breaks the operation
      }
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer | string) => {
      buf += chunk.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        line(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
    });
    stream.on('error', (err: Error) => finish(signal.aborted ? new FetchTimeout('time limit exceeded') : err));
    const end = () => {
      line(buf);
      buf = '';
      if (signal.aborted) return finish(new FetchTimeout('time limit exceeded'));
      finish(failure);
    };
    stream.on('end', end);
    stream.on('close', end);
  });
}
