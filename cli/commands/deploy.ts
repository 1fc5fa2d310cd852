/**
 * Workload verbs over the manager's REST API (docs/operations.md "Deploying workloads"):
 *   muster deploy start --node 1-3-0 --type docker --url host:5000 --file app:1 --cpu 1 --memory 512M
 *   muster deploy start --constraint 'board_type = GPU' --type bar ...   (the manager places it)
 *   muster deploy stop --node 1-3-0 --uuid U
 *   muster components [--node id]      what the nodes' latest reports say runs where
 *   muster deployments [--node id]     the deploy operations the manager sent
 * A deploy prints the agent's progress lines while it runs, then the agent's result and message.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { DeploymentRecord } from '../../common/api/deploy.js';
import type { ComponentView } from '../../common/api/nodes.js';
import { NODE_ID_RE, WORKLOAD_TYPES, type WorkloadType } from '../../common/api/primitives.js';
import { parseConstraint } from '../../common/constraints.js';
import { parseSize } from '../../common/units.js';
import { api, CliError, managerUrl } from '../client.js';
import { ago, bytes, num, table } from '../format.js';

/** How often the CLI asks the manager whether a deployment is done, ms. */
const POLL_MS = 300;

function nodeId(v: string): string {
  if (!NODE_ID_RE.test(v)) throw new InvalidArgumentError(`expected box-slot-cpu, e.g. 1-3-0`);
  return v;
}

function count(v: string): number {
  if (!/^\d+$/.test(v.trim())) throw new InvalidArgumentError('expected a whole number ≥ 0');
  return Number(v);
}

