/**
 * Protocol constants of the agent↔manager protocol v1.1 (docs/protocol.md: the status protocol
 * §1–§4 and the command protocol §5).
 */

/** Multicast group the manager sends queries to (docs/protocol.md §1 Query). */
export const MULTICAST_GROUP = '239.192.168.80';
/** UDP port of the multicast query (docs/protocol.md §1 Query). */
export const MULTICAST_PORT = 3980;
/** The only protocol version this code speaks; every body carries it as `api_version`. */
export const API_VERSION = 1;
/** Default HTTP port of the manager, where agents POST /heartbeat and /resource. */
export const MANAGER_PORT = 3926;
/** Default HTTP port of the agent ("命令响应服务端口"), where the manager POSTs /deploy. */
export const AGENT_SERVICE_PORT = 23980;
/** The report urls a query may ask for, one per query. */
export const REPORT_URLS = ['/heartbeat', '/resource'] as const;
/** A report url: `/heartbeat` or `/resource`. */
export type ReportUrl = (typeof REPORT_URLS)[number];
/** Largest query datagram the agent accepts, in bytes; bigger ones are rejected unparsed. */
export const MAX_QUERY_BYTES = 4096;
