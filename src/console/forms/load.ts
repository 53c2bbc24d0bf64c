/** A list or object read from the API, with a reload after a change. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload(): void;
}

/** GETs `path` (null: nothing, e.g. a list the role may not read). */
export function useLoad<T>(path: string | null): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [n, setN] = useState(0);
  useEffect(() => {
    if (path === null) return;
    let live = true;
    api.get<T>(path).then(
      (d) => live && (setData(d), setError(null)),
      (err: unknown) => live && setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)),
    );
    return () => {
      live = false;
    };
  }, [path, n]);
  return { data, error, reload: () => setN((x) => x + 1) };
}

/** The lists the admin pages show are small (tenants, networks, tokens): one page of the API's largest. */
export const ALL = '?limit=1000';
