/**
 * A modal confirmation that names the object, for deletes and revokes. The
 * native <dialog> keeps focus inside and closes on Escape; the API's refusal
 * (e.g. a network still in use) is shown in it, and nothing is closed.
 */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api.js';

export interface Confirmation<T> {
  target: T | null;
  ask(target: T): void;
}

interface Props<T> {
  c: Confirmation<T> & { cancel(): void };
  title: (t: T) => string;
  body: (t: T) => ComponentChildren;
  /** The confirming button's words, or words per target (Clear, Release...). */
  confirmLabel: string | ((t: T) => string);
  run: (t: T) => Promise<void>;
}

export function useConfirmation<T>(): Confirmation<T> & { cancel(): void } {
  const [target, setTarget] = useState<T | null>(null);
  return { target, ask: setTarget, cancel: () => setTarget(null) };
}

export function ConfirmDialog<T>({ c, title, body, confirmLabel, run }: Props<T>) {
  const ref = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const opener = useRef<Element | null>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (c.target !== null && !d.open) {
      opener.current = document.activeElement;
      setError(null);
      d.showModal();
    } else if (c.target === null && d.open) {
      d.close();
    }
  }, [c.target]);
  const close = () => {
    c.cancel();
    // Back to the button that opened it, or to the page's main when that row is gone.
    const back = opener.current as HTMLElement | null;
    requestAnimationFrame(() => (back?.isConnected ? back.focus() : document.getElementById('main')?.focus()));
  };
  const confirm = async () => {
    if (c.target === null) return;
    setBusy(true);
    setError(null);
    try {
      await run(c.target);
      close();
    } catch (err) {
      setError(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    } finally {
      setBusy(false);
    }
  };
  const titleId = 'confirm-title';
  return (
    <dialog ref={ref} aria-labelledby={titleId} onCancel={(e) => (e.preventDefault(), close())}>
      {c.target !== null && (
        <>
          <h2 id={titleId}>{title(c.target)}</h2>
          <div>{body(c.target)}</div>
          {error && (
            <p class="alert" role="alert">
              {error}
            </p>
          )}
          <div class="actions">
            <button type="button" onClick={close} autoFocus>
              Cancel
            </button>
            <button type="button" class="danger primary" onClick={() => void confirm()} disabled={busy}>
              {typeof confirmLabel === 'string' ? confirmLabel : confirmLabel(c.target)}
            </button>
          </div>
        </>
      )}
    </dialog>
  );
}
