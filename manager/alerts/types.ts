/**
 * The shapes of alerts, alert rules and the operation history as the REST API returns them
 * (docs/operations.md "Alerts and history"). They are defined by the contract in common/api/
 * (alerts.ts, history.ts, paging.ts); this module names them for the manager's own modules.
 */
export type { AlertKind, AlertView, RuleOp, RuleView } from '../../common/api/alerts.js';
export type { HistoryEntry, HistoryKind } from '../../common/api/history.js';
export type { Page } from '../../common/api/paging.js';
export type { Severity } from '../../common/api/primitives.js';
