/** `muster manager` and `muster agent`: run a daemon (systemd runs these). */
import type { Command } from 'commander';
import { AgentDaemon } from '../../agent/agent.js';
import { loadAgentConfig } from '../../agent/config.js';
import { loadManagerConfig } from '../../manager/config.js';
import { Manager } from '../../manager/manager.js';
import { runDaemon } from '../daemon.js';

const collect = (v: string, prev: string[]) => [...prev, v];

/** Registers the daemon commands on `p`. */
export function register(p: Command): void {
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
}
