/**
 * The command-set catalog on the manager (docs/exec.md "Command-set catalog"; seed 添加/删除命令集:
 * `operation`, `exec`, `argument_count`, `generate_file`): named scripts kept in the store and
 * pushed to the agents' exec.commands_dir with their sha256 through the agent command
 * `command_set` — never by hand.
 *
 * A change is pushed at once to every node not offline (exec.push_concurrency at a time, counted in
 * `muster_manager_command_pushes_total{result}`); a board that missed it (offline, new, restarted
 * with a wiped directory) gets the entries a task names just before the task runs there
 * ({@link CommandCatalog.ensure}: list, then put what is missing or differs).
 */
import { createHash } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { type CommandBody, type CommandView, MAX_COMMAND_BYTES } from '../../common/api/commands.js';
import type { CommandSetRequestData } from '../../common/exec.js';
import type { Logger } from '../../common/log.js';
import type { AgentClient, AgentTarget } from '../agents/client.js';
import { Refused } from '../refused.js';
import type { NodeRegistry } from '../registry.js';
import type { CommandRow, Store } from '../store/store.js';

/** A refused catalog change: HTTP status, error code, field and message. */
export class CatalogRefused extends Refused {}

/** The API view of a stored entry (no content). */
export function commandView(c: CommandRow): CommandView {
  return {
    name: c.name,
    argument_count: c.argument_count,
    generate_file: c.generate_file,
    sha256: c.sha256,
    size: c.size,
    who: c.who,
    updated_at: new Date(c.updated_at).toISOString(),
  };
}

/** The put request of an entry. */
function putRequest(c: CommandRow): CommandSetRequestData {
  return {
    action: 'put',
    name: c.name,
    argument_count: c.argument_count,
    generate_file: c.generate_file,
    content_b64: Buffer.from(c.content).toString('base64'),
    sha256: c.sha256,
  };
}

/** Runs `fn` on every item with at most `limit` at once. */
export async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** The catalog: the store's `commands` table, in memory too (it is small and read on every submit). */
export class CommandCatalog {
  private readonly entries = new Map<string, CommandRow>();
  private readonly pushes: Counter<'result'>;

  /**
   * @param pushConcurrency exec.push_concurrency, read at each push
   */
  constructor(
    private readonly store: Pick<Store, 'commands' | 'addHistory'>,
    private readonly registry: NodeRegistry,
    private readonly agents: Pick<AgentClient, 'commandSet'>,
    private readonly log: Logger,
    metrics: Registry,
    private readonly pushConcurrency: () => number,
  ) {
    for (const c of store.commands.load()) this.entries.set(c.name, c);
    this.pushes = new Counter({
      name: 'muster_manager_command_pushes_total',
      help: 'command_set calls to agents (catalog changes pushed, entries a task needed), by result: ok, failed',
      labelNames: ['result'],
      registers: [metrics],
    });
  }

