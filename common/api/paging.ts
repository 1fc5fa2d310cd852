/**
 * Paging of the lists that grow without end (alerts, history; docs/operations.md "Paging and
 * `--json`"): newest first, `limit` per page, `before` an id; the answer's `next` is the `before`
 * of the next (older) page, null at the end.
 */
import { type Static, Type } from 'typebox';
import { NodeIdSchema } from './primitives.js';

/** Most items in one page. */
export const MAX_PAGE_LIMIT = 1000;
/** Items in a page when `limit` is not given. */
export const DEFAULT_PAGE_LIMIT = 50;

/** Query fields every paged list takes: node, since, limit, before. */
export const PageQueryFields = {
  node: Type.Optional(NodeIdSchema),
  since: Type.Optional(Type.String({ minLength: 1, description: 'duration back (2h), ISO time, or ms epoch' })),
  limit: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'page size 1..1000, default 50' })),
  before: Type.Optional(Type.String({ pattern: '^[0-9]+$', description: 'id: only older entries' })),
};
const PageQuerySchema = Type.Object(PageQueryFields);
/** The paging fields of a list's query string, as sent. */
export type PageQuery = Static<typeof PageQuerySchema>;

/** `next` of a page: the `before` of the next (older) page, null at the end. */
export const NextSchema = Type.Union([Type.Integer(), Type.Null()], {
  description: 'the before of the next (older) page; null at the end',
});

/** A page of a list, newest first. */
export interface Page<T> {
  items: T[];
  next: number | null;
}
