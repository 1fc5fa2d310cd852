/** `docker pull` of a registry image with throttled progress lines (docs/protocol.md "docker"). */
import type { Progress } from '../driver.js';
import { type Engine, FetchTimeout, followJsonLines, PROGRESS_EVERY_MS, pct } from './engine.js';

/**
 * Pulls `ref` (e.g. `192.168.10.254:5000/radar/detector:1.4.2`) from its registry.
 * @param signal the fetch deadline (deploy.fetch_timeout_ms)
 * @throws DeployError FETCH_FAILED naming the image (RUNTIME_ERROR when the engine is down)
 */
export async function pullImage(engine: Engine, ref: string, progress: Progress, signal: AbortSignal): Promise<void> {
  progress(`pulling ${ref}`);
  let last = 0;
  const seen = new Set<string>();
  try {
    const stream = await (await engine.docker()).pull(ref, { abortSignal: signal });
    await followJsonLines(stream, signal, (ev) => {
      const status = typeof ev.status === 'string' ? ev.status : '';
      const layer = typeof ev.id === 'string' ? ev.id : '';
      const d = ev.progressDetail as { current?: number; total?: number } | undefined;
      if (d && typeof d.total === 'number' && d.total > 0 && typeof d.current === 'number') {
        const now = Date.now();
        if (now - last < PROGRESS_EVERY_MS) return;
        last = now;
        progress(`pulling ${ref}: ${layer} ${status.toLowerCase()} ${pct(d.current, d.total)}%`);
      } else if (status) {
        const lineText = `pulling ${ref}: ${layer ? `${layer}: ` : ''}${status}`;
        if (seen.has(lineText)) return;
        seen.add(lineText);
        progress(lineText);
      }
    });
  } catch (err) {
    throw engine.fetchError(`image ${ref} could not be pulled`, signal.aborted ? new FetchTimeout() : err);
  }
}
