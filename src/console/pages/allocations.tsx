/**
 * Allocations: filtered on the server (state, tenant, host, network,
 * physnet, workload), a page at a time; attach a container or a VM (an
 * allocation with `attach`); detach and release, or clear a failed one,
 * after a confirmation that names the workload.
 */
import { useState } from 'preact/hooks';
import { api, ApiError, query } from '../api.js';
import { setQuery, useQuery } from '../components/query.js';
import type { Allocation, AllocationState, Network } from '../components/types.js';
import { ErrorNote, Link, Loading, mbps, workloadText } from '../components/ui.js';
import { ConfirmDialog, useConfirmation } from '../forms/confirm.js';
import { asApiError, getAll, useLoad } from '../components/use-api.js';
import { Pager, usePaged } from '../components/pager.js';
import { useWho } from '../session.js';

const STATES: AllocationState[] = ['pending', 'configured', 'attached', 'releasing', 'released', 'failed'];
const FILTERS = ['state', 'tenant', 'host', 'network', 'physnet', 'workload'] as const;
type Filters = Record<(typeof FILTERS)[number], string>;

export function AllocationsPage() {
  const who = useWho();
  const q = useQuery();
  const filters = Object.fromEntries(FILTERS.map((f) => [f, q.get(f) ?? ''])) as Filters;
  const first = query('/v1/allocations', { ...filters, limit: 100 });
  const paged = usePaged<Allocation>(first, 5000);
  const page = paged.page;
  const release = useConfirmation<Allocation>();
  const [message, setMessage] = useState<string | null>(null);
  return (
    <>
      <h1>Allocations</h1>
      <FilterForm filters={filters} staff={who.isStaff} />
      <AttachForm
        onCreated={(a) => {
          setMessage(`Allocation ${a.id?.slice(0, 8)} for ${workloadText(a)} created: ${a.state} on ${a.host} ${a.pf} VF ${a.vfIndex}.`);
          page.reload();
        }}
      />
      {message && <p role="status">{message}</p>}
      <ErrorNote error={page.error} />
      {!page.data ? (
        !page.error && <Loading what="allocations" />
      ) : (
        <>
          <div class="table-wrap">
            <table class="allocations">
              <caption class="visually-hidden">Allocations, in id order</caption>
              <thead>
                <tr>
                  <th scope="col">Workload</th>
                  <th scope="col">State</th>
                  <th scope="col">Tenant / network</th>
                  <th scope="col">VF</th>
                  <th scope="col">Guarantee</th>
                  <th scope="col">Id</th>
                  <th scope="col">Action</th>
                </tr>
              </thead>
              <tbody>
                {page.data.items.map((a) => (
                  <tr key={a.id} data-allocation={a.id}>
                    <th scope="row">{workloadText(a)}</th>
                    <td>
                      <span class={`tag state-${a.state}`}>{a.state}</span>
                      {a.reason && <div class="reason">{a.reason}</div>}
                    </td>
                    <td>
                      {a.tenant} / {a.network}
                    </td>
                    <td>
                      {who.isStaff ? <Link to={`/hosts/${encodeURIComponent(a.host ?? '')}`}>{a.host}</Link> : a.host} {a.pf} VF {a.vfIndex}
                    </td>
                    <td>{mbps(a.minTxRateMbps)}</td>
                    <td>
                      <code>{a.id?.slice(0, 8)}</code>
                    </td>
                    <td>
                      <RowAction a={a} onAsk={() => (setMessage(null), release.ask(a))} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.data.items.length === 0 && <p>No allocation matches.</p>}
          <Pager paged={paged} />
        </>
      )}
      <ConfirmDialog
        c={release}
        title={(a) => `${actionOfDelete(a)} ${a.workload?.name ?? ''}?`}
        body={releaseText}
        confirmLabel={actionOfDelete}
        run={async (a) => {
          const after = await api.del<Allocation>(`/v1/allocations/${encodeURIComponent(a.id ?? '')}`);
          setMessage(`${workloadText(a)}: ${actionOfDelete(a) === 'Clear' ? 'cleared' : 'releasing'} (now ${after?.state ?? 'released'}).`);
          page.reload();
        }}
      />
    </>
  );
}

function RowAction({ a, onAsk }: { a: Allocation; onAsk: () => void }) {
  const label = actionOf(a);
  if (!label) return <span class="muted">—</span>;
  return (
    <button type="button" class={a.state === 'failed' ? '' : 'danger'} onClick={onAsk} aria-label={`${label} ${workloadText(a)}`}>
      {label}
    </button>
  );
}

/** What DELETE does to it, in words: a failed one is only cleared, an attached one detached first. */
function actionOf(a: Allocation): string | null {
  if (a.state === 'failed') return 'Clear';
  if (a.state === 'releasing' || a.state === 'released') return null;
  return a.attachment ? 'Detach and release' : 'Release';
}

const actionOfDelete = (a: Allocation) => actionOf(a) ?? 'Release';

function releaseText(a: Allocation) {
  const action = actionOfDelete(a);
  return action === 'Clear' ? (
    <p>
      Clear the failed allocation of <strong>{workloadText(a)}</strong>? Its VF was freed when it failed; it is marked released, its reason kept.
    </p>
  ) : (
    <p>
      {action} the VF of <strong>{workloadText(a)}</strong> ({a.host} {a.pf} VF {a.vfIndex})? The workload loses this interface
      {a.attachment?.netns ? ` in ${String(a.attachment.netns)}` : ''}; the VF is scrubbed and freed.
    </p>
  );
}

function FilterForm({ filters, staff }: { filters: Filters; staff: boolean }) {
  const [draft, setDraft] = useState(filters);
  const key = JSON.stringify(filters);
  const [seen, setSeen] = useState(key);
  if (seen !== key) {
    setSeen(key);
    setDraft(filters);
  }
  const field = (name: keyof Filters, label: string) => (
    <label>
      {label}
      <input value={draft[name]} onInput={(e) => setDraft({ ...draft, [name]: e.currentTarget.value })} />
    </label>
  );
  return (
    <form
      class="filters"
      aria-label="Filter allocations"
      onSubmit={(e) => {
        e.preventDefault();
        setQuery('/allocations', draft);
      }}
    >
      <label>
        State
        <select value={draft.state} onChange={(e) => setDraft({ ...draft, state: e.currentTarget.value })} aria-label="State">
          <option value="">any</option>
          {STATES.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      {field('workload', 'Workload')}
      {field('network', 'Network')}
      {staff && field('tenant', 'Tenant')}
      {staff && field('host', 'Host')}
      {staff && field('physnet', 'Physnet')}
      <button type="submit">Filter</button>
      <button type="button" onClick={() => setQuery('/allocations', {})}>
        Clear filters
      </button>
    </form>
  );
}

/** A new allocation attached to a container (netns, ifname, IPs) or a VM (libvirt domain). */
function AttachForm({ onCreated }: { onCreated: (a: Allocation) => void }) {
  const who = useWho();
  const networks = useLoad<Network[]>('networks', () => getAll<Network>('/v1/networks'));
  const [kind, setKind] = useState<'container' | 'vm'>('container');
  const [f, setF] = useState({ network: '', workload: '', netns: '', ifname: 'net1', ips: '', vm: '', failover: false, host: '' });
  const [error, setError] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof f) => (e: { currentTarget: HTMLInputElement | HTMLSelectElement }) => setF({ ...f, [k]: e.currentTarget.value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const ips = f.ips.split(/[\s,]+/).filter(Boolean);
    const attach =
      kind === 'container' ? { kind, netns: f.netns, ifname: f.ifname, ...(ips.length ? { ips } : {}) } : { kind, vm: f.vm || f.workload, failover: f.failover };
    try {
      const a = await api.post<Allocation>('/v1/allocations', {
        network: f.network || networks.data?.[0]?.name,
        workload: { kind, name: f.workload },
        ...(f.host ? { host: f.host } : {}),
        attach,
      });
      onCreated(a);
    } catch (err) {
      setError(asApiError(err));
    } finally {
      setBusy(false);
    }
  };
  const fieldError = (name: string) => (error?.field === name || error?.field?.endsWith(`/${name}`) ? 'true' : undefined);
  return (
    <details class="card attach">
      <summary>Attach a container or VM</summary>
      <form onSubmit={submit} aria-label="Attach a workload">
        <fieldset>
          <legend>Workload kind</legend>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === 'container'} onChange={() => setKind('container')} /> Container
          </label>
          <label class="inline">
            <input type="radio" name="kind" checked={kind === 'vm'} onChange={() => setKind('vm')} /> VM
          </label>
        </fieldset>
        <label>
          Network
          <select value={f.network} onChange={set('network')} required aria-label="Network">
            <option value="">choose…</option>
            {(networks.data ?? []).map((n) => (
              <option key={n.name} value={n.name}>
                {n.name} ({n.tenant}, {n.physnet})
              </option>
            ))}
          </select>
        </label>
        <label>
          Workload name
          <input value={f.workload} onInput={set('workload')} required aria-invalid={fieldError('workload')} />
        </label>
        {kind === 'container' ? (
          <>
            <label>
              Network namespace path
              <input value={f.netns} onInput={set('netns')} placeholder="/var/run/netns/pod-a" required aria-invalid={fieldError('netns')} />
            </label>
            <label>
              Interface name
              <input value={f.ifname} onInput={set('ifname')} required aria-invalid={fieldError('ifname')} />
            </label>
            <label>
              IP addresses (CIDR, comma-separated; empty: from the network's pool)
              <input value={f.ips} onInput={set('ips')} placeholder="198.18.10.20/24" aria-invalid={fieldError('ips')} />
            </label>
          </>
        ) : (
          <>
            <label>
              libvirt domain (empty: the workload name)
              <input value={f.vm} onInput={set('vm')} />
            </label>
            <label class="inline">
              <input type="checkbox" checked={f.failover} onChange={(e) => setF({ ...f, failover: e.currentTarget.checked })} /> virtio failover standby
            </label>
          </>
        )}
        {who.isStaff && (
          <label>
            Host (optional)
            <input value={f.host} onInput={set('host')} />
          </label>
        )}
        <button type="submit" class="primary" disabled={busy}>
          Attach
        </button>
        <ErrorNote error={error} />
      </form>
    </details>
  );
}
