/**
 * Follows GET /v1/events/stream. EventSource cannot send the bearer header,
 * and a token in the URL would land in logs and history, so the stream is
 * read with fetch() and a stream reader. After a drop it reconnects with
 * Last-Event-ID: the API resumes after the last event seen, with no gap.
 */
import { session } from '../api.js';

export interface AuditEvent {
  seq: number;
  at: string;
  actor: string;
  action: string;
  object: string;
  before: unknown;
  after: unknown;
}

export type StreamState = { kind: 'connecting' } | { kind: 'live' } | { kind: 'retrying'; reason: string } | { kind: 'stopped'; reason: string };

const RETRY_MS = 2000;

export function followEvents(onEvents: (events: AuditEvent[]) => void, onState: (s: StreamState) => void): () => void {
  const abort = new AbortController();
  let last: string | null = null;
  const run = async () => {
    while (!abort.signal.aborted) {
      onState({ kind: 'connecting' });
      const reason = await readOnce((id) => (last = id), onEvents, onState, last, abort.signal).catch((err: unknown) => String(err));
      if (abort.signal.aborted) return;
      if (reason.startsWith('stop:')) return onState({ kind: 'stopped', reason: reason.slice(5) });
      onState({ kind: 'retrying', reason });
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };
  void run();
  return () => abort.abort();
}

/** One connection, to its end; returns why it ended (`stop:` when retrying would not help). */
async function readOnce(
  seen: (id: string) => void,
  onEvents: (events: AuditEvent[]) => void,
  onState: (s: StreamState) => void,
  last: string | null,
  signal: AbortSignal,
): Promise<string> {
  const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${session.token() ?? ''}` };
  if (last !== null) headers['last-event-id'] = last;
  const res = await fetch('/v1/events/stream', { headers, signal });
  if (!res.ok || !res.body) {
    const body = (await res.json().catch(() => null)) as { error?: { code: string; message: string } } | null;
    const why = body?.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
    return res.status === 401 || res.status === 403 ? `stop:${why}` : why;
  }
  onState({ kind: 'live' });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return 'the stream ended';
    buffer += value.replace(/\r\n?/g, '\n');
    const blocks = buffer.split('\n\n');
    buffer = blocks.pop()!;
    const batch: AuditEvent[] = [];
    for (const block of blocks) {
      const m = parseBlock(block);
      if (m.event === 'audit' && m.data) {
        batch.push(JSON.parse(m.data) as AuditEvent);
        if (m.id) seen(m.id);
      } else if (m.event === 'error' && m.data) {
        const e = (JSON.parse(m.data) as { error: { code: string; message: string } }).error;
        if (batch.length) onEvents(batch);
        return `${e.code}: ${e.message}`;
      }
    }
    if (batch.length) onEvents(batch);
  }
}

function parseBlock(block: string): { id?: string; event?: string; data?: string } {
  const m: { id?: string; event?: string; data?: string } = {};
  for (const line of block.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const key = line.slice(0, i);
    const value = line.slice(i + 1).replace(/^ /, '');
    if (key === 'data') m.data = m.data === undefined ? value : `${m.data}\n${value}`;
    else if (key === 'id' || key === 'event') m[key] = value;
  }
  return m;
}