  /** Every entry, by name. */
  list(): CommandView[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name)).map(commandView);
  }

  /** One entry, with its content. */
  get(name: string): CommandRow | undefined {
    return this.entries.get(name);
  }

  /**
   * Adds or replaces an entry, records it in the history and pushes it to the nodes (in the
   * background). Returns the entry.
   * @throws CatalogRefused 400 when the content is not base64, empty, over 1 MiB, or not a script
   *   (no `#!` line); 500 when the database write failed
   */
  add(body: CommandBody, who: string): CommandView {
    const content = Buffer.from(body.content_b64, 'base64');
    if (content.length === 0 || content.toString('base64') !== body.content_b64.replace(/\s+/g, '')) {
      throw new CatalogRefused(400, 'bad_request', '/content_b64 is not base64 or is empty', '/content_b64');
    }
    if (content.length > MAX_COMMAND_BYTES) {
      throw new CatalogRefused(
        400,
        'bad_request',
        `/content_b64: the script is over ${MAX_COMMAND_BYTES} bytes`,
        '/content_b64',
      );
    }
    if (content.subarray(0, 2).toString('latin1') !== '#!') {
      throw new CatalogRefused(
        400,
        'bad_request',
        '/content_b64: the script must start with a #! line (it is run as an executable on the boards)',
        '/content_b64',
      );
    }
    const row: CommandRow = {
      name: body.exec,
      argument_count: body.argument_count,
      generate_file: body.generate_file ?? null,
      sha256: createHash('sha256').update(content).digest('hex'),
      size: content.length,
      content: new Uint8Array(content),
      who,
      updated_at: Date.now(),
    };
    if (!this.store.commands.put(row)) throw new CatalogRefused(500, 'internal', 'the catalog could not be written');
    this.entries.set(row.name, row);
    this.store.addHistory({
      at: row.updated_at,
      node: null,
      kind: 'operation',
      operation: 'command.add',
      args: {
        exec: row.name,
        argument_count: row.argument_count,
        generate_file: row.generate_file,
        sha256: row.sha256,
      },
      result: 0,
      message: `command ${row.name} added (${row.size} bytes)`,
      who,
    });
    void this.pushAll(putRequest(row));
    return commandView(row);
  }

  /** Removes an entry, records it and removes it from the nodes (in the background); undefined when unknown. */
  remove(name: string, who: string): CommandView | undefined {
    const row = this.entries.get(name);
    if (!row) return undefined;
    this.store.commands.remove(name);
    this.entries.delete(name);
    this.store.addHistory({
      at: Date.now(),
      node: null,
      kind: 'operation',
      operation: 'command.rm',
      args: { exec: name },
      result: 0,
      message: `command ${name} removed`,
      who,
    });
    void this.pushAll({ action: 'rm', name });
    return commandView(row);
  }

  /** Where the agents of every node not offline are. */
  private online(): AgentTarget[] {
    const out: AgentTarget[] = [];
    for (const n of this.registry.nodes.values()) {
      const hb = this.registry.boardOf(n)?.heartbeat;
      if (hb && n.state !== 'offline') out.push({ node: n.id, host_ip: hb.host_ip, port: hb.service_port });
    }
    return out;
  }

  /** Sends `req` to every node not offline; resolves with the nodes that failed. */
  async pushAll(req: CommandSetRequestData): Promise<string[]> {
    const failed: string[] = [];
    await eachLimited(this.online(), this.pushConcurrency(), async (t) => {
      const out = await this.agents.commandSet(t, req);
      const ok = out.ok && out.reply.result === 0;
      this.pushes.inc({ result: ok ? 'ok' : 'failed' });
      if (!ok) {
        failed.push(t.node);
        this.log.warn(
          { node: t.node, command: req.name, action: req.action, message: out.ok ? out.reply.message : out.message },
          'command-set push failed (the entry is sent again before a task needs it there)',
        );
      }
    });
    return failed;
  }

  /**
   * Makes sure the agent at `t` holds `names` as the catalog has them: lists its entries, puts
   * those missing or different. Resolves with null, or the reason it could not.
   */
  async ensure(t: AgentTarget, names: readonly string[]): Promise<string | null> {
    if (names.length === 0) return null;
    const listed = await this.agents.commandSet(t, { action: 'list' });
    if (!listed.ok) return `cannot list the command set of ${t.node}: ${listed.message}`;
    if (listed.reply.result !== 0) return `cannot list the command set of ${t.node}: ${listed.reply.message}`;
    const have = new Map(listed.reply.entries.map((e) => [e.name, e]));
    for (const name of names) {
      const row = this.entries.get(name);
      if (!row) return `command ${name} is no longer in the catalog`;
      const e = have.get(name);
      if (
        e &&
        e.sha256 === row.sha256 &&
        e.argument_count === row.argument_count &&
        (e.generate_file ?? null) === row.generate_file
      )
        continue;
      const put = await this.agents.commandSet(t, putRequest(row));
      const ok = put.ok && put.reply.result === 0;
      this.pushes.inc({ result: ok ? 'ok' : 'failed' });
      if (!ok) return `cannot put command ${name} on ${t.node}: ${put.ok ? put.reply.message : put.message}`;
    }
    return null;
  }
}
