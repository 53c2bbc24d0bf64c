/**
 * Paging for every list endpoint (docs/api.md, "Paging"): `limit` (1-1000,
 * default 500) and an opaque `cursor` from the previous page's
 * `Link: <...>; rel="next"` (RFC 8288). The body stays a JSON array.
 *
 * A cursor carries the list it belongs to, the key of the last item given
 * and the filters of the first request, so a client follows the link as is.
 * Pages are keyset pages (items after a key, in key order): a page stays the
 * same under writes elsewhere in the list, and a cursor made by one
 * controller works on any other (nothing in it is per process). Because the
 * cursor is client input, its filters are checked again against the route's
 * query schema, as if they had come in the query string.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { invalid } from '../host/errors.js';
import { DIGITS, errorResponses, listOf, strictObject } from './schemas.js';

export const DEFAULT_LIMIT = 500;
export const MAX_LIMIT = 1000;
/** A cursor holds a key and a few filters: far below this. */
const MAX_CURSOR_LENGTH = 2048;
const CURSOR_VERSION = 1;

/** The query parameters every paged list takes, beside its own filters. */
export const PAGE_QUERY = {
  limit: { ...DIGITS, description: `a whole number in decimal digits: the page size, 1-${MAX_LIMIT} (default ${DEFAULT_LIMIT})` },
  cursor: {
    type: 'string',
    minLength: 1,
    maxLength: MAX_CURSOR_LENGTH,
    pattern: '^[A-Za-z0-9_-]+$',
    description: 'the opaque cursor from the previous page’s Link: rel="next"; the filters come with it',
  },
} as const;

/** The description of a list route that has no more to say than that it is paged. */
export const PAGED = 'Paged: `limit` (1-1000, default 500) and the `cursor` of the previous page’s `Link: <...>; rel="next"`.';

/** Query strings as a list's filters: every value is a string, checked by the route's schema. */
export type Filters = Record<string, string>;

export interface PageRequest {
  limit: number;
  /** The key of the last item of the previous page; undefined on the first page. */
  after: string | undefined;
  filters: Filters;
}

interface Cursor {
  v: number;
  /** The list (`allocations`, `hosts`...): a cursor of one list is refused by another. */
  l: string;
  k: string;
  f: Filters;
}

/** What a paged list route asks: the page, then the items after the key, at most `limit` of them. */
export function pageRequest(request: FastifyRequest, list: string): PageRequest {
  const { limit, cursor, ...filters } = request.query as Filters;
  const size = parseLimit(limit);
  if (cursor === undefined) return { limit: size, after: undefined, filters };
  const named = Object.keys(filters);
  if (named.length) {
    throw invalid(`cursor carries the filters of the first page; give cursor (and limit) without ${named.join(', ')}`, 'cursor');
  }
  const c = decodeCursor(cursor, list);
  // Its filters are client input like any query string: the route's own schema judges them.
  if (!request.validateInput(c.f, 'querystring')) throw forged(list);
  return { limit: size, after: c.k, filters: c.f };
}

function parseLimit(limit: string | undefined): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  const n = Number(limit);
  if (n < 1 || n > MAX_LIMIT) throw invalid(`limit must be 1-${MAX_LIMIT} (a page size), got ${n}; follow the Link header for more`, 'limit');
  return n;
}

export function encodeCursor(list: string, key: string, filters: Filters): string {
  const c: Cursor = { v: CURSOR_VERSION, l: list, k: key, f: filters };
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(text: string, list: string): Cursor {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw forged(list);
  }
  if (!isCursor(c) || c.l !== list) throw forged(list);
  return c;
}

function isCursor(c: unknown): c is Cursor {
  if (typeof c !== 'object' || c === null) return false;
  const { v, l, k, f } = c as Record<string, unknown>;
  return v === CURSOR_VERSION && typeof l === 'string' && typeof k === 'string' && k.length <= 512 && typeof f === 'object' && f !== null && !Array.isArray(f);
}

const forged = (list: string) => invalid(`cursor is not one the ${list} list gave out; start again without cursor`, 'cursor');

/**
 * Answers one page: `fetched` holds up to limit + 1 items in key order (the
 * one past the page only says there is more). Sets the Link header to the
 * next page when there is one, and returns the page's items.
 */
export function sendPage<T>(request: FastifyRequest, reply: FastifyReply, list: string, page: PageRequest, fetched: T[], keyOf: (item: T) => string): T[] {
  if (fetched.length <= page.limit) return fetched;
  const items = fetched.slice(0, page.limit);
  const cursor = encodeCursor(list, keyOf(items[items.length - 1]!), page.filters);
  const path = request.url.split('?')[0]!;
  void reply.header('link', `<${path}?limit=${page.limit}&cursor=${cursor}>; rel="next"`);
  return items;
}

/**
 * The whole answer of a list that is small enough to hold in memory:
 * `load` gets the filters (from the query or the cursor), the page is cut by key.
 */
export async function answerFromMemory<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  list: string,
  load: (filters: Filters) => Promise<T[]>,
  keyOf: (item: T) => string,
): Promise<T[]> {
  const page = pageRequest(request, list);
  return sendPage(request, reply, list, page, pageInMemory(await load(page.filters), keyOf, page), keyOf);
}

/** The schema of a paged list route: its query (the page's and `filters`) and its answer, an array of `item`. */
export function pagedSchema(tags: string[], summary: string, item: string, filters: Record<string, unknown> = {}, description = PAGED) {
  return { tags, summary, description, querystring: strictObject({ ...PAGE_QUERY, ...filters }), response: { 200: listOf(item, `a page of ${item}s`), ...errorResponses } };
}

/** A page of a list held in memory: the items after `page.after` in key order, and one more when there is more. */
export function pageInMemory<T>(items: Iterable<T>, keyOf: (item: T) => string, page: PageRequest): T[] {
  const after = page.after;
  const sorted = [...items].filter((i) => after === undefined || keyOf(i) > after).sort((a, b) => compareKeys(keyOf(a), keyOf(b)));
  return sorted.slice(0, page.limit + 1);
}

/** Code-unit order, as SQLite's and etcd's keys sort: locale-free. */
export function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
