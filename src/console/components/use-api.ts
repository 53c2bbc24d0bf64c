/** Reading the API from a component: the data, the error, and a reload. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, session } from '../api.js';

export interface Loaded<T> {
  data: T | null;
  error: ApiError | null;
  loading: boolean;
  reload: () => void;
}

/** Calls `load` when `key` changes (null: not at all) and every `everyMs` if given; a late answer for an old key is dropped. */
export function useLoad<T>(key: string | null, load: () => Promise<T>, everyMs?: number): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: ApiError | null; loading: boolean }>({ data: null, error: null, loading: key !== null });
  const [tick, setTick] = useState(0);
  const current = useRef(key);
  current.current = key;
  useEffect(() => {
    if (key === null) return;
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && current.current === key && setState({ data, error: null, loading: false }),
      (err) => live && current.current === key && setState((s) => ({ data: s.data, error: asApiError(err), loading: false })),
    );
    return () => {
      live = false;
    };
  }, [key, tick]);
  useEffect(() => {
    if (!everyMs || key === null) return;
    const t = setInterval(() => setTick((n) => n + 1), everyMs);
    return () => clearInterval(t);
  }, [everyMs, key]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'NETWORK', err instanceof Error ? err.message : String(err));
}

export interface Page<T> {
  items: T[];
  /** The next page's path (from `Link: <...>; rel="next"`), or null on the last. */
  next: string | null;
}

/** One page of a paged list, with the next page's path from its Link header. */
export async function getPage<T>(path: string): Promise<Page<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(path, { headers });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? res.statusText, e?.field);
  }
  const link = res.headers.get('link');
  const next = link?.match(/<([^>]+)>;\s*rel="next"/)?.[1] ?? null;
  return { items: data as T[], next };
}

/** Every page of a list (for lists that are small by nature: a host's allocations, a tenant's networks). */
export async function getAll<T>(path: string, max = 20): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = path;
  for (let i = 0; next && i < max; i++) {
    const page: Page<T> = await getPage<T>(next);
    out.push(...page.items);
    next = page.next;
  }
  return out;
}
