/**
 * Hosts: the paged summaries (`GET /v1/hosts`, no inventory), and one host
 * (`/hosts/:name`): a card per PF, its VF grid, a VF's detail and the PF
 * actions (VF count, MTU, node policy) through a plan shown first.
 */
import { useState } from 'preact/hooks';
import { api, query } from '../api.js';
import type { PageProps } from '../pages.js';
import { setQuery, useQuery } from '../components/query.js';
import type { Allocation, HostRecord, HostSummary } from '../components/types.js';
import { ErrorNote, Link, Loading, mbps } from '../components/ui.js';
import { getAll, useLoad } from '../components/use-api.js';
import { Pager, usePaged } from '../components/pager.js';
import { PfCard } from '../components/pf-card.js';
import { PolicyPanel } from '../components/policy-panel.js';

export function HostsPage() {
  const q = useQuery();
  const state = q.get('state') ?? '';
  const physnet = q.get('physnet') ?? '';
  const first = query('/v1/hosts', { state, physnet, limit: 100 });
  const paged = usePaged<HostSummary>(first);
  const page = paged.page;
  const [physnetText, setPhysnetText] = useState(physnet);
  return (
    <>
      <h1>Hosts</h1>
      <form
        class="filters"
        aria-label="Filter hosts"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery('/hosts', { state, physnet: physnetText });
        }}
      >
        <label>
          State
          <select value={state} onChange={(e) => setQuery('/hosts', { state: e.currentTarget.value, physnet })} aria-label="State">
            <option value="">any</option>
            <option value="ready">ready</option>
            <option value="unreachable">unreachable</option>
          </select>
        </label>
        <label>
          Physnet
          <input value={physnetText} onInput={(e) => setPhysnetText(e.currentTarget.value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ErrorNote error={page.error} />
      {!page.data ? (
        !page.error && <Loading what="hosts" />
      ) : (
        <>
          <div class="table-wrap">
            <table>
              <caption class="visually-hidden">Hosts, in name order</caption>
              <thead>
                <tr>
                  <th scope="col">Host</th>
                  <th scope="col">State</th>
                  <th scope="col">Heartbeat</th>
                  <th scope="col">VFs used</th>
                  <th scope="col">Guarantees committed</th>
                  <th scope="col">PFs</th>
                </tr>
              </thead>
              <tbody>
                {page.data.items.map((h) => (
                  <tr key={h.name}>
                    <th scope="row">
                      <Link to={`/hosts/${encodeURIComponent(h.name ?? '')}`}>{h.name}</Link>
                    </th>
                    <td>
                      <span class={h.state === 'ready' ? 'tag ok' : 'tag bad'}>{h.state}</span>
                    </td>
                    <td>{h.heartbeatAgeMs === null || h.heartbeatAgeMs === undefined ? 'never' : `${Math.round(h.heartbeatAgeMs / 1000)} s ago`}</td>
                    <td>
                      {h.vfs?.allocated ?? 0} of {h.vfs?.total ?? 0}
                    </td>
                    <td>
                      {mbps(h.committedMbps)} of {mbps(h.capacityMbps)}
                    </td>
                    <td>
                      {h.pfs?.length ?? 0}
                      {(h.drainedPfs?.length ?? 0) > 0 && <span class="tag warn">{h.drainedPfs!.length} drained</span>}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {page.data.items.length === 0 && <p>No host matches.</p>}
          <Pager paged={paged} />
        </>
      )}
    </>
  );
}

const HOLDING = ['pending', 'configured', 'attached', 'releasing', 'failed'] as const;

export function HostPage({ params }: PageProps) {
  const name = params.name ?? '';
  const host = useLoad<HostRecord>(`host:${name}`, () => api.get(`/v1/hosts/${encodeURIComponent(name)}`), 5000);
  const allocations = useLoad<Allocation[]>(
    `alloc:${name}`,
    async () => (await Promise.all(HOLDING.map((s) => getAll<Allocation>(query('/v1/allocations', { host: name, state: s, limit: 1000 }))))).flat(),
    5000,
  );
  const h = host.data;
  // A PF change stores a new policy document: the policy panel then starts again from it.
  const [applied, setApplied] = useState(0);
  return (
    <>
      <h1>Host {name}</h1>
      <ErrorNote error={host.error} />
      {!h ? (
        !host.error && <Loading what="the host" />
      ) : (
        <>
          <p>
            <span class={h.state === 'ready' ? 'tag ok' : 'tag bad'}>{h.state}</span> last heartbeat {h.lastHeartbeat ?? 'never'} ·{' '}
            <Link to={`/allocations?host=${encodeURIComponent(name)}`}>its allocations</Link> · <Link to={`/traffic?host=${encodeURIComponent(name)}`}>its traffic</Link>
          </p>
          {h.inventory?.pfs.length === 0 && <p>The host reported no SR-IOV PF.</p>}
          {h.inventory?.pfs.map((pf) => (
            <PfCard
              key={pf.pciAddress}
              host={h}
              pf={pf}
              allocations={(allocations.data ?? []).filter((a) => a.pfPciAddress === pf.pciAddress)}
              onChanged={() => (host.reload(), allocations.reload(), setApplied((n) => n + 1))}
            />
          ))}
          <PolicyPanel key={applied} host={name} onApplied={() => host.reload()} />
        </>
      )}
    </>
  );
}
