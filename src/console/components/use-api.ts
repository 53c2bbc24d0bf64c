/** Reading the API from a component: the data, the error, and a reload. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError, getPage, type Page } from '../api.js';

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

/** GETs `path` (null: nothing, e.g. a list the role may not read). */
export function useGet<T>(path: string | null): Loaded<T> {
  return useLoad<T>(path, () => api.get<T>(path!));
}

/** The lists the admin pages show are small (tenants, networks, tokens): one page of the API's largest. */
export const ALL = '?limit=1000';

export function asApiError(err: unknown): ApiError {
  return err instanceof ApiError ? err : new ApiError(0, 'NETWORK', err instanceof Error ? err.message : String(err));
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
