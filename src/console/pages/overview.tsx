/**
 * The first page. Staff see the fleet from one summary request
 * (`GET /v1/overview`, built from the controller's memory) and then the
 * isolation audit's drift and isolation findings; a tenant sees its own
 * allocations and networks, from routes a tenant may read.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { getAll, useLoad } from '../components/use-api.js';
import { ErrorNote, Link, Loading, Meter, mbps, workloadText } from '../components/ui.js';
import type { Allocation, IsolationReport, Network, Overview } from '../components/types.js';
import { useWho } from '../session.js';

export function OverviewPage() {
  const who = useWho();
  return (
    <>
      <h1>Overview</h1>
      {who.isStaff ? <FleetOverview /> : <TenantOverview tenant={who.tenant ?? ''} />}
    </>
  );
}

/** Up to this many hosts the overview runs the isolation audit itself. */
const AUTO_AUDIT_HOSTS = 200;

function FleetOverview() {
  const overview = useLoad<Overview>('overview', () => api.get('/v1/overview'), 10_000);
  const o = overview.data;
  // The isolation audit reads every host's inventory: run by itself on a small fleet, on request on a large one.
  const [auditAsked, setAuditAsked] = useState(false);
  const autoAudit = o !== null && o.hosts.total <= AUTO_AUDIT_HOSTS;
  const isolation = useLoad<IsolationReport>(autoAudit || auditAsked ? 'isolation' : null, () => api.get('/v1/audit/isolation'));
  if (!o) return overview.error ? <ErrorNote error={overview.error} /> : <Loading what="the fleet" />;
  const findings = isolation.data?.violations ?? [];
  return (
    <>
      <ErrorNote error={overview.error} />
      <section aria-labelledby="ov-hosts" class="tiles">
        <h2 id="ov-hosts" class="visually-hidden">Counts</h2>
        <Stat label="Hosts ready" value={o.hosts.ready} of={o.hosts.total} to="/hosts?state=ready" />
        <Stat label="Hosts unreachable" value={o.hosts.unreachable} to="/hosts?state=unreachable" alarm={o.hosts.unreachable > 0} />
        <Stat label="Drained PFs" value={o.drainedPfs} note={`on ${o.hosts.withDrainedPfs} hosts`} />
        <Stat label="VFs free" value={o.vfs.free} of={o.vfs.total} note={`${o.vfs.unschedulable} not offered`} />
        <Stat label="VFs used" value={o.vfs.allocated} of={o.vfs.total} to="/allocations" />
        <Stat label="Allocations failed" value={o.vfs.failed} to="/allocations?state=failed" alarm={o.vfs.failed > 0} />
      </section>

      <section aria-labelledby="ov-bw">
        <h2 id="ov-bw">Bandwidth committed per physnet</h2>
        {o.physnets.length === 0 ? (
          <p>No PF has a physnet yet: a node policy gives PFs one.</p>
        ) : (
          o.physnets.map((p) => (
            <div key={p.name} class="physnet-load">
              <Meter label={`${p.name} (${p.hosts} hosts, ${p.pfs} PFs, ${p.vfs.allocated}/${p.vfs.total} VFs used)`} used={p.committedMbps} of={p.capacityMbps} unit={mbps} />
            </div>
          ))
        )}
      </section>

      <section aria-labelledby="ov-problems">
        <h2 id="ov-problems">Open problems</h2>
        <ul class="problems">
          {o.unreachableHosts.map((h) => (
            <li key={`h-${h.name}`}>
              <span class="tag bad">unreachable</span> host <Link to={`/hosts/${encodeURIComponent(h.name)}`}>{h.name}</Link>
              {h.heartbeatAgeMs !== null && <> — last heard {Math.round(h.heartbeatAgeMs / 1000)} s ago</>}
            </li>
          ))}
          {o.failedAllocations.map((a) => (
            <li key={`a-${a.id}`}>
              <span class="tag bad">failed</span> allocation{' '}
              <Link to={`/allocations?state=failed&workload=${encodeURIComponent(a.workload.name)}`}>{a.id.slice(0, 8)}</Link> of {workloadText(a)} on{' '}
              <Link to={`/hosts/${encodeURIComponent(a.host)}`}>{a.host}</Link> {a.pf} VF {a.vfIndex}
              {a.reason && <>: {a.reason}</>}
            </li>
          ))}
          {o.drained.map((d) => (
            <li key={`d-${d.host}-${d.pciAddress}`}>
              <span class="tag warn">drained</span> PF {d.pf} ({d.pciAddress}) on <Link to={`/hosts/${encodeURIComponent(d.host)}`}>{d.host}</Link>
            </li>
          ))}
          {findings.map((v, i) => (
            <li key={`i-${i}`}>
              <span class={v.kind === 'drift' ? 'tag warn' : 'tag bad'}>{v.kind ?? 'finding'}</span> {v.message}
              {(v.vfs ?? []).slice(0, 4).map((vf) => (
                <> {' '}<Link to={hostPathOfVf(vf)}>{vf}</Link></>
              ))}
            </li>
          ))}
        </ul>
        {o.unreachableHosts.length + o.failedAllocations.length + o.drained.length + findings.length === 0 && <p>None.</p>}
        {o.truncated && <p class="muted">Lists stop at 50 entries each; the counts above are complete.</p>}
        {!autoAudit && !auditAsked && (
          <p>
            Drift and isolation findings come from the isolation audit, which reads every host's inventory.{' '}
            <button type="button" onClick={() => setAuditAsked(true)}>
              Run the isolation audit
            </button>
          </p>
        )}
        {isolation.loading && !isolation.data && <Loading what="the isolation audit" />}
        {isolation.data && (
          <p class="muted">
            Isolation audit of {new Date(isolation.data.generatedAt ?? Date.now()).toLocaleTimeString()}: {findings.length} findings.{' '}
            <button type="button" onClick={isolation.reload}>
              Run again
            </button>
          </p>
        )}
        <ErrorNote error={isolation.error} />
      </section>
    </>
  );
}

