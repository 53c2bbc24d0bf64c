/**
 * Changing a host's node policy, always through its plan: the console
 * builds the new document (a PF's VF count or MTU, or the text as edited),
 * asks the daemon what it would change (`POST /v1/hosts/:name/policy/plan`,
 * nothing stored), shows that as a diff, and only then stores it
 * (`PUT /v1/hosts/:name/policy`), which the host's agent applies.
 */
import { useState } from 'preact/hooks';
import { api, ApiError } from '../api.js';
import type { PfInfo, PolicyPlan } from './types.js';
import { ErrorNote } from './ui.js';
import { asApiError, useLoad } from './use-api.js';
import { withPfSettings } from './policy-doc.js';

const policyPath = (host: string) => `/v1/hosts/${encodeURIComponent(host)}/policy`;

/** The plan of `document` and an Apply button; `onApplied` after the PUT. */
function PlanView({ host, document, plan, onApplied, onCancel }: { host: string; document: string; plan: PolicyPlan; onApplied: () => void; onCancel: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);
  const [done, setDone] = useState(false);
  const apply = async () => {
    setBusy(true);
    try {
      await api.put(policyPath(host), { document });
      setDone(true);
      onApplied();
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="plan" role="region" aria-label="Plan">
      <h4>Plan for {host}</h4>
      {plan.changes ? (
        <ul class="diff" aria-label="Changes the policy makes">
          {plan.lines.map((line, i) => (
            <li key={i} class={line.startsWith(' ') ? 'diff-change' : 'diff-head'}>
              {line}
            </li>
          ))}
        </ul>
      ) : (
        <p>No change: the host already matches this policy.</p>
      )}
      <ErrorNote error={error} />
      {done ? (
        <p role="status">Policy stored; the host's agent applies it.</p>
      ) : (
        <div class="actions">
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
          <button type="button" class="primary" onClick={apply} disabled={busy}>
            Apply policy
          </button>
        </div>
      )}
    </div>
  );
}

/** Plans a document; the plan (or the refusal) is kept for the view. */
function usePlanner(host: string) {
  const [planned, setPlanned] = useState<{ document: string; plan: PolicyPlan } | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  const plan = async (document: string) => {
    setError(null);
    setPlanned(null);
    try {
      setPlanned({ document, plan: await api.post<PolicyPlan>(`${policyPath(host)}/plan`, { document }) });
    } catch (err) {
      setError(asApiError(err));
    }
  };
  return { planned, error, plan, fail: (err: unknown) => setError(asApiError(err)), clear: () => (setPlanned(null), setError(null)) };
}

/** A PF's VF count and MTU, changed in the node policy that selects it (or a new one for it). */
export function PfActions({ host, pf, onApplied }: { host: string; pf: PfInfo; onApplied: () => void }) {
  const [numVfs, setNumVfs] = useState(String(pf.numVfs));
  const [mtu, setMtu] = useState(pf.mtu === null ? '' : String(pf.mtu));
  const planner = usePlanner(host);
  const id = pf.pciAddress.replace(/[^a-z0-9]/gi, '-');
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      const current = (await api.get<{ document: string | null }>(policyPath(host))).document;
      const document = await withPfSettings(current, pf, { numVfs: Number(numVfs), mtu: mtu === '' ? undefined : Number(mtu) });
      await planner.plan(document);
    } catch (err) {
      planner.fail(err);
    }
  };
  return (
    <details class="pf-actions">
      <summary>Change {pf.name}: VF count, MTU</summary>
      <form onSubmit={submit} aria-label={`Change ${pf.name}`}>
        <label>
          VF count (0-{pf.totalVfs})
          <input id={`numvfs-${id}`} type="number" min={0} max={pf.totalVfs} value={numVfs} onInput={(e) => setNumVfs(e.currentTarget.value)} required />
        </label>
        <label>
          MTU (68-65535)
          <input id={`mtu-${id}`} type="number" min={68} max={65535} value={mtu} onInput={(e) => setMtu(e.currentTarget.value)} />
        </label>
        <button type="submit">Show plan</button>
      </form>
      <p class="muted">The change goes into the node policy that selects {pf.name}; the plan shows every PF it changes before anything is stored.</p>
      <ErrorNote error={planner.error} />
      {planner.planned && <PlanView host={host} {...planner.planned} onApplied={onApplied} onCancel={planner.clear} />}
    </details>
  );
}

/** The host's node policy document, edited as text and applied through its plan. */
export function PolicyPanel({ host, onApplied }: { host: string; onApplied: () => void }) {
  const doc = useLoad<{ document: string | null }>(`policy:${host}`, () => api.get(policyPath(host)));
  const [text, setText] = useState<string | null>(null);
  const planner = usePlanner(host);
  const shown = text ?? doc.data?.document ?? '';
  return (
    <section class="card" aria-labelledby="policy-h">
      <h2 id="policy-h">Node policy</h2>
      <ErrorNote error={doc.error} />
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void planner.plan(shown);
        }}
      >
        <label for="policy-text">Policy document (YAML)</label>
        <textarea id="policy-text" rows={10} spellcheck={false} value={shown} onInput={(e) => setText(e.currentTarget.value)} />
        <button type="submit">Show plan</button>
      </form>
      <ErrorNote error={planner.error} />
      {planner.planned && (
        <PlanView host={host} {...planner.planned} onApplied={() => (doc.reload(), setText(null), onApplied())} onCancel={planner.clear} />
      )}
    </section>
  );
}