function size(v: string): number {
  try {
    return parseSize(v, '--memory');
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

function constraintText(v: string): string {
  try {
    return parseConstraint(v).text;
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

const typeOption = (help: string) => new Option('--type <type>', help).choices(WORKLOAD_TYPES);

/**
 * POSTs a deployment, prints its progress lines as they come, then the agent's result.
 * @throws CliError `deploy failed (result N): <message>` when the result is not 0
 */
async function deploy(base: string, body: Record<string, unknown>, json: boolean): Promise<void> {
  const { deployment } = await api<{ deployment: DeploymentRecord }>(base, 'POST', '/api/v1/deployments', body);
  if (!json)
    console.log(
      `deployment ${deployment.id}: ${deployment.mode} ${deployment.type} ${deployment.uuid} on node ${deployment.node}`,
    );
  if (!json && deployment.placement)
    console.log(
      `  placed on ${deployment.node}: score ${deployment.placement.score}, ${deployment.placement.feasible} of ${deployment.placement.total} nodes feasible`,
    );
  let d = deployment;
  let shown = 0;
  for (;;) {
    if (!json) {
      for (const line of d.progress.slice(shown)) console.log(`  ${line}`);
      shown = Math.max(shown, d.progress.length);
    }
    if (d.result !== null && d.placement?.next) {
      // Refused by its agent for lack of resources: the manager placed it again elsewhere.
      if (!json) console.log(`result ${d.result}: ${d.message}`);
      d = (await api<{ deployment: DeploymentRecord }>(base, 'GET', `/api/v1/deployments/${d.placement.next}`))
        .deployment;
      shown = 0;
      if (!json) console.log(`deployment ${d.id}: placed again on node ${d.node}`);
      continue;
    }
    if (d.result !== null) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
    d = (await api<{ deployment: DeploymentRecord }>(base, 'GET', `/api/v1/deployments/${d.id}`)).deployment;
  }
  if (json) console.log(JSON.stringify(d, null, 2));
  else {
    const id = d.reply?.id;
    console.log(`result ${d.result}: ${d.message}`);
    if (d.result === 0) console.log(`uuid ${d.uuid}${id !== undefined ? `  id ${id}` : ''}`);
  }
  if (d.result !== 0) throw new CliError(`deploy failed (result ${d.result}): ${d.message}`, 1);
}

/** The `muster components` table. */
export function renderComponents(cs: ComponentView[]): string {
  if (cs.length === 0) return 'no components reported';
  return table(
    ['NODE', 'UUID', 'INSTANCE', 'INDEX', 'NAME', 'ID', 'STATE', 'CPU%', 'MEM USED', 'MEM LIMIT'],
    cs.map((c) => [
      c.node,
      c.uuid,
      c.instance_id,
      c.index,
      c.config.name,
      c.config.id.slice(0, 12),
      c.state,
      num(c.resource.cpu.load),
      bytes(c.resource.memory.mem_used),
      bytes(c.resource.memory.mem_limit),
    ]),
  );
}

/** The `muster deployments` table, oldest first. */
export function renderDeployments(ds: DeploymentRecord[], now = Date.now()): string {
  if (ds.length === 0) return 'no deployments yet';
  return table(
    ['ID', 'WHEN', 'NODE', 'MODE', 'TYPE', 'UUID', 'WHO', 'RESULT', 'MESSAGE'],
    ds.map((d) => [
      d.id.slice(0, 8),
      ago(d.at, now),
      d.node,
      d.mode,
      d.type,
      d.uuid,
      d.who,
      d.result === null ? 'running' : d.result,
      d.message,
    ]),
  );
}

/** Registers `deploy start|stop`, `components` and `deployments` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const d = p.command('deploy').description('start or stop a workload (docker container or bar bundle) on a node');

  d.command('start')
    .description(
      "start a workload on a node's agent and wait for its result; without --node the manager places it (docs/scheduling.md)",
    )
    .option('--node <id>', 'node id box-slot-cpu, e.g. 1-3-0 (default: the scheduler picks one)', nodeId)
    .option(
      '--constraint <expr>',
      'without --node: placement constraint, e.g. "board_type = GPU", "slot in 1,2", "label.zone =~ ^east" (repeatable)',
      (v: string, prev: string[] = []) => [...prev, constraintText(v)],
    )
    .addOption(new Option('--scoring <how>', 'without --node: binpack or spread').choices(['binpack', 'spread']))
    .addOption(typeOption('workload type').makeOptionMandatory())
    .requiredOption('--url <url>', 'software repository: registry host:port, or http(s) base URL')
    .requiredOption('--file <file>', 'image reference, image tarball or bundle name')
    .requiredOption('--cpu <n>', 'whole cores, allocated exclusively', count)
    .requiredOption('--memory <size>', 'memory limit: bytes or 512M, 2G, 64Mi, 1.5G (1024-based)', size)
    .option('--gpu <n>', 'number of GPUs', count, 0)
    .option('--uuid <uuid>', 'component uuid (default: a new one)')
    .option('--instance <id>', 'business instance id the component belongs to')
    .option('--index <k>', 'index of the component within its instance', count)
    .option('--json', 'print the finished deployment record as JSON instead of progress lines')
    .action(
      async (o: {
        node?: string;
        constraint?: string[];
        scoring?: string;
        type: WorkloadType;
        url: string;
        file: string;
        cpu: number;
        memory: number;
        gpu: number;
        uuid?: string;
        instance?: string;
        index?: number;
        json?: boolean;
      }) => {
        await deploy(
          base(),
          {
            ...(o.node !== undefined ? { node: o.node } : {}),
            ...(o.constraint !== undefined ? { constraints: o.constraint } : {}),
            ...(o.scoring !== undefined ? { scoring: o.scoring } : {}),
            mode: 'start',
            type: o.type,
            url: o.url,
            file: o.file,
            require: { cpu: o.cpu, memory: o.memory, gpu: o.gpu },
            ...(o.uuid !== undefined ? { uuid: o.uuid } : {}),
            ...(o.instance !== undefined ? { instance_id: o.instance } : {}),
            ...(o.index !== undefined ? { index: o.index } : {}),
          },
          o.json === true,
        );
      },
    );

  d.command('stop')
    .description("stop a workload on a node's agent and wait for its result")
    .requiredOption('--node <id>', 'node id box-slot-cpu, e.g. 1-3-0', nodeId)
    .requiredOption('--uuid <uuid>', 'component uuid')
    .addOption(typeOption('workload type (default: the type the component was started with)'))
    .option('--id <id>', 'container id or bar pid (default: the one the node reports)')
    .option('--json', 'print the finished deployment record as JSON')
    .action(async (o: { node: string; uuid: string; type?: string; id?: string; json?: boolean }) => {
      // type defaults (on the manager) to the type the component was started with, else to what
      // the node's latest report suggests; id to the one the node reports.
      await deploy(
        base(),
        {
          node: o.node,
          mode: 'stop',
          uuid: o.uuid,
          ...(o.type !== undefined ? { type: o.type } : {}),
          ...(o.id !== undefined ? { id: /^[1-9]\d*$/.test(o.id) ? Number(o.id) : o.id } : {}),
        },
        o.json === true,
      );
    });

  p.command('components')
    .description("list the components (containers, bar processes) in the nodes' latest reports")
    .option('--node <id>', 'only this node', nodeId)
    .option('--json', 'print the API response as JSON')
    .action(async (o: { node?: string; json?: boolean }) => {
      const q = o.node ? `?node=${o.node}` : '';
      const r = await api<{ components: ComponentView[] }>(base(), 'GET', `/api/v1/components${q}`);
      console.log(o.json ? JSON.stringify(r.components, null, 2) : renderComponents(r.components));
    });

  p.command('deployments')
    .description('list the deploy operations the manager sent, oldest first')
    .option('--node <id>', 'only this node', nodeId)
    .option('--limit <n>', 'only the newest n', count)
    .option('--json', 'print the API response as JSON')
    .action(async (o: { node?: string; limit?: number; json?: boolean }) => {
      const q = new URLSearchParams();
      if (o.node) q.set('node', o.node);
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      const qs = q.size > 0 ? `?${q}` : '';
      const r = await api<{ deployments: DeploymentRecord[] }>(base(), 'GET', `/api/v1/deployments${qs}`);
      console.log(o.json ? JSON.stringify(r.deployments, null, 2) : renderDeployments(r.deployments));
    });
}
