/**
 * `muster nodes` and `muster node <id>`: what the manager knows of every board;
 * `muster node rm <id>` (admin): DELETE /api/v1/nodes/:id, the manager forgets the node.
 */
import { type Command, Option } from 'commander';
import type { NodeDetail, NodeListReply, NodeRemovedReply } from '../../common/api/nodes.js';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import type { RecentView } from '../../common/api/telemetry.js';
import { api, CliError, managerUrl } from '../client.js';
import { renderNode, renderNodes, renderRecent } from '../render.js';

/** Registers the node commands on `p` (whose `--manager` option names the manager). */
export function register(p: Command): void {
  p.command('nodes')
    .description('list every board the manager knows, with state and headline figures')
    .option('--json', 'print the API response as JSON')
    .addOption(new Option('-w, --watch [seconds]', 'refresh every few seconds').argParser(Number.parseFloat))
    .action(async (o: { json?: boolean; watch?: number | true }) => {
      const base = managerUrl(p.opts().manager);
      const once = async () => {
        const r = await api<NodeListReply>(base, 'GET', '/api/v1/nodes');
        return o.json ? JSON.stringify(r.nodes, null, 2) : renderNodes(r.nodes);
      };
      if (o.watch === undefined) {
        console.log(await once());
        return;
      }
      const every = (o.watch === true ? 2 : o.watch) * 1000;
      for (;;) {
        const text = await once().catch((e: Error) => e.message);
        process.stdout.write(`\x1b[2J\x1b[H${new Date().toISOString()}  ${base}\n\n${text}\n`);
        await new Promise((r) => setTimeout(r, every));
      }
    });

  p.command('node')
    .description('show everything a board last reported; `node rm <id>` makes the manager forget a node (admin)')
    .argument('<id>', 'node id box-slot-cpu, e.g. 1-3-0, or rm')
    .argument('[target]', 'with rm: the node id to forget')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, target: string | undefined, o: { json?: boolean }) => {
      const base = managerUrl(p.opts().manager);
      if (id === 'rm') {
        if (target === undefined || !NODE_ID_RE.test(target))
          throw new CliError(
            `node rm ${JSON.stringify(target ?? '')}: expected box-slot-cpu (e.g. 1-3-0) or a linked node id (e.g. node-001)`,
            2,
          );
        const r = await api<NodeRemovedReply>(base, 'DELETE', `/api/v1/nodes/${target}`);
        console.log(
          o.json ? JSON.stringify(r, null, 2) : `node ${r.node} removed; ${r.alerts_resolved} open alert(s) resolved`,
        );
        return;
      }
      if (target !== undefined) throw new CliError(`node ${id} ${target}: unexpected argument ${target}`, 2);
      if (!NODE_ID_RE.test(id))
        throw new CliError(
          `node id ${JSON.stringify(id)}: expected box-slot-cpu (e.g. 1-3-0) or a linked node id (e.g. node-001)`,
          2,
        );
      const n = await api<NodeDetail>(base, 'GET', `/api/v1/nodes/${id}`);
      if (o.json) {
        console.log(JSON.stringify(n, null, 2));
        return;
      }
      // The trend lines come from the manager's in-memory history; a manager without it is no error.
      const recent = await api<RecentView>(base, 'GET', `/api/v1/nodes/${id}/recent`).catch(() => null);
      const trend = recent ? renderRecent(recent) : '';
      console.log(trend ? `${renderNode(n)}\n\n${trend}` : renderNode(n));
    });
}
