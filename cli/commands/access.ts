/**
 * Logging in and managing access (docs/operations.md "Users and access"):
 *   muster login [--user NAME] [--password-stdin | --password-file F]   stores a session token in the CLI config file (0600)
 *   muster logout                                    ends the session, forgets the token
 *   muster whoami
 *   muster users list|add|passwd|rm|role             (admin; passwd of oneself: any role)
 *   muster tokens create|list|revoke                 (admin) API tokens for scripts and CI
 * Passwords come from a prompt without echo, from standard input with --password-stdin, or for
 * login from a file (--password-file, e.g. <data_dir>/initial-admin-password); never from the
 * command line (it would show in `ps`). A token is printed once, by `tokens create`.
 */
import { readFileSync } from 'node:fs';
import { type Command, Option } from 'commander';
import {
  isRole,
  type LoginReply,
  MAX_PASSWORD,
  MIN_PASSWORD,
  ROLES,
  type Role,
  type TokenCreateReply,
  type TokenView,
  type UserView,
  type WhoAmIReply,
} from '../../common/api/auth.js';
import { parseDuration } from '../../common/time.js';
import { api, CliError, cliToken, EXIT_AUTH, managerUrl, writeCliConfig } from '../client.js';
import { table } from '../format.js';

/** Reads all of standard input, without the final line break. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 64 * 1024) throw new CliError('standard input: more than 64 KiB');
    chunks.push(c);
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * Prompts on stderr and reads a line from the terminal without echo.
 * @throws CliError when standard input is not a terminal (use --password-stdin)
 */
export function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    return Promise.reject(new CliError('no terminal to ask for the password: use --password-stdin', 2));
  }
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let s = '';
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(s);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('interrupted', 130));
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else if (s.length < MAX_PASSWORD + 1) s += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Prompts for a line with echo (the user name). */
async function readLine(prompt: string): Promise<string> {
  const { createInterface } = await import('node:readline/promises');
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(prompt)).trim();
  } finally {
    rl.close();
  }
}

/** A new password: from stdin, else asked twice without echo. */
async function newPassword(stdin: boolean | undefined, who: string): Promise<string> {
  let pw: string;
  if (stdin) pw = await readStdin();
  else {
    pw = await readSecret(`new password for ${who}: `);
    if ((await readSecret('again: ')) !== pw) throw new CliError('the two passwords differ', 2);
  }
  if (pw.length < MIN_PASSWORD || pw.length > MAX_PASSWORD) {
    throw new CliError(`a password has ${MIN_PASSWORD}..${MAX_PASSWORD} characters`, 2);
  }
  return pw;
}

const role = (v: string): Role => {
  if (!isRole(v)) throw new CliError(`role ${JSON.stringify(v)}: expected ${ROLES.join(', ')}`, 2);
  return v;
};

