/** Small shared pieces: links, load states, meters, confirmation dialogs. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { ApiError } from '../api.js';
import { BASE, onLinkClick } from '../router.js';
import './ops.css';

/** An in-app link to a console path (`/hosts/node-1`). */
export function Link({ to, children, label }: { to: string; children: ComponentChildren; label?: string }) {
  return (
    <a href={BASE + to} onClick={onLinkClick} aria-label={label}>
      {children}
    </a>
  );
}

/** The API's refusal, as text: code, message, and the field when it names one. */
export function ErrorNote({ error }: { error: ApiError | null }) {
  if (!error) return null;
  return (
    <p role="alert" class="error">
      {error.code}: {error.message}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return <p aria-live="polite" class="muted">Loading {what}…</p>;
}

export const mbps = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n >= 1000 ? `${+(n / 1000).toFixed(1)} Gbit/s` : `${n} Mbit/s`);
export const pct = (used: number, of: number) => (of > 0 ? Math.round((used / of) * 100) : 0);

/** A labelled bar: `used` of `of`, with the numbers in text (the bar is decoration). */
export function Meter({ label, used, of, unit = mbps }: { label: string; used: number; of: number; unit?: (n: number) => string }) {
  const p = pct(used, of);
  const bar = useRef<HTMLSpanElement>(null);
  // Set from JS: the CSP allows no style attribute in markup.
  useEffect(() => {
    if (bar.current) bar.current.style.width = `${Math.min(100, p)}%`;
  }, [p]);
  return (
    <div class="meter">
      <span class="meter-label">{label}</span>
      <span class="meter-track" aria-hidden="true">
        <span ref={bar} class={p > 90 ? 'meter-bar high' : 'meter-bar'} />
      </span>
      <span class="meter-text">
        {unit(used)} of {unit(of)} ({p} %)
      </span>
    </div>
  );
}

/** A label for an allocation's workload: `container upf-1 (net1)`. */
export function workloadText(a: { workload?: { kind?: string; name?: string }; attachment?: Record<string, unknown> | null }): string {
  const ifname = a.attachment && typeof a.attachment.ifname === 'string' ? ` (${a.attachment.ifname})` : '';
  const vm = a.attachment && typeof a.attachment.vm === 'string' && a.attachment.vm !== a.workload?.name ? ` (domain ${a.attachment.vm})` : '';
  return `${a.workload?.kind ?? '?'} ${a.workload?.name ?? '?'}${ifname}${vm}`;
}
