/**
 * The manager↔agent contract of files and the screen (docs/files.md "Agent routes", "Resume
 * protocol"): muster extensions on the agent's command port, each behind the same bearer token as
 * `POST /deploy`. Paths travel in the query string; file bodies are raw bytes
 * (`application/octet-stream`), never JSON.
 *
 *   GET    /files/offset?path=&sha256=&size=         → 200 {@link OffsetReply}: where to resume
 *   PUT    /files/content?path=&sha256=&size=&offset=[&mode=][&owner=]  body = bytes [offset, size)
 *                                                    → 200 {@link PutReply}
 *   GET    /files/content?path=                      → 200 the file's bytes (streamed)
 *   GET    /files/list?path=                         → 200 {@link ListReply}
 *   DELETE /files/content?path=[&recursive=1]        → 200 {@link DeleteReply}
 *   GET    /screen                                   → 200 image/png
 * Every refusal is a JSON {@link FileError} with one of {@link FILE_ERRORS} and the HTTP status of
 * {@link FILE_ERROR_STATUS}.
 */

/** Why a file or screen request was refused (the `error` field and the metrics' `reason`). */
export const FILE_ERRORS = [
  'bad_request',
  'bad_path',
  'outside_roots',
  'not_found',
  'too_large',
  'no_space',
  'busy',
  'offset_mismatch',
  'hash_mismatch',
  'is_directory',
  'not_empty',
  'no_display',
  'capture_failed',
  'internal',
] as const;
/** Why a file or screen request was refused. */
export type FileErrorCode = (typeof FILE_ERRORS)[number];

/** The HTTP status of each refusal. */
export const FILE_ERROR_STATUS: Record<FileErrorCode, number> = {
  bad_request: 400,
  bad_path: 400,
  outside_roots: 403,
  not_found: 404,
  too_large: 413,
  no_space: 507,
  busy: 503,
  offset_mismatch: 409,
  hash_mismatch: 422,
  is_directory: 409,
  not_empty: 409,
  no_display: 503,
  capture_failed: 500,
  internal: 500,
};

/** A refusal: the code, a sentence for the operator, and (offset_mismatch) where to resume. */
export interface FileError {
  error: FileErrorCode;
  message: string;
  /** offset_mismatch: the bytes the agent holds. */
  offset?: number;
}

/** Answer of GET /files/offset: the bytes of a partial upload the agent already holds (0 = none). */
export interface OffsetReply {
  path: string;
  offset: number;
  size: number;
}

/** Answer of PUT /files/content once the file is in place. */
export interface PutReply {
  path: string;
  size: number;
  sha256: string;
  /** Bytes of this request's body (size - offset). */
  received: number;
  /** The offset this request started at (> 0 = a resumed upload). */
  offset: number;
}

/** One entry of a directory listing. */
export interface ListEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Permission bits as octal text, e.g. `0644`. */
  mode: string;
  /** ISO time of the last modification. */
  mtime: string;
}

/** Answer of GET /files/list. */
export interface ListReply {
  path: string;
  entries: ListEntry[];
  /** True when the directory held more than the agent lists (files.max_list_entries). */
  truncated: boolean;
}

/** Answer of DELETE /files/content. */
export interface DeleteReply {
  path: string;
  /** `file`, `dir` (recursive), or `absent` (nothing was there: deleting is idempotent). */
  removed: 'file' | 'dir' | 'absent';
}

/** Largest path accepted, bytes (PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** A sha256 in hex. */
export const SHA256_RE = /^[0-9a-f]{64}$/;
/** A mode: octal permission bits, e.g. `0644` or `755` (no setuid, setgid or sticky bit). */
export const MODE_RE = /^0?[0-7]{3}$/;
/** An owner: numeric `uid` or `uid:gid`. */
export const OWNER_RE = /^\d{1,10}(?::\d{1,10})?$/;

/** Screen capture methods, in the order `screen.methods` may list them (docs/files.md "Screen"). */
export const SCREEN_METHODS = ['x11', 'wayland', 'fb'] as const;
/** A screen capture method. */
export type ScreenMethod = (typeof SCREEN_METHODS)[number];
