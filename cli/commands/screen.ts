/**
 * `muster screen NODE [-o shot.png] [--watch 2s]` (docs/files.md "Screen"): saves a board's
 * display as PNG; with --watch it captures again every interval into the same file (written
 * through a temporary file and renamed, so a viewer never reads half of one) until interrupted.
 */
import { type Command, InvalidArgumentError } from 'commander';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import { parseDuration } from '../../common/time.js';
import { managerUrl } from '../client.js';
import { bytes } from '../format.js';
import { rawApi, saveStream } from './files.js';

/** Shortest --watch interval, ms. */
const MIN_WATCH_MS = 500;

/** Registers `screen` on `p`. */
export function register(p: Command): void {
  p.command('screen')
    .description("save a board's screen as PNG")
    .argument('<node>', 'node id box-slot-cpu', (v: string) => {
      if (!NODE_ID_RE.test(v)) throw new InvalidArgumentError('expected box-slot-cpu, e.g. 1-3-0');
      return v;
    })
    .option('-o, --output <file>', 'PNG file to write (default screen-<node>.png); - = stdout')
    .option(
      '--watch <interval>',
      `capture again every interval (e.g. 2s, at least ${MIN_WATCH_MS} ms)`,
      (v: string) => {
        let ms: number;
        try {
          ms = parseDuration(v, '--watch');
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
        if (ms < MIN_WATCH_MS) throw new InvalidArgumentError(`at least ${MIN_WATCH_MS} ms`);
        return ms;
      },
    )
    .action(async (node: string, o: { output?: string; watch?: number }) => {
      const url = managerUrl((p.opts() as { manager?: string }).manager);
      const dest = o.output ?? `screen-${node}.png`;
      for (;;) {
        try {
          const res = await rawApi(url, 'GET', `/api/v1/nodes/${node}/screen`, { timeoutMs: 60_000 });
          const n = await saveStream(res.body, dest);
          if (dest !== '-')
            console.error(
              `${new Date().toISOString()} ${node} → ${dest} (${bytes(n)}, ${res.headers['x-muster-screen-method'] ?? '?'})`,
            );
        } catch (err) {
          // A watch outlives a failed capture (the board rebooting, a link down): the file keeps
          // the last good picture and the next interval tries again. A single capture fails.
          if (o.watch === undefined) throw err;
          console.error(`${new Date().toISOString()} ${node}: ${(err as Error).message} (trying again)`);
        }
        if (o.watch === undefined) return;
        await new Promise((r) => setTimeout(r, o.watch));
      }
    });
}
