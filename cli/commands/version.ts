/** `muster version`: what is running, for a bug report or an inventory of the boards. */
import type { Command } from 'commander';
import { buildInfo } from '../../common/version.js';

/** Registers `muster version` on `p`. */
export function register(p: Command): void {
  p.command('version')
    .description('print the version, git commit, Node.js runtime, architecture, and whether this is a bundle')
    .option('--json', 'print {version, commit, runtime, arch, bundle} as JSON')
    .action((o: { json?: boolean }) => {
      const b = buildInfo();
      if (o.json) {
        process.stdout.write(`${JSON.stringify(b)}\n`);
        return;
      }
      process.stdout.write(
        [
          `muster ${b.version}`,
          `commit   ${b.commit}`,
          `runtime  node ${b.runtime}`,
          `arch     ${b.arch}`,
          `from     ${b.bundle ? 'offline bundle' : 'checkout'}`,
          '',
        ].join('\n'),
      );
    });
}
