/** `muster query` (send one query now, a debugging aid) and `muster status`. */
import type { Command } from 'commander';
import type { QueryReply } from '../../common/api/query.js';
import { api, CliError, managerUrl } from '../client.js';
import { table } from '../format.js';

/** Registers the query and status commands on `p`. */
export function register(p: Command): void {
  p.command('query')
    .description('send one multicast query now and show who answered (a debugging aid)')
    .argument('<kind>', 'heartbeat or resource')
    .option('--wait <ms>', 'how long to collect answers (default: the reply window + 1 s)', (v) =>
      Number.parseInt(v, 10),
    )
    .option('--json', 'print the API response as JSON')
    .action(async (kind: string, o: { wait?: number; json?: boolean }) => {
      if (kind !== 'heartbeat' && kind !== 'resource')
        throw new CliError(`query kind ${JSON.stringify(kind)}: expected heartbeat or resource`, 2);
      const r = await api<QueryReply>(
        managerUrl(p.opts().manager),
        'POST',
        '/api/v1/query',
        { url: `/${kind}`, ...(o.wait !== undefined ? { wait_ms: o.wait } : {}) },
        (o.wait ?? 10_000) + 15_000,
      );
      if (o.json) {
        console.log(JSON.stringify(r, null, 2));
        return;
      }
      console.log(
        table(
          ['NODE', 'HOST IP', 'AFTER MS'],
          r.answers.map((a) => [a.node ?? '(no heartbeat yet)', a.host_ip, a.ms]),
        ),
      );
      console.log(`\n${r.answers.length} answered ${r.url} within ${r.wait_ms} ms (sent ${r.sent_at})`);
    });

  p.command('status')
    .description("show the manager's version, address and node counts")
    .action(async () => {
      const s = await api<Record<string, unknown>>(managerUrl(p.opts().manager), 'GET', '/api/v1/status');
      console.log(JSON.stringify(s, null, 2));
    });
}