/** Registers login, logout, whoami, users and tokens on `p`. */
export function register(p: Command): void {
  const base = () => managerUrl(p.opts().manager);

  p.command('login')
    .description('log in to the manager; the session token is stored in ~/.config/muster/cli.yaml (mode 0600)')
    .option('--user <name>', 'user name (asked when not given)')
    .option('--password-stdin', 'read the password from standard input instead of a prompt')
    .option('--password-file <file>', 'read the password from this file (its first line)')
    .action(async (o: { user?: string; passwordStdin?: boolean; passwordFile?: string }) => {
      const username = o.user ?? (await readLine('user: '));
      if (!username) throw new CliError('no user name', 2);
      let password: string;
      if (o.passwordFile !== undefined) {
        try {
          password = (readFileSync(o.passwordFile, 'utf8').split(/\r?\n/)[0] ?? '').trim();
        } catch (err) {
          throw new CliError(`--password-file ${o.passwordFile}: ${(err as Error).message}`, 2);
        }
      } else password = o.passwordStdin ? await readStdin() : await readSecret(`password for ${username}: `);
      if (!password) throw new CliError('no password', 2);
      let r: LoginReply;
      try {
        r = await api<LoginReply>(base(), 'POST', '/api/v1/login', { username, password }, 30_000, {
          authorization: '',
        });
      } catch (err) {
        if (err instanceof CliError && err.exitCode === EXIT_AUTH)
          throw new CliError(`login failed: ${err.message}`, EXIT_AUTH);
        throw err;
      }
      const file = writeCliConfig({ token: r.token, user: r.user, expires_at: r.expires_at });
      console.log(`logged in to ${base()} as ${r.user} (${r.role}) until ${r.expires_at}; token stored in ${file}`);
    });

  p.command('logout')
    .description('end the session and forget the stored token')
    .action(async () => {
      if (cliToken()) await api(base(), 'POST', '/api/v1/logout').catch(() => undefined);
      const file = writeCliConfig({ token: undefined, user: undefined, expires_at: undefined });
      console.log(`logged out; token removed from ${file}`);
    });

  p.command('whoami')
    .description('who the manager takes you for, and your role')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<WhoAmIReply>(base(), 'GET', '/api/v1/whoami');
      console.log(
        o.json ? JSON.stringify(r, null, 2) : `${r.user} (${r.role}) by ${r.via}${r.token ? ` ${r.token}` : ''}`,
      );
    });

  const users = p.command('users').description('manage users (admin)');
  users
    .command('list')
    .description('list users and their roles')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<{ users: UserView[] }>(base(), 'GET', '/api/v1/users');
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['USER', 'ROLE', 'CREATED', 'UPDATED'],
            r.users.map((u) => [u.name, u.role, u.created_at, u.updated_at]),
          ),
        );
    });
  users
    .command('add')
    .description('add a user; the password is asked twice, or read from standard input')
    .argument('<name>', 'user name')
    .addOption(new Option('--role <role>', 'viewer, operator or admin').choices(ROLES).default('viewer'))
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o: { role: string; passwordStdin?: boolean }) => {
      const password = await newPassword(o.passwordStdin, name);
      const r = await api<{ user: UserView }>(base(), 'POST', '/api/v1/users', {
        username: name,
        password,
        role: role(o.role),
      });
      console.log(`added user ${r.user.name} (${r.user.role})`);
    });
  users
    .command('passwd')
    .description("set a user's password (your own with any role; another's as admin); their sessions end")
    .argument('<name>', 'user name')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, o: { passwordStdin?: boolean }) => {
      const password = await newPassword(o.passwordStdin, name);
      await api(base(), 'PUT', `/api/v1/users/${encodeURIComponent(name)}/password`, { password });
      console.log(`password of ${name} changed`);
    });
  users
    .command('role')
    .description("set a user's role")
    .argument('<name>', 'user name')
    .argument('<role>', 'viewer, operator or admin', role)
    .action(async (name: string, r: Role) => {
      const out = await api<{ user: UserView }>(base(), 'PUT', `/api/v1/users/${encodeURIComponent(name)}/role`, {
        role: r,
      });
      console.log(`role of ${out.user.name} is ${out.user.role}`);
    });
  users
    .command('rm')
    .description('remove a user, with their sessions and tokens')
    .argument('<name>', 'user name')
    .action(async (name: string) => {
      await api(base(), 'DELETE', `/api/v1/users/${encodeURIComponent(name)}`);
      console.log(`removed user ${name}`);
    });

  const tokens = p.command('tokens').description('manage API tokens for scripts and CI (admin)');
  tokens
    .command('create')
    .description('create an API token; it is printed once, on standard output')
    .requiredOption('--name <name>', 'token name')
    .addOption(
      new Option('--role <role>', 'viewer, operator or admin (at most yours)').choices(ROLES).default('viewer'),
    )
    .option('--expires <duration>', 'lifetime: 30d, 12h, 90m (default: never)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { name: string; role: string; expires?: string; json?: boolean }) => {
      let ms: number | undefined;
      if (o.expires !== undefined) {
        try {
          ms = parseDuration(o.expires, '--expires');
        } catch (err) {
          throw new CliError((err as Error).message, 2);
        }
      }
      const r = await api<TokenCreateReply>(base(), 'POST', '/api/v1/tokens', {
        name: o.name,
        role: role(o.role),
        ...(ms !== undefined ? { expires_in_ms: ms } : {}),
      });
      if (o.json) {
        console.log(JSON.stringify(r, null, 2));
        return;
      }
      process.stderr.write(
        `token ${r.info.name} (${r.info.role}, expires ${r.info.expires_at ?? 'never'}); shown only now:\n`,
      );
      console.log(r.token);
    });
  tokens
    .command('list')
    .description('list API tokens (names and prefixes, never the secrets)')
    .option('--json', 'print the API response as JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await api<{ tokens: TokenView[] }>(base(), 'GET', '/api/v1/tokens');
      if (o.json) console.log(JSON.stringify(r, null, 2));
      else
        console.log(
          table(
            ['NAME', 'PREFIX', 'ROLE', 'USER', 'CREATED', 'EXPIRES', 'LAST USED'],
            r.tokens.map((t) => [
              t.name,
              t.prefix,
              t.role,
              t.user,
              t.created_at,
              t.expires_at ?? 'never',
              t.last_used_at ?? '-',
            ]),
          ),
        );
    });
  tokens
    .command('revoke')
    .description('revoke an API token (at once)')
    .argument('<name>', 'token name')
    .action(async (name: string) => {
      await api(base(), 'DELETE', `/api/v1/tokens/${encodeURIComponent(name)}`);
      console.log(`revoked token ${name}`);
    });
}
