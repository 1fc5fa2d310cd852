/**
 * `muster history`: the manager's record of node state changes, operations (deploys, queries, rule
 * changes), component state changes and its own starts and stops (GET /api/v1/history).
 *   muster history [--node id] [--since T] [--kind k] [--limit N] [--before ID] [--all] [--json]
 */
import { type Command, Option } from 'commander';
import { HISTORY_KINDS, type HistoryEntry, type HistoryKind } from '../../common/api/history.js';
import { managerUrl } from '../client.js';
import { id, limit, listPages, MAX_LIMIT, moreHint, nodeId, since, terminalColumns } from '../list.js';
import { renderHistory } from '../render.js';

interface HistoryOptions {
  node?: string;
  since?: string;
  kind?: HistoryKind;
  limit?: number;
  before?: number;
  all?: boolean;
  json?: boolean;
}

/** Registers `history` on `p`. */
export function register(p: Command): void {
  p.command('history')
    .description('list what happened, newest first: node states, operations and who ran them, components, manager')
    .option('--node <id>', 'only this node (box-slot-cpu)', nodeId)
    .option('--since <time>', 'only entries since: 30m, 2h, 7d, an ISO date-time, ms since the epoch', since)
    .addOption(new Option('--kind <kind>', 'only this kind').choices(HISTORY_KINDS))
    .option('--limit <n>', `entries per page, 1-${MAX_LIMIT} (default 50; with --all ${MAX_LIMIT})`, limit)
    .option('--before <id>', 'the page of entries older than this id (from the `more:` line)', id)
    .option('--all', 'follow the pages to the oldest entry')
    .option('--json', 'print { history, next } as JSON')
    .action(async (o: HistoryOptions) => {
      const base = managerUrl(p.opts().manager);
      const args: (string | number)[] = [];
      const query = new URLSearchParams();
      for (const k of ['node', 'since', 'kind', 'limit'] as const) {
        const v = o[k];
        if (v === undefined) continue;
        args.push(`--${k}`, v);
        query.set(k, String(v));
      }
      if (o.all && o.limit === undefined) query.set('limit', String(MAX_LIMIT));
      const page = await listPages<HistoryEntry>(base, '/api/v1/history', 'history', query, o.before, o.all === true);
      if (o.json) {
        console.log(JSON.stringify({ history: page.items, next: page.next }, null, 2));
        return;
      }
      console.log(renderHistory(page.items, { columns: terminalColumns() }));
      if (page.next !== null) console.log(`\n${moreHint(['history'], args, page.next, p.opts().manager)}`);
    });
}