/** Isolation findings name VFs as `host/pci` or `host:pf/vf`; link to the host. */
function hostPathOfVf(vf: string): string {
  const host = vf.split(/[/:\s]/)[0] ?? vf;
  return `/hosts/${encodeURIComponent(host)}`;
}

function Stat({ label, value, of, note, to, alarm }: { label: string; value: number; of?: number; note?: string; to?: string; alarm?: boolean }) {
  const body = (
    <>
      <span class="stat-value">{value}</span>
      {of !== undefined && <span class="stat-of"> of {of}</span>}
    </>
  );
  return (
    <div class={alarm ? 'stat alarm' : 'stat'}>
      <div class="stat-label">{label}</div>
      <div>{to ? <Link to={to} label={`${label}: ${value}${of !== undefined ? ` of ${of}` : ''}`}>{body}</Link> : body}</div>
      {note && <div class="muted">{note}</div>}
    </div>
  );
}

function TenantOverview({ tenant }: { tenant: string }) {
  const allocations = useLoad<Allocation[]>(`t-alloc`, () => getAll<Allocation>('/v1/allocations?limit=1000', 5), 10_000);
  const networks = useLoad<Network[]>(`t-net`, () => getAll<Network>('/v1/networks'));
  const list = (allocations.data ?? []).filter((a) => a.state !== 'released');
  const by = (s: string) => list.filter((a) => a.state === s).length;
  return (
    <>
      <p>Tenant {tenant}: your networks and the VFs your workloads hold.</p>
      <ErrorNote error={allocations.error ?? networks.error} />
      <section aria-labelledby="tov-counts" class="tiles">
        <h2 id="tov-counts" class="visually-hidden">Counts</h2>
        <Stat label="Networks" value={networks.data?.length ?? 0} to="/networks" />
        <Stat label="VFs attached" value={by('attached')} to="/allocations?state=attached" />
        <Stat label="VFs pending or configured" value={by('pending') + by('configured')} to="/allocations" />
        <Stat label="Allocations failed" value={by('failed')} to="/allocations?state=failed" alarm={by('failed') > 0} />
      </section>
      <section aria-labelledby="tov-problems">
        <h2 id="tov-problems">Open problems</h2>
        {by('failed') === 0 ? (
          <p>None.</p>
        ) : (
          <ul class="problems">
            {list
              .filter((a) => a.state === 'failed')
              .map((a) => (
                <li key={a.id}>
                  <span class="tag bad">failed</span> <Link to={`/allocations?state=failed&workload=${encodeURIComponent(a.workload?.name ?? '')}`}>{workloadText(a)}</Link>
                  {a.reason && <>: {a.reason}</>}
                </li>
              ))}
          </ul>
        )}
      </section>
    </>
  );
}
