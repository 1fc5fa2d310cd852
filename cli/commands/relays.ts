/**
 * `muster relays ...` and `muster servers ...` (docs/links.md "The SSH relay"):
 *
 *   muster relays add ID [--allow CIDR]... [--json]   a relay; its apiKey printed once
 *   muster relays list [--json]                      ids, allowlists, connected or not
 *   muster relays rm ID                              the relay and the servers behind it
 *   muster servers add NAME --relay ID --host H [--port 22] --user U (--key-file F | --password-file F) [--host-key FP]
 *   muster servers list [--json]                     never a password or a key
 *   muster servers rm NAME
 *   muster servers trust NAME                        forget the pinned host key (after a legitimate change)
 *
 * A password or private key is read from a file, never from the command line (ps shows it).
 */
import { readFileSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { RelayCreateReply, RelayListReply, ServerListReply, ServerReply } from '../../common/api/relays.js';
import { RELAY_MAX_KEY, RELAY_NAME_RE } from '../../common/relay.js';
import { api, CliError, managerUrl } from '../client.js';
import { table } from '../format.js';

const nameArg = (v: string): string => {
  if (!RELAY_NAME_RE.test(v)) throw new InvalidArgumentError('expected letters, digits, _ . - (1..64)');
  return v;
};
const portArg = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('expected a port 1..65535');
  return n;
};
const collect = (v: string, prev: string[]) => [...prev, v];

/** The content of a credential file (at most RELAY_MAX_KEY characters); a password loses its final newline. */
function readSecret(file: string, what: 'password' | 'key'): string {
  let size: number;
  try {
    size = statSync(file).size;
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`);
  }
  if (size > RELAY_MAX_KEY) throw new CliError(`${file}: larger than ${RELAY_MAX_KEY} bytes`);
  const text = readFileSync(file, 'utf8');
  return what === 'password' ? text.replace(/\r?\n$/, '') : text;
}

/** Registers `relays` and `servers` on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);
  const relays = p
    .command('relays')
    .description('SSH relays: agents-less machines reached through a relay (docs/links.md)');
  relays
    .command('add')
    .description('add a relay; its apiKey is printed once, on standard output (admin)')
    .argument('<id>', 'the relay id (its proxyId)', nameArg)
    .option('--allow <cidr>', 'address or CIDR the relay may connect from (repeatable; none = any)', collect, [])
    .option('--json', 'print {"id","apiKey","allow"} as JSON')
    .action(async (id: string, o: { allow: string[]; json?: boolean }) => {
      const r = await api<RelayCreateReply>(base(), 'POST', '/api/v1/relays', { id, allow: o.allow });
      if (o.json) {
        console.log(JSON.stringify(r));
        return;
      }
      process.stderr.write(
        `relay ${r.id} added${r.allow.length ? ` (allowed from ${r.allow.join(', ')})` : ''}; its apiKey, shown only now (put it in the relay's api_key_file):\n`,
      );
      console.log(r.apiKey);
    });
  relays
    .command('list')
    .description('list relays: allowlists, connected or not (never the keys)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<RelayListReply>(base(), 'GET', '/api/v1/relays');
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['ID', 'CONNECTED', 'PEER', 'SERVERS', 'PENDING', 'ALLOW', 'LAST SEEN'],
            r.relays.map((x) => [
              x.id,
              x.connected ? 'yes' : 'no',
              x.peer ?? '-',
              String(x.servers),
              String(x.pending),
              x.allow.length ? x.allow.join(',') : '(any)',
              x.last_seen_at ?? '-',
            ]),
          ),
        );
    });
  relays
    .command('rm')
    .description('remove a relay and the servers behind it (admin)')
    .argument('<id>', 'the relay id', nameArg)
    .action(async (id: string) => {
      await api(base(), 'DELETE', `/api/v1/relays/${encodeURIComponent(id)}`);
      console.log(`removed relay ${id}`);
    });

  const servers = p.command('servers').description('SSH servers behind relays (target them as server:NAME)');
  servers
    .command('add')
    .description('add an SSH server behind a relay (admin); its credential is read from a file')
    .argument('<name>', 'server name (target server:NAME)', nameArg)
    .requiredOption('--relay <id>', 'the relay that reaches it', nameArg)
    .requiredOption('--host <host>', 'address or name, as the relay reaches it')
    .option('--port <port>', 'SSH port', portArg, 22)
    .requiredOption('--user <user>', 'user name')
    .option('--key-file <file>', 'private key file (PEM or OpenSSH)')
    .option('--password-file <file>', 'file holding the password')
    .option('--host-key <fingerprint>', 'pin this host key now (SHA256:..., as ssh-keygen -lf prints it)')
    .option('--json', 'print the API response as JSON')
    .action(
      async (
        name: string,
        o: {
          relay: string;
          host: string;
          port: number;
          user: string;
          keyFile?: string;
          passwordFile?: string;
          hostKey?: string;
          json?: boolean;
        },
      ) => {
        if ((o.keyFile === undefined) === (o.passwordFile === undefined))
          throw new CliError('give exactly one of --key-file and --password-file');
        const body = {
          name,
          relay: o.relay,
          host: o.host,
          port: o.port,
          username: o.user,
          ...(o.keyFile ? { privateKey: readSecret(o.keyFile, 'key') } : {}),
          ...(o.passwordFile ? { password: readSecret(o.passwordFile, 'password') } : {}),
          ...(o.hostKey ? { hostKey: o.hostKey } : {}),
        };
        const r = await api<ServerReply>(base(), 'POST', '/api/v1/servers', body);
        if (o.json) console.log(JSON.stringify(r, null, 2));
        else
          console.log(`added SSH server ${r.server.name} behind relay ${r.server.relay} (target ${r.server.target})`);
      },
    );
  servers
    .command('list')
    .description('list SSH servers (never a password or a key)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<ServerListReply>(base(), 'GET', '/api/v1/servers');
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['NAME', 'RELAY', 'HOST', 'PORT', 'USER', 'AUTH', 'HOST KEY'],
            r.servers.map((s) => [
              s.name,
              s.relay,
              s.host,
              String(s.port),
              s.username,
              s.auth,
              s.host_key ?? '(first use)',
            ]),
          ),
        );
    });
  servers
    .command('rm')
    .description('remove an SSH server (admin)')
    .argument('<name>', 'server name', nameArg)
    .action(async (name: string) => {
      await api(base(), 'DELETE', `/api/v1/servers/${encodeURIComponent(name)}`);
      console.log(`removed SSH server ${name}`);
    });
  servers
    .command('trust')
    .description("forget a server's pinned host key: the next connection pins the key it finds (admin)")
    .argument('<name>', 'server name', nameArg)
    .action(async (name: string) => {
      await api(base(), 'POST', `/api/v1/servers/${encodeURIComponent(name)}/trust`);
      console.log(`the host key of ${name} will be pinned anew at the next connection`);
    });
}
