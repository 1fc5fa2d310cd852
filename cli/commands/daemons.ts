/**
 * `muster manager`, `muster agent` and `muster relay`: run a daemon (systemd runs these; docs/operations.md
 * "systemd units"). The daemon's code is loaded with `import()` only when its verb runs, so that
 * the other verbs (`muster nodes`, ...) load no daemon code.
 */
import type { Command } from 'commander';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Registers the daemon commands on `p`. */
export function register(p: Command): void {
  p.command('manager')
    .description('run the manager daemon: multicast queries, report ingest, REST API')
    .option('-c, --config <file>', 'YAML config merged over config/manager.yaml')
    .option(
      '-s, --set <path=value>',
      'override one config key (repeatable; not a secret: use its *_file key or the environment)',
      collect,
      [],
    )
    .action(async (o: { config?: string; set: string[] }) => {
      const [{ runDaemon }, { loadManagerConfig }, { createManager }] = await Promise.all([
        import('../daemon.js'),
        import('../../manager/config.js'),
        import('../../manager/app.js'),
      ]);
      await runDaemon(
        'manager',
        () => loadManagerConfig(o.config, o.set),
        (cfg, log) => createManager(cfg, log),
      );
    });

  p.command('agent')
    .description('run the agent daemon on a board: answers queries, runs workloads')
    .option('-c, --config <file>', 'YAML config merged over config/agent.yaml')
    .option(
      '-s, --set <path=value>',
      'override one config key (repeatable; not a secret: use its *_file key or the environment)',
      collect,
      [],
    )
    .action(async (o: { config?: string; set: string[] }) => {
      const [{ runDaemon }, { loadAgentConfig }, { AgentDaemon }] = await Promise.all([
        import('../daemon.js'),
        import('../../agent/config.js'),
        import('../../agent/agent.js'),
      ]);
      await runDaemon(
        'agent',
        () => loadAgentConfig(o.config, o.set),
        (cfg, log) => new AgentDaemon(cfg, log),
      );
    });

  p.command('relay')
    .description('run the SSH relay: connects out to the manager, runs commands over SSH (docs/links.md)')
    .option('-c, --config <file>', 'YAML config merged over config/relay.yaml')
    .option(
      '-s, --set <path=value>',
      'override one config key (repeatable; not the apiKey: use api_key_file or MUSTER_RELAY_API_KEY)',
      collect,
      [],
    )
    .action(async (o: { config?: string; set: string[] }) => {
      const [{ runDaemon }, { loadRelayConfig }, { RelayDaemon }] = await Promise.all([
        import('../daemon.js'),
        import('../../agent/relay/config.js'),
        import('../../agent/relay/daemon.js'),
      ]);
      await runDaemon(
        'relay',
        () => loadRelayConfig(o.config, o.set),
        (cfg, log) => new RelayDaemon(cfg, log),
      );
    });
}
