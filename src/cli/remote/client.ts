/**
 * The controller's HTTP API (docs/api.md) as the CLI calls it: bearer token,
 * JSON in and out, and every failure turned into a SriovError the CLI can map
 * to an exit status.
 */
import { SriovError, type ErrorCode, type ErrorDetails } from '../../host/errors.js';

export interface Connection {
  /** Base URL without a trailing slash, e.g. `https://ctl.example:8443`. */
  server: string;
  token: string;
}

/** Long enough for a loaded controller, short enough that a dead one does not hang a script. */
const REQUEST_TIMEOUT_MS = 60_000;

/** Codes for error answers that carry no `{ error }` body (a proxy's 502 page, say). */
const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  504: 'TIMEOUT',
};

/**
 * An error answer from the controller. The status, not the code, decides the
 * exit status: a 4xx means the controller refused and changed nothing (2), a
 * 5xx that it failed (1).
 */
export class ApiError extends SriovError {
  constructor(
    readonly status: number,
    code: ErrorCode,
    message: string,
    details: ErrorDetails = {},
  ) {
    super(code, message, details);
  }

  override get exitCode(): number {
    return this.status < 500 ? 2 : 1;
  }
}

export type Query = Record<string, string | number | undefined>;

/** `/v1/tenants` + `a b` → `/v1/tenants/a%20b`: user input never changes the route. */
export function pathOf(collection: string, id: string): string {
  return `${collection}/${encodeURIComponent(id)}`;
}

/**
 * The one line said when the controller marks an answer as possibly stale
 * (`Warning: 110`, its store unreachable: api/staleness.ts); null otherwise.
 */
export function staleWarning(headers: Headers): string | null {
  const warning = headers.get('warning');
  if (warning === null || !/(^|,)\s*110\b/.test(warning)) return null;
  const since = headers.get('vfleet-store-unreachable-since');
  const when = since !== null && /^[0-9T:.\-Z]{1,40}$/.test(since) ? ` since ${since}` : '';
  return `warning: the controller cannot reach its store${when}; this answer comes from its memory and may be stale`;
}

export class ApiClient {
  /** Said once per client (a command), not once per page. */
  private warned = false;

  constructor(
    private readonly conn: Connection,
    private readonly warn: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  /** The controller's base URL, as resolved from flags, environment or config file. */
  get server(): string {
    return this.conn.server;
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  /**
   * A paged list (docs/api.md, "Paging"), a page at a time as they come: the
   * first with `query`, then each page's `Link: rel="next"` as it is (its
   * cursor carries the filters). Stop iterating to stop asking.
   */
  async *pages<T>(path: string, query?: Query): AsyncGenerator<T[]> {
    let next: string | null = this.url(path, query);
    while (next !== null) {
      const { body, link } = await this.exchange<T[]>('GET', next, {});
      if (!Array.isArray(body)) throw new SriovError('HOST_ERROR', `the controller at ${this.conn.server} answered ${path} with something that is not a list`);
      yield body;
      next = this.nextUrl(link, path);
    }
  }

  /** Every page of a list, followed to the end. */
  async all<T>(path: string, query?: Query): Promise<T[]> {
    const out: T[] = [];
    for await (const page of this.pages<T>(path, query)) out.push(...page);
    return out;
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  put<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, { body });
  }

  /** Resolves to the answer's body, or undefined for 204. */
  delete<T = undefined>(path: string): Promise<T> {
    return this.request<T>('DELETE', path, {});
  }

  private async request<T>(method: string, path: string, opts: { query?: Query; body?: unknown }): Promise<T> {
    return (await this.exchange<T>(method, this.url(path, opts.query), opts)).body;
  }

  private async exchange<T>(method: string, url: string, opts: { body?: unknown }): Promise<{ body: T; link: string | null }> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.conn.token}`, accept: 'application/json' };
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    let status: number;
    let text: string;
    let link: string | null;
    try {
      const res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      status = res.status;
      link = res.headers.get('link');
      this.noteStale(res.headers);
      text = await res.text();
    } catch (err) {
      throw this.unreachable(err);
    }
    if (status >= 400) throw errorOf(status, text);
    return { body: (text === '' ? undefined : this.parse(text)) as T, link };
  }

  private noteStale(headers: Headers): void {
    const line = staleWarning(headers);
    if (line === null || this.warned) return;
    this.warned = true;
    this.warn(line);
  }

  /**
   * The next page's URL from a Link header: a path on this controller, never
   * another host (an answer cannot send the token elsewhere).
   */
  private nextUrl(link: string | null, path: string): string | null {
    const target = nextLink(link);
    if (target === null) return null;
    if (!target.startsWith('/') || target.startsWith('//')) {
      throw new SriovError('HOST_ERROR', `the controller at ${this.conn.server} gave a next page of ${path} that is not a path on it`);
    }
    return `${this.conn.server}${target}`;
  }

  private url(path: string, query: Query = {}): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `${this.conn.server}${path}${qs ? `?${qs}` : ''}`;
  }

  private parse(text: string): unknown {
    try {
      return JSON.parse(text);
    } catch {
      throw new SriovError('HOST_ERROR', `the controller at ${this.conn.server} answered with something that is not JSON`);
    }
  }

  private unreachable(err: unknown): SriovError {
    if (err instanceof Error && err.name === 'TimeoutError') {
      return new SriovError('TIMEOUT', `cannot reach the controller at ${this.conn.server}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`);
    }
    // fetch reports "fetch failed" and keeps the useful part (ECONNREFUSED, ENOTFOUND...) in the cause.
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
    const why = cause instanceof Error ? cause.message : String(cause);
    return new SriovError('TRY_AGAIN', `cannot reach the controller at ${this.conn.server}: ${why}`, { cause: err });
  }
}

/** The `rel="next"` target of a Link header (RFC 8288); null when there is none. */
export function nextLink(header: string | null): string | null {
  if (!header) return null;
  for (const part of header.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /(^|;)\s*rel\s*=\s*"?next"?\s*(;|$)/i.test(m[2]!)) return m[1]!;
  }
  return null;
}

function errorOf(status: number, text: string): ApiError {
  const fallback = CODE_OF_STATUS[status] ?? 'HOST_ERROR';
  let body: { error?: { code?: string; message?: string } & ErrorDetails } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    // Not our API answering (a proxy, a wrong port): report the status and the start of the body.
  }
  if (typeof body?.error?.message !== 'string') {
    return new ApiError(status, fallback, `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`);
  }
  // The body is the controller's SriovError.toJSON(): code, message, and its details.
  const { code, message, ...details } = body.error;
  return new ApiError(status, (code as ErrorCode | undefined) ?? fallback, message, { ...details, nothingChanged: status < 500 });
}
