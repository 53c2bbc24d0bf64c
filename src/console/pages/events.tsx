/**
 * The audit log (staff), pushed live: every change anyone makes appears here
 * without a reload. Filtered by object and by kind (the action's first word).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import '../forms/forms.css';
import { followEvents, type AuditEvent, type StreamState } from './events-stream.js';

/** Kept in the page: older ones are in `GET /v1/events` and `sriovctl events`. */
const KEEP = 500;

export function EventsPage() {
  const [events, setEvents] = useState<AuditEvent[]>([]);
  const [state, setState] = useState<StreamState>({ kind: 'connecting' });
  const [object, setObject] = useState('');
  const [kind, setKind] = useState('');
  useEffect(
    () =>
      followEvents(
        (batch) => setEvents((old) => [...batch.reverse(), ...old].slice(0, KEEP)),
        setState,
      ),
    [],
  );
  const kinds = useMemo(() => [...new Set(events.map((e) => e.action.split('.')[0]!))].sort(), [events]);
  const shown = events.filter((e) => (!kind || e.action.split('.')[0] === kind) && (!object || e.object.includes(object.trim())));
  return (
    <>
      <h1>Events</h1>
      <p class="status" role="status">
        {state.kind === 'live' ? 'Live: new events appear as they happen.' : state.kind === 'connecting' ? 'Connecting…' : state.kind === 'retrying' ? `Reconnecting (${state.reason})…` : `Stopped: ${state.reason}`}
      </p>
      <div class="toolbar" role="search" aria-label="Filter events">
        <div class="field">
          <label for="events-object">Object contains</label>
          <input id="events-object" value={object} onInput={(e) => setObject(e.currentTarget.value)} placeholder="network/blue" autoComplete="off" />
        </div>
        <div class="field">
          <label for="events-kind">Kind</label>
          <select id="events-kind" value={kind} onChange={(e) => setKind(e.currentTarget.value)}>
            <option value="">all</option>
            {kinds.map((k) => (
              <option key={k} value={k}>
                {k}
              </option>
            ))}
          </select>
        </div>
        <span class="status">
          {shown.length} of {events.length} shown
        </span>
      </div>
      <div class="table-wrap">
        <table class="list events">
          <caption class="visually-hidden">Audit events, newest first</caption>
          <thead>
            <tr>
              <th scope="col" class="num">Seq</th>
              <th scope="col">Time</th>
              <th scope="col">Actor</th>
              <th scope="col">Action</th>
              <th scope="col">Object</th>
              <th scope="col">After</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.seq}>
                <td class="num">{e.seq}</td>
                <td>{new Date(e.at).toLocaleString()}</td>
                <td>{e.actor}</td>
                <td>{e.action}</td>
                <td>{e.object}</td>
                <td class="data">{summary(e.after)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

function summary(value: unknown): string {
  if (value === null || value === undefined) return '—';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 160 ? `${text.slice(0, 157)}...` : text;
}
