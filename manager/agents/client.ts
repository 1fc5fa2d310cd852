/**
 * The manager's seam to the agents: every call the manager makes to a board's agent goes through
 * an {@link AgentClient}. Today's implementation is HTTP to the agent's command service
 * (manager/agents/http.ts, docs/protocol.md "5. Load command"); the WebSocket node link will be a
 * second implementation of the same interface, and the calls to come (exec, files, screen) are
 * added here as methods.
 */
import type { DeployReplyData, DeployRequestData } from '../../common/protocol.js';

/** Where a node's agent is, from its latest heartbeat. */
export interface AgentTarget {
  /** Node id `box-slot-cpu` (its credentials are looked up by it). */
  node: string;
  /** The heartbeat's host_ip. */
  host_ip: string;
  /** The heartbeat's service_port. */
  port: number;
}

/**
 * What came of a deploy call: the agent's valid reply, or a failure the manager records with a
 * negative result (MANAGER_RESULT of common/api/deploy.ts) and a message for the operator.
 */
export type DeployOutcome = { ok: true; reply: DeployReplyData } | { ok: false; result: number; message: string };

/** The agent's record of a component as GET /deploy/:uuid returns it (the fields the manager uses). */
export interface AgentProgress {
  /** When the agent created the record (tells an earlier operation on the same uuid apart). */
  createdAt?: string;
  /** The latest progress lines; anything else is ignored. */
  progress?: unknown;
}

/** Calls to a node's agent. Implementations never throw: failures are outcomes. */
export interface AgentClient {
  /** Sends a deploy request (start or stop) and waits for the agent's reply. */
  deploy(target: AgentTarget, request: DeployRequestData): Promise<DeployOutcome>;
  /**
   * Reads the agent's record of component `uuid` (docs/protocol.md "Progress: `GET /deploy/:uuid`");
   * null when there is none or it cannot be read.
   */
  progress(target: AgentTarget, uuid: string): Promise<AgentProgress | null>;
}
