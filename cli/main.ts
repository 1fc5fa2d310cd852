/**
 * `muster`: one binary for the two daemons and the operator's verbs (DESIGN.md "What muster is").
 *   muster manager | muster agent         run a daemon (systemd runs these)
 *   muster nodes | node | query | status  ask the manager's REST API
 */
import { Command, Option } from 'commander';
import { AgentDaemon } from '../agent/agent.js';
import { loadAgentConfig } from '../agent/config.js';
import { VERSION } from '../common/version.js';
import { loadManagerConfig } from '../manager/config.js';
import type { Answer } from '../manager/manager.js';
import { Manager } from '../manager/manager.js';
import type { NodeDetail, NodeSummary } from '../manager/views.js';
import { api, CliError, managerUrl } from './client.js';
import { runDaemon } from './daemon.js';
import { table } from './format.js';
import { renderNode, renderNodes } from './render.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Builds the command tree (exported for tests). */
export function program(): Command {
  const p = new Command('muster')
    .description('resource manager for embedded compute chassis')
    .version(VERSION)
    .option('--manager <url>', 'manager base URL (default $MUSTER_MANAGER_URL or http://127.0.0.1:3926)')
    .showHelpAfterError();

  p.command('manager')
    .description('run the manager daemon: multicast queries, report ingest, REST API')
    .option('-c, --config <file>', 'YAML config merged over config/manager.yaml')
    .option('-s, --set <path=value>', 'override one config key (repeatable)', collect, [])
    .action((o: { config?: string; set: string[] }) =>
      runDaemon(
        'manager',
        () => loadManagerConfig(o.config, o.set),
        (cfg, log) => new Manager(cfg, log),
      ),
    );

  p.command('agent')
    .description('run the agent daemon on a board: answers queries, runs workloads')
    .option('-c, --config <file>', 'YAML config merged over config/agent.yaml')
    .option('-s, --set <path=value>', 'override one config key (repeatable)', collect, [])
    .action((o: { config?: string; set: string[] }) =>
      runDaemon(
        'agent',
        () => loadAgentConfig(o.config, o.set),
        (cfg, log) => new AgentDaemon(cfg, log),
      ),
    );

  p.command('nodes')
    .description('list every board the manager knows, with state and headline figures')
    .option('--json', 'print the API response as JSON')
    .addOption(new Option('-w, --watch [seconds]', 'refresh every few seconds').argParser(Number.parseFloat))
    .action(async (o: { json?: boolean; watch?: number | true }) => {
      const base = managerUrl(p.opts().manager);
      const once = async () => {
        const r = await api<{ nodes: NodeSummary[] }>(base, 'GET', '/api/v1/nodes');
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
    .description('show everything a board last reported')
    .argument('<id>', 'node id box-slot-cpu, e.g. 1-3-0')
    .option('--json', 'print the API response as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      if (!/^\d+-\d+-\d+$/.test(id))
        throw new CliError(`node id ${JSON.stringify(id)}: expected box-slot-cpu, e.g. 1-3-0`, 2);
      const n = await api<NodeDetail>(managerUrl(p.opts().manager), 'GET', `/api/v1/nodes/${id}`);
      console.log(o.json ? JSON.stringify(n, null, 2) : renderNode(n));
    });

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
      const r = await api<{ url: string; sent_at: string; wait_ms: number; answers: Answer[] }>(
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
  return p;
}

/** Entry point: runs the CLI and turns errors into one line on stderr and an exit code. */
export async function main(argv = process.argv): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof CliError) {
      process.stderr.write(`muster: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    throw err;
  }
}
