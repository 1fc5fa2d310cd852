/**
 * `muster commands` (docs/exec.md "Command-set catalog"): the named scripts the manager pushes to
 * every board's command set.
 *   muster commands list [--json]                 (operator)
 *   muster commands add NAME --file script.sh [--args N] [--generate-file PATH]   (admin)
 *   muster commands rm NAME                       (admin)
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import type { CommandListReply, CommandView } from '../../common/api/commands.js';
import { COMMAND_NAME_PATTERN } from '../../common/exec.js';
import { api, CliError, managerUrl } from '../client.js';
import { ago, table } from '../format.js';

const NAME_RE = new RegExp(COMMAND_NAME_PATTERN);

function name(v: string): string {
  if (!NAME_RE.test(v)) throw new InvalidArgumentError('expected letters, digits, _ . - (a file name), at most 64');
  return v;
}

function argCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < -1 || n > 256) throw new InvalidArgumentError('expected -1 (any) or 0..256');
  return n;
}

/** The `muster commands list` table. */
export function renderCommands(cs: CommandView[], now = Date.now()): string {
  if (cs.length === 0) return 'no commands in the catalog (muster commands add NAME --file script.sh)';
  return table(
    ['NAME', 'ARGS', 'GENERATE FILE', 'SIZE', 'SHA256', 'BY', 'UPDATED'],
    cs.map((c) => [
      c.name,
      c.argument_count < 0 ? 'any' : c.argument_count,
      c.generate_file ?? '-',
      c.size,
      c.sha256.slice(0, 12),
      c.who,
      ago(c.updated_at, now),
    ]),
  );
}

/** Registers `commands list|add|rm` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const c = p.command('commands').description("the command-set catalog pushed to every board's command set");

  c.command('list')
    .description('list the catalog')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<CommandListReply>(base(), 'GET', '/api/v1/commands');
      console.log(o.json ? JSON.stringify(r.commands, null, 2) : renderCommands(r.commands));
    });

  c.command('add')
    .description('add or replace an entry (admin); it is pushed to the boards with its sha256')
    .argument('<name>', 'the entry name', name)
    .requiredOption('--file <script>', 'the script (starting with a #! line), at most 1 MiB')
    .option('--args <n>', 'positional arguments it takes; -1 = any', argCount, -1)
    .option('--generate-file <path>', 'a file it writes on the board, fetched back after each run')
    .action(async (n: string, o: { file: string; args: number; generateFile?: string }) => {
      let content: Buffer;
      try {
        content = readFileSync(o.file);
      } catch (err) {
        throw new CliError(`--file ${o.file}: ${(err as Error).message}`);
      }
      const r = await api<{ command: CommandView }>(base(), 'POST', '/api/v1/commands', {
        exec: n,
        argument_count: o.args,
        ...(o.generateFile ? { generate_file: o.generateFile } : {}),
        content_b64: content.toString('base64'),
      });
      console.log(`command ${r.command.name} added (${r.command.size} bytes, sha256 ${r.command.sha256})`);
    });

  c.command('rm')
    .description('remove an entry (admin); it is removed from the boards too')
    .argument('<name>', 'the entry name', name)
    .action(async (n: string) => {
      await api(base(), 'DELETE', `/api/v1/commands/${n}`);
      console.log(`command ${n} removed`);
    });
}
