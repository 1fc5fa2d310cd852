/**
 * `muster`: one binary for the two daemons and the operator's verbs (docs/operations.md "The CLI").
 *   muster manager | muster agent         run a daemon (systemd runs these)
 *   muster nodes | node | query | status  ask the manager's REST API
 *   muster exec | task | commands          remote execution: commands, step files, the command-set catalog
 *   muster alerts | history               alerts, alert rules and the operation history
 *   muster deploy | instance              workloads: one start or stop, business instances
 *   muster files | screen                 files to and from boards, a board's screen (docs/files.md)
 *   muster login | logout | users | tokens access (docs/operations.md "Users and access")
 *   muster relay | relays | servers       the SSH relay and the servers behind it (docs/links.md)
 *
 * Every verb that calls the API sends a token: --token, --token-file, $MUSTER_TOKEN, else the one
 * `muster login` stored in the CLI config file.
 */
import { Command } from 'commander';
import { VERSION } from '../common/version.js';
import { CliError, setTokenOverride } from './client.js';
import { register as access } from './commands/access.js';
import { register as alerts } from './commands/alerts.js';
import { register as commands } from './commands/commands.js';
import { register as daemons } from './commands/daemons.js';
import { register as deploy } from './commands/deploy.js';
import { register as exec } from './commands/exec.js';
import { register as files } from './commands/files.js';
import { register as history } from './commands/history.js';
import { register as instances } from './commands/instances.js';
import { register as links } from './commands/links.js';
import { register as nodes } from './commands/nodes.js';
import { register as query } from './commands/query.js';
import { register as relays } from './commands/relays.js';
import { register as screen } from './commands/screen.js';
import { register as task } from './commands/task.js';
import { register as version } from './commands/version.js';

/** Builds the command tree (exported for tests). */
export function program(): Command {
  const p = new Command('muster')
    .description('resource manager for embedded compute chassis')
    .version(VERSION)
    .option(
      '--manager <url>',
      'manager base URL (default: $MUSTER_MANAGER_URL, then manager: in ~/.config/muster/cli.yaml, then http://127.0.0.1:3926)',
    )
    .option('--token <token>', 'API token for this run (visible in ps: prefer --token-file or $MUSTER_TOKEN)')
    .option('--token-file <file>', 'read the API token for this run from this file')
    .showHelpAfterError()
    .hook('preAction', (root) => {
      const o = root.opts() as { token?: string; tokenFile?: string };
      setTokenOverride({ token: o.token, file: o.tokenFile });
    });

  // One file per group of verbs under cli/commands/; a new capability adds one line here.
  for (const register of [
    daemons,
    access,
    nodes,
    query,
    deploy,
    instances,
    exec,
    task,
    commands,
    alerts,
    history,
    files,
    screen,
    links,
    relays,
    version,
  ])
    register(p);
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
