/** The page's query string (`?state=failed`), kept current on in-app navigation. */
import { useEffect, useState } from 'preact/hooks';
import { navigate, usePath } from '../router.js';

export function useQuery(): URLSearchParams {
  const path = usePath();
  const [search, setSearch] = useState(location.search);
  useEffect(() => {
    const on = () => setSearch(location.search);
    addEventListener('popstate', on);
    return () => removeEventListener('popstate', on);
  }, []);
  useEffect(() => setSearch(location.search), [path]);
  return new URLSearchParams(search);
}

/** Replaces the query of the current page (a filter change is bookmarkable, and Back undoes it). */
export function setQuery(path: string, params: Record<string, string>): void {
  const q = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== ''));
  const s = q.toString();
  navigate(s ? `${path}?${s}` : path);
}
