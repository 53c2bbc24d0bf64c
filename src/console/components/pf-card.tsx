/**
 * One PF of a host: what it is, its link, the guarantees (min rate) and
 * caps (max rate) committed on it against the link, its VF grid and the
 * selected VF's detail, and its actions (VF count, MTU) through a plan.
 */
import { useState } from 'preact/hooks';
import type { Allocation, HostRecord, PfInfo } from './types.js';
import { Meter } from './ui.js';
import { VfDetail } from './vf-detail.js';
import { VfGrid, vfStates } from './vf-grid.js';
import { PfActions } from './policy-panel.js';

const HOLDING = new Set(['pending', 'configured', 'attached', 'releasing']);

export function PfCard({ host, pf, allocations, onChanged }: { host: HostRecord; pf: PfInfo; allocations: Allocation[]; onChanged: () => void }) {
  const [selected, setSelected] = useState<number | null>(null);
  const drained = (host.drainedPfs ?? []).includes(pf.pciAddress);
  const physnet = host.physnets?.[pf.pciAddress] ?? null;
  const link = pf.linkSpeedMbps ?? 0;
  const committedMin = allocations.filter((a) => HOLDING.has(a.state ?? '')).reduce((s, a) => s + (a.minTxRateMbps ?? 0), 0);
  const committedMax = pf.vfs.reduce((s, vf) => s + vf.maxTxRateMbps, 0);
  const states = vfStates(pf, allocations);
  const headingId = `pf-${pf.pciAddress.replace(/[^a-z0-9]/gi, '-')}`;
  const vf = selected === null ? undefined : pf.vfs.find((v) => v.index === selected);
  return (
    <section class="card pf-card" aria-labelledby={headingId}>
      <h2 id={headingId}>
        PF {pf.name} <span class="muted">({pf.pciAddress})</span> {drained && <span class="tag warn">drained</span>}
      </h2>
      <dl class="facts">
        <div>
          <dt>Model</dt>
          <dd>
            {[pf.vendorName, pf.deviceName].filter(Boolean).join(' ') || `${pf.vendorId}:${pf.deviceId}`}
          </dd>
        </div>
        <div>
          <dt>Driver</dt>
          <dd>{pf.driver ?? 'none'}</dd>
        </div>
        <div>
          <dt>Link</dt>
          <dd>
            <span class={pf.linkState === 'up' ? 'tag ok' : 'tag bad'}>{pf.linkState}</span> {pf.linkSpeedMbps ? `${pf.linkSpeedMbps / 1000} Gbit/s` : 'speed unknown'}
          </dd>
        </div>
        <div>
          <dt>NUMA node</dt>
          <dd>{pf.numaNode ?? 'none'}</dd>
        </div>
        <div>
          <dt>eswitch mode</dt>
          <dd>{pf.eswitchMode ?? 'not reported'}</dd>
        </div>
        <div>
          <dt>MTU</dt>
          <dd>{pf.mtu ?? '—'}</dd>
        </div>
        <div>
          <dt>VFs</dt>
          <dd>
            {pf.numVfs} of {pf.totalVfs}
          </dd>
        </div>
        <div>
          <dt>Physnet</dt>
          <dd>{physnet ?? 'none (not scheduled)'}</dd>
        </div>
      </dl>
      {link > 0 ? (
        <>
          <Meter label="Guaranteed (min rate) committed" used={committedMin} of={link} />
          <Meter label="Capped (max rate) set on VFs" used={committedMax} of={link} />
        </>
      ) : (
        <p class="muted">No link speed reported: rates cannot be compared with it.</p>
      )}
      <VfGrid pf={pf} states={states} selected={selected} onSelect={(i) => setSelected(i === selected ? null : i)} />
      {vf && <VfDetail host={host.name ?? ''} pf={pf} vf={vf} state={states.get(vf.index)!} onClose={() => setSelected(null)} />}
      <PfActions host={host.name ?? ''} pf={pf} onApplied={onChanged} />
    </section>
  );
}
