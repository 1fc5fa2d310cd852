/**
 * The manager's seam to the agents: every call the manager makes to a board's agent goes through
 * an {@link AgentClient}. Today's implementation is HTTP to the agent's command service
 * (manager/agents/http.ts, docs/protocol.md "5. Load command"); the WebSocket node link will be a
 * second implementation of the same interface, and the calls to come (exec, files, screen) are
 * added here as methods.
 */
import type { Readable } from 'node:stream';
import type {
  CommandSetReplyData,
  CommandSetRequestData,
  ExecFileReplyData,
  ExecFileRequestData,
  ExecKillRequestData,
  ExecReplyData,
  ExecRequestData,
  ExecStatusReplyData,
  ExecStatusRequestData,
} from '../../common/exec.js';
import type { DeleteReply, FileErrorCode, ListReply, OffsetReply, PutReply } from '../../common/files.js';
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

// ---- files and screen (docs/files.md "Agent routes"; the contract is common/files.ts) ----

/**
 * What came of a file or screen call: the agent's answer, or a failure: `status` is the agent's
 * HTTP status (0 when it was not reached or did not answer in time), `error` its code (or
 * `unreachable`, `timeout`, `stalled`, `bad_reply`), `offset` the bytes it holds (offset_mismatch).
 */
export type FileCall<T> =
  | { ok: true; value: T }
  | {
      ok: false;
      status: number;
      error: FileErrorCode | 'unreachable' | 'timeout' | 'stalled' | 'bad_reply' | 'unauthorized' | 'not_supported';
      message: string;
      offset?: number;
    };

/** An upload to a board: where, how big, which hash (common/files.ts). */
export interface FileUploadSpec {
  path: string;
  sha256: string;
  size: number;
}

/** A file being read back from a board: its size and its bytes as a stream (destroy it to stop). */
export interface FileDownload {
  size: number;
  body: Readable;
}

/** A screen capture: PNG bytes and the agent's method. */
export interface ScreenShot {
  png: Buffer;
  method: string;
}

/** The file and screen calls of {@link AgentClient}. */
export interface AgentFileCalls {
  /** GET /files/offset: where an upload resumes. */
  fileOffset(target: AgentTarget, spec: FileUploadSpec): Promise<FileCall<OffsetReply>>;
  /**
   * PUT /files/content: sends bytes [offset, size) from `body`; aborted (error `stalled`) when no
   * byte of it is taken for the stall time, or when `signal` fires.
   */
  filePut(
    target: AgentTarget,
    spec: FileUploadSpec & { offset: number; mode?: string | undefined; owner?: string | undefined },
    body: Readable,
    signal?: AbortSignal,
  ): Promise<FileCall<PutReply>>;
  /** GET /files/list. */
  fileList(target: AgentTarget, path: string): Promise<FileCall<ListReply>>;
  /** GET /files/content: the file as a stream. */
  fileGet(target: AgentTarget, path: string): Promise<FileCall<FileDownload>>;
  /** DELETE /files/content. */
  fileDelete(target: AgentTarget, path: string, recursive: boolean): Promise<FileCall<DeleteReply>>;
  /** GET /screen. */
  screen(target: AgentTarget): Promise<FileCall<ScreenShot>>;
}

/**
 * File and screen calls for a transport that does not carry them (the WebSocket link, test
 * fakes): every call answers `{ ok: false, status: 501, error: 'not_supported', message: why }`
 * at once, so a push records the board as failed without retrying it.
 */
export function unsupportedFileCalls(why: string): AgentFileCalls {
  const no = async <T>(): Promise<FileCall<T>> => ({ ok: false, status: 501, error: 'not_supported', message: why });
  return {
    fileOffset: () => no(),
    filePut: async (_t, _s, body) => {
      body.destroy();
      return no();
    },
    fileList: () => no(),
    fileGet: () => no(),
    fileDelete: () => no(),
    screen: () => no(),
  };
}

// ---- end of files and screen ----

/** Calls to a node's agent. Implementations never throw: failures are outcomes. */
export interface AgentClient extends AgentFileCalls {
  /** Sends a deploy request (start or stop) and waits for the agent's reply. */
  deploy(target: AgentTarget, request: DeployRequestData): Promise<DeployOutcome>;
  /**
   * Reads the agent's record of component `uuid` (docs/protocol.md "Progress: `GET /deploy/:uuid`");
   * null when there is none or it cannot be read.
   */
  progress(target: AgentTarget, uuid: string): Promise<AgentProgress | null>;

  // Remote execution (docs/exec.md "Agent commands"; the contract is common/exec.ts) ----------
  /** Submits a task (`exec`); the reply says whether the agent took it (result 0) and its step count. */
  exec(target: AgentTarget, data: ExecRequestData): Promise<AgentOutcome<ExecReplyData>>;
  /**
   * A task's state and the output lines after `since` (`exec_status`); with `wait_ms` a long poll
   * (the time limit of the call is wait_ms plus exec.call_timeout_ms).
   */
  execStatus(target: AgentTarget, data: ExecStatusRequestData): Promise<AgentOutcome<ExecStatusReplyData>>;
  /** Kills a task, or one step of it, with its process groups (`exec_kill`). */
  execKill(target: AgentTarget, data: ExecKillRequestData): Promise<AgentOutcome<ExecKillReplyData>>;
  /** Fetches the generate_file a command-set step produced (`exec_file`), bounded by exec.max_file_bytes. */
  execFile(target: AgentTarget, data: ExecFileRequestData): Promise<AgentOutcome<ExecFileReplyData>>;
  /** Puts, removes or lists command-set entries in the agent's exec.commands_dir (`command_set`). */
  commandSet(target: AgentTarget, data: CommandSetRequestData): Promise<AgentOutcome<CommandSetReplyData>>;
}

/** What came of an exec call: the agent's valid reply `data`, or a failure (MANAGER_RESULT or the agent's refusal). */
export type AgentOutcome<T> = { ok: true; reply: T } | { ok: false; result: number; message: string };

/** Reply `data` of `exec_kill`: the result (0: killed, or already ended) and a message. */
export interface ExecKillReplyData {
  result: number;
  message: string;
  [key: string]: unknown;
}
