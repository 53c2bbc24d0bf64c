/** Walking a paged list by its `Link: rel="next"` cursors, with Previous: the pages walked so far are kept; a new filter starts again. */
import { useState } from 'preact/hooks';
import { getPage, type Page } from '../api.js';
import { useLoad, type Loaded } from './use-api.js';

export interface Paged<T> {
  page: Loaded<Page<T>>;
  previous: (() => void) | null;
  next: (() => void) | null;
}

/** `first`: the first page's path (with its filters); `everyMs`: reload the page shown that often. */
export function usePaged<T>(first: string, everyMs?: number): Paged<T> {
  const [stack, setStack] = useState<{ first: string; at: string[] }>({ first, at: [first] });
  const walked = stack.first === first ? stack.at : [first];
  const at = walked[walked.length - 1]!;
  const page = useLoad<Page<T>>(at, () => getPage<T>(at), everyMs);
  const nextPath = page.data?.next;
  return {
    page,
    previous: walked.length < 2 ? null : () => setStack({ first, at: walked.slice(0, -1) }),
    next: nextPath ? () => setStack({ first, at: [...walked, nextPath] }) : null,
  };
}

export function Pager<T>({ paged }: { paged: Paged<T> }) {
  return (
    <div class="pager">
      <button type="button" disabled={!paged.previous} onClick={() => paged.previous?.()}>
        Previous page
      </button>
      <button type="button" disabled={!paged.next} onClick={() => paged.next?.()}>
        Next page
      </button>
    </div>
  );
}
