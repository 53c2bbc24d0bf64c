/**
 * The console's one way to call the daemon. Every call sends the session's
 * token; a refusal comes back as an ApiError with the API's stable `code`,
 * its message and, for a validation error, the field it names, so a form can
 * show it at that field.
 */
const TOKEN_KEY = 'vfleet.token';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function request(method: string, path: string, body?: unknown): Promise<{ res: Response; data: unknown }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return { res, data: undefined };
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText, e?.field);
  }
  return { res, data };
}

const call = async <T>(method: string, path: string, body?: unknown) => (await request(method, path, body)).data as T;

export interface Page<T> {
  items: T[];
  /** The next page's path (from `Link: <...>; rel="next"`), or null on the last. */
  next: string | null;
}

/** One page of a paged list, with the next page's path from its Link header. */
export async function getPage<T>(path: string): Promise<Page<T>> {
  const { res, data } = await request('GET', path);
  const next = res.headers.get('link')?.match(/<([^>]+)>;\s*rel="next"/)?.[1] ?? null;
  return { items: data as T[], next };
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {}),
  put: <T>(path: string, body: unknown) => call<T>('PUT', path, body),
  del: <T = void>(path: string) => call<T>('DELETE', path),
};

/** `/v1/x?a=1&b=2`, leaving out empty values; every value is encoded. */
export function query(path: string, params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
