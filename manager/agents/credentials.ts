/**
 * The bearer tokens the manager sends to the agents (docs/protocol.md "Authorization",
 * docs/configuration.md "deploy"): per node `deploy.tokens[node]`, else the content of
 * `deploy.token_file` (read once, at start), else `deploy.token`, else none.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from '../../common/log.js';
import type { ManagerConfig } from '../config.js';

/** The token settings of the config. */
export type TokenConfig = Pick<ManagerConfig['deploy'], 'token' | 'token_file' | 'tokens'>;

/** Looks up the token for a node. */
export class AgentCredentials {
  private readonly fileToken: string | null;

  /**
   * Reads token_file; warns when no token at all is configured (deploys then go out without
   * Authorization).
   * @throws Error naming deploy.token_file when the file exists but cannot be read
   */
  constructor(
    private readonly cfg: TokenConfig,
    log: Logger,
  ) {
    this.fileToken = readTokenFile(cfg.token_file);
    if (!this.fileToken && !cfg.token) {
      const perNode = Object.keys(cfg.tokens).length;
      log.warn(
        { token_file: cfg.token_file, per_node_tokens: perNode },
        `no deploy token configured (deploy.token, deploy.token_file${perNode ? '; only per-node deploy.tokens' : ''}): deploys go out without Authorization and only agents with auth.disabled accept them`,
      );
    }
  }

  /** The bearer token for `node`: tokens[node], else token_file's content, else token, else null. */
  tokenFor(node: string): string | null {
    return this.cfg.tokens[node] || this.fileToken || this.cfg.token || null;
  }
}

/** The trimmed content of `file`, or null when it is unset, missing or empty. */
function readTokenFile(file: string): string | null {
  if (!file) return null;
  try {
    return readFileSync(file, 'utf8').trim() || null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`deploy.token_file ${file}: ${(err as Error).message}`);
  }
}
