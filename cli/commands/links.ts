/**
 * `muster links ...` (docs/links.md "Link tokens"), admin:
 *
 *   muster links tokens create [--node ID] [--value-stdin] [--json]   a token, printed once
 *   muster links tokens list [--json]                                  ids and bound nodes, never the secrets
 *   muster links tokens revoke <id>                                    refused for new connections at once
 *
 * `--value-stdin` reads a chosen token (e.g. the link specification's `default-token`) from
 * standard input, so that it never shows in `ps`.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { LinkTokenCreateReply, LinkTokenListReply } from '../../common/api/links.js';
import { NODE_ID_RE } from '../../common/api/primitives.js';
import { api, CliError, managerUrl } from '../client.js';
import { table } from '../format.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 4096) throw new CliError('standard input: more than 4 KiB');
    chunks.push(c);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

const nodeArg = (v: string): string => {
  if (!NODE_ID_RE.test(v)) throw new InvalidArgumentError('expected a node id: box-slot-cpu (1-3-0) or a link node id');
  return v;
};

/** Registers `links` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const links = p.command('links').description('the WebSocket node link (docs/links.md)');
  const tokens = links.command('tokens').description('link tokens nodes connect with (admin)');
  tokens
    .command('create')
    .description('create a link token; it is printed once, on standard output')
    .option('--node <id>', 'bind the token to this node id', nodeArg)
    .option('--value-stdin', 'read the token from standard input instead of a random one (at least 8 characters)')
    .option('--json', 'print {"id","token","node"} as JSON')
    .action(async (o: { node?: string; valueStdin?: boolean; json?: boolean }) => {
      const value = o.valueStdin ? await readStdin() : undefined;
      const r = await api<LinkTokenCreateReply>(base(), 'POST', '/api/v1/links/tokens', {
        ...(o.node ? { node: o.node } : {}),
        ...(value !== undefined ? { value } : {}),
      });
      if (o.json) {
        console.log(JSON.stringify({ id: r.id, token: r.token, node: r.node }));
        return;
      }
      process.stderr.write(`link token ${r.id}${r.node ? ` for node ${r.node}` : ' (any node)'}; shown only now:\n`);
      console.log(r.token);
    });
  tokens
    .command('list')
    .description('list link tokens (ids and bound nodes, never the secrets)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<LinkTokenListReply>(base(), 'GET', '/api/v1/links/tokens');
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['ID', 'NODE', 'CREATED BY', 'CREATED', 'LAST USED'],
            r.tokens.map((t) => [t.id, t.node ?? '(any)', t.created_by, t.created_at, t.last_used_at ?? '-']),
          ),
        );
    });
  tokens
    .command('revoke')
    .description('revoke a link token (new connections with it are refused at once)')
    .argument('<id>', 'token id (lt_...)')
    .action(async (id: string) => {
      await api(base(), 'DELETE', `/api/v1/links/tokens/${encodeURIComponent(id)}`);
      console.log(`revoked link token ${id}`);
    });
}
