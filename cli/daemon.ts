/**
 * Running a daemon from the CLI (`muster manager`, `muster agent`): load the config, build the
 * daemon, start it, reload on SIGHUP, stop cleanly on SIGTERM/SIGINT (docs/operations.md "systemd
 * units"). Loaded only by the daemon verbs (cli/commands/daemons.ts), never by the other verbs.
 */
import { ConfigError } from '../common/config.js';
import { installCrashHandlers } from '../common/crash.js';
import { createLogger } from '../common/log.js';

/** Something with start/stop that the CLI runs until a signal; `reload` takes a re-read config on SIGHUP. */
interface Daemon<C> {
  start(): Promise<void>;
  stop(): Promise<void>;
  reload?(cfg: C): void;
}

/**
 * Loads the config with `load`, builds the daemon (`build` may open files: it runs with the start)
 * and runs it until SIGTERM or SIGINT.
 * A ConfigError prints its message and exits 2; a failure to build or start exits 1 (systemd restarts it).
 * On SIGHUP a daemon with `reload` gets the config read again; a config that does not load is
 * logged as an error and the running one is kept (the daemon keeps serving).
 */
export async function runDaemon<C extends { log: { level: string } }>(
  name: 'agent' | 'manager' | 'relay',
  load: () => C,
  build: (cfg: C, log: ReturnType<typeof createLogger>) => Daemon<C> | Promise<Daemon<C>>,
): Promise<void> {
  let cfg: C;
  try {
    cfg = load();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`muster ${name}: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(name, cfg.log.level as Parameters<typeof createLogger>[1]);
  // Until the daemon installs its own (counted) handlers, a bug while building it still exits
  // non-zero with its stack logged (common/crash.ts states the rule).
  const removeEarly = installCrashHandlers(log, name);
  let daemon: Daemon<C>;
  try {
    removeEarly();
    daemon = await build(cfg, log);
    await daemon.start();
  } catch (err) {
    log.fatal({ err: (err as Error).message }, `${name} cannot start`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, `${name} stopping`);
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    await daemon.stop().catch((err: Error) => log.error({ err: err.message }, 'error while stopping'));
    process.exit(0);
  };
  if (daemon.reload) {
    const reload = daemon.reload.bind(daemon);
    process.on('SIGHUP', () => {
      try {
        reload(load());
      } catch (err) {
        log.error({ err: (err as Error).message }, 'config reload refused: keeping the running config');
      }
    });
  }
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
