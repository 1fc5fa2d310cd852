/**
 * Interface counters from `/proc/net/dev` (proc(5)). After the two header lines each line is
 * `name:` followed by 8 receive counters (bytes packets errs drop fifo frame compressed
 * multicast) and 8 transmit counters (bytes packets errs drop fifo colls carrier compressed);
 * a large byte count may follow the colon without a space (`eth0:1234567890`).
 */
import type { NetworkResource } from '../../common/protocol.js';
import { type Collector, type CollectorContext, defineCollector } from './collector.js';
import { globMatchAny } from './glob.js';
import { readProcFile } from './procfile.js';

/**
 * Parses the text of /proc/net/dev; counters are bytes, packets and errors since the interface
 * came up. Interfaces whose name matches one of `exclude` (see globMatch) are left out, as are
 * malformed lines. Sorted by interface name (code-point order).
 */
export function parseNetDev(text: string, exclude: readonly string[] = []): NetworkResource[] {
  const out: NetworkResource[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (!name || name.includes('|') || globMatchAny(exclude, name)) continue;
    const v = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (v.length < 16 || v.some((x) => !Number.isFinite(x) || x < 0)) continue;
    out.push({
      interface: name,
      rx_bytes: v[0] ?? 0,
      rx_packets: v[1] ?? 0,
      rx_errors: v[2] ?? 0,
      tx_bytes: v[8] ?? 0,
      tx_packets: v[9] ?? 0,
      tx_errors: v[10] ?? 0,
    });
  }
  return out.sort((a, b) => (a.interface < b.interface ? -1 : a.interface > b.interface ? 1 : 0));
}

/**
 * The `network` collector (every `collect.interval_ms`): reads `${ctx.procRoot}/net/dev`, leaving out
 * `ctx.config.network_exclude`. A missing file (no network namespace) gives `[]`.
 * @returns a collector whose `collect` throws on read errors other than ENOENT
 */
export function createNetworkCollector(ctx: CollectorContext): Collector<NetworkResource[]> {
  const file = `${ctx.procRoot}/net/dev`;
  return {
    name: 'network',
    initial: [],
    async collect(_signal: AbortSignal): Promise<NetworkResource[]> {
      let text: string;
      try {
        text = readProcFile(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      return parseNetDev(text, ctx.config.network_exclude);
    },
  };
}

/** Registration of `network`: `resource.network[]` (docs/protocol.md "resource.network[]"). */
export const networkCollector = defineCollector<NetworkResource[]>({
  name: 'network',
  interval: 'interval_ms',
  create: createNetworkCollector,
  resource(s, data) {
    data.resource.network = s;
  },
});
